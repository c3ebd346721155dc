"""Behaviour of `ExpressiveAttention` against an independent NumPy reference."""

import math
import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers.expressive_attention import (
    ExpressiveAttention,
)
from tests.backend_utils import to_numpy
from tests.backend_utils import value_and_grad

NORMALIZATIONS = ["ratio", "softmax"]


@pytest.fixture(autouse=True)
def seeded_initializers():
    """Deterministic weights: unseeded initializers draw fresh seeds."""
    keras.utils.set_random_seed(1234)


def random_inputs(rng, batch=2, t=5, s=7, dim=12):
    query = rng.normal(size=(batch, t, dim)).astype("float32")
    value = rng.normal(size=(batch, s, dim)).astype("float32")
    return query, value


def randomize_biases(layer, rng):
    """Zero-initialized biases would hide bias bugs: give them values."""
    for w in layer.weights:
        if "bias" in w.path:
            w.assign(rng.normal(size=w.shape).astype(w.dtype) * 0.5)


def numpy_layer_forward(layer, query, value, key=None, mask=None):
    """The layer's forward pass with explicit loops over pairs, in float64.

    Reads only the layer's projection weights and its `normalization`,
    `epsilon` and key size; the formulas are written out here.
    """
    if key is None:
        key = value
    query, value, key = (np.asarray(a, "float64") for a in (query, value, key))

    def project(dense, x):
        kernel = to_numpy(dense.kernel).astype("float64")
        out = np.einsum("bse,enh->bsnh", x, kernel)
        if dense.bias is not None:
            out = out + to_numpy(dense.bias).astype("float64")
        return out

    q = project(layer.query_dense, query)
    k = project(layer.key_dense, key)
    v = project(layer.value_dense, value)
    batch, t_len, heads, key_dim = q.shape
    s_len = k.shape[1]
    scale = 1.0 if layer.normalization == "ratio" else 1.0 / math.sqrt(key_dim)
    weights = np.zeros((batch, heads, t_len, s_len))
    heads_out = np.zeros((batch, t_len, heads, v.shape[-1]))
    for b in range(batch):
        for n in range(heads):
            for i in range(t_len):
                squares = np.zeros(s_len)
                kept = np.zeros(s_len, bool)
                for j in range(s_len):
                    if mask is None or mask[b, i, j]:
                        kept[j] = True
                        dot = sum(q[b, i, n, d] * k[b, j, n, d]
                                  for d in range(key_dim))
                        squares[j] = (scale * dot) ** 2
                if not kept.any():
                    continue
                if layer.normalization == "ratio":
                    row = squares / (layer.epsilon + squares[kept].sum())
                else:
                    exps = np.where(kept, np.exp(squares - squares[kept].max()),
                                    0.0)
                    row = exps / exps.sum()
                row[~kept] = 0.0
                weights[b, n, i] = row
                for j in range(s_len):
                    heads_out[b, i, n] += row[j] * v[b, j, n]
    out_kernel = to_numpy(layer.output_dense.kernel).astype("float64")
    out = np.einsum("btnh,nhe->bte", heads_out, out_kernel)
    if layer.output_dense.bias is not None:
        out = out + to_numpy(layer.output_dense.bias).astype("float64")
    return out, weights


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("cross", [False, True])
def test_matches_numpy_reference(normalization, cross):
    rng = np.random.default_rng(0)
    query, value = random_inputs(rng, t=5, s=7 if cross else 5)
    key = rng.normal(size=value.shape).astype("float32") if cross else None
    layer = ExpressiveAttention(
        num_heads=3, key_dim=4, value_dim=3, normalization=normalization,
        epsilon=0.5,
    )
    layer(query, value, key=key)
    randomize_biases(layer, rng)
    mask = rng.random((2, 5, value.shape[1])) > 0.3
    mask[0, 3] = False
    out, scores = layer(
        query, value, key=key, attention_mask=mask,
        return_attention_scores=True,
    )
    ref_out, ref_weights = numpy_layer_forward(layer, query, value, key, mask)
    np.testing.assert_allclose(to_numpy(out), ref_out, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(scores), ref_weights, rtol=1e-4,
                               atol=1e-6)


