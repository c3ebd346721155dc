"""Pieces the experiments share: named scales, result files and the
command line.

Each experiment module keeps a `SCALES` dict of frozen dataclasses and
writes one JSON file (rows and metadata) and one markdown report per run;
these helpers do both the same way for all of them, and `run_cli` is the
`main` of each.
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path


def resolve_scale(scale, scales, scale_type):
    """`scales[scale]`, or `scale` itself when it is a `scale_type`.

    Raises:
        ValueError: naming the accepted names and the type, when `scale` is
            neither.
    """
    if isinstance(scale, scale_type):
        return scale
    if scale not in scales:
        raise ValueError(
            "Argument `scale` must be one of "
            f"{', '.join(repr(s) for s in scales)} or a "
            f"`{scale_type.__name__}`. Received: scale={scale!r}"
        )
    return scales[scale]


def scale_name(scale, scales):
    """The name under which `scale` stands in `scales`, else `"custom"`."""
    for name, value in scales.items():
        if value == scale:
            return name
    return "custom"


def scale_config(name, scales):
    """The JSON-ready fields of `scales[name]` (tuples become lists), or
    None for a name not in `scales` (a custom scale)."""
    scale = scales.get(name)
    if scale is None:
        return None
    return json.loads(json.dumps(dataclasses.asdict(scale), default=list))


def write_json_and_markdown(payload, markdown, output_dir, stem):
    """Writes `<stem>.json` (`payload`) and `<stem>.md` (`markdown`) into
    `output_dir` (created if needed) and returns
    `{"json": path, "markdown": path}`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = output_dir / f"{stem}.json"
    markdown_path = output_dir / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n",
                         encoding="utf-8")
    markdown_path.write_text(markdown, encoding="utf-8")
    return {"json": str(json_path), "markdown": str(markdown_path)}


def run_cli(argv, *, prog, description, scales, default_output_dir,
            stem_prefix, run, write_results, report):
    """An experiment's command line: `--scale`, `--output-dir`, `--stem`.

    Runs `run(scale, log=print)`, writes the rows with
    `write_results(rows, output_dir, metadata, stem=stem)` (metadata: the
    environment, the scale and the total time), prints `report(rows)` and
    the paths written. The default stem is `<stem_prefix>-<backend>`.

    Returns:
        0 (the exit status).
    """
    import keras

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--scale", choices=tuple(scales), default="default")
    parser.add_argument("--output-dir", default=default_output_dir)
    parser.add_argument(
        "--stem", default=None,
        help=f"file name stem (default: {stem_prefix}-<backend>)",
    )
    args = parser.parse_args(argv)

    from keras_neural_attention.experiments.environment import (
        environment_info,
    )

    start = time.perf_counter()
    rows = run(args.scale, log=print)
    metadata = environment_info()
    metadata.update(
        scale=args.scale,
        total_time_s=round(time.perf_counter() - start, 1),
    )
    stem = args.stem or f"{stem_prefix}-{keras.backend.backend()}"
    paths = write_results(rows, args.output_dir, metadata, stem=stem)
    print(report(rows))
    print(f"Wrote {paths['json']} and {paths['markdown']}")
    return 0


# --------------------------------------------------------------------------
# Paper-table records: one JSON record per run, one markdown writer.


