"""Tests of the command line (`python -m keras_neural_attention.cli`)."""

import json
import os
import subprocess
import sys

import keras
import nbformat
import pytest

from keras_neural_attention import cli


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2


def test_demo_rejects_unknown_scale(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--scale", "huge"])
    assert info.value.code == 2


def test_demo_writes_results(tmp_path, capsys):
    out = tmp_path / "demo"
    status = cli.main(
        ["demo", "--scale", "tiny", "--seed", "3", "--in-process",
         "--output-dir", str(out)]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "| Attention |" in printed
    assert "Verdict: " in printed
    payload = json.loads((out / "comparison.json").read_text())
    assert payload["scale"] == "tiny" and payload["seed"] == 3
    assert payload["metadata"]["backend"] == keras.backend.backend()
    assert [row["attention"] for row in payload["rows"]] == [
        "dot_product", "neural"
    ]
    assert payload["verdict"] in printed
    markdown = (out / "comparison.md").read_text()
    assert payload["table"] in markdown


def test_import_is_light():
    code = (
        "import sys, keras_neural_attention.cli; "
        "heavy = [m for m in ('papermill', 'nbformat', 'nbclient', "
        "'keras_neural_attention.experiments') if m in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, KERAS_BACKEND=keras.backend.backend()),
    )
    assert result.stdout.strip() == "[]"


def _write_notebook(path, source):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            'SCALE = "default"', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(source),
    ]
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }
    nbformat.write(notebook, str(path))


def test_notebooks_refuses_to_overwrite_the_sources(tmp_path, capsys):
    source = tmp_path / "nb.ipynb"
    _write_notebook(source, "pass")
    before = source.read_text()
    status = cli.main(
        ["notebooks", "--output-dir", str(tmp_path), str(source)]
    )
    assert status == 2
    assert "overwrite" in capsys.readouterr().err
    assert source.read_text() == before


def test_notebooks_missing_file(tmp_path):
    assert cli.main(["notebooks", str(tmp_path / "missing.ipynb")]) == 2


def test_notebooks_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        cli.main(["notebooks", "--jobs", "0"])
    assert "--jobs: must be a positive integer, got '0'" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_notebooks_executes_and_reports_failures(tmp_path, jobs):
    backend = keras.backend.backend()
    good = tmp_path / "src" / "good.ipynb"
    bad = tmp_path / "src" / "bad.ipynb"
    good.parent.mkdir()
    # The kernel must see the parameter and inherit KERAS_BACKEND.
    _write_notebook(
        good,
        "import os\n"
        "assert SCALE == 'tiny', SCALE\n"
        f"assert os.environ['KERAS_BACKEND'] == {backend!r}\n"
        "print('ok', SCALE)",
    )
    _write_notebook(bad, "raise RuntimeError('this notebook fails')")
    out = tmp_path / "executed"
    status = cli.main(
        ["notebooks", "--scale", "tiny", "--output-dir", str(out),
         "--jobs", jobs, str(good), str(bad)]
    )
    assert status == 1
    executed = nbformat.read(str(out / "good.ipynb"), as_version=4)
    outputs = [o for cell in executed.cells for o in cell.get("outputs", [])]
    assert any("ok tiny" in o.get("text", "") for o in outputs)
    assert not any(o.get("output_type") == "error" for o in outputs)
    # One parameters cell, holding the values that ran (papermill's
    # injected-parameters cell is folded into it).
    tags = [cell.metadata.get("tags", []) for cell in executed.cells]
    assert tags.count(["parameters"]) == 1
    assert not any("injected-parameters" in t for t in tags)
    assert executed.cells[0].source.strip() == 'SCALE = "tiny"'
    # The source notebook is untouched.
    assert nbformat.read(str(good), as_version=4).cells[0].outputs == []
    assert cli.main(
        ["notebooks", "--scale", "tiny", "--output-dir", str(out), str(good)]
    ) == 0


def test_folded_parameters_keep_the_defaults_not_overridden():
    # The executed copy's parameters cell must still define every
    # parameter: a reader re-running a stored notebook needs DATA_DIR too.
    defaults = ('SCALE = "smoke"  # smoke | cpu | gpu | paper\n'
                "DATA_DIR = None  # None: the default folders")
    merged = cli._merge_parameters(defaults, '# Parameters\nSCALE = "cpu"\n')
    assert merged == ('SCALE = "cpu"  # smoke | cpu | gpu | paper\n'
                      "DATA_DIR = None  # None: the default folders")
    assert cli._merge_parameters('SCALE = "smoke"',
                                 '# Parameters\nSCALE = "tiny"\nSEED = 3\n'
                                 ) == 'SCALE = "tiny"\nSEED = 3'
