"""`reproduce(table, scale)`: run one of the paper's tables (or all of
them) at a scale and write its JSON record and markdown table.

Tables: `"1"` configurations and parameter counts, `"2"` language-model
perplexity, `"3"` / `"4"` CIFAR-10 / CIFAR-100 accuracy, `"5"` cost, `"6"`
projection width d', `"7"` Neural Attention in the first layer vs every
layer. Scales: see `experiments.scales` (`smoke`, `cpu`, `gpu`, `paper`,
and `tiny` for tests).
"""

import importlib
import json
import os
import sys
import time
from pathlib import Path

from keras_neural_attention.experiments import records
from keras_neural_attention.experiments.scales import SCALE_NAMES

TABLES = {
    "1": "table1_configurations",
    "2": "table2_language_model",
    "3": "table3_cifar10",
    "4": "table4_cifar100",
    "5": "table5_cost",
    "6": "table6_projection_width",
    "7": "table7_attention_layers",
}
DEFAULT_OUTPUT_DIR = os.path.join("results", "reproduce")


def table_module(table):
    """The module of a table (`"1"` ... `"7"`)."""
    table = str(table)
    if table not in TABLES:
        raise ValueError(
            "Argument `table` must be one of "
            f"{', '.join(repr(t) for t in TABLES)} or 'all'. "
            f"Received: table={table!r}"
        )
    return importlib.import_module(
        f"keras_neural_attention.experiments.{TABLES[table]}")


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def reproduce(table, scale="smoke", data_dir=None, output_dir=None,
              log=_log, verbose=2, reuse=False):
    """Runs one table (or `"all"`) and writes each record.

    Args:
        table: `"1"` ... `"7"` or `"all"`.
        scale: a name in `SCALE_NAMES`.
        data_dir: where the data are (see `experiments.data`); None
            searches `data.default_data_dirs()`.
        output_dir: where records, histories and checkpoints go (default
            `results/reproduce/<scale>`).
        log: callable receiving progress lines, or None.
        verbose: verbosity of `model.fit`.
        reuse: bool. Return the finished record already in `output_dir`
            instead of running the table again, when it was written by
            the same recipe, backend and package version (see
            `reusable_record`).

    Returns:
        A list of records (dicts), each with `"paths"` (the files written).
    """
    if scale not in SCALE_NAMES:
        raise ValueError(
            f"Argument `scale` must be one of "
            f"{', '.join(repr(s) for s in SCALE_NAMES)}. "
            f"Received: scale={scale!r}"
        )
    tables = list(TABLES) if str(table) == "all" else [str(table)]
    for name in tables:
        table_module(name)
    results = []
    for name in tables:
        record = run_table(name, scale, data_dir=data_dir,
                           output_dir=output_dir, log=log, verbose=verbose,
                           reuse=reuse)
        results.append(record)
    return results


def reusable_record(table, scale, output_dir):
    """The finished record of `table` at `scale` in `output_dir` that a
    run now would write again, or None.

    A record is reused only when its status is `"complete"` and its
    scale, backend, package version and recipe (`recipe_record(scale)` of
    the table's module) equal the current ones; anything else runs the
    table again.
    """
    import keras

    import keras_neural_attention

    name = str(table)
    module = table_module(name)
    backend = keras.backend.backend()
    path = Path(output_dir) / f"table{name}-{scale}-{backend}.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    # The recipe as JSON would store it (tuples become lists).
    recipe = json.loads(json.dumps(module.recipe_record(scale)))
    if (record.get("status") != "complete"
            or record.get("scale") != scale
            or record.get("backend") != backend
            or record.get("versions", {}).get("keras_neural_attention")
            != keras_neural_attention.__version__
            or record.get("recipe") != recipe):
        return None
    record["paths"] = {"json": str(path),
                       "markdown": str(path.with_suffix(".md"))}
    return record


def run_table(table, scale="smoke", data_dir=None, output_dir=None,
              log=_log, verbose=2, keep_models=False, reuse=False):
    """Runs one table, times it (wall and CPU time, load average) and
    writes its record into `output_dir` (default
    `results/reproduce/<scale>`); the trained models stay in the table's
    subfolder as best checkpoints and CSV histories.

    With `reuse=True`, a finished record of the same recipe, backend and
    package version already in `output_dir` (see `reusable_record`) is
    returned instead, and with `keep_models` its models are rebuilt from
    their best checkpoints: nothing is trained twice. Delete the record
    to run the table again.

    Returns:
        The record (with `"paths"`), or `(record, models)` with
        `keep_models` (Tables 2, 3 and 4 only: `{(variant, seed): model}`).
    """
    name = str(table)
    module = table_module(name)
    if scale not in SCALE_NAMES:
        raise ValueError(
            f"Argument `scale` must be one of "
            f"{', '.join(repr(s) for s in SCALE_NAMES)}. "
            f"Received: scale={scale!r}"
        )
    output_dir = Path(output_dir or os.path.join(DEFAULT_OUTPUT_DIR, scale))
    if reuse:
        record = reusable_record(name, scale, output_dir)
        if record is not None:
            if log:
                log(f"Table {name}: reusing {record['paths']['json']} "
                    f"(written {record['date']}; delete it to run the "
                    "table again)")
            if not keep_models:
                return record
            if not hasattr(module, "load_models"):
                raise ValueError(
                    "Argument `keep_models=True` with `reuse=True` rebuilds "
                    "the models of tables 3 and 4 only. Received: "
                    f"table={name!r}")
            return record, module.load_models(
                record, output_dir / f"table{name}")
    start = time.perf_counter()
    cpu_start = time.process_time()
    if log:
        log(f"Table {name} ({module.TITLE}), scale {scale} ...")
    kwargs = {"keep_models": True} if keep_models else {}
    result = module.run(
        scale=scale, data_dir=data_dir,
        output_dir=str(output_dir / f"table{name}"), log=log,
        verbose=verbose, **kwargs)
    record, models = result if keep_models else (result, None)
    record["wall_time_s"] = round(time.perf_counter() - start, 1)
    # CPU time of this process (all its threads): on a shared machine a
    # steadier measure of the work than the wall time.
    record["cpu_time_s"] = round(time.process_time() - cpu_start, 1)
    record["load_average"] = _load_average()
    record["paths"] = records.write_record(record, output_dir)
    if log:
        log(f"Table {name}: {record['status']}, "
            f"{record['wall_time_s']:.0f} s wall, "
            f"{record['cpu_time_s']:.0f} s CPU -> "
            f"{record['paths']['json']}")
    return (record, models) if keep_models else record
