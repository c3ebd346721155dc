"""Package-level promises: light imports, public names, version."""

import importlib.util
import pathlib
import os
import subprocess
import sys

import keras
import pytest

import keras_neural_attention


def test_public_names():
    from keras_neural_attention.layers import NeuralAttention

    assert keras_neural_attention.NeuralAttention is NeuralAttention
    assert isinstance(keras_neural_attention.__version__, str)
    assert keras.saving.get_registered_object(
        "keras_neural_attention>NeuralAttention"
    ) is NeuralAttention


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_import_does_not_pull_tensorflow_or_keras_hub(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"needs `{backend}` (extra `{backend}`): "
                    f"pip install -e \".[{backend}]\"")
    code = (
        "import sys, keras_neural_attention, keras_neural_attention.ops, "
        "keras_neural_attention.layers\n"
        "heavy = [m for m in ('tensorflow', 'keras_hub', 'keras_nlp') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True,
        text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", (
        f"importing the package on {backend} imported {result.stdout}"
    )


def test_cli_version(capsys):
    from keras_neural_attention import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"keras-neural-attention {keras_neural_attention.__version__}"
    )


def test_packaged_result_records_load():
    from keras_neural_attention import results

    names = results.record_names()
    assert "2026-11-23-cpu/capacity-jax-cpu.json" in names
    record = results.load_record("2026-11-23-cpu/capacity-jax-cpu.json")
    assert {"experiment", "scale", "metadata", "rows"} <= set(record)
    with pytest.raises(FileNotFoundError, match="capacity-jax-cpu.json"):
        results.load_record("no-such-record.json")


def test_model_modules_without_keras_hub_name_the_extra():
    """Without KerasHub, a model module (imported directly or through
    `keras_neural_attention.models`) raises an ImportError naming the
    `hub` extra."""
    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'keras_hub':\n"
        "            raise ModuleNotFoundError(\n"
        "                f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import keras_neural_attention.models as models\n"
        "for load in (\n"
        "    lambda: models.TransformerDecoder,\n"
        "    lambda: __import__(\n"
        "        'keras_neural_attention.models.causal_lm'),\n"
        "):\n"
        "    try:\n"
        "        load()\n"
        "    except ImportError as error:\n"
        "        assert \"keras-neural-attention[hub]\" in str(error), error\n"
        "        print('named')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        timeout=300, cwd=str(pathlib.Path(__file__).resolve().parents[1]),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["named", "named"], result.stdout
