"""Separable scores through dot-product attention equal the scoring network.

References: the `"factored"` path (the network evaluated pair by pair) and a
NumPy softmax of its scores for masks the factored path does not take (per
head).
"""

import keras
import numpy as np
import pytest

from keras_neural_attention.ops import neural_attention
from keras_neural_attention.ops import neural_attention_scores
from keras_neural_attention.ops import resolve_implementation
from keras_neural_attention.ops.activations import cube
from keras_neural_attention.ops.activations import square
from keras_neural_attention.ops.separable import expanded_features
from keras_neural_attention.ops.separable import separable_attention
from keras_neural_attention.ops.separable import separable_form
from keras_neural_attention.ops.scoring import key_terms
from keras_neural_attention.ops.scoring import query_terms
from tests import numpy_reference
from tests.backend_utils import to_numpy
from tests.backend_utils import value_and_grad
from tests.ops.test_attention import make_weights

ACTIVATIONS = ["linear", "square", "cube", "exponential"]


def inputs(rng, dtype="float32", batch=2, t=5, s=6, heads=2, key_dim=5,
           value_dim=3, scale=1.0):
    q = (rng.normal(size=(batch, t, heads, key_dim)) * scale).astype(dtype)
    k = (rng.normal(size=(batch, s, heads, key_dim)) * scale).astype(dtype)
    v = rng.normal(size=(batch, s, heads, value_dim)).astype(dtype)
    return q, k, v


def single_layer_weights(rng, heads=None, dtype="float32", scale=1.0):
    weights = make_weights(rng, d=2, hidden=(3,), heads=heads, dtype=dtype)
    return weights._replace(
        query_kernel=weights.query_kernel * scale,
        key_kernel=weights.key_kernel * scale,
    )


def mask_of(rng, shape):
    mask = rng.random(shape) > 0.35
    mask[(0,) * (len(shape) - 2) + (1,)] = False  # one fully masked row
    return mask


def numpy_attention(scores, mask, v):
    """`(B, N, T, S)` scores, mask broadcastable to them, `(B, S, N, D)`."""
    mask = np.broadcast_to(mask, scores.shape)
    out = np.zeros(scores.shape[:3] + (v.shape[-1],))
    for b, n in np.ndindex(*scores.shape[:2]):
        p = numpy_reference.masked_softmax(scores[b, n], mask[b, n])
        out[b, n] = p @ v[b, :, n]
    return out.transpose(0, 2, 1, 3)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_features_reproduce_scores_up_to_a_row_constant(activation, x64):
    rng = np.random.default_rng(0)
    weights = single_layer_weights(rng, heads=2, dtype="float64")
    q, k, _ = inputs(rng, "float64")
    act = keras.activations.get(activation) if activation in (
        "linear", "exponential") else {"square": square, "cube": cube}[
            activation]
    phi, psi = expanded_features(
        query_terms(q, weights, "factored"),
        key_terms(k, weights, "factored"),
        weights,
        act,
    )
    dots = np.einsum("bntf,bnsf->bnts", to_numpy(phi), to_numpy(psi))
    scores = to_numpy(neural_attention_scores(q, k, weights, activation=act))
    # Equal up to a per-row constant (the query-only terms and b_a).
    diff = scores - dots
    np.testing.assert_allclose(
        diff, np.broadcast_to(diff[..., :1], diff.shape), rtol=0,
        atol=1e-9 * max(1.0, np.abs(scores).max()),
    )


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("heads_weights", [None, 2])
@pytest.mark.parametrize("masking", ["none", "batch", "causal", "both"])
def test_equals_factored_path_float32(activation, heads_weights, masking):
    rng = np.random.default_rng(1)
    weights = single_layer_weights(rng, heads=heads_weights)
    q, k, v = inputs(rng)
    mask = mask_of(rng, (2, 5, 6)) if masking in ("batch", "both") else None
    causal = masking in ("causal", "both")
    expected, _ = neural_attention(
        q, k, v, weights, activation=activation, attention_mask=mask,
        causal=causal, implementation="factored", query_chunk_size=None,
    )
    got, none = neural_attention(
        q, k, v, weights, activation=activation, attention_mask=mask,
        causal=causal, implementation="separable",
    )
    assert none is None
    np.testing.assert_allclose(to_numpy(got), to_numpy(expected), atol=1e-5,
                               rtol=1e-5)
    with_probs, probs = neural_attention(
        q, k, v, weights, activation=activation, attention_mask=mask,
        causal=causal, implementation="separable",
        return_attention_scores=True,
    )
    _, expected_probs = neural_attention(
        q, k, v, weights, activation=activation, attention_mask=mask,
        causal=causal, implementation="factored",
        return_attention_scores=True,
    )
    np.testing.assert_allclose(to_numpy(with_probs), to_numpy(expected),
                               atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(probs), to_numpy(expected_probs),
                               atol=1e-5, rtol=1e-5)
    if mask is not None:
        # The fully masked row outputs zeros, never NaN.
        np.testing.assert_array_equal(to_numpy(got)[0, 1], 0.0)


