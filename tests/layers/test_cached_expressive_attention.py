"""`CachedExpressiveAttention`: cached decoding equals the full pass."""

import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers import CachedExpressiveAttention
from keras_neural_attention.layers import ExpressiveAttention


def to_numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("normalization", ["ratio", "softmax"])
def test_step_by_step_decoding_equals_full_pass(normalization):
    rng = np.random.default_rng(0)
    layer = CachedExpressiveAttention(
        num_heads=2, key_dim=4, normalization=normalization
    )
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    mask = np.tril(np.ones((5, 5), bool))[None].repeat(2, axis=0)
    full = to_numpy(layer(x, x, attention_mask=mask))
    cache = layer.empty_cache(2, 5)
    assert tuple(cache.shape) == (2, 2, 5, 2, 4)
    steps = []
    for i in range(5):
        y, cache = layer(x[:, i:i + 1], x[:, i:i + 1],
                         attention_mask=mask[:, i:i + 1], cache=cache,
                         cache_update_index=i)
        steps.append(to_numpy(y))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full,
                               rtol=1e-5, atol=1e-5)


def test_uncached_call_equals_expressive_attention():
    rng = np.random.default_rng(1)
    cached = CachedExpressiveAttention(num_heads=2, key_dim=4)
    plain = ExpressiveAttention(num_heads=2, key_dim=4)
    q = rng.normal(size=(2, 3, 8)).astype("float32")
    v = rng.normal(size=(2, 4, 8)).astype("float32")
    cached.build(q.shape, v.shape)
    plain.build(q.shape, v.shape)
    plain.set_weights(cached.get_weights())
    out, scores = cached(q, v, return_attention_scores=True)
    ref_out, ref_scores = plain(q, v, return_attention_scores=True)
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref_out), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(to_numpy(scores), to_numpy(ref_scores),
                               rtol=1e-5, atol=1e-6)


def test_cache_needs_equal_key_and_value_dims():
    layer = CachedExpressiveAttention(num_heads=2, key_dim=4, value_dim=3)
    x = np.zeros((1, 2, 8), "float32")
    layer.build(x.shape, x.shape)
    with pytest.raises(ValueError, match="value_dim"):
        layer.empty_cache(1, 2)
    cache = np.zeros((1, 2, 2, 2, 4), "float32")
    with pytest.raises(ValueError, match="value_dim"):
        layer(x, x, cache=cache, cache_update_index=0)
    # Without a cache, unequal sizes are fine.
    assert tuple(layer(x, x).shape) == (1, 2, 8)
