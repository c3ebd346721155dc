"""Command line of keras-neural-attention.

```
keras-neural-attention demo [--scale smoke|default|large] [--seed N]
                            [--output-dir DIR] [--in-process]
keras-neural-attention notebooks [--scale smoke|cpu|...] [--output-dir DIR]
                                 [NOTEBOOK ...]
keras-neural-attention reproduce <1..7|all> [--scale smoke|cpu|gpu|paper]
                                 [--data-dir DIR] [--output-dir DIR]
                                 [--reuse]
```

(or `python -m keras_neural_attention.cli ...`). Keras runs on the backend
that `KERAS_BACKEND` names; set it explicitly, for example
`KERAS_BACKEND=jax keras-neural-attention demo`. Child processes and
notebook kernels inherit it.

Importing this module imports nothing heavy beyond the package itself: the
experiments, papermill and Jupyter are imported by the subcommands.
"""

import argparse
import os
import re
import sys
from pathlib import Path

from keras_neural_attention import __version__

SCALE_CHOICES = ("tiny", "smoke", "default", "large")
# The tutorials (01-03, 11) take the demo's scales, the reproduction
# notebooks (04-10) the paper's; "smoke" is common to both.
NOTEBOOK_SCALE_CHOICES = ("tiny", "smoke", "default", "large", "cpu", "gpu",
                          "paper")
DEFAULT_DEMO_DIR = os.path.join("results", "demo")
DEFAULT_NOTEBOOK_DIR = os.path.join("results", "notebooks")
NOTEBOOK_SOURCE_DIR = "notebooks"


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _demo(args):
    from keras_neural_attention.experiments.comparison import environment_info
    from keras_neural_attention.experiments.comparison import format_table
    from keras_neural_attention.experiments.comparison import run_comparison
    from keras_neural_attention.experiments.comparison import table_notes
    from keras_neural_attention.experiments.comparison import verdict
    from keras_neural_attention.experiments.comparison import write_results

    metadata = environment_info()
    _log(
        f"keras {metadata['keras_version']}, backend {metadata['backend']} "
        f"{metadata['backend_version'] or ''}, {metadata['usable_cpus']} "
        f"usable CPU(s): {metadata['cpu']}"
    )
    rows = run_comparison(
        scale=args.scale,
        seed=args.seed,
        isolate=not args.in_process,
        log=_log,
    )
    metadata.update(scale=args.scale, seed=args.seed)
    paths = write_results(rows, args.output_dir, metadata=metadata)
    print()
    print(
        f"Nearest-key retrieval, scale {args.scale}, seed {args.seed}, "
        f"backend {metadata['backend']}:"
    )
    print()
    print(format_table(rows))
    print()
    for note in table_notes(rows):
        print(f"- {note}")
    print()
    print(f"Verdict: {verdict(rows)}")
    print()
    print(f"Wrote {paths['json']} and {paths['markdown']}")
    return 0


def _reproduce(args):
    from keras_neural_attention.experiments.records import render_markdown
    from keras_neural_attention.experiments.reproduce import reproduce

    try:
        results = reproduce(
            args.table, scale=args.scale, data_dir=args.data_dir,
            output_dir=args.output_dir, verbose=args.verbose,
            reuse=args.reuse)
    except (ValueError, FileNotFoundError) as error:
        _log(f"error: {error}")
        return 2
    for record in results:
        print(render_markdown(record))
    skipped = [r["table"] for r in results if r["status"] != "complete"]
    if skipped:
        _log("Not run for lack of data: table(s) " + ", ".join(skipped))
    return 0


def _find_notebooks(paths):
    if paths:
        notebooks = [Path(p) for p in paths]
        missing = [str(p) for p in notebooks if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                "No such notebook: " + ", ".join(missing)
            )
        return notebooks
    return sorted(Path(NOTEBOOK_SOURCE_DIR).glob("*.ipynb"))


