"""The committed tutorial notebooks are fit to publish as they are."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted(
    (Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_and_no_stored_error(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    tags = [c.get("metadata", {}).get("tags", []) for c in notebook["cells"]]
    assert sum("parameters" in t for t in tags) == 1
    assert not any("injected-parameters" in t for t in tags)
    errors = [
        o for c in notebook["cells"] for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_reads_no_file_outside_the_package(path):
    # From an installed wheel there is no `../benchmarks/`: recorded runs
    # are read through keras_neural_attention.results.
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            assert 'Path("..")' not in source and "../" not in source, (
                source)
