"""mkdocs hook: pages and pictures made from the repository at build time.

- `results.md`: every result record (a JSON file with `rows` and `metadata`)
  under `keras_neural_attention/results/` (records that ship with the
  package, `reproduction/` included) and `benchmarks/results/`, each with
  its scale, hardware, backend and date, the report its run wrote, and the
  paper's figures beside ours where the record carries them
  (`paper_<metric>` next to `<metric>` in a row, or a top-level `paper`
  mapping). Nothing on the page is typed by hand.
- `cli.md`: the command line's help, from `keras_neural_attention.cli`'s
  argparse parser.
- `changelog.md`: the repository's `CHANGELOG.md`.
- `assets/benchmarks/*.svg`: a plot of every benchmark sweep in
  `benchmarks/results/` (time and memory against T), shown where
  `benchmarks.md` holds the marker `<!-- benchmark-plots -->`.
- `assets/mechanism.svg`: the picture of the mechanism, drawn by
  `docs/scripts/draw_mechanism.py`.
"""

import importlib.util
import json
import os
import pathlib
import re

from mkdocs.structure.files import File

os.environ.setdefault("KERAS_BACKEND", "jax")

RECORD_DIRS = ("keras_neural_attention/results", "benchmarks/results")


def _root(config):
    return pathlib.Path(config.config_file_path).resolve().parent


# --- Results ---------------------------------------------------------------


def _is_record(payload):
    return isinstance(payload, dict) and "rows" in payload and (
        "metadata" in payload or _is_reproduction(payload)
        or _is_experiment_run(payload)
    )


def _is_reproduction(payload):
    """A paper-reproduction record (`experiments.records`): `table`, `rows`,
    `paper` (quantity, the paper's figure, ours) and its environment at the
    top level."""
    return "table" in payload and "environment" in payload


def _is_experiment_run(payload):
    """Another experiment's record with its environment at the top level
    (for example the attention-surgery comparison)."""
    return "environment" in payload and "scale" in payload


def find_records(root):
    """`(path, record)` for every result record, sorted by directory."""
    found = []
    for folder in RECORD_DIRS:
        for path in sorted((root / folder).rglob("*.json")):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if _is_record(payload):
                found.append((path, payload))
    return found


def _title(path, record):
    if _is_reproduction(record):
        return (f"Table {record['table']}: {record.get('title', '')} "
                f"({record.get('scale', '?')} scale)")
    name = record.get("experiment") or record.get("task") or path.stem
    return str(name).replace("_", " ").replace("-", " ").capitalize()


def _hardware(meta):
    parts = []
    for key in ("gpu", "device", "accelerator"):
        if meta.get(key):
            parts.append(str(meta[key]))
    if meta.get("cpu"):
        cpus = meta.get("usable_cpus") or meta.get("cpu_count")
        parts.append(f"{meta['cpu']}" + (f" ({cpus} usable cores)"
                                         if cpus else ""))
    return ", ".join(parts) or "not recorded"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return ""
    return str(value).replace("|", "\\|")


def paper_table(record):
    """Markdown table of the rows' metrics with the paper's figure beside
    each (`paper_<metric>` keys, or the record's `paper` mapping keyed by a
    row's `name`/`config`), or "" when the record carries none."""
    rows = record["rows"]
    paper = record.get("paper") if isinstance(record.get("paper"),
                                              dict) else {}
    metrics = []
    for row in rows:
        for key in row:
            if key.startswith("paper_") and key[6:] in row and (
                key[6:] not in metrics
            ):
                metrics.append(key[6:])
    if not metrics and not paper:
        return ""
    label_keys = [k for k in ("name", "config", "model", "attention",
                              "dataset") if any(k in r for r in rows)]
    if paper and not metrics:
        metrics = sorted({k for v in paper.values() if isinstance(v, dict)
                          for k in v})
    header = label_keys + [
        f"{m} ({who})" for m in metrics for who in ("paper", "ours")
    ]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for row in rows:
        label = [_cell(row.get(k, "")) for k in label_keys]
        from_paper = paper.get(str(row.get("name", row.get("config", ""))),
                               {})
        values = []
        for m in metrics:
            values.append(_cell(row.get(f"paper_{m}", from_paper.get(m, ""))))
            values.append(_cell(row.get(m, "")))
        lines.append("| " + " | ".join(label + values) + " |")
    return "\n".join(lines)