def _merge_parameters(defaults, injected):
    """The `parameters` cell's source with the injected values in place of
    the defaults they override (each line's comment kept); the other
    defaults stay, so the cell still defines every parameter."""
    values = {}
    for line in injected.splitlines():
        match = re.match(r"^(\w+) = (.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    lines = []
    for line in defaults.splitlines():
        match = re.match(r"^(\w+)\s*=\s*(.*?)(\s*#.*)?$", line)
        if match and match.group(1) in values:
            line = (f"{match.group(1)} = {values.pop(match.group(1))}"
                    f"{match.group(3) or ''}")
        lines.append(line)
    lines += [f"{name} = {value}" for name, value in values.items()]
    return "\n".join(lines)


def _fold_injected_parameters(path):
    """Leaves one parameters cell in the executed notebook at `path`.

    papermill adds an `injected-parameters` cell after the `parameters`
    cell; the values that ran replace the defaults in the `parameters`
    cell (with the injected cell's outputs) and the extra cell goes, so an
    executed copy can be committed as a tutorial as it is.
    """
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)

    def tagged(tag):
        return [
            i for i, cell in enumerate(notebook.cells)
            if tag in cell.get("metadata", {}).get("tags", [])
        ]

    injected, defaults = tagged("injected-parameters"), tagged("parameters")
    if not injected:
        return
    if defaults:
        target = notebook.cells[defaults[0]]
        source = notebook.cells[injected[0]]
        target.source = _merge_parameters(target.source, source.source)
        target.outputs = source.outputs
        target.execution_count = source.execution_count
        del notebook.cells[injected[0]]
    else:
        cell = notebook.cells[injected[0]]
        cell.metadata["tags"] = [
            "parameters" if t == "injected-parameters" else t
            for t in cell.metadata["tags"]
        ]
    nbformat.write(notebook, str(path))


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer, got {text!r}")
    return value


def _execute_notebook(notebook, output, scale, kernel):
    """Runs one notebook into `output`; returns None, or the error's
    one-line summary."""
    import papermill

    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={"SCALE": scale},
            kernel_name=kernel,
            cwd=str(Path(notebook).resolve().parent),
            progress_bar=False,
            log_output=False,
        )
        _fold_injected_parameters(output)
    except Exception as error:  # noqa: BLE001 (report and go on)
        summary = str(error).strip().splitlines()
        return f"{type(error).__name__}" + (
            f": {summary[-1]}" if summary else "")
    return None


def _report_notebook(notebook, error, failures):
    if error is None:
        _log(f"  done {notebook}")
        return
    failures.append(notebook)
    _log(f"  FAILED {notebook}: {error}")