@pytest.mark.parametrize("activation", ["square", "exponential"])
@pytest.mark.parametrize("mask_shape", [(2, 2, 5, 6), (1, 2, 5, 6),
                                        (2, 1, 1, 6)])
def test_rank_4_and_per_head_masks_match_numpy(activation, mask_shape):
    rng = np.random.default_rng(2)
    weights = single_layer_weights(rng, heads=2)
    q, k, v = inputs(rng)
    mask = rng.random(mask_shape) > 0.35
    if mask_shape[2] > 1:
        mask[(0, 0, 1)] = False
    act = {"square": square}.get(activation, keras.activations.exponential)
    for causal in (False, True):
        got, _ = separable_attention(
            q, k, v, weights, act, attention_mask=mask, causal=causal
        )
        scores = to_numpy(neural_attention_scores(q, k, weights,
                                                  activation=act))
        full = np.broadcast_to(mask, (2, 2, 5, 6))
        if causal:
            full = full & np.tril(np.ones((5, 6), bool))
        expected = numpy_attention(scores.astype("float64"), full, v)
        np.testing.assert_allclose(to_numpy(got), expected, atol=1e-5)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_equal_factored_path(activation):
    rng = np.random.default_rng(3)
    weights = single_layer_weights(rng, heads=2)
    q, k, v = inputs(rng)
    mask = mask_of(rng, (2, 5, 6))
    flat = keras.tree.flatten(weights)
    target = rng.normal(size=(2, 5, 2, 3)).astype("float32")

    def loss(implementation):
        def fn(q, k, v, *flat_w):
            w = keras.tree.pack_sequence_as(weights, flat_w)
            out, _ = neural_attention(
                q, k, v, w, activation=activation, attention_mask=mask,
                causal=True, implementation=implementation,
            )
            return keras.ops.sum(out * keras.ops.convert_to_tensor(target))

        return fn

    args = [q, k, v] + [np.asarray(w, "float32") for w in flat]
    value, grads = value_and_grad(loss("separable"), args)
    ref_value, ref_grads = value_and_grad(loss("factored"), args)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-5)
    for got, expected in zip(grads, ref_grads):
        assert np.isfinite(got).all()
        scale = max(1.0, np.abs(expected).max())
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * scale)


def test_float64_agrees_with_factored_to_1e_12(x64):
    rng = np.random.default_rng(4)
    weights = single_layer_weights(rng, heads=2, dtype="float64")
    q, k, v = inputs(rng, "float64")
    mask = mask_of(rng, (2, 5, 6))
    for activation in ("square", "exponential"):
        act = {"square": square}.get(activation, activation)
        expected, _ = neural_attention(
            q, k, v, weights, activation=act, attention_mask=mask,
            implementation="factored",
        )
        got, _ = neural_attention(
            q, k, v, weights, activation=act, attention_mask=mask,
            implementation="separable",
        )
        np.testing.assert_allclose(to_numpy(got), to_numpy(expected),
                                   atol=1e-12)


def test_exponential_exact_where_each_factor_overflows(x64):
    """a ~ 150 and c ~ -150: e^a and e^c overflow / underflow float32, their
    products do not; the features still give the exact scores."""
    rng = np.random.default_rng(5)
    weights = single_layer_weights(rng, heads=2, dtype="float64")
    a = rng.normal(size=(2, 2, 5, 3)) * 3 + 150
    c = rng.normal(size=(2, 2, 6, 3)) * 3 - 150
    w32 = keras.tree.map_structure(lambda x: np.asarray(x, "float32"),
                                   weights)
    phi, psi = expanded_features(
        keras.ops.convert_to_tensor(a.astype("float32")),
        keras.ops.convert_to_tensor(c.astype("float32")),
        keras.tree.map_structure(keras.ops.convert_to_tensor, w32),
        keras.activations.exponential,
    )
    dots = np.einsum("bntf,bnsf->bnts", to_numpy(phi).astype("float64"),
                     to_numpy(psi).astype("float64"))
    exact = np.einsum(
        "bntsh,nh->bnts",
        np.exp(a[:, :, :, None] + c[:, :, None]),
        weights.output_kernel[..., 0],
    )
    assert np.isinf(np.exp(a.astype("float32"))).all()
    np.testing.assert_allclose(dots, exact, rtol=0,
                               atol=1e-5 * np.abs(exact).max())


