"""Result records that ship with the package.

Experiments write one JSON record (`experiment`, `scale`, `metadata` with the
backend, hardware and date, `rows`) and a markdown report per run (see
`keras_neural_attention.experiments.records`). The records that the tutorial
notebooks and the documentation's Results page read live in this folder, so
they are found the same way from a checkout and from an installed wheel:

- `<date>-<machine>/`: recorded runs of the companion experiments.
- `reproduction/`: records of the paper-reproduction runs (one file per table
  or configuration).

Example:

```python
from keras_neural_attention import results

names = results.record_names()
record = results.load_record("2026-11-23-cpu/capacity-jax-cpu.json")
print(record["experiment"], record["scale"], record["metadata"]["date"])
```
"""

import json
from importlib import resources as _resources
from pathlib import Path

REPRODUCTION_DIR = "reproduction"


def records_root():
    """The folder that holds the packaged records, as a `pathlib.Path`."""
    return Path(str(_resources.files(__name__)))


def record_names(subdir=None):
    """Sorted names (paths relative to `records_root()`, with `/`) of the
    JSON records, optionally only those under `subdir`."""
    root = records_root()
    base = root / subdir if subdir else root
    if not base.is_dir():
        return []
    return sorted(
        path.relative_to(root).as_posix() for path in base.rglob("*.json")
    )


def record_path(name):
    """The path of the record `name` (as listed by `record_names()`).

    Raises:
        FileNotFoundError: naming the record and the records that exist.
    """
    path = records_root() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"No result record {name!r} in {records_root()}. Records: "
            f"{', '.join(record_names()) or '(none)'}"
        )
    return path


def load_record(name):
    """The parsed JSON record `name`."""
    return json.loads(record_path(name).read_text(encoding="utf-8"))
