"""`CachedNeuralAttention`: cached decoding equals the full pass."""

import sys

import keras
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers import CachedNeuralAttention
from keras_neural_attention.layers import NeuralAttention
from keras_neural_attention.ops.scoring import key_terms


def to_numpy(x):
    return ops.convert_to_numpy(x)


def causal_mask(batch, length):
    return np.tril(np.ones((length, length), dtype=bool))[None].repeat(
        batch, axis=0
    )


def randomize_biases(layer, rng):
    for w in layer.weights:
        if "bias" in w.path:
            w.assign(rng.normal(size=w.shape).astype(w.dtype) * 0.5)


def make_layer(rng, **kwargs):
    layer = CachedNeuralAttention(num_heads=2, key_dim=8, **kwargs)
    layer.build((2, 6, 12), (2, 6, 12))
    randomize_biases(layer, rng)
    return layer


CASES = [
    dict(),
    dict(projection_dim=3, hidden_units=(4, 2)),
    dict(projection_dim=2, hidden_units=(3,), share_scoring_across_heads=False),
    dict(projection_dim=2, hidden_units=(5, 3), activation="tanh",
         query_chunk_size=1),
]


@pytest.mark.parametrize("kwargs", CASES)
def test_step_by_step_decoding_equals_full_pass(kwargs):
    rng = np.random.default_rng(0)
    layer = make_layer(rng, **kwargs)
    x = rng.normal(size=(2, 6, 12)).astype("float32")
    mask = causal_mask(2, 6)
    full = to_numpy(layer(x, x, attention_mask=mask))

    cache = layer.empty_cache(batch_size=2, max_length=6)
    # Prefill three tokens at once, then one token per step.
    y, cache = layer(
        x[:, :3], x[:, :3], attention_mask=mask[:, :3],
        cache=cache, cache_update_index=0,
    )
    steps = [to_numpy(y)]
    for i in range(3, 6):
        y, cache = layer(
            x[:, i:i + 1], x[:, i:i + 1], attention_mask=mask[:, i:i + 1],
            cache=cache, cache_update_index=i,
        )
        steps.append(to_numpy(y))
    np.testing.assert_allclose(
        np.concatenate(steps, axis=1), full, rtol=1e-5, atol=1e-5
    )


def test_uncached_call_equals_neural_attention():
    rng = np.random.default_rng(1)
    cached = make_layer(rng, projection_dim=3, hidden_units=(4, 2))
    plain = NeuralAttention(
        num_heads=2, key_dim=8, projection_dim=3, hidden_units=(4, 2)
    )
    plain.build((2, 6, 12), (2, 5, 12))
    plain.set_weights(cached.get_weights())
    q = rng.normal(size=(2, 6, 12)).astype("float32")
    v = rng.normal(size=(2, 5, 12)).astype("float32")
    mask = rng.uniform(size=(2, 6, 5)) > 0.3
    out, scores = cached(q, v, attention_mask=mask,
                         return_attention_scores=True)
    ref_out, ref_scores = plain(q, v, attention_mask=mask,
                                return_attention_scores=True)
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref_out),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(scores), to_numpy(ref_scores),
                               rtol=1e-5, atol=1e-6)


def test_cache_layout_holds_key_terms_and_values():
    rng = np.random.default_rng(2)
    layer = make_layer(rng, projection_dim=3, hidden_units=(4, 2))
    x = rng.normal(size=(2, 6, 12)).astype("float32")
    cache = layer.empty_cache(2, 6)
    assert tuple(cache.shape) == (2, 2, 6, 2, 8)
    assert layer.cache_shape(2, 6) == (2, 2, 6, 2, 8)
    _, cache = layer(x[:, :4], x[:, :4],
                     attention_mask=causal_mask(2, 6)[:, :4],
                     cache=cache, cache_update_index=0)
    cache = to_numpy(cache)
    terms = to_numpy(
        key_terms(layer._key_dense(x[:, :4]), layer.scoring_weights,
                  "factored")
    ).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(cache[:, 0, :4, :, :4], terms,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cache[:, 0, :, :, 4:], 0.0)
    np.testing.assert_array_equal(cache[:, :, 4:], 0.0)
    np.testing.assert_allclose(cache[:, 1, :4],
                               to_numpy(layer._value_dense(x[:, :4])),
                               rtol=1e-5, atol=1e-6)