@pytest.mark.parametrize("masking", ["none", "batch", "causal"])
def test_exponential_beyond_the_float_range_is_finite_and_ordered(masking):
    """Pre-activations up to ~300: float32 cannot hold the scores. The
    output is finite (float32 `"factored"` gives NaN here), and the
    returned probabilities keep each row's order of keys."""
    rng = np.random.default_rng(5)
    weights = single_layer_weights(rng, heads=2, scale=40.0)
    q, k, v = inputs(rng)
    mask = mask_of(rng, (2, 5, 6)) if masking == "batch" else None
    causal = masking == "causal"
    act = keras.activations.exponential
    a = to_numpy(query_terms(q, weights, "factored"))
    c = to_numpy(key_terms(k, weights, "factored"))
    assert (a[:, :, :, None] + c[:, :, None]).max() > 100
    out, _ = neural_attention(
        q, k, v, weights, activation=act, attention_mask=mask, causal=causal,
        implementation="auto",
    )
    assert np.isfinite(to_numpy(out)).all()
    _, probs = neural_attention(
        q, k, v, weights, activation=act, attention_mask=mask, causal=causal,
        implementation="auto", return_attention_scores=True,
    )
    probs = to_numpy(probs)
    assert np.isfinite(probs).all()
    # Order check against the float64 scores on every kept pair.
    scores = np.einsum(
        "bntsh,nh->bnts",
        np.exp(a[:, :, :, None].astype("float64") + c[:, :, None]),
        np.asarray(weights.output_kernel, "float64")[..., 0],
    )
    full = np.ones((2, 2, 5, 6), bool)
    if mask is not None:
        full = full & mask[:, None]
    if causal:
        full = full & np.tril(np.ones((5, 6), bool))
    for b, n, i in np.ndindex(2, 2, 5):
        keep = full[b, n, i]
        if keep.any():
            s, p = scores[b, n, i][keep], probs[b, n, i][keep]
            higher = s[:, None] > s[None, :]
            # (up to float32 rounding of near-tied keys)
            assert (p[:, None] >= p[None, :] - 1e-6)[higher].all()


def test_exponential_gradients_finite_at_large_inputs():
    rng = np.random.default_rng(6)
    weights = single_layer_weights(rng, heads=2, scale=40.0)
    q, k, v = inputs(rng)

    def fn(q, k, v):
        out, _ = neural_attention(
            q, k, v, weights, activation="exponential", causal=True,
            implementation="separable",
        )
        return keras.ops.sum(out)

    value, grads = value_and_grad(fn, [q, k, v])
    assert np.isfinite(value)
    for grad in grads:
        assert np.isfinite(grad).all()


def test_dropout_and_probabilities_share_the_expanded_scores():
    rng = np.random.default_rng(7)
    weights = single_layer_weights(rng)
    q, k, v = inputs(rng)
    out, probs = neural_attention(
        q, k, v, weights, activation="square", implementation="auto",
        dropout=lambda p: p * 0.5, return_attention_scores=True,
    )
    expected, expected_probs = neural_attention(
        q, k, v, weights, activation="square", implementation="factored",
        return_attention_scores=True,
    )
    np.testing.assert_allclose(to_numpy(probs), to_numpy(expected_probs),
                               atol=1e-5)
    np.testing.assert_allclose(to_numpy(out), 0.5 * to_numpy(expected),
                               atol=1e-5)


def test_auto_picks_separable_only_where_it_is_exact():
    rng = np.random.default_rng(8)
    one = single_layer_weights(rng)
    two = make_weights(rng, d=2, hidden=(3, 2), dtype="float32")
    exp = keras.activations.exponential
    for act in (square, cube, exp, keras.activations.linear):
        assert separable_form(act) is not None
        assert resolve_implementation("auto", one, act) == "separable"
        assert resolve_implementation("auto", two, act) != "separable"
        assert resolve_implementation("auto", one, act,
                                      needs_probabilities=True) == "separable"
    relu = keras.activations.relu
    assert separable_form(relu) is None
    assert resolve_implementation("auto", one, relu) != "separable"
    with pytest.raises(ValueError, match="separable"):
        resolve_implementation("separable", one, relu)
    with pytest.raises(ValueError, match="hidden layer"):
        resolve_implementation("separable", two, square)
