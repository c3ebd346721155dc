"""`ScaledSinusoidalEncoding` against the released code's formula."""

import math

import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers import ScaledSinusoidalEncoding


def released_code_signal(length, depth):
    """The released `PositionalEncoding` table, written as its loop."""
    pe = np.zeros((length, depth))
    for pos in range(length):
        for i in range(0, depth, 2):
            pe[pos, i] = math.sin(pos / (10000 ** ((2 * i) / depth)))
            pe[pos, i + 1] = math.cos(pos / (10000 ** ((2 * i + 1) / depth)))
    return pe


def standard_signal(length, depth):
    pe = np.zeros((length, depth))
    for pos in range(length):
        for i in range(0, depth, 2):
            pe[pos, i] = math.sin(pos / (10000 ** (i / depth)))
            pe[pos, i + 1] = math.cos(pos / (10000 ** (i / depth)))
    return pe


@pytest.mark.parametrize(
    "frequencies, reference",
    [("released_code", released_code_signal), ("standard", standard_signal)],
)
def test_matches_reference_and_scales_inputs(frequencies, reference):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 16)).astype("float32")
    layer = ScaledSinusoidalEncoding(12, frequencies=frequencies)
    expected = 4.0 * x + reference(12, 16)[None, :7]
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), expected,
                               rtol=1e-5, atol=1e-5)
    # start_index shifts the positions (cached decoding).
    shifted = ops.convert_to_numpy(layer(x[:, :2], start_index=5))
    np.testing.assert_allclose(
        shifted, 4.0 * x[:, :2] + reference(12, 16)[None, 5:7],
        rtol=1e-5, atol=1e-5,
    )
    custom = ScaledSinusoidalEncoding(12, input_scale=1.0,
                                      frequencies=frequencies)
    np.testing.assert_allclose(ops.convert_to_numpy(custom(x)),
                               x + reference(12, 16)[None, :7],
                               rtol=1e-5, atol=1e-5)
    revived = ScaledSinusoidalEncoding.from_config(custom.get_config())
    assert revived.get_config() == custom.get_config()


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"max_sequence_length": 0}, "max_sequence_length"),
        ({"max_sequence_length": 4, "frequencies": "rope"}, "frequencies"),
        ({"max_sequence_length": 4, "input_scale": "sqrt"}, "input_scale"),
        ({"max_sequence_length": 4, "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ScaledSinusoidalEncoding(**kwargs)


def test_embedding_mask_passes_through():
    # Issue 10 hunt: without `supports_masking` Keras dropped the mask of
    # `Embedding(mask_zero=True)` here (with a warning), so the attention
    # after it attended to padding.
    import keras

    ids = np.array([[3, 4, 0, 0], [1, 2, 3, 4]], "int32")
    embedded = keras.layers.Embedding(10, 6, mask_zero=True)(ids)
    encoded = ScaledSinusoidalEncoding(8)(embedded)
    mask = getattr(encoded, "_keras_mask", None)
    assert mask is not None
    np.testing.assert_array_equal(ops.convert_to_numpy(mask), ids > 0)

    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 6, mask_zero=True)(inputs)
    x = ScaledSinusoidalEncoding(8)(x)
    assert getattr(x, "_keras_mask", None) is not None


@pytest.mark.parametrize(
    "shape, dtype, start_index, error, match",
    [
        ((2, 5), "float32", 0, ValueError, "rank 3"),
        ((2, 5, 3, 4), "float32", 0, ValueError, "rank 3"),
        ((2, 5, 4), "int32", 0, TypeError, "floating-point"),
        ((2, 9, 4), "float32", 0, ValueError, "max_sequence_length"),
        ((2, 2, 4), "float32", 7, ValueError, "start_index=7"),
    ],
)
def test_inputs_it_cannot_encode_raise(shape, dtype, start_index, error,
                                       match):
    # Issue 10 hunt: these gave backend broadcast errors, or (integer
    # embeddings) a position signal silently truncated to integers.
    layer = ScaledSinusoidalEncoding(8)
    with pytest.raises(error, match=match):
        layer(np.ones(shape, dtype), start_index=start_index)
    assert tuple(layer(np.ones((2, 8, 4), "float32")).shape) == (2, 8, 4)