def _demote(markdown, levels=2):
    return re.sub(r"^(#+)", lambda m: m.group(1) + "#" * levels, markdown,
                  flags=re.MULTILINE)


def results_page(root):
    records = find_records(root)
    out = [
        "# Results",
        "",
        "Every result record in the repository, rendered when the site is "
        "built (by `docs/hooks/generated.py`): records that ship with the "
        "package (`keras_neural_attention/results/`, the paper-reproduction "
        "runs under `reproduction/`) and those in `benchmarks/results/`. "
        "Each section gives the run's scale, hardware, backend and date, "
        "then the report the run wrote. Where a record carries the paper's "
        "figures, a table puts them beside ours.",
        "",
        f"{len(records)} record(s) found.",
        "",
    ]
    # Reproduction tables first, in table order; then the other records.
    records.sort(key=lambda item: (
        not _is_reproduction(item[1]),
        str(item[1].get("table", "")).zfill(3),
        str(item[1].get("scale", "")), item[0].as_posix(),
    ))
    if not any(_is_reproduction(r) for _, r in records):
        out += [
            "!!! note \"No paper-reproduction record yet\"",
            "    No record of `keras-neural-attention reproduce` exists yet; "
            "the reproduction tables appear here once their runs have "
            "written them.",
            "",
        ]
    for path, record in records:
        meta = record.get("metadata") or dict(
            record.get("environment", {}), device=record.get("device"),
            date=record.get("date"),
        )
        rel = path.relative_to(root).as_posix()
        out += [
            f"## {_title(path, record)}",
            "",
            f"Record `{rel}`.",
            "",
            "| scale | hardware | backend | date |",
            "|---|---|---|---|",
            "| {} | {} | {} | {} |".format(
                _cell(record.get("scale", meta.get("scale", "not recorded"))),
                _cell(_hardware(meta)),
                _cell(f"{meta.get('backend', '?')} "
                      f"{meta.get('backend_version', '')}".strip()
                      + f", keras {meta.get('keras_version', '?')}"),
                _cell(meta.get("date", "not recorded")),
            ),
            "",
        ]
        table = "" if _is_experiment_run(record) else paper_table(record)
        if _is_reproduction(record):
            out += ["The run's report below sets the paper's figure beside "
                    "ours (its \"Paper\" and \"Ours\" columns).", ""]
        elif table:
            out += ["### The paper's figures beside ours", "", table, ""]
        else:
            out += ["This record carries no figure from a paper to set "
                    "beside ours.", ""]
        report = path.with_suffix(".md")
        if report.is_file():
            text = report.read_text(encoding="utf-8")
            # The report's own title is this section's heading.
            text = re.sub(r"\A# [^\n]*\n", "", text)
            out += ["### The run's report", "", _demote(text, 2), ""]
    return "\n".join(out) + "\n"


# --- Performance plots -----------------------------------------------------

BENCHMARK_PLOTS_MARKER = "<!-- benchmark-plots -->"


