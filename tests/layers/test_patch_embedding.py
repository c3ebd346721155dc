"""`PatchEmbedding`: patches, class token and position embeddings."""

import math

import keras
import numpy as np
import pytest

from keras_neural_attention.layers import PatchEmbedding
from keras_neural_attention.layers.patch_embedding import (
    released_code_sinusoid,
)
from keras_neural_attention.layers.patch_embedding import sinusoid_2d
from tests.backend_utils import to_numpy


def test_keras_layer_test_contract():
    from keras.src import testing

    class Case(testing.TestCase):
        def runTest(self):
            self.run_layer_test(
                PatchEmbedding,
                init_kwargs=dict(patch_size=2, hidden_dim=8),
                input_shape=(2, 4, 6, 3),
                expected_output_shape=(2, 7, 8),
                # patch kernel and bias, class token, two position tables
                expected_num_trainable_weights=5,
                expected_num_non_trainable_weights=0,
            )

    result = Case().run()
    assert result.wasSuccessful(), result.errors + result.failures


def test_patches_are_projected_in_row_major_order():
    rng = np.random.default_rng(0)
    layer = PatchEmbedding(
        patch_size=(2, 3), hidden_dim=5, use_class_token=False,
        position_grid_size=(2, 2),
    )
    x = rng.normal(size=(1, 4, 6, 3)).astype("float32")
    out = to_numpy(layer(x))
    kernel = to_numpy(layer.patch_projection.kernel)  # (2, 3, 3, 5)
    bias = to_numpy(layer.patch_projection.bias)
    table = to_numpy(layer.patch_position_embedding).reshape(4, 5)
    expected = []
    for row in range(2):
        for column in range(2):
            patch = x[0, 2 * row:2 * row + 2, 3 * column:3 * column + 3]
            expected.append(np.einsum("hwc,hwcd->d", patch, kernel) + bias)
    np.testing.assert_allclose(
        out[0], np.stack(expected) + table, rtol=1e-5, atol=1e-5
    )


def test_sinusoid_2d_matches_the_formula():
    height, width, dim = 3, 2, 8
    got = to_numpy(sinusoid_2d(height, width, dim))
    got = got.reshape(height, width, dim)
    quarter = dim // 4
    for r in range(height):
        for c in range(width):
            for k in range(quarter):
                omega = 1.0 / 10000 ** (k / quarter)
                np.testing.assert_allclose(
                    got[r, c, [k, quarter + k, 2 * quarter + k,
                               3 * quarter + k]],
                    [math.sin(r * omega), math.cos(r * omega),
                     math.sin(c * omega), math.cos(c * omega)],
                    atol=1e-6,
                )


def test_released_code_position_encoding():
    dim = 6
    pe = to_numpy(released_code_sinusoid(4, dim))
    for position in range(4):
        for i in range(0, dim, 2):
            assert pe[position, i] == pytest.approx(
                math.sin(position / 10000 ** (2 * i / dim)), abs=1e-6
            )
            assert pe[position, i + 1] == pytest.approx(
                math.cos(position / 10000 ** ((2 * i + 1) / dim)), abs=1e-6
            )
    # x + dropout(sqrt(d) * x + pe) == (1 + sqrt(d)) * x + pe at inference.
    layer = PatchEmbedding(
        patch_size=2, hidden_dim=dim, position_embedding="released_code"
    )
    x = np.random.default_rng(1).normal(size=(1, 2, 4, 3)).astype("float32")
    out = to_numpy(layer(x))
    tokens = to_numpy(layer.patch_projection(x)).reshape(1, 2, dim)
    tokens = np.concatenate([np.zeros((1, 1, dim), "float32"), tokens], 1)
    expected = (1 + math.sqrt(dim)) * tokens + to_numpy(
        released_code_sinusoid(3, dim)
    )[None]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="patch_size"):
        PatchEmbedding(patch_size=0, hidden_dim=8)
    with pytest.raises(ValueError, match="position_embedding"):
        PatchEmbedding(patch_size=2, hidden_dim=8, position_embedding="rope")
    with pytest.raises(ValueError, match="divisible by 4"):
        PatchEmbedding(patch_size=2, hidden_dim=6,
                       position_embedding="sinusoidal")
    layer = PatchEmbedding(patch_size=2, hidden_dim=8)
    with pytest.raises(ValueError, match="divisible by the patch size"):
        layer(np.zeros((1, 4, 5, 3), "float32"))
    with pytest.raises(ValueError, match="position_grid_size"):
        PatchEmbedding(patch_size=2, hidden_dim=8).build((None, None, None, 3))
    assert keras.saving.get_registered_object(
        "keras_neural_attention>PatchEmbedding"
    ) is PatchEmbedding
