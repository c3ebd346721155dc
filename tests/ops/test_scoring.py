"""The scoring network's dense layers (`ops.scoring._dense`) against NumPy,
and the TensorFlow einsum crash they must not reach."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_neural_attention.ops import scoring
from tests import numpy_reference

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize("middle", [(28,), (5, 7)])
@pytest.mark.parametrize("heads", [1, 3])
def test_dense_matches_numpy_in_float64(x64, per_head, middle, heads):
    rng = np.random.default_rng(len(middle) * 10 + heads)
    x = rng.normal(size=(2, heads) + middle + (23,))
    kernel_shape = ((heads,) if per_head else ()) + (23, 2)
    kernel = rng.normal(size=kernel_shape)
    bias = rng.normal(size=kernel_shape[:-2] + (2,))
    got = keras.ops.convert_to_numpy(
        scoring._dense(
            keras.ops.convert_to_tensor(x),
            keras.ops.convert_to_tensor(kernel),
            keras.ops.convert_to_tensor(bias),
            num_middle_axes=len(middle),
        )
    )
    assert got.dtype == np.float64
    expected = np.zeros((2, heads) + middle + (2,))
    for b in range(2):
        for n in range(heads):
            k = kernel[n] if per_head else kernel
            c = bias[n] if per_head else bias
            expected[b, n] = x[b, n] @ k + c
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_dense_refuses_a_rank_that_does_not_match_its_middle_axes():
    x = keras.ops.ones((2, 1, 4, 3))
    with pytest.raises(ValueError, match="rank 5"):
        scoring._dense(x, keras.ops.ones((3, 2)), None, num_middle_axes=2)


# The case of issue 10 that killed the TensorFlow process (rc 139): per-head
# scoring weights reach `einsum("bn...i,nio->bn...o")` with shapes
# (2, 1, 28, 23) and (1, 23, 1), which TensorFlow 2.21 can abort on. Run in a
# child process so that a crash fails this test instead of killing pytest.
_CRASH_CASE = r"""
import json, sys
import numpy as np
from keras_neural_attention.layers import NeuralAttention

layer = NeuralAttention(num_heads=1, key_dim=23, hidden_units=(1, 2),
                        share_scoring_across_heads=False)
x = np.random.default_rng(0).normal(size=(2, 28, 3)).astype("float32")
y = layer(x, x)
weights = {v.path: np.asarray(v.numpy()).tolist() for v in layer.weights}
json.dump({"output": np.asarray(y).tolist(), "weights": weights,
           "input": x.tolist()}, sys.stdout)
"""


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="a TensorFlow crash: checked once, in the TensorFlow run",
)
def test_per_head_scoring_does_not_crash_tensorflow():
    env = dict(
        os.environ,
        KERAS_BACKEND="tensorflow",
        PYTHONPATH=os.pathsep.join(
            [str(REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        ),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    result = subprocess.run(
        [sys.executable, "-c", _CRASH_CASE], env=env, capture_output=True,
        text=True, timeout=300, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, (
        f"rc={result.returncode}\n{result.stderr[-3000:]}"
    )
    record = json.loads(result.stdout)
    weights = {k: np.asarray(v) for k, v in record["weights"].items()}
    x = np.asarray(record["input"])
    expected, _ = numpy_reference.layer_forward(weights, x, x)
    np.testing.assert_allclose(
        np.asarray(record["output"]), expected, rtol=1e-4, atol=1e-5
    )
