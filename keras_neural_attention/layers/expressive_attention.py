"""`ExpressiveAttention`: multi-head attention scored by squared dot
products."""

import keras
from keras import ops

from keras_neural_attention.layers.scored_attention import (
    ScoredMultiHeadAttention,
)
from keras_neural_attention.layers.scored_attention import native_attention
from keras_neural_attention.ops.expressive import DEFAULT_EPSILON
from keras_neural_attention.ops.expressive import default_scale
from keras_neural_attention.ops.expressive import expressive_attention
from keras_neural_attention.ops.expressive import validate_epsilon
from keras_neural_attention.ops.expressive import validate_normalization


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class ExpressiveAttention(ScoredMultiHeadAttention):
    """Multi-head attention whose scores are squared dot products.

    Expressive Attention (Gros, 2024) replaces the dot product `q . k` of
    `keras.layers.MultiHeadAttention` by its square, so that parallel *and*
    antiparallel query/key pairs get large weights and orthogonal pairs get
    none. With the default `normalization="ratio"`:

    ```
    s_ij = (q_i . k_j)^2
    A_ij = s_ij / (epsilon + sum_l s_il)        # sum over kept keys l
    out_i = sum_j A_ij v_j
    ```

    The ratio has no temperature: apart from `epsilon`, it is unchanged when
    a query or all keys are rescaled, and it is invariant under `q -> -q` and
    under flipping the sign of any key. `q . k` is not scaled by
    `1/sqrt(key_dim)` there (the scale would only change the meaning of
    `epsilon`: scaling by `c` equals using `epsilon / c**2`). A row sums to
    `S / (epsilon + S)` with `S = sum_l s_il`, just under 1.

    `normalization="softmax"` uses `A_ij = softmax_j((q_i . k_j /
    sqrt(key_dim))^2)`, with the usual `1/sqrt(key_dim)` scaling of the dot
    product before squaring, so that squared scores are of order one at
    initialization as in dot-product attention.

    Masked pairs contribute 0 to the ratio (masks are multiplicative: no
    `-inf` ever enters a square) and are left out of the softmax. Rows in
    which every key is masked output zeros, never NaN, with finite
    gradients. Scores and normalization are computed in float32 (float64 for
    float64 inputs) under every dtype policy.

    The layer keeps the whole constructor and call signature of
    `keras.layers.MultiHeadAttention` (masks, causal masking, sliding
    windows, gating, dropout on the attention weights, cross-attention with
    `T != S`, returned attention weights) and adds the arguments below. It
    adds no weights. Memory: like the non-flash path of
    `MultiHeadAttention`, it stores the `(batch, heads, T, S)` weights.

    Args:
        num_heads: int. Number of attention heads.
        key_dim: int. Size of each attention head for query and key.
        value_dim: int. Size of each attention head for value. Defaults to
            `key_dim`.
        dropout: float. Dropout rate on the attention weights.
        use_bias: bool. Whether the query/key/value/output projections use
            biases.
        output_shape: optional int or tuple. Size of the output's last axes;
            defaults to the query's feature size.
        attention_axes: axes over which the attention is applied, as in
            `MultiHeadAttention`: `None` (default) means every axis between
            the batch and the features, so `(B, T, dim)` inputs attend over
            `T` and `(B, H, W, dim)` inputs over `H` and `W` jointly. Several
            axes are flattened into one sequence (row-major, in the order
            given) for scoring; the other middle axes act as batch axes.
            Causal masks and sliding windows apply to the flattened order.
        flash_attention: must be `None` or `False`: flash kernels compute
            softmax attention of dot products, not of their squares. `True`
            raises `ValueError`.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        kernel_regularizer: regularizer of the projection kernels.
        bias_regularizer: regularizer of the projection biases.
        activity_regularizer: regularizer of the output.
        kernel_constraint: constraint on the projection kernels.
        bias_constraint: constraint on the projection biases.
        seed: optional int seed of the dropout layer.
        normalization: `"ratio"` (default) or `"softmax"`, as above.
        epsilon: positive float added to the denominator of the `"ratio"`
            normalization (unused by `"softmax"`). Defaults to `1e-6`: small
            against typical squared scores (of order `key_dim` at
            initialization), so that it only matters when a query is
            (nearly) orthogonal to every kept key, where it keeps the weights
            finite and sends them to 0.
        **kwargs: other arguments of `keras.layers.MultiHeadAttention`
            (`use_gate`, `sliding_window`) and of `keras.layers.Layer`
            (`name`, `dtype`, ...).

    Call arguments:
        - query: `(B, T, dim)` query tensor (or `(B, ..., dim)` with
          `attention_axes`), floating point.
        - value: `(B, S, dim)` value tensor, same rank as `query`.
        - key: optional `(B, S, dim)` key tensor; defaults to `value`.
        - attention_mask: optional mask in any form `MultiHeadAttention`
          accepts, boolean or 0/1 integers (`True` / 1 lets a query attend
          to a key): `(T, S)`, `(B, T, S)`, `(B, 1, T, S)` or
          `(B, num_heads, T, S)` (a different mask per head), any axis of
          size 1 broadcasting; with several attention axes, `(B, <other
          axes>, [num_heads,] <query axes>, <key axes>)` and its suffixes.
          A mask that cannot broadcast raises `ValueError`. Keras masks of
          the inputs (for example from `Embedding(mask_zero=True)`) are
          combined with it.
        - return_attention_scores: bool. Also return the attention weights
          `(B, num_heads, T, S)` (before dropout).
        - training: bool. Whether dropout is active.
        - use_causal_mask: bool. Mask keys after each query position.
        - query_mask, value_mask, key_mask: optional Keras masks of the
          inputs (filled in by Keras from their `_keras_mask`).

    Returns:
        The attention output `(B, T, dim)` (or `output_shape`), and with
        `return_attention_scores=True` a tuple `(output, weights)`.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.layers import ExpressiveAttention

    x = np.random.normal(size=(2, 16, 64)).astype("float32")
    attn = ExpressiveAttention(num_heads=8, key_dim=8)
    y = attn(x, x, use_causal_mask=True)                 # (2, 16, 64)
    m = np.random.normal(size=(2, 5, 64)).astype("float32")
    y, scores = attn(x, m, return_attention_scores=True)  # scores (2, 8, 16, 5)
    ```

    Reference:
        - [Gros, "Reorganizing attention-space geometry with expressive
          attention", arXiv 2407.18601](https://arxiv.org/abs/2407.18601)
          (v1: "Climbing the Complexity Ladder with Expressive Attention")
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        attention_axes=None,
        flash_attention=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        normalization="ratio",
        epsilon=DEFAULT_EPSILON,
        **kwargs,
    ):
        validate_normalization(normalization)
        validate_epsilon(epsilon)
        super().__init__(
            num_heads=num_heads,
            key_dim=key_dim,
            value_dim=value_dim,
            dropout=dropout,
            use_bias=use_bias,
            output_shape=output_shape,
            attention_axes=attention_axes,
            flash_attention=flash_attention,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            seed=seed,
            **kwargs,
        )
        self.normalization = normalization
        self.epsilon = float(epsilon)

    @property
    def scale(self):
        """Factor applied to `q . k` before squaring."""
        return default_scale(self.normalization, self._key_dim)

    SCORE_DESCRIPTION = (
        "its weights are normalized squares of dot products, not a softmax "
        "of dot products"
    )

    @native_attention
    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        layout, query_flat, key_flat, value_flat, mask = (
            self._flat_attention_inputs(query, key, value, attention_mask)
        )
        output, weights = expressive_attention(
            query_flat,
            key_flat,
            value_flat,
            attention_mask=mask,
            normalization=self.normalization,
            epsilon=self.epsilon,
            scale=self.scale,
            dropout=self.attention_probability_dropout(training),
            return_attention_scores=return_attention_scores,
            causal=bool(use_causal_mask),
        )
        output = layout.unflatten_output(output, query)
        if weights is not None:
            weights = ops.cast(
                layout.unflatten_scores(weights, query, key),
                self.compute_dtype,
            )
        return output, weights

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "normalization": self.normalization,
                "epsilon": self.epsilon,
            }
        )
        return config
