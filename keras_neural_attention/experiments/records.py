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

    from keras_neural_attention.experiments.comparison import (
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