def test_static_cache_ignores_inputs_and_returns_scores():
    rng = np.random.default_rng(3)
    layer = make_layer(rng)
    x = rng.normal(size=(2, 6, 12)).astype("float32")
    memory = rng.normal(size=(2, 6, 12)).astype("float32")
    _, cache = layer(x, memory, cache=layer.empty_cache(2, 6),
                     cache_update_index=0)
    full = to_numpy(layer(x, memory))
    out, scores, same_cache = layer(
        x, np.zeros_like(memory), cache=cache, return_attention_scores=True
    )
    np.testing.assert_allclose(to_numpy(out), full, rtol=1e-5, atol=1e-6)
    assert tuple(scores.shape) == (2, 2, 6, 6)
    np.testing.assert_allclose(to_numpy(ops.sum(scores, axis=-1)), 1.0,
                               rtol=1e-5)
    np.testing.assert_array_equal(to_numpy(same_cache), to_numpy(cache))


def test_fully_masked_rows_are_zero_not_nan():
    rng = np.random.default_rng(4)
    layer = make_layer(rng)
    x = rng.normal(size=(2, 6, 12)).astype("float32")
    mask = causal_mask(2, 6)
    mask[0, :, :] = False  # a fully padded sequence
    mask[1, 2, :] = False  # one fully masked row
    cache = layer.empty_cache(2, 6)
    out, _ = layer(x, x, attention_mask=mask, cache=cache,
                   cache_update_index=0)
    out = to_numpy(out)
    assert np.isfinite(out).all()
    bias = to_numpy(layer._output_dense.bias)
    np.testing.assert_allclose(out[0], np.broadcast_to(bias, out[0].shape),
                               atol=1e-6)


def test_bad_arguments_raise_value_error():
    layer = CachedNeuralAttention(num_heads=2, key_dim=4, hidden_units=(6,))
    layer.build((1, 3, 8), (1, 3, 8))
    x = np.zeros((1, 3, 8), "float32")
    with pytest.raises(ValueError, match="hidden_units"):
        layer.empty_cache(1, 3)
    with pytest.raises(ValueError, match="cache_update_index"):
        layer(x, x, cache_update_index=0)
    small = CachedNeuralAttention(num_heads=2, key_dim=4)
    with pytest.raises(ValueError, match="cache"):
        small(x, x, cache=np.zeros((1, 2, 3, 2, 5), "float32"),
              cache_update_index=0)
    with pytest.raises(ValueError, match="projection_dim"):
        CachedNeuralAttention(num_heads=2, key_dim=4, projection_dim=0)


def test_config_round_trip_and_no_keras_hub_import():
    layer = CachedNeuralAttention(
        num_heads=2, key_dim=8, projection_dim=3, hidden_units=(4, 2)
    )
    revived = CachedNeuralAttention.from_config(layer.get_config())
    assert revived.get_config() == layer.get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == (
        "keras_neural_attention>CachedNeuralAttention"
    )
    # The layers package must not pull KerasHub (and TensorFlow) in; other
    # test modules may have imported it, so check in a fresh interpreter.
    import subprocess

    code = (
        "import sys, keras_neural_attention, keras_neural_attention.layers,"
        " keras_neural_attention.models;"
        "assert 'keras_hub' not in sys.modules, 'keras_hub imported'"
    )
    result = subprocess.run([sys.executable, "-c", code],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_symbolic_call_with_cache_gives_shapes():
    layer = CachedNeuralAttention(num_heads=2, key_dim=8)
    query = keras.Input((1, 12), batch_size=2)
    cache = keras.Input((2, 6, 2, 8), batch_size=2)
    out, scores, new_cache = layer(
        query, query, cache=cache, cache_update_index=0,
        return_attention_scores=True,
    )
    assert tuple(out.shape) == (2, 1, 12)
    assert tuple(scores.shape) == (2, 2, 1, 6)
    assert tuple(new_cache.shape) == (2, 2, 6, 2, 8)
