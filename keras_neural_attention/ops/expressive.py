"""Backend-agnostic math of Expressive Attention, written with `keras.ops`.

Expressive Attention (Gros, arXiv 2407.18601) scores a query against a key
with the squared dot product `(q . k)^2`: parallel and antiparallel pairs get
large weights, orthogonal pairs get none. Two normalizations are provided:

- `"ratio"`: `A_ij = s_ij / (epsilon + sum_l s_il)` with `s_ij = (q_i . k_j)^2`
  (no `1/sqrt(key_dim)` scaling by default);
- `"softmax"`: `A_ij = softmax_j((q_i . k_j / sqrt(key_dim))^2)`.

Masks are applied multiplicatively (masked squared scores are set to 0, or
left out of the softmax), never by adding `-inf` to a score that is then
squared. Rows in which every key is masked get all-zero weights.
"""

import math
import numbers

from keras import ops

from keras_neural_attention.ops.masks import normalize_attention_mask
from keras_neural_attention.ops.scoring import scoring_dtype
from keras_neural_attention.ops.softmax import masked_softmax

NORMALIZATIONS = ("ratio", "softmax")
DEFAULT_EPSILON = 1e-6


def validate_normalization(normalization):
    if not isinstance(normalization, str) or normalization not in (
        NORMALIZATIONS
    ):
        raise ValueError(
            "Argument `normalization` must be one of "
            f"{', '.join(repr(n) for n in NORMALIZATIONS)}. "
            f"Received: normalization={normalization!r}"
        )


def validate_epsilon(epsilon):
    if (
        isinstance(epsilon, bool)
        or not isinstance(epsilon, numbers.Real)
        or not math.isfinite(float(epsilon))
        or float(epsilon) <= 0.0
    ):
        raise ValueError(
            "Argument `epsilon` must be a positive, finite float. "
            f"Received: epsilon={epsilon!r}"
        )


def default_scale(normalization, key_dim):
    """The factor applied to `q . k` before squaring: `1` for `"ratio"`,
    `1 / sqrt(key_dim)` for `"softmax"`."""
    validate_normalization(normalization)
    if normalization == "softmax":
        return 1.0 / math.sqrt(float(key_dim))
    return 1.0


def squared_dot_product_scores(query, key, scale=1.0):
    """Squared, scaled dot products `(scale * q_i . k_j)^2` of every head.

    Args:
        query: `(batch, T, heads, key_dim)`.
        key: `(batch, S, heads, key_dim)`.
        scale: float multiplying `q . k` before squaring.

    Returns:
        `(batch, heads, T, S)` non-negative scores in float32 (float64 for
        float64 inputs) whatever the input dtype.
    """
    dtype = scoring_dtype(query.dtype)
    query = ops.cast(query, dtype)
    key = ops.cast(key, dtype)
    if scale != 1.0:
        query = query * ops.convert_to_tensor(scale, dtype=dtype)
    dots = ops.einsum("btnd,bsnd->bnts", query, key)
    return ops.square(dots)


def expressive_normalize(
    squared_scores, mask=None, normalization="ratio", epsilon=DEFAULT_EPSILON
):
    """Normalizes squared scores over the last axis into attention weights.

    Args:
        squared_scores: `(..., S)` non-negative squared scores.
        mask: optional boolean tensor broadcastable to `squared_scores`;
            `True` keeps a position.
        normalization: `"ratio"` (`s / (epsilon + sum s)` over kept
            positions) or `"softmax"` (masked softmax of `s`).
        epsilon: positive float added to the `"ratio"` denominator; unused by
            `"softmax"`.

    Returns:
        Weights with the shape of `squared_scores`, in float32 (float64 for
        float64 scores). Masked positions and fully masked rows are 0, never
        NaN.
    """
    validate_normalization(normalization)
    validate_epsilon(epsilon)
    dtype = scoring_dtype(squared_scores.dtype)
    squared_scores = ops.cast(squared_scores, dtype)
    if normalization == "softmax":
        return masked_softmax(squared_scores, mask)
    if mask is not None:
        mask = ops.cast(mask, "bool")
        squared_scores = ops.where(
            mask, squared_scores, ops.zeros_like(squared_scores)
        )
    total = ops.sum(squared_scores, axis=-1, keepdims=True)
    # epsilon > 0: a row whose kept scores are all 0 (fully masked, or q
    # orthogonal to every key) gets 0 / epsilon = 0.
    epsilon = ops.convert_to_tensor(epsilon, dtype=dtype)
    return squared_scores / (epsilon + total)


def causal_mask(query_length, key_length):
    """`(1, T, S)` boolean, True where key `j <= query i`."""
    rows = ops.expand_dims(ops.arange(query_length, dtype="int32"), 1)
    cols = ops.expand_dims(ops.arange(key_length, dtype="int32"), 0)
    return ops.expand_dims(ops.greater_equal(rows, cols), 0)


def expressive_attention(
    query,
    key,
    value,
    attention_mask=None,
    normalization="ratio",
    epsilon=DEFAULT_EPSILON,
    scale=None,
    dropout=None,
    return_attention_scores=False,
    causal=False,
):
    """Multi-head Expressive Attention on projected queries, keys and values.

    Args:
        query: `(batch, T, heads, key_dim)`.
        key: `(batch, S, heads, key_dim)`.
        value: `(batch, S, heads, value_dim)`.
        attention_mask: optional mask in any form
            `keras.layers.MultiHeadAttention` accepts for `(batch, heads, T,
            S)` weights: `(T, S)`, `(batch, T, S)`, `(batch, 1, T, S)` or
            `(batch, heads, T, S)` (axes of size 1 broadcast), boolean or 0/1
            integers; `True` keeps a pair. Rows with no kept pair output
            zeros. Other shapes raise `ValueError`.
        normalization: `"ratio"` (default) or `"softmax"`.
        epsilon: positive float in the `"ratio"` denominator.
        scale: factor applied to `q . k` before squaring. Defaults to
            `default_scale(normalization, key_dim)`: `1` for `"ratio"`,
            `1 / sqrt(key_dim)` for `"softmax"`.
        dropout: optional callable applied to the attention weights (for
            example a `keras.layers.Dropout` in training mode).
        return_attention_scores: also return the weights.
        causal: also mask every key after its query position (`j > i`).

    Returns:
        `(output, weights)`: output `(batch, T, heads, value_dim)` in the
        dtype of `value`; weights `(batch, heads, T, S)` in float32 (float64
        for float64 inputs), or `None` when not requested.
    """
    validate_normalization(normalization)
    validate_epsilon(epsilon)
    if scale is None:
        scale = default_scale(normalization, query.shape[-1])
    mask = normalize_attention_mask(
        attention_mask, query.shape[0], query.shape[2], query.shape[1],
        key.shape[1],
    )
    if causal:
        band = ops.expand_dims(
            causal_mask(ops.shape(query)[1], ops.shape(key)[1]), 1
        )
        mask = band if mask is None else ops.logical_and(mask, band)
    scores = squared_dot_product_scores(query, key, scale=scale)
    weights = expressive_normalize(
        scores, mask, normalization=normalization, epsilon=epsilon
    )
    attended = weights if dropout is None else dropout(weights)
    attended = ops.cast(attended, value.dtype)
    output = ops.einsum("bnts,bsnd->btnd", attended, value)
    return output, (weights if return_attention_scores else None)