def test_ratio_rows_sum_to_s_over_epsilon_plus_s():
    rng = np.random.default_rng(1)
    query, value = random_inputs(rng)
    layer = ExpressiveAttention(num_heads=2, key_dim=4, epsilon=2.0)
    _, scores = layer(query, value, return_attention_scores=True)
    _, ref = numpy_layer_forward(layer, query, value)
    sums = to_numpy(scores).sum(-1)
    assert (sums < 1).all() and (sums > 0).all()
    np.testing.assert_allclose(sums, ref.sum(-1), rtol=1e-5)
    softmax = ExpressiveAttention(num_heads=2, key_dim=4,
                                  normalization="softmax")
    _, scores = softmax(query, value, return_attention_scores=True)
    np.testing.assert_allclose(to_numpy(scores).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_negating_keys_or_queries_changes_nothing(normalization):
    rng = np.random.default_rng(2)
    query, value = random_inputs(rng, s=6)
    mask = rng.random((2, 5, 6)) > 0.3
    layer = ExpressiveAttention(num_heads=2, key_dim=4,
                                normalization=normalization)
    layer(query, value)
    randomize_biases(layer, rng)
    out, scores = layer(query, value, attention_mask=mask,
                        return_attention_scores=True)
    for dense in (layer.key_dense, layer.query_dense):
        for w in (dense.kernel, dense.bias):
            w.assign(-to_numpy(w))
        flipped, flipped_scores = layer(
            query, value, attention_mask=mask, return_attention_scores=True
        )
        np.testing.assert_allclose(to_numpy(flipped), to_numpy(out),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(to_numpy(flipped_scores),
                                   to_numpy(scores), rtol=1e-5, atol=1e-6)


def test_cross_attention_shapes_and_symbolic_spec():
    rng = np.random.default_rng(3)
    query, value = random_inputs(rng, t=5, s=7, dim=12)
    layer = ExpressiveAttention(num_heads=3, key_dim=4, value_dim=3)
    out, scores = layer(query, value, return_attention_scores=True)
    assert tuple(out.shape) == (2, 5, 12)
    assert tuple(scores.shape) == (2, 3, 5, 7)
    key = rng.normal(size=(2, 7, 3)).astype("float32")
    out = ExpressiveAttention(num_heads=3, key_dim=4, value_dim=3,
                              output_shape=7)(query, value, key=key)
    assert tuple(out.shape) == (2, 5, 7)
    q = keras.Input((4, 10))
    v = keras.Input((9, 10))
    out, scores = ExpressiveAttention(num_heads=3, key_dim=6)(
        q, v, return_attention_scores=True
    )
    assert tuple(out.shape) == (None, 4, 10)
    assert tuple(scores.shape) == (None, 3, 4, 9)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_causal_mask_leaks_nothing_from_the_future(normalization):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 8, 12)).astype("float32")
    layer = ExpressiveAttention(num_heads=2, key_dim=4,
                                normalization=normalization)
    base = to_numpy(layer(x, x, use_causal_mask=True))
    for t in range(8):
        changed = x.copy()
        changed[:, t + 1:] = rng.normal(size=changed[:, t + 1:].shape)
        out = to_numpy(layer(changed, changed, use_causal_mask=True))
        np.testing.assert_allclose(out[:, : t + 1], base[:, : t + 1],
                                   rtol=1e-5, atol=1e-5)
        if t < 7:
            assert not np.allclose(out[:, t + 1:], base[:, t + 1:])


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_causal_mask_matches_explicit_mask_and_direct_calls(normalization):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 6, 12)).astype("float32")
    layer = ExpressiveAttention(num_heads=2, key_dim=4,
                                normalization=normalization)
    causal = to_numpy(layer(x, x, use_causal_mask=True))
    tril = np.repeat(np.tril(np.ones((6, 6), bool))[None], 2, 0)
    explicit = to_numpy(layer(x, x, attention_mask=tril))
    np.testing.assert_allclose(causal, explicit, rtol=1e-6, atol=1e-6)
    _, ref_weights = numpy_layer_forward(layer, x, x, mask=tril)
    # KerasHub-style direct call of `_compute_attention` with keywords.
    q = layer.query_dense(x)
    k = layer.key_dense(x)
    v = layer.value_dense(x)
    _, weights = layer._compute_attention(
        query=q, key=k, value=v, attention_mask=None,
        return_attention_scores=True, training=False, use_causal_mask=True,
    )
    np.testing.assert_allclose(to_numpy(weights), ref_weights, rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_padding_mask_from_embedding(normalization):
    rng = np.random.default_rng(6)
    tokens = rng.integers(1, 20, size=(2, 7))
    tokens[0, 5:] = 0
    tokens[1, 3:] = 0
    embedding = keras.layers.Embedding(20, 12, mask_zero=True)
    layer = ExpressiveAttention(num_heads=2, key_dim=4,
                                normalization=normalization)
    x = embedding(tokens)
    out = to_numpy(layer(x, x))
    real = tokens != 0
    pair_mask = real[:, None, :] & real[:, :, None]
    # Changing the padded positions changes nothing at real positions.
    noise = rng.normal(size=(2, 7, 12)).astype("float32")
    perturbed = np.where(real[..., None], to_numpy(x), noise)
    out2 = to_numpy(layer(perturbed, perturbed, attention_mask=pair_mask))
    np.testing.assert_allclose(out2[real], out[real], rtol=1e-5, atol=1e-5)
    ref_out, _ = numpy_layer_forward(layer, to_numpy(x), to_numpy(x),
                                     mask=pair_mask)
    np.testing.assert_allclose(out[real], ref_out[real], rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_fully_masked_rows_output_zeros_with_finite_gradients(normalization):
    rng = np.random.default_rng(7)
    query, value = random_inputs(rng, t=5, s=4, dim=8)
    mask = rng.random((2, 5, 4)) > 0.3
    mask[0, 1] = False
    mask[1, :] = False
    layer = ExpressiveAttention(num_heads=2, key_dim=4, use_bias=False,
                                normalization=normalization)
    out, scores = layer(query, value, attention_mask=mask,
                        return_attention_scores=True)
    out, scores = to_numpy(out), to_numpy(scores)
    assert np.isfinite(out).all() and np.isfinite(scores).all()
    np.testing.assert_array_equal(out[0, 1], 0.0)
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(scores[1], 0.0)
    np.testing.assert_array_equal(scores[~np.repeat(mask[:, None], 2, 1)], 0.0)

    def loss(q, v):
        return ops.sum(ops.square(layer(q, v, attention_mask=mask)))

    value_, grads = value_and_grad(loss, [query, value])
    assert np.isfinite(value_)
    for g in grads:
        assert np.isfinite(g).all()
    # Queries that attend to nothing get no gradient.
    np.testing.assert_array_equal(grads[0][0, 1], 0.0)
    np.testing.assert_array_equal(grads[0][1], 0.0)


def test_dropout_only_in_training():
    rng = np.random.default_rng(8)
    query, value = random_inputs(rng, t=6, s=6)
    layer = ExpressiveAttention(num_heads=2, key_dim=4, dropout=0.5, seed=1,
                                normalization="softmax")
    a = to_numpy(layer(query, value, training=False))
    np.testing.assert_array_equal(to_numpy(layer(query, value)), a)
    c, scores = layer(query, value, training=True,
                      return_attention_scores=True)
    assert not np.allclose(to_numpy(c), a)
    # Returned weights are those before dropout.
    np.testing.assert_allclose(to_numpy(scores).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(normalization="softmax_square"), "normalization"),
        (dict(normalization=None), "normalization"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(epsilon=-1e-6), "epsilon"),
        (dict(epsilon=float("inf")), "epsilon"),
        (dict(epsilon="small"), "epsilon"),
        (dict(epsilon=True), "epsilon"),
        (dict(flash_attention=True), "flash_attention"),
        (dict(attention_axes=(1, 1)), "attention_axes"),
        (dict(attention_axes="1"), "attention_axes"),
        (dict(num_heads=0), "num_heads"),
        (dict(key_dim=-1), "key_dim"),
        (dict(value_dim=0), "value_dim"),
        (dict(sliding_window=0), "sliding_window"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(num_heads=2, key_dim=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        ExpressiveAttention(**args)


def test_rejects_inputs_without_a_sequence_axis():
    layer = ExpressiveAttention(num_heads=2, key_dim=4)
    x = np.zeros((2, 8), "float32")
    with pytest.raises(ValueError, match="rank 3 or more"):
        layer(x, x)


def test_equivalent_attention_axes_is_accepted():
    x = np.random.default_rng(9).normal(size=(1, 3, 8)).astype("float32")
    default = ExpressiveAttention(num_heads=2, key_dim=4)
    ref = to_numpy(default(x, x))
    for axes in (1, (1,), [1]):
        layer = ExpressiveAttention(num_heads=2, key_dim=4,
                                    attention_axes=axes)
        layer(x, x)
        layer.set_weights(default.get_weights())
        np.testing.assert_array_equal(to_numpy(layer(x, x)), ref)


def test_config_round_trip():
    layer = ExpressiveAttention(
        num_heads=3, key_dim=4, value_dim=3, dropout=0.1,
        normalization="softmax", epsilon=1e-3, use_gate=True,
        sliding_window=4, name="ea",
    )
    config = layer.get_config()
    assert config["normalization"] == "softmax"
    assert config["epsilon"] == 1e-3
    clone = ExpressiveAttention.from_config(config)
    assert clone.get_config() == config
    revived = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(revived, ExpressiveAttention)
    assert revived.get_config() == config
    # A built layer's config (attention axes resolved) still round-trips.
    x = np.zeros((2, 5, 12), "float32")
    layer(x, x)
    assert ExpressiveAttention.from_config(layer.get_config()).get_config() \
        == layer.get_config()


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_model_saves_and_reloads_to_identical_outputs(tmp_path,
                                                      normalization):
    rng = np.random.default_rng(10)
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(30, 16, mask_zero=True)(tokens)
    x = ExpressiveAttention(
        num_heads=2, key_dim=8, dropout=0.1, normalization=normalization,
        epsilon=1e-4,
    )(x, x, use_causal_mask=True)
    model = keras.Model(tokens, keras.layers.Dense(3)(x))
    data = rng.integers(0, 30, size=(3, 6))
    data[0, 4:] = 0
    before = to_numpy(model(data))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(reloaded(data)), before)
    layers = [l for l in reloaded.layers if isinstance(l, ExpressiveAttention)]
    assert len(layers) == 1
    assert layers[0].normalization == normalization
    assert layers[0].epsilon == 1e-4


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_mixed_precision(policy, normalization):
    rng = np.random.default_rng(11)
    query, value = random_inputs(rng, t=6, s=5, dim=16)
    mask = rng.random((2, 6, 5)) > 0.3
    mask[0, 2] = False
    reference = ExpressiveAttention(num_heads=2, key_dim=8,
                                    normalization=normalization)
    ref_out = to_numpy(reference(query, value, attention_mask=mask))
    layer = ExpressiveAttention(num_heads=2, key_dim=8, dtype=policy,
                                normalization=normalization)
    layer(query, value)
    layer.set_weights(reference.get_weights())
    out, scores = layer(query, value, attention_mask=mask,
                        return_attention_scores=True)
    compute = policy.split("_")[1]
    # The ratio is ill-conditioned where every kept key is nearly orthogonal
    # to the query ((q.k)^2 ~ epsilon): there low-precision projections move
    # the weights a lot. The seeded weights here avoid such rows.
    assert keras.backend.standardize_dtype(out.dtype) == compute
    assert keras.backend.standardize_dtype(scores.dtype) == compute
    for w in layer.weights:
        assert keras.backend.standardize_dtype(w.dtype) == "float32"
    out = to_numpy(out).astype("float32")
    scores = to_numpy(scores).astype("float32")
    assert np.isfinite(out).all() and np.isfinite(scores).all()
    tolerance = 1e-1 if compute == "bfloat16" else 2e-2
    np.testing.assert_allclose(out, ref_out, rtol=tolerance, atol=tolerance)
    kept_rows = np.repeat(mask.any(-1)[:, None], 2, 1)
    assert (scores[~kept_rows] == 0).all()
    np.testing.assert_allclose(scores.sum(-1)[kept_rows], 1.0,
                               atol=tolerance)


def test_float64_layer_computes_in_float64(x64):
    rng = np.random.default_rng(12)
    query, value = (a.astype("float64") for a in random_inputs(rng))
    for normalization in NORMALIZATIONS:
        layer = ExpressiveAttention(num_heads=2, key_dim=4, dtype="float64",
                                    normalization=normalization)
        out, scores = layer(query, value, return_attention_scores=True)
        assert keras.backend.standardize_dtype(scores.dtype) == "float64"
        ref_out, ref_weights = numpy_layer_forward(layer, query, value)
        np.testing.assert_allclose(to_numpy(out), ref_out, rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(to_numpy(scores), ref_weights,
                                   rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_trains_inside_model_fit(normalization):
    rng = np.random.default_rng(13)
    keras.utils.set_random_seed(13)
    x = rng.normal(size=(64, 8, 6)).astype("float32")
    # Target: every position predicts the sequence mean of feature 0, a
    # permutation-equivariant function that attention can represent.
    y = np.repeat(x[:, :, :1].mean(1, keepdims=True), 8, axis=1) * 3.0
    inputs = keras.Input((8, 6))
    h = ExpressiveAttention(num_heads=2, key_dim=8, dropout=0.1,
                            normalization=normalization)(inputs, inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0]


def test_keras_layer_test_contract():
    from keras.src import testing

    class Case(testing.TestCase):
        def runTest(self):
            self.run_layer_test(
                ExpressiveAttention,
                init_kwargs=dict(num_heads=2, key_dim=4),
                input_shape={"query_shape": (2, 5, 8),
                             "value_shape": (2, 3, 8)},
                expected_output_shape=(2, 5, 8),
                expected_num_trainable_weights=8,
                expected_num_non_trainable_weights=0,
                expected_num_seed_generators=0,
                supports_masking=True,
                run_training_check=False,
            )

    result = Case().run()
    assert result.wasSuccessful(), result.errors + result.failures
