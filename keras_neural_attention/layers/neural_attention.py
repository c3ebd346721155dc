"""`NeuralAttention`: multi-head attention scored by a feed-forward network."""

import keras
from keras import ops

from keras_neural_attention.layers.scored_attention import (
    ScoredMultiHeadAttention,
)
from keras_neural_attention.layers.scored_attention import native_attention
from keras_neural_attention.ops.activations import (
    validate_scoring_activation,
)
from keras_neural_attention.ops.attention import ALL_IMPLEMENTATIONS
from keras_neural_attention.ops.attention import neural_attention
from keras_neural_attention.ops.attention import validate_query_chunk_size
from keras_neural_attention.ops.scoring import ScoringWeights
from keras_neural_attention.ops.scoring import validate_implementation


def _is_positive_int(value):
    return (
        isinstance(value, int) and not isinstance(value, bool) and value > 0
    )


def _clone_initializer(initializer):
    return initializer.__class__.from_config(initializer.get_config())


class _AbsoluteInitializer:
    """Absolute values of another initializer's draw."""

    def __init__(self, initializer):
        self._initializer = initializer

    def __call__(self, shape, dtype=None):
        return ops.abs(self._initializer(shape, dtype=dtype))


class _PerHeadInitializer:
    """Initializes `(heads, *shape)` as `heads` independent `(*shape)` draws,
    so that fan-in and fan-out are those of one head's weight."""

    def __init__(self, initializer):
        self._initializer = initializer

    def __call__(self, shape, dtype=None):
        config = self._initializer.get_config()
        heads = []
        for head in range(shape[0]):
            head_config = dict(config)
            seed = head_config.get("seed")
            if isinstance(seed, int) and not isinstance(seed, bool):
                # A seeded initializer is stateless: offset the seed so the
                # heads do not all start from the same draw.
                head_config["seed"] = seed + head
            initializer = self._initializer.__class__.from_config(head_config)
            heads.append(initializer(shape[1:], dtype=dtype))
        return ops.stack(heads)


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class NeuralAttention(ScoredMultiHeadAttention):
    """Multi-head attention whose scores come from a small feed-forward
    network on each (query, key) pair instead of a dot product.

    Neural Attention (DiGiugno & Mahmood, 2025) scores a query `q_i` against a
    key `k_j` with

    ```
    q'_i = q_i P_q + b_q,   k'_j = k_j P_k + b_k          # width d'
    s_ij = w_a . act(W_h [q'_i ; k'_j] + b_h) + b_a
    ```

    and then proceeds like `keras.layers.MultiHeadAttention`:
    `softmax_j(s_ij)` weights the values. The defaults follow the authors'
    released code: `d' = max(1, key_dim // 32)`, two hidden layers of widths
    `(d', max(1, d' // 2))`, ReLU, one scoring network shared by all heads,
    and no `1/sqrt(key_dim)` scaling of the scores. `hidden_units=(h,)` gives
    the paper's single-hidden-layer formula exactly.

    The layer keeps the whole constructor and call signature of
    `keras.layers.MultiHeadAttention` (masks, causal masking, dropout on the
    attention probabilities, cross-attention with `T != S`, returned
    attention scores) and adds the arguments below. Scores and softmax are
    computed in float32 under every dtype policy. Rows in which every key is
    masked output zeros, never NaN.

    Memory: the scoring network has `B * heads * T * S * hidden` activations.
    With `query_chunk_size` the queries are scored in blocks and each block is
    recomputed in the backward pass, so the peak is bounded by one block, in
    inference and in training.

    Args:
        num_heads: int. Number of attention heads.
        key_dim: int. Size of each attention head for query and key.
        value_dim: int. Size of each attention head for value. Defaults to
            `key_dim`.
        dropout: float. Dropout rate on the attention probabilities.
        use_bias: bool. Whether the query/key/value/output projections use
            biases (the scoring network always has biases).
        output_shape: optional int or tuple. Size of the output's last axes;
            defaults to the query's feature size.
        attention_axes: axes over which the attention is applied, as in
            `MultiHeadAttention`: `None` (default) means every axis between
            the batch and the features, so `(B, T, dim)` inputs attend over
            `T` and `(B, H, W, dim)` inputs over `H` and `W` jointly. Several
            axes are flattened into one sequence (row-major, in the order
            given) for scoring; the other middle axes act as batch axes.
            Causal masks and sliding windows apply to the flattened order.
        flash_attention: must be `None` or `False`: scores from a network are
            not dot products, so Keras' flash attention cannot compute them.
            `True` raises `ValueError`.
        kernel_initializer: initializer of the projection kernels and of the
            scoring network's kernels (each head's slice is initialized
            with its own fan-in and fan-out). Hidden layers after the first
            take the absolute values of its draws: their inputs are
            activations, and with ReLU a unit whose incoming weights all
            start negative would be dead from the first step (with the
            released code's default widths `(d', 1)` that is the whole
            scoring network).
        bias_initializer: initializer of all biases.
        kernel_regularizer: regularizer of all kernels.
        bias_regularizer: regularizer of all biases.
        activity_regularizer: regularizer of the output.
        kernel_constraint: constraint on all kernels.
        bias_constraint: constraint on all biases.
        seed: optional int seed of the dropout layer.
        projection_dim: int. Width d' of the down-projected query and key.
            Defaults to `max(1, key_dim // 32)`.
        hidden_units: tuple of ints. Widths of the scoring network's hidden
            layers. Defaults to `(d', max(1, d' // 2))`.
        activation: elementwise activation of the hidden layers: the name
            of a Keras activation, `"square"` (`x**2`), `"cube"` (`x**3`), or
            a callable that maps a tensor to a tensor of the same shape.
            Defaults to `"relu"`. Names Keras resolves that are not
            elementwise one-argument functions (`"glu"`, `"threshold"`)
            raise `ValueError`. With one hidden layer (`hidden_units=(h,)`),
            `"square"`, `"cube"`, `"exponential"` and `"linear"` are
            *separable*: the score is exactly a dot product of expanded
            query and key features (`"square"`: a bilinear score plus a
            per-key bias, `h + 1` features; `"cube"`: `2 h + 1`;
            `"exponential"`: `h`), and `implementation="auto"` runs them as
            `keras.ops.dot_product_attention` (flash kernels where the
            backend has them). There `"exponential"` never overflows: it is
            exact while the largest query term plus the largest key term of
            the first layer stays below about `88.7 - log(sum |w_out|)` in
            float32, and beyond that stays finite and keeps the order of the
            keys (the scores of such a row are divided by a positive
            constant; see `keras_neural_attention.ops.separable`). The
            `"reference"` and `"factored"` paths, and networks with more
            hidden layers, overflow to inf or NaN once a hidden
            pre-activation exceeds `log(max float)`, about 88.7 in float32.
        share_scoring_across_heads: bool. `True` (default) uses one
            down-projection and scoring network for every head; `False`
            gives every head its own.
        implementation: `"auto"` (default: the fastest correct path),
            `"reference"` (builds the concatenated pair tensor, as the paper
            describes), `"factored"` (splits the first layer into a query
            term and a key term that are broadcast-added; same function, same
            weights, no concatenation), `"separable"` (separable activations
            with one hidden layer only, see `activation`; what `"auto"` picks
            for them), or a fused flash-style kernel that
            never stores the scores: `"triton"` (PyTorch backend) or
            `"pallas"` (JAX backend). `"auto"` uses the fused kernel of the
            backend on a CUDA GPU when the call needs no attention scores or
            dropout and the kernel supports the activation and widths (ReLU),
            and `"factored"` otherwise; TensorFlow always uses `"factored"`.
            By name, the kernels also run in their CPU interpreters (Pallas
            automatically, Triton with `TRITON_INTERPRET=1`), slowly: for
            tests.
        query_chunk_size: int, `"auto"` (default) or `None`. Number of query
            rows scored at once. `"auto"` sizes blocks so that each
            intermediate tensor of a block (the widest scoring layer) holds
            at most 2**24 elements, 64 MiB in float32 (a block keeps a few
            such tensors alive); `None` scores all queries at once.
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
        - return_attention_scores: bool. Also return the attention
          probabilities `(B, num_heads, T, S)` (before dropout), in
          `MultiHeadAttention`'s layout for other `attention_axes`.
        - training: bool. Whether dropout is active.
        - use_causal_mask: bool. Mask keys after each query position.
        - query_mask, value_mask, key_mask: optional Keras masks of the
          inputs (filled in by Keras from their `_keras_mask`).

    Returns:
        The attention output `(B, T, dim)` (or `output_shape`), and with
        `return_attention_scores=True` a tuple `(output, scores)`.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.layers import NeuralAttention

    x = np.random.normal(size=(2, 16, 64)).astype("float32")
    attn = NeuralAttention(num_heads=8, key_dim=64)
    y = attn(x, x, use_causal_mask=True)                 # (2, 16, 64)
    m = np.random.normal(size=(2, 5, 64)).astype("float32")
    y, scores = attn(x, m, return_attention_scores=True)  # scores (2, 8, 16, 5)
    ```

    Reference:
        - [DiGiugno & Mahmood, "Neural Attention: A Novel Mechanism for
          Enhanced Expressive Power in Transformer Models", arXiv 2502.17206](
          https://arxiv.org/abs/2502.17206)
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
        projection_dim=None,
        hidden_units=None,
        activation="relu",
        share_scoring_across_heads=True,
        implementation="auto",
        query_chunk_size="auto",
        **kwargs,
    ):
        if projection_dim is not None and not _is_positive_int(
            projection_dim
        ):
            raise ValueError(
                "Argument `projection_dim` must be a positive integer or "
                f"None. Received: projection_dim={projection_dim!r}"
            )
        if hidden_units is not None:
            if isinstance(hidden_units, int) and not isinstance(
                hidden_units, bool
            ):
                hidden_units = (hidden_units,)
            if (
                not isinstance(hidden_units, (list, tuple))
                or len(hidden_units) == 0
                or not all(_is_positive_int(u) for u in hidden_units)
            ):
                raise ValueError(
                    "Argument `hidden_units` must be a non-empty tuple of "
                    "positive integers (or None for the default). "
                    f"Received: hidden_units={hidden_units!r}"
                )
            hidden_units = tuple(hidden_units)
        if not isinstance(share_scoring_across_heads, bool):
            raise ValueError(
                "Argument `share_scoring_across_heads` must be True or False. "
                "Received: "
                f"share_scoring_across_heads={share_scoring_across_heads!r}"
            )
        validate_implementation(implementation, ALL_IMPLEMENTATIONS)
        validate_query_chunk_size(query_chunk_size)
        activation_fn = validate_scoring_activation(activation)
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
        self.projection_dim = (
            projection_dim if projection_dim else max(1, key_dim // 32)
        )
        self.hidden_units = (
            hidden_units
            if hidden_units
            else (self.projection_dim, max(1, self.projection_dim // 2))
        )
        self.activation = activation_fn
        self.share_scoring_across_heads = share_scoring_across_heads
        self.implementation = implementation
        self.query_chunk_size = query_chunk_size

    SCORE_DESCRIPTION = (
        "its scores come from a feed-forward network, not a dot product "
        "(memory is bounded by `query_chunk_size` instead)"
    )

    def _build_attention(self, rank):
        super()._build_attention(rank)
        prefix = () if self.share_scoring_across_heads else (self._num_heads,)

        def add(name, shape, initializer, regularizer, constraint,
                absolute=False):
            initializer = _clone_initializer(initializer)
            if prefix:
                initializer = _PerHeadInitializer(initializer)
            if absolute:
                initializer = _AbsoluteInitializer(initializer)
            return self.add_weight(
                name=name,
                shape=prefix + shape,
                initializer=initializer,
                regularizer=regularizer,
                constraint=constraint,
                autocast=False,
            )

        def kernel(name, shape, absolute=False):
            return add(
                name,
                shape,
                self._kernel_initializer,
                self._kernel_regularizer,
                self._kernel_constraint,
                absolute=absolute,
            )

        def bias(name, shape):
            return add(
                name,
                shape,
                self._bias_initializer,
                self._bias_regularizer,
                self._bias_constraint,
            )

        d = self.projection_dim
        self.score_query_kernel = kernel("score_query_kernel", (self._key_dim, d))
        self.score_query_bias = bias("score_query_bias", (d,))
        self.score_key_kernel = kernel("score_key_kernel", (self._key_dim, d))
        self.score_key_bias = bias("score_key_bias", (d,))
        self.score_hidden_kernels = []
        self.score_hidden_biases = []
        width = 2 * d
        for index, units in enumerate(self.hidden_units):
            # Layers after the first read activations (non-negative for
            # ReLU): a unit whose incoming weights all start negative would
            # never activate, so these kernels start non-negative.
            self.score_hidden_kernels.append(
                kernel(
                    f"score_hidden_kernel_{index}",
                    (width, units),
                    absolute=index > 0,
                )
            )
            self.score_hidden_biases.append(
                bias(f"score_hidden_bias_{index}", (units,))
            )
            width = units
        self.score_output_kernel = kernel("score_output_kernel", (width, 1))
        self.score_output_bias = bias("score_output_bias", (1,))

    @property
    def scoring_weights(self):
        """The scoring network's variables as a `ScoringWeights` tuple."""
        return ScoringWeights(
            query_kernel=self.score_query_kernel,
            query_bias=self.score_query_bias,
            key_kernel=self.score_key_kernel,
            key_bias=self.score_key_bias,
            hidden_kernels=tuple(self.score_hidden_kernels),
            hidden_biases=tuple(self.score_hidden_biases),
            output_kernel=self.score_output_kernel,
            output_bias=self.score_output_bias,
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
        output, probs = neural_attention(
            query_flat,
            key_flat,
            value_flat,
            self.scoring_weights,
            activation=self.activation,
            attention_mask=mask,
            implementation=self.implementation,
            query_chunk_size=self.query_chunk_size,
            dropout=self.attention_probability_dropout(training),
            return_attention_scores=return_attention_scores,
            causal=bool(use_causal_mask),
        )
        output = layout.unflatten_output(output, query)
        if probs is not None:
            probs = ops.cast(
                layout.unflatten_scores(probs, query, key), self.compute_dtype
            )
        return output, probs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projection_dim": self.projection_dim,
                "hidden_units": list(self.hidden_units),
                "activation": keras.activations.serialize(self.activation),
                "share_scoring_across_heads": self.share_scoring_across_heads,
                "implementation": self.implementation,
                "query_chunk_size": self.query_chunk_size,
            }
        )
        return config
