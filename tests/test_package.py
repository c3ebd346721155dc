"""Package-level promises: light imports, public names, version."""

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
