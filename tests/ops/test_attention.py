"""The keras.ops math: scores, masked softmax, blocked attention, gradients."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.ops import ScoringWeights
from keras_neural_attention.ops import masked_softmax
from keras_neural_attention.ops import neural_attention
from keras_neural_attention.ops import neural_attention_scores
from keras_neural_attention.ops import resolve_implementation
from keras_neural_attention.ops.attention import auto_query_chunk_size
from tests import numpy_reference
from tests.backend_utils import jit
from tests.backend_utils import to_numpy
from tests.backend_utils import value_and_grad


def make_weights(rng, key_dim=5, d=3, hidden=(4, 2), heads=None,
                 dtype="float64"):
    prefix = () if heads is None else (heads,)

    def normal(*shape):
        return rng.normal(size=prefix + shape).astype(dtype)

    widths = (2 * d,) + tuple(hidden)
    return ScoringWeights(
        query_kernel=normal(key_dim, d),
        query_bias=normal(d),
        key_kernel=normal(key_dim, d),
        key_bias=normal(d),
        hidden_kernels=tuple(
            normal(a, b) for a, b in zip(widths[:-1], widths[1:])
        ),
        hidden_biases=tuple(normal(b) for b in widths[1:]),
        output_kernel=normal(widths[-1], 1),
        output_bias=normal(1),
    )


def as_dict(weights):
    named = {
        "score_query_kernel": weights.query_kernel,
        "score_query_bias": weights.query_bias,
        "score_key_kernel": weights.key_kernel,
        "score_key_bias": weights.key_bias,
        "score_output_kernel": weights.output_kernel,
        "score_output_bias": weights.output_bias,
    }
    for i, (k, b) in enumerate(
        zip(weights.hidden_kernels, weights.hidden_biases)
    ):
        named[f"score_hidden_kernel_{i}"] = k
        named[f"score_hidden_bias_{i}"] = b
    return named


@pytest.mark.parametrize("heads_weights", [None, 2])
@pytest.mark.parametrize("implementation", ["reference", "factored"])
def test_scores_match_numpy_pairwise_loop(heads_weights, implementation, x64):
    rng = np.random.default_rng(0)
    weights = make_weights(rng, heads=heads_weights)
    q = rng.normal(size=(2, 4, 2, 5))
    k = rng.normal(size=(2, 6, 2, 5))
    scores = to_numpy(
        neural_attention_scores(q, k, weights, implementation=implementation)
    )
    assert scores.shape == (2, 2, 4, 6)
    named = as_dict(weights)
    for b in range(2):
        for n in range(2):
            expected = numpy_reference.score_matrix(
                q[b, :, n], k[b, :, n], named, n
            )
            np.testing.assert_allclose(scores[b, n], expected, rtol=1e-10,
                                       atol=1e-10)


def test_single_hidden_layer_is_the_paper_formula(x64):
    """hidden_units=(h,): s = w_a . relu(W_h [q'; k'] + b_h) + b_a."""
    rng = np.random.default_rng(1)
    weights = make_weights(rng, d=2, hidden=(5,))
    q = rng.normal(size=(1, 3, 1, 5))
    k = rng.normal(size=(1, 4, 1, 5))
    scores = to_numpy(neural_attention_scores(q, k, weights))
    qp = q[0, :, 0] @ weights.query_kernel + weights.query_bias
    kp = k[0, :, 0] @ weights.key_kernel + weights.key_bias
    w_h, b_h = weights.hidden_kernels[0], weights.hidden_biases[0]
    w_a, b_a = weights.output_kernel[:, 0], weights.output_bias[0]
    for i in range(3):
        for j in range(4):
            pair = np.concatenate([qp[i], kp[j]])
            expected = w_a @ np.maximum(pair @ w_h + b_h, 0) + b_a
            assert abs(scores[0, 0, i, j] - expected) < 1e-10


def test_masked_softmax_zero_rows_and_exactness(x64):
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(2, 3, 5)) * 10
    mask = rng.random((2, 3, 5)) > 0.4
    mask[0, 1] = False
    mask[1, 2] = [True, False, False, False, False]
    probs = to_numpy(masked_softmax(scores, mask))
    for b in range(2):
        expected = numpy_reference.masked_softmax(scores[b], mask[b])
        np.testing.assert_allclose(probs[b], expected, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(probs[0, 1], 0.0)
    np.testing.assert_array_equal(probs[1, 2], [1, 0, 0, 0, 0])


def test_masked_softmax_ignores_huge_masked_scores():
    scores = np.array([[1.0, 3e38, -3e38, 2.0]], "float32")
    mask = np.array([[True, False, False, True]])
    probs = to_numpy(masked_softmax(scores, mask))
    e = np.exp([1.0 - 2.0, 0.0])
    np.testing.assert_allclose(probs[0, [0, 3]], e / e.sum(), rtol=1e-6)
    np.testing.assert_array_equal(probs[0, [1, 2]], 0.0)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 100, "auto"])
@pytest.mark.parametrize("implementation", ["reference", "factored"])
def test_blocks_equal_one_pass(chunk, implementation):
    rng = np.random.default_rng(3)
    weights = make_weights(rng, heads=2, dtype="float32")
    q = rng.normal(size=(2, 7, 2, 5)).astype("float32")
    k = rng.normal(size=(2, 4, 2, 5)).astype("float32")
    v = rng.normal(size=(2, 4, 2, 3)).astype("float32")
    mask = rng.random((2, 7, 4)) > 0.3
    mask[1, 3] = False
    full, full_p = neural_attention(
        q, k, v, weights, attention_mask=mask, query_chunk_size=None,
        implementation=implementation, return_attention_scores=True,
    )
    out, p = neural_attention(
        q, k, v, weights, attention_mask=mask, query_chunk_size=chunk,
        implementation=implementation, return_attention_scores=True,
    )
    np.testing.assert_allclose(to_numpy(out), to_numpy(full), atol=1e-6)
    np.testing.assert_allclose(to_numpy(p), to_numpy(full_p), atol=1e-6)
    out_fused, none = neural_attention(
        q, k, v, weights, attention_mask=mask[:, :1], query_chunk_size=chunk,
        implementation=implementation,
    )
    assert none is None
    expected, _ = neural_attention(
        q, k, v, weights, attention_mask=np.repeat(mask[:, :1], 7, 1),
        query_chunk_size=None, implementation=implementation,
    )
    np.testing.assert_allclose(to_numpy(out_fused), to_numpy(expected),
                               atol=1e-6)


def _finite_difference(f, args, index, eps=1e-6):
    flat = args[index].reshape(-1)
    grad = np.zeros_like(flat)
    for i in range(flat.size):
        plus = [a.copy() for a in args]
        minus = [a.copy() for a in args]
        plus[index].reshape(-1)[i] += eps
        minus[index].reshape(-1)[i] -= eps
        grad[i] = (f(*plus) - f(*minus)) / (2 * eps)
    return grad.reshape(args[index].shape)


@pytest.mark.parametrize("implementation", ["reference", "factored"])
@pytest.mark.parametrize("chunk", [None, 2])
@pytest.mark.parametrize("heads_weights", [None, 2])
def test_gradients_match_finite_differences(implementation, chunk,
                                            heads_weights, x64):
    rng = np.random.default_rng(4)
    weights = make_weights(rng, key_dim=3, d=2, hidden=(3, 2),
                           heads=heads_weights)
    flat_weights = list(keras.tree.flatten(weights))
    q = rng.normal(size=(1, 3, 2, 3))
    k = rng.normal(size=(1, 4, 2, 3))
    v = rng.normal(size=(1, 4, 2, 2))
    mask = np.array([[[1, 1, 0, 1], [1, 0, 1, 1], [0, 0, 0, 0]]], bool)
    cotangent = rng.normal(size=(1, 3, 2, 2))

    def loss(q, k, v, *flat):
        w = keras.tree.pack_sequence_as(weights, list(flat))
        out, _ = neural_attention(
            q, k, v, w, attention_mask=mask,
            implementation=implementation, query_chunk_size=chunk,
        )
        return ops.sum(out * ops.convert_to_tensor(cotangent, out.dtype))

    args = [q, k, v] + flat_weights
    _, grads = value_and_grad(loss, args)

    compiled_loss = jit(loss)

    def numeric_loss(*a):
        return float(to_numpy(compiled_loss(*a)))

    for index in range(len(args)):
        expected = _finite_difference(numeric_loss, args, index)
        assert np.isfinite(grads[index]).all()
        np.testing.assert_allclose(grads[index], expected, rtol=1e-5,
                                   atol=1e-7, err_msg=f"argument {index}")


def test_gradients_finite_for_fully_masked_rows_in_float32():
    rng = np.random.default_rng(5)
    weights = make_weights(rng, dtype="float32")
    q = rng.normal(size=(1, 2, 1, 5)).astype("float32")
    k = rng.normal(size=(1, 3, 1, 5)).astype("float32")
    v = rng.normal(size=(1, 3, 1, 2)).astype("float32")
    mask = np.array([[[False] * 3, [True, False, True]]])

    def loss(q, k, v):
        out, _ = neural_attention(q, k, v, weights, attention_mask=mask,
                                  query_chunk_size=1)
        return ops.sum(out)

    _, grads = value_and_grad(loss, [q, k, v])
    for g in grads:
        assert np.isfinite(g).all()
    # The fully masked query row gets no gradient; the masked key gets none.
    np.testing.assert_array_equal(grads[0][0, 0], 0.0)
    np.testing.assert_array_equal(grads[2][0, 1], 0.0)


def test_output_bias_has_no_effect(x64):
    """b_a shifts every score of a row equally: softmax cancels it."""
    rng = np.random.default_rng(6)
    weights = make_weights(rng, dtype="float64")
    q = rng.normal(size=(1, 3, 1, 5))
    k = rng.normal(size=(1, 4, 1, 5))
    v = rng.normal(size=(1, 4, 1, 2))
    a, _ = neural_attention(q, k, v, weights)
    shifted = weights._replace(output_bias=weights.output_bias + 100.0)
    b, _ = neural_attention(q, k, v, shifted)
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-9)


def test_auto_chunk_size_bounds_block_elements():
    rows = auto_query_chunk_size(1, 8, 4096, 2)
    assert rows * 8 * 4096 * 2 <= 2**24
    assert rows == 256
    assert auto_query_chunk_size(None, 8, 4096, 2) == 256
    assert auto_query_chunk_size(4, 8, 4096, 64) == 2
    assert auto_query_chunk_size(1, 1, 8, 1) >= 8


def test_resolve_implementation():
    assert resolve_implementation("auto") == "factored"
    assert resolve_implementation("reference") == "reference"
    with pytest.raises(ValueError, match="implementation"):
        resolve_implementation("fused-but-missing")
    with pytest.raises(ValueError, match="query_chunk_size"):
        neural_attention(
            np.zeros((1, 1, 1, 5)), np.zeros((1, 1, 1, 5)),
            np.zeros((1, 1, 1, 2)),
            make_weights(np.random.default_rng(0)), query_chunk_size=1.5,
        )
