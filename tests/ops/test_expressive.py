"""Math of Expressive Attention against NumPy loops and derived properties."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.ops.expressive import default_scale
from keras_neural_attention.ops.expressive import expressive_attention
from keras_neural_attention.ops.expressive import expressive_normalize
from keras_neural_attention.ops.expressive import squared_dot_product_scores
from tests.backend_utils import to_numpy
from tests.backend_utils import value_and_grad


def loop_reference(q, k, v, mask, normalization, epsilon, scale):
    """Expressive attention with explicit loops, in float64."""
    batch, t_len, heads, _ = q.shape
    s_len = k.shape[1]
    out = np.zeros((batch, t_len, heads, v.shape[-1]))
    weights = np.zeros((batch, heads, t_len, s_len))
    for b in range(batch):
        for n in range(heads):
            for i in range(t_len):
                kept = [
                    j for j in range(s_len) if mask is None or mask[b, i, j]
                ]
                squares = {
                    j: (scale * float(np.dot(q[b, i, n], k[b, j, n]))) ** 2
                    for j in kept
                }
                if not kept:
                    continue
                if normalization == "ratio":
                    total = epsilon + sum(squares.values())
                    row = {j: squares[j] / total for j in kept}
                else:
                    top = max(squares.values())
                    exps = {j: math.exp(squares[j] - top) for j in kept}
                    total = sum(exps.values())
                    row = {j: exps[j] / total for j in kept}
                for j, a in row.items():
                    weights[b, n, i, j] = a
                    out[b, i, n] += a * v[b, j, n]
    return out, weights


@pytest.mark.parametrize("normalization", ["ratio", "softmax"])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_loop_reference_in_float64(x64, normalization, causal):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(2, 5, 3, 4))
    k = rng.normal(size=(2, 6, 3, 4))
    v = rng.normal(size=(2, 6, 3, 2))
    mask = rng.random((2, 5, 6)) > 0.3
    mask[1, 2] = False
    out, weights = expressive_attention(
        q, k, v, attention_mask=mask, normalization=normalization,
        epsilon=1e-3, return_attention_scores=True, causal=causal,
    )
    assert keras.backend.standardize_dtype(out.dtype) == "float64"
    full_mask = mask & np.tril(np.ones((5, 6), bool))[None] if causal else mask
    ref_out, ref_weights = loop_reference(
        q, k, v, full_mask, normalization, 1e-3, default_scale(normalization, 4)
    )
    np.testing.assert_allclose(to_numpy(weights), ref_weights, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(to_numpy(out), ref_out, rtol=1e-10,
                               atol=1e-12)


def test_default_scales():
    assert default_scale("ratio", 16) == 1.0
    assert default_scale("softmax", 16) == pytest.approx(0.25)


def test_ratio_is_sign_invariant_per_query_and_per_key():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(1, 4, 2, 5)).astype("float32")
    k = rng.normal(size=(1, 6, 2, 5)).astype("float32")
    v = rng.normal(size=(1, 6, 2, 3)).astype("float32")
    q_signs = np.array([1, -1, -1, 1], "float32")[None, :, None, None]
    k_signs = np.array([-1, 1, 1, -1, -1, 1], "float32")[None, :, None, None]
    for normalization in ("ratio", "softmax"):
        base, base_w = expressive_attention(
            q, k, v, normalization=normalization, return_attention_scores=True
        )
        flipped, flipped_w = expressive_attention(
            q * q_signs, k * k_signs, v, normalization=normalization,
            return_attention_scores=True,
        )
        np.testing.assert_allclose(to_numpy(flipped), to_numpy(base),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(to_numpy(flipped_w), to_numpy(base_w),
                                   rtol=1e-6, atol=1e-7)


def test_ratio_has_no_temperature_and_rows_sum_below_one(x64):
    rng = np.random.default_rng(2)
    q = rng.normal(size=(1, 3, 1, 4))
    k = rng.normal(size=(1, 5, 1, 4))
    v = rng.normal(size=(1, 5, 1, 2))
    _, w = expressive_attention(q, k, v, epsilon=1e-12,
                                return_attention_scores=True)
    _, w_scaled = expressive_attention(q * 7.0, k * 0.3, v, epsilon=1e-12,
                                       return_attention_scores=True)
    np.testing.assert_allclose(to_numpy(w_scaled), to_numpy(w), rtol=1e-9)
    # Row sums are S / (epsilon + S) <= 1.
    eps = 10.0
    _, w_eps = expressive_attention(q, k, v, epsilon=eps,
                                    return_attention_scores=True)
    squares = np.einsum("btnd,bsnd->bnts", q, k) ** 2
    total = squares.sum(-1)
    np.testing.assert_allclose(to_numpy(w_eps).sum(-1), total / (eps + total),
                               rtol=1e-12)
    assert (to_numpy(w_eps).sum(-1) < 1).all()


def test_orthogonal_keys_get_zero_weight_antiparallel_keys_large():
    q = np.array([[[[1.0, 0.0, 0.0]]]], "float32")
    k = np.array([[[[0.0, 1.0, 0.0]], [[-2.0, 0.0, 0.0]], [[0.0, 0.0, 3.0]],
                   [[2.0, 0.0, 0.0]]]], "float32")
    v = np.eye(4, dtype="float32")[None, :, None, :]
    _, w = expressive_attention(q, k, v, return_attention_scores=True)
    w = to_numpy(w)[0, 0, 0]
    np.testing.assert_array_equal(w[[0, 2]], 0.0)
    np.testing.assert_allclose(w[[1, 3]], 0.5, rtol=1e-6)


@pytest.mark.parametrize("normalization", ["ratio", "softmax"])
def test_masked_and_fully_masked_rows_have_finite_zero_gradients(
    normalization,
):
    rng = np.random.default_rng(3)
    q = rng.normal(size=(1, 3, 2, 4)).astype("float32")
    k = rng.normal(size=(1, 4, 2, 4)).astype("float32")
    v = rng.normal(size=(1, 4, 2, 3)).astype("float32")
    mask = np.array([[[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1]]], bool)

    def loss(q, k, v):
        out, _ = expressive_attention(
            q, k, v, attention_mask=mask, normalization=normalization
        )
        return ops.sum(out)

    value, grads = value_and_grad(loss, [q, k, v])
    assert np.isfinite(value)
    for g in grads:
        assert np.isfinite(g).all()
    # The fully masked query row gets no gradient.
    np.testing.assert_array_equal(grads[0][0, 1], 0.0)
    out, w = expressive_attention(
        q, k, v, attention_mask=mask, normalization=normalization,
        return_attention_scores=True,
    )
    np.testing.assert_array_equal(to_numpy(out)[0, 1], 0.0)
    np.testing.assert_array_equal(to_numpy(w)[0, :, 1], 0.0)
    np.testing.assert_array_equal(to_numpy(w)[0, :, 0, 1], 0.0)


def test_huge_masked_scores_do_not_poison_the_ratio():
    """A masked key with an enormous score must contribute exactly 0."""
    q = np.ones((1, 2, 1, 2), "float32")
    k = np.array([[[[1.0, 0.0]], [[1e18, 1e18]]]], "float32")
    v = np.array([[[[1.0]], [[5.0]]]], "float32")
    mask = np.array([[[True, False], [False, False]]])
    for normalization in ("ratio", "softmax"):
        out, w = expressive_attention(
            q, k, v, attention_mask=mask, normalization=normalization,
            return_attention_scores=True,
        )
        out, w = to_numpy(out), to_numpy(w)
        assert np.isfinite(out).all() and np.isfinite(w).all()
        np.testing.assert_allclose(out[0, 0, 0], 1.0, rtol=1e-5)
        np.testing.assert_array_equal(out[0, 1], 0.0)


def test_low_precision_inputs_score_in_float32():
    rng = np.random.default_rng(4)
    q = rng.normal(size=(1, 3, 1, 4)).astype("float16")
    k = rng.normal(size=(1, 5, 1, 4)).astype("float16")
    scores = squared_dot_product_scores(q, k)
    assert keras.backend.standardize_dtype(scores.dtype) == "float32"
    w = expressive_normalize(ops.cast(scores, "float16"))
    assert keras.backend.standardize_dtype(w.dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(normalization="softmax_square"), "normalization"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(epsilon=-1e-3), "epsilon"),
        (dict(epsilon=float("nan")), "epsilon"),
        (dict(epsilon="1e-6"), "epsilon"),
    ],
)
def test_invalid_arguments(kwargs, name):
    x = np.zeros((1, 2, 1, 2), "float32")
    with pytest.raises(ValueError, match=name):
        expressive_attention(x, x, x, **kwargs)