def versions():
    """Versions of the package, Keras, KerasHub and the backend."""
    import importlib.metadata

    import keras

    import keras_neural_attention

    found = {
        "keras_neural_attention": keras_neural_attention.__version__,
        "keras": keras.__version__,
    }
    for package in ("keras-hub", "jax", "torch", "tensorflow",
                    "tensorflow-datasets", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def make_record(table, title, scale, columns, rows, *, paper=None,
                notes=(), seeds=(), wall_time_s=None, recipe=None,
                runs=None, status="complete"):
    """One run of one paper table, as a JSON-ready dict.

    Args:
        table: str, the table's id (`"1"` ... `"7"`).
        title: str.
        scale: str, the scale's name.
        columns: list of `{"key", "title", "format"}` (a `str.format`
            spec such as `"{:.2f}"`) of the rendered table.
        rows: list of dicts with those keys (our numbers).
        paper: list of `{"quantity", "paper", "ours"}`: the paper's figure
            beside ours (`paper` a str: the figure and where it comes from).
        notes: list of str shown under the table.
        seeds: the seeds run.
        wall_time_s: float, the run's wall time.
        recipe: dict of the recipe (or recipes) used.
        runs: the full per-run rows (histories included).
        status: `"complete"`, or `"skipped: <why>"` when the data are not
            available.
    """
    from keras_neural_attention.experiments.environment import (
        device_description,
    )
    from keras_neural_attention.experiments.environment import (
        environment_info,
    )

    environment = environment_info()
    return {
        "table": str(table),
        "title": title,
        "scale": scale,
        "status": status,
        "backend": environment["backend"],
        "device": device_description(),
        "date": environment["date"],
        "seeds": [int(s) for s in seeds],
        "wall_time_s": None if wall_time_s is None else round(
            float(wall_time_s), 1),
        "versions": versions(),
        "environment": environment,
        "columns": list(columns),
        "rows": list(rows),
        "paper": list(paper or []),
        "notes": list(notes),
        "recipe": recipe,
        "runs": runs or [],
    }


def _format_value(value, spec):
    if value is None:
        return "n/a"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v, spec) for v in value) or "none"
    try:
        return (spec or "{}").format(value)
    except (ValueError, TypeError):
        return str(value)


def render_markdown(records):
    """The markdown of one record or a list of them (the only writer of the
    paper tables' markdown)."""
    if isinstance(records, dict):
        records = [records]
    parts = []
    for record in records:
        lines = [f"## Table {record['table']}: {record['title']}", ""]
        lines.append(
            f"Scale `{record['scale']}`, backend `{record['backend']}` on "
            f"{record['device']}, {record['date']}, seeds "
            f"{_format_value(record['seeds'], '{}')}, wall time "
            f"{_format_value(record['wall_time_s'], '{:.0f}')} s"
            + (f" ({record['cpu_time_s']:.0f} s CPU, load average "
               f"{record['load_average'][0]:.1f})"
               if record.get("cpu_time_s") is not None
               and record.get("load_average") else "")
            + "."
        )
        lines.append("")
        if record["status"] != "complete":
            lines.append(f"**Not run** ({record['status']}).")
            lines.append("")
        columns = record["columns"]
        if record["rows"]:
            lines.append("| " + " | ".join(c["title"] for c in columns)
                         + " |")
            lines.append("|" + "|".join("---" for _ in columns) + "|")
            for row in record["rows"]:
                lines.append("| " + " | ".join(
                    _format_value(row.get(c["key"]), c.get("format"))
                    for c in columns) + " |")
            lines.append("")
        if record["paper"]:
            lines.append("| Quantity | Paper | Ours |")
            lines.append("|---|---|---|")
            for item in record["paper"]:
                lines.append(
                    f"| {item['quantity']} | {item['paper']} | "
                    f"{_format_value(item.get('ours'), item.get('format'))}"
                    " |")
            lines.append("")
        for note in record["notes"]:
            lines.append(f"- {note}")
        parts.append("\n".join(lines).rstrip() + "\n")
    return "\n".join(parts)


def record_stem(record):
    """`table<N>-<scale>-<backend>`: the file name of a record."""
    return (f"table{record['table']}-{record['scale']}-"
            f"{record['backend']}")


def write_record(record, output_dir):
    """Writes `<stem>.json` and `<stem>.md` (see `record_stem`)."""
    return write_json_and_markdown(
        record, render_markdown(record), output_dir, record_stem(record))


def read_records(paths):
    """The records of JSON files (paths or one folder of `table*.json`),
    in table order."""
    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        paths = sorted(Path(paths).glob("table*.json"))
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    records = [json.loads(Path(p).read_text(encoding="utf-8"))
               for p in paths]
    return sorted(records, key=lambda r: (r["table"], r["scale"]))