def sweep_files(root):
    """`benchmarks/results/*/*.json` written by attention_benchmark.py."""
    found = []
    for path in sorted((root / "benchmarks" / "results").glob("*/*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(payload, dict) and {"metadata", "results"} <= set(
            payload
        ) and "seq_lengths" in payload["metadata"]:
            found.append((path, payload))
    return found


def sweep_plot(payload):
    """SVG: median time and peak memory against T, per variant and mode."""
    import io

    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    meta = payload["metadata"]
    labels = meta.get("variant_labels", {})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for mode, style in (("fwd", "-"), ("fwdbwd", "--")):
        for variant in meta["variants"]:
            rows = sorted(
                (r for r in payload["results"]
                 if r["variant"] == variant and r["mode"] == mode
                 and r.get("status") == "ok"),
                key=lambda r: r["seq_len"],
            )
            if not rows:
                continue
            t = [r["seq_len"] for r in rows]
            name = f"{labels.get(variant, variant)}, {mode}"
            axes[0].plot(t, [r["median_ms"] for r in rows], style,
                         marker="o", label=name)
            axes[1].plot(t, [r["peak_bytes"] / 2**20 for r in rows], style,
                         marker="o", label=name)
    for ax, ylabel in zip(axes, ("median time (ms)", "peak memory (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T = S")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"{meta['backend']} on {meta.get('device_name', '?')}, "
        f"{meta.get('date_utc', '?')[:10]}, batch {meta.get('batch')}, "
        f"{meta.get('heads')} heads, key_dim {meta.get('key_dim')}",
        fontsize=10,
    )
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight",
                metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def _plot_name(root, path):
    rel = path.relative_to(root / "benchmarks" / "results").with_suffix("")
    return "assets/benchmarks/" + rel.as_posix().replace("/", "-") + ".svg"


def plots_markdown(root, src_uri):
    import posixpath

    here = posixpath.dirname(src_uri) or "."
    out = []
    for path, payload in sweep_files(root):
        rel = path.relative_to(root).as_posix()
        out += [
            f"### `{rel}`",
            "",
            f"![Median time and peak memory against sequence length, from "
            f"{rel}]({posixpath.relpath(_plot_name(root, path), here)})",
            "",
        ]
    return "\n".join(out) or "No benchmark sweep is recorded yet."


LAYER_BASES_MARKER = "<!-- layer-bases -->"


def layer_bases_table():
    """Each public layer with the public Keras class it derives from (the
    package's own intermediate base classes are internal)."""
    from keras_neural_attention import layers

    lines = ["| layer | a subclass of |", "|---|---|"]
    for name in layers.__all__:
        cls = getattr(layers, name)
        base = next(
            b for b in cls.__mro__[1:]
            if b.__module__.startswith("keras.src.")
            and not b.__name__.startswith("_")
        )
        lines.append(f"| `{name}` | `keras.layers.{base.__name__}` |")
    return "\n".join(lines)


REPORT_MARKER = re.compile(r"<!-- report: (\S+) -->")


def include_reports(markdown, root):
    """Replaces each `<!-- report: PATH -->` by the markdown report a run
    wrote at PATH (repository-relative), its title dropped and its headings
    demoted below the page's; a missing report fails the build."""

    def report(match):
        path = root / match.group(1)
        if not path.is_file():
            raise FileNotFoundError(
                f"docs: the report {match.group(1)} named in a page does not "
                "exist"
            )
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\A# [^\n]*\n", "", text)
        return _demote(text, 2)

    return REPORT_MARKER.sub(report, markdown)


def on_page_markdown(markdown, page, config, files):
    markdown = include_reports(markdown, _root(config))
    if LAYER_BASES_MARKER in markdown:
        markdown = markdown.replace(LAYER_BASES_MARKER, layer_bases_table())
    if BENCHMARK_PLOTS_MARKER in markdown:
        markdown = markdown.replace(
            BENCHMARK_PLOTS_MARKER,
            plots_markdown(_root(config), page.file.src_uri),
        )
    return markdown


# --- CLI reference ---------------------------------------------------------


def cli_page():
    from keras_neural_attention import cli

    parser = cli.build_parser()
    out = [
        "# Command line",
        "",
        "Generated from the argparse parser of "
        "`keras_neural_attention.cli` when the site is built. Run it as "
        "`keras-neural-attention ...` (installed script) or "
        "`python -m keras_neural_attention.cli ...`, with `KERAS_BACKEND` "
        "set.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            out += [f"## `{name}`", "", "```text",
                    sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


# --- Picture ---------------------------------------------------------------


def mechanism_svg(root):
    spec = importlib.util.spec_from_file_location(
        "draw_mechanism", root / "docs" / "scripts" / "draw_mechanism.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.draw()


def on_config(config):
    root = _root(config)
    config.watch.append(str(root / "CHANGELOG.md"))
    for folder in RECORD_DIRS + ("docs/scripts",):
        if (root / folder).is_dir():
            config.watch.append(str(root / folder))
    return config


def on_files(files, config):
    root = _root(config)
    for uri, content in (
        ("results.md", results_page(root)),
        ("cli.md", cli_page()),
        ("assets/mechanism.svg", mechanism_svg(root)),
        ("changelog.md", (root / "CHANGELOG.md").read_text("utf-8")),
    ):
        files.append(File.generated(config, uri, content=content))
    for path, payload in sweep_files(root):
        files.append(File.generated(config, _plot_name(root, path),
                                    content=sweep_plot(payload)))
    return files
