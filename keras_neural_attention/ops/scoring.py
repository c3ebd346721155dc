"""The scoring network of Neural Attention, in backend-agnostic `keras.ops`.

Neural Attention (DiGiugno & Mahmood, arXiv 2502.17206) replaces the dot
product `q_i . k_j` by a small feed-forward network on the concatenated pair:

    q'_i = q_i P_q + b_q            k'_j = k_j P_k + b_k          (width d')
    h_ij = act([q'_i ; k'_j] W_1 + b_1)
    ...                              (further hidden layers, if any)
    s_ij = h_ij w_out + b_out

Every function here takes the projected multi-head tensors in the layout of
`keras.layers.MultiHeadAttention` (`(batch, length, heads, key_dim)`) and the
weights as a `ScoringWeights` tuple. Kernels without a leading heads axis are
shared by every head (the released code's choice); kernels with one give each
head its own network.

Two implementations of the same function are provided:

- `"reference"` builds the `(batch, heads, T, S, 2 d')` tensor of concatenated
  pairs, exactly as the paper describes.
- `"factored"` splits the first layer into a per-query term `a_i` and a
  per-key term `c_j` (`[q'; k'] W_1 = q' W_1[:d'] + k' W_1[d':]`) and
  broadcast-adds them, so the pair tensor is never built.
"""

from typing import NamedTuple

import keras
from keras import ops

IMPLEMENTATIONS = ("reference", "factored")


class ScoringWeights(NamedTuple):
    """The weights of a Neural Attention scoring network.

    Shared weights have the shapes below; per-head weights carry an extra
    leading axis of size `num_heads`.

    Attributes:
        query_kernel: `(key_dim, d')`, the query down-projection.
        query_bias: `(d',)`.
        key_kernel: `(key_dim, d')`, the key down-projection.
        key_bias: `(d',)`.
        hidden_kernels: tuple of kernels; the first is `(2 d', h_1)` and acts
            on `[q'; k']` (query half first), the next `(h_1, h_2)`, ...
        hidden_biases: tuple of biases `(h_1,)`, `(h_2,)`, ...
        output_kernel: `(h_last, 1)`.
        output_bias: `(1,)`.
    """

    query_kernel: object
    query_bias: object
    key_kernel: object
    key_bias: object
    hidden_kernels: tuple
    hidden_biases: tuple
    output_kernel: object
    output_bias: object

    @property
    def per_head(self):
        """Whether every head has its own scoring network."""
        return len(self.query_kernel.shape) == 3

    @property
    def projection_dim(self):
        """The width d' of the down-projected query and key."""
        return int(self.query_kernel.shape[-1])


def scoring_dtype(dtype):
    """The dtype scores are computed in: float64 for float64 inputs,
    float32 for every other dtype (float16 and bfloat16 included)."""
    if keras.backend.standardize_dtype(dtype) == "float64":
        return "float64"
    return "float32"


def cast_scoring_weights(weights, dtype="float32"):
    """Returns `weights` with every tensor cast to `dtype`."""
    return keras.tree.map_structure(lambda w: ops.cast(w, dtype), weights)


def validate_implementation(implementation, allowed=IMPLEMENTATIONS):
    if implementation not in allowed:
        raise ValueError(
            "Argument `implementation` must be one of "
            f"{', '.join(repr(name) for name in allowed)}. "
            f"Received: implementation={implementation!r}"
        )


# Letters for the middle axes of `_dense`'s input (the scoring network's
# inputs have one or two: `(b, n, T, i)` or `(b, n, T, S, i)`).
_MIDDLE_AXES = "tsuvwxyz"


def _dense_equation(rank, per_head):
    """The einsum equation of `_dense` for an input of `rank`, written out
    with one letter per axis.

    No ellipsis: TensorFlow 2.21's einsum can abort the process ("double free
    or corruption") on `"bn...i,nio->bn...o"` for some shapes, e.g. `(2, 1,
    28, 23)` and `(1, 23, 1)`. Fixed-rank equations take the ordinary
    batched-matmul path on every backend.
    """
    middle = _MIDDLE_AXES[: rank - 3]
    if per_head:
        return f"bn{middle}i,nio->bn{middle}o"
    return f"bn{middle}i,io->bn{middle}o"


def _dense(x, kernel, bias, num_middle_axes):
    """Applies `x @ kernel + bias` on the last axis.

    `x` has shape `(batch, heads, *middle, in)` with `len(middle) ==
    num_middle_axes`. A shared kernel `(in, out)` applies to every head; a
    per-head kernel `(heads, in, out)` is contracted head by head. (`einsum`
    rather than `matmul`: Keras' torch `matmul` computes float64 inputs in
    float32.)
    """
    rank = len(x.shape)
    if rank != num_middle_axes + 3 or rank - 3 > len(_MIDDLE_AXES):
        raise ValueError(
            "Expected `x` of rank "
            f"{num_middle_axes + 3} (batch, heads, {num_middle_axes} middle "
            f"axes, features). Received: x.shape={tuple(x.shape)}"
        )
    per_head = len(kernel.shape) == 3
    y = ops.einsum(_dense_equation(rank, per_head), x, kernel)
    if bias is not None:
        if per_head:
            bias = ops.reshape(
                bias, (bias.shape[0],) + (1,) * num_middle_axes
                + (bias.shape[-1],)
            )
        y = y + bias
    return y