def _notebooks(args):
    try:
        notebooks = _find_notebooks(args.paths)
    except FileNotFoundError as error:
        _log(f"error: {error}")
        return 2
    if not notebooks:
        _log(f"error: no notebooks found in {NOTEBOOK_SOURCE_DIR}/")
        return 2
    output_dir = Path(args.output_dir)
    outputs = [output_dir / nb.name for nb in notebooks]
    for notebook, output in zip(notebooks, outputs):
        if output.resolve() == notebook.resolve():
            _log(
                f"error: executing {notebook} into {output_dir}/ would "
                "overwrite it; choose another --output-dir"
            )
            return 2
    if len(set(outputs)) != len(outputs):
        _log("error: two notebooks share a file name; execute them apart")
        return 2

    import papermill  # noqa: F401 (fails here when the dev extra is missing)

    output_dir.mkdir(parents=True, exist_ok=True)
    backend = os.environ.get("KERAS_BACKEND")
    _log(
        f"Executing {len(notebooks)} notebook(s) with SCALE={args.scale!r}, "
        f"KERAS_BACKEND={backend or '(unset)'}, into {output_dir}/"
    )
    failures = []
    jobs = min(args.jobs, len(notebooks))
    if jobs == 1:
        for notebook, output in zip(notebooks, outputs):
            _log(f"  {notebook} -> {output}")
            error = _execute_notebook(notebook, output, args.scale,
                                      args.kernel)
            _report_notebook(notebook, error, failures)
    else:
        import concurrent.futures
        import multiprocessing

        # One process per running notebook (each drives its own kernel):
        # papermill's event loop is not shared across threads, and a fork
        # of a process that imported JAX may hang.
        with concurrent.futures.ProcessPoolExecutor(
                max_workers=jobs,
                mp_context=multiprocessing.get_context("spawn")) as pool:
            running = {}
            for notebook, output in zip(notebooks, outputs):
                _log(f"  {notebook} -> {output}")
                running[pool.submit(_execute_notebook, notebook, output,
                                    args.scale, args.kernel)] = notebook
            for future in concurrent.futures.as_completed(running):
                _report_notebook(running[future], future.result(), failures)
        order = {notebook: i for i, notebook in enumerate(notebooks)}
        failures.sort(key=order.get)
    if failures:
        _log(
            f"{len(failures)} of {len(notebooks)} notebook(s) failed: "
            + ", ".join(str(f) for f in failures)
        )
        return 1
    _log(f"All {len(notebooks)} notebook(s) ran without errors.")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-neural-attention",
        description=(
            "Neural Attention (arXiv 2502.17206) for Keras 3. Set "
            "KERAS_BACKEND (jax, torch or tensorflow) to choose the backend."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="train dot-product attention and Neural Attention side by side "
        "on the built-in nearest-key task and print a comparison table",
        description=(
            "Trains keras.layers.MultiHeadAttention and NeuralAttention "
            "models, identical except for the attention layer, on the "
            "synthetic nearest-key retrieval task (no download), each in a "
            "fresh child process whose peak RSS is measured. Prints a "
            "markdown table and a verdict, and writes comparison.json and "
            "comparison.md."
        ),
    )
    demo.add_argument(
        "--scale",
        choices=SCALE_CHOICES,
        default="default",
        help="smoke: seconds (CI); default: 1-2 minutes on a 2-core CPU; "
        "large: for a GPU; tiny: plumbing checks only (default: default)",
    )
    demo.add_argument("--seed", type=int, default=0, help="default: 0")
    demo.add_argument(
        "--output-dir",
        default=DEFAULT_DEMO_DIR,
        help=f"where the result files go (default: {DEFAULT_DEMO_DIR})",
    )
    demo.add_argument(
        "--in-process",
        action="store_true",
        help="train in this process instead of fresh child processes "
        "(faster start-up; peak memory is then not measured)",
    )
    demo.set_defaults(handler=_demo)

    reproduce = commands.add_parser(
        "reproduce",
        help="reproduce one of the paper's tables (or all) at a scale",
        description=(
            "Runs table 1 (configurations), 2 (language-model "
            "perplexity), 3 / 4 (CIFAR-10 / CIFAR-100 accuracy), 5 (cost), "
            "6 (projection width d') or 7 (first layer vs every layer), or "
            "all, and writes one JSON record and one markdown table per "
            "table into --output-dir (default results/reproduce/<scale>)."
        ),
    )
    reproduce.add_argument(
        "table", choices=("1", "2", "3", "4", "5", "6", "7", "all"))
    reproduce.add_argument(
        "--scale", choices=("smoke", "cpu", "gpu", "paper", "tiny"),
        default="smoke",
        help="smoke: under 2 minutes a table (CI); cpu: up to an hour a "
        "table on 2 cores; gpu: minutes on one GPU; paper: the released "
        "code's configurations; tiny: tests only (default: smoke)",
    )
    reproduce.add_argument(
        "--data-dir", default=None,
        help="folder (or file) holding the data: wiki.*.tokens, "
        "cifar10_jpeg.npz, CIFAR archives or a tensorflow-datasets "
        "folder (default: $KERAS_NEURAL_ATTENTION_DATA, ../shared/data, "
        "./data)",
    )
    reproduce.add_argument("--output-dir", default=None)
    reproduce.add_argument(
        "--reuse", action="store_true",
        help="keep a finished record already in --output-dir when it was "
        "written by the same recipe, backend and package version, "
        "instead of running its table again")
    reproduce.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=2,
        help="model.fit verbosity (default: 2, one line per epoch)")
    reproduce.set_defaults(handler=_reproduce)

    notebooks = commands.add_parser(
        "notebooks",
        help="execute the tutorial notebooks with papermill",
        description=(
            "Executes notebooks/*.ipynb (or the given notebooks) with "
            "papermill, passing the parameter SCALE, and writes the "
            "executed copies to --output-dir (the sources are never "
            "overwritten). Exits non-zero if any notebook fails. The kernel "
            "inherits this process's environment, KERAS_BACKEND included."
        ),
    )
    notebooks.add_argument(
        "paths",
        nargs="*",
        metavar="NOTEBOOK",
        help=f"notebooks to run (default: {NOTEBOOK_SOURCE_DIR}/*.ipynb)",
    )
    notebooks.add_argument(
        "--scale",
        choices=NOTEBOOK_SCALE_CHOICES,
        default="smoke",
        help="value of the notebooks' SCALE parameter: smoke for all; "
        "default or large for the tutorials (01-03, 11); cpu, gpu or "
        "paper for the reproduction notebooks (04-10) (default: smoke)",
    )
    notebooks.add_argument(
        "--output-dir",
        default=DEFAULT_NOTEBOOK_DIR,
        help=f"where executed copies go (default: {DEFAULT_NOTEBOOK_DIR})",
    )
    notebooks.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        help="notebooks executed at the same time, each in its own "
        "process and kernel (default: 1)",
    )
    notebooks.add_argument(
        "--kernel",
        default="python3",
        help="Jupyter kernel name (default: python3)",
    )
    notebooks.set_defaults(handler=_notebooks)
    return parser


def main(argv=None):
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