def project_features(x, kernel, bias):
    """Down-projects multi-head queries or keys to the scoring width d'.

    Args:
        x: `(batch, length, heads, key_dim)`.
        kernel: `(key_dim, d')` or `(heads, key_dim, d')`.
        bias: `(d',)` or `(heads, d')`.

    Returns:
        `(batch, heads, length, d')`.
    """
    x = ops.transpose(x, (0, 2, 1, 3))
    return _dense(x, kernel, bias, num_middle_axes=1)


def query_terms(query, weights, implementation):
    """The per-query part of the scoring network, `(batch, heads, T, .)`.

    `"reference"` returns the projected query `q'`; `"factored"` returns the
    query half of the first hidden layer, `a = q' W_1[:d'] + b_1`.
    """
    q = project_features(query, weights.query_kernel, weights.query_bias)
    if implementation == "reference":
        return q
    d = weights.projection_dim
    first_kernel = weights.hidden_kernels[0][..., :d, :]
    return _dense(q, first_kernel, weights.hidden_biases[0], 1)


def key_terms(key, weights, implementation):
    """The per-key part of the scoring network, `(batch, heads, S, .)`.

    `"reference"` returns the projected key `k'`; `"factored"` returns the
    key half of the first hidden layer, `c = k' W_1[d':]`.
    """
    k = project_features(key, weights.key_kernel, weights.key_bias)
    if implementation == "reference":
        return k
    d = weights.projection_dim
    first_kernel = weights.hidden_kernels[0][..., d:, :]
    return _dense(k, first_kernel, None, 1)


def pair_scores(q_terms, k_terms, weights, activation, implementation):
    """Scores of every (query, key) pair from the terms above.

    Args:
        q_terms: `(batch, heads, T, .)` from `query_terms`.
        k_terms: `(batch, heads, S, .)` from `key_terms`.
        weights: `ScoringWeights`.
        activation: callable applied after every hidden layer.
        implementation: `"reference"` or `"factored"`.

    Returns:
        Raw (unnormalized, unscaled) scores `(batch, heads, T, S)`.
    """
    if implementation == "reference":
        shape = ops.shape(q_terms)
        pair_shape = (
            shape[0],
            shape[1],
            shape[2],
            ops.shape(k_terms)[2],
            shape[3],
        )
        q_pairs = ops.broadcast_to(ops.expand_dims(q_terms, 3), pair_shape)
        k_pairs = ops.broadcast_to(ops.expand_dims(k_terms, 2), pair_shape)
        pairs = ops.concatenate([q_pairs, k_pairs], axis=-1)
        hidden = activation(
            _dense(
                pairs, weights.hidden_kernels[0], weights.hidden_biases[0], 2
            )
        )
    else:
        hidden = activation(
            ops.expand_dims(q_terms, 3) + ops.expand_dims(k_terms, 2)
        )
    for kernel, bias in zip(
        weights.hidden_kernels[1:], weights.hidden_biases[1:]
    ):
        hidden = activation(_dense(hidden, kernel, bias, 2))
    scores = _dense(hidden, weights.output_kernel, weights.output_bias, 2)
    return ops.squeeze(scores, axis=-1)


def neural_attention_scores(
    query, key, weights, activation="relu", implementation="factored"
):
    """Raw Neural Attention scores for every query/key pair.

    Args:
        query: `(batch, T, heads, key_dim)`, the projected queries.
        key: `(batch, S, heads, key_dim)`, the projected keys.
        weights: `ScoringWeights`.
        activation: activation of the hidden layers (name or callable).
        implementation: `"reference"` or `"factored"`; both compute the same
            function.

    Returns:
        `(batch, heads, T, S)` scores in float32 (float64 for float64
        inputs). They are not scaled by `1/sqrt(key_dim)` (as in the
        released code).

    Examples:
        >>> import numpy as np
        >>> from keras_neural_attention.ops import ScoringWeights
        >>> from keras_neural_attention.ops import neural_attention_scores
        >>> rng = np.random.default_rng(0)
        >>> w = ScoringWeights(
        ...     rng.normal(size=(8, 2)), np.zeros(2), rng.normal(size=(8, 2)),
        ...     np.zeros(2), (rng.normal(size=(4, 3)),), (np.zeros(3),),
        ...     rng.normal(size=(3, 1)), np.zeros(1))
        >>> q = rng.normal(size=(1, 5, 2, 8)); k = rng.normal(size=(1, 7, 2, 8))
        >>> tuple(neural_attention_scores(q, k, w).shape)
        (1, 2, 5, 7)
    """
    validate_implementation(implementation)
    activation = keras.activations.get(activation)
    dtype = scoring_dtype(ops.convert_to_tensor(query).dtype)
    weights = cast_scoring_weights(weights, dtype)
    query = ops.cast(query, dtype)
    key = ops.cast(key, dtype)
    return pair_scores(
        query_terms(query, weights, implementation),
        key_terms(key, weights, implementation),
        weights,
        activation,
        implementation,
    )
