"""`TransformerDecoder`: KerasHub's decoder block with a choice of
self-attention."""

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.layers.cached_expressive_attention import (
    CachedExpressiveAttention,
)
from keras_neural_attention.layers.cached_neural_attention import (
    CachedNeuralAttention,
)

ATTENTION_TYPES = ("dot_product", "neural", "expressive")


def _clone_initializer(initializer):
    return initializer.__class__.from_config(initializer.get_config())


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class TransformerDecoder(keras_hub.layers.TransformerDecoder):
    """A drop-in for `keras_hub.layers.TransformerDecoder` whose
    self-attention is dot-product, Neural or Expressive attention, or any
    attention layer you pass.

    The block is KerasHub's decoder (it subclasses it and inherits `call`,
    the masks and the caches): self-attention, optional cross-attention and
    a feed-forward network, each with a residual connection and layer
    normalization, before (`normalize_first=True`, GPT-2) or after
    (`normalize_first=False`, the original Transformer and the Neural
    Attention paper's language model) each sublayer. Only `build` is
    rewritten: it creates the self-attention layer named by `attention`
    instead of KerasHub's `CachedMultiHeadAttention` (KerasHub creates its
    attention inline, with no hook; building the stock block and then
    replacing the layer would leave the discarded weights tracked). The
    private attributes are KerasHub's (`_self_attention_layer`, ...), so
    code written against KerasHub's block keeps working, including
    `keras_hub.models.GPT2CausalLM`'s cached generation.

    Self-attention choices:

    - `"dot_product"`: `keras_hub.layers.CachedMultiHeadAttention`, exactly
      KerasHub's block.
    - `"neural"`: `keras_neural_attention.layers.CachedNeuralAttention`
      (scores from a feed-forward network; `projection_dim` and
      `hidden_units` configure it). Its cache keeps the key terms of the
      scoring network in KerasHub's cache layout.
    - `"expressive"`: `keras_neural_attention.layers.CachedExpressiveAttention`.
    - a `keras.layers.Layer` instance (or its serialized config) with the
      call contract of `CachedMultiHeadAttention` (`query`, `value`,
      `attention_mask`, `cache`, `cache_update_index`, `training`); it is
      built by this block if it is not built yet, and serialized with it.
      Do not share one instance between blocks.

    Cross-attention (when the block is called with an `encoder_sequence`) is
    always KerasHub's dot-product `CachedMultiHeadAttention`.

    Args:
        intermediate_dim: int. Hidden size of the feed-forward network.
        num_heads: int. Number of attention heads.
        dropout: float. Dropout rate of the attention probabilities and of
            the residual branches. Defaults to `0`.
        activation: activation of the feed-forward network. Defaults to
            `"relu"`.
        layer_norm_epsilon: float. Epsilon of the layer normalizations.
        kernel_initializer: initializer of the dense and attention kernels.
        bias_initializer: initializer of the dense and attention biases.
        normalize_first: bool. Normalize the inputs of each sublayer
            (pre-LN) instead of the residual sums (post-LN, default).
        attention: `"dot_product"` (default), `"neural"`, `"expressive"`, or
            a `keras.layers.Layer` instance or config, as above.
        projection_dim: optional int, d' of Neural Attention (only with
            `attention="neural"`). Defaults to `max(1, head_dim // 32)`.
        hidden_units: optional tuple of ints, hidden widths of Neural
            Attention's scoring network (only with `attention="neural"`).
        attention_kwargs: optional dict of further constructor arguments of
            the self-attention layer chosen by name (for example
            `{"use_bias": False}`, `{"dropout": 0.0}` or
            `{"normalization": "softmax"}`); they override the block's
            defaults (`dropout`, the initializers).
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        - decoder_sequence: `(B, T, hidden_dim)` decoder input.
        - encoder_sequence: optional `(B, S, hidden_dim)` encoder output;
          passing it (at the first call) builds cross-attention.
        - decoder_padding_mask: optional `(B, T)` padding mask.
        - decoder_attention_mask: optional `(B, T, T)` attention mask.
        - encoder_padding_mask: optional `(B, S)` padding mask.
        - encoder_attention_mask: optional `(B, T, S)` attention mask.
        - self_attention_cache: optional self-attention cache
          `(B, 2, max_length, num_heads, head_dim)`.
        - self_attention_cache_update_index: optional int, where the current
          tokens are written into the cache.
        - cross_attention_cache: optional cross-attention cache.
        - cross_attention_cache_update_index: optional int or None.
        - use_causal_mask: bool. Mask future positions (default `True`).
        - training: bool. Whether dropout is active.

    Returns:
        The block output `(B, T, hidden_dim)`; with a self-attention cache
        `(output, self_attention_cache)`, and with cross-attention caches
        `(output, self_attention_cache, cross_attention_cache)`, as in
        KerasHub.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.models import TransformerDecoder

    decoder = TransformerDecoder(
        intermediate_dim=64, num_heads=4, attention="neural",
        projection_dim=2,
    )
    x = np.random.normal(size=(2, 10, 32)).astype("float32")
    y = decoder(x)                                   # causal, (2, 10, 32)
    ```

    Reference:
        - [Vaswani et al., "Attention Is All You Need", 2017](
          https://arxiv.org/abs/1706.03762)
        - [DiGiugno & Mahmood, "Neural Attention", arXiv 2502.17206](
          https://arxiv.org/abs/2502.17206)
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0,
        activation="relu",
        layer_norm_epsilon=1e-05,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first=False,
        attention="dot_product",
        projection_dim=None,
        hidden_units=None,
        attention_kwargs=None,
        **kwargs,
    ):
        # KerasHub's __init__ builds immediately when these are given (as in
        # a restored config); build only once our own arguments are set.
        decoder_sequence_shape = kwargs.pop("decoder_sequence_shape", None)
        encoder_sequence_shape = kwargs.pop("encoder_sequence_shape", None)
        if isinstance(attention, dict):
            attention = keras.saving.deserialize_keras_object(attention)
        if isinstance(attention, str):
            if attention not in ATTENTION_TYPES:
                raise ValueError(
                    "Argument `attention` must be one of "
                    f"{', '.join(repr(a) for a in ATTENTION_TYPES)}, or a "
                    "`keras.layers.Layer` instance or config. "
                    f"Received: attention={attention!r}"
                )
        elif not isinstance(attention, keras.layers.Layer):
            raise ValueError(
                "Argument `attention` must be one of "
                f"{', '.join(repr(a) for a in ATTENTION_TYPES)}, or a "
                "`keras.layers.Layer` instance or config. "
                f"Received: attention={attention!r}"
            )
        for name, value in (
            ("projection_dim", projection_dim),
            ("hidden_units", hidden_units),
        ):
            if value is not None and attention != "neural":
                raise ValueError(
                    f"Argument `{name}` configures Neural Attention: it is "
                    "accepted only with attention='neural'. Received: "
                    f"{name}={value!r} with attention={attention!r}"
                )
        if attention_kwargs:
            if not isinstance(attention_kwargs, dict):
                raise ValueError(
                    "Argument `attention_kwargs` must be a dict or None. "
                    f"Received: attention_kwargs={attention_kwargs!r}"
                )
            if not isinstance(attention, str):
                raise ValueError(
                    "Argument `attention_kwargs` applies to an attention "
                    "chosen by name ('dot_product', 'neural', 'expressive'); "
                    "configure an attention layer instance directly. "
                    f"Received: attention_kwargs={attention_kwargs!r}"
                )
        super().__init__(
            intermediate_dim=intermediate_dim,
            num_heads=num_heads,
            dropout=dropout,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            normalize_first=normalize_first,
            **kwargs,
        )
        self.attention = attention
        self.projection_dim = projection_dim
        if isinstance(hidden_units, list):
            hidden_units = tuple(hidden_units)
        self.hidden_units = hidden_units
        self.attention_kwargs = dict(attention_kwargs or {})
        # Validate the attention arguments now rather than at build time
        # (the layer made here is discarded and never tracked).
        if isinstance(attention, str):
            self._make_self_attention(head_dim=32)
        if decoder_sequence_shape:
            self.build(decoder_sequence_shape, encoder_sequence_shape)

    def _make_self_attention(self, head_dim):
        if not isinstance(self.attention, str):
            return self.attention
        kwargs = dict(
            num_heads=self.num_heads,
            key_dim=head_dim,
            dropout=self.dropout,
            kernel_initializer=_clone_initializer(self.kernel_initializer),
            bias_initializer=_clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="self_attention",
        )
        if self.attention == "neural":
            kwargs.update(
                projection_dim=self.projection_dim,
                hidden_units=self.hidden_units,
            )
            attention_cls = CachedNeuralAttention
        elif self.attention == "expressive":
            attention_cls = CachedExpressiveAttention
        else:
            attention_cls = keras_hub.layers.CachedMultiHeadAttention
        kwargs.update(self.attention_kwargs)
        try:
            return attention_cls(**kwargs)
        except (TypeError, ValueError) as error:
            if isinstance(error, ValueError) and not self.attention_kwargs:
                raise
            raise ValueError(
                "Argument `attention_kwargs` holds an argument that "
                f"{attention_cls.__name__} does not accept ({error}). "
                f"Received: attention_kwargs={self.attention_kwargs!r}"
            ) from error

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        self._decoder_sequence_shape = decoder_sequence_shape
        self._encoder_sequence_shape = encoder_sequence_shape
        hidden_dim = decoder_sequence_shape[-1]
        head_dim = int(hidden_dim // self.num_heads)
        if head_dim == 0:
            raise ValueError(
                "Attention `head_dim` computed cannot be zero. "
                f"The `hidden_dim` value of {hidden_dim} has to be equal to "
                f"or greater than `num_heads` value of {self.num_heads}."
            )

        def layer_norm(name):
            norm = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon,
                dtype=self.dtype_policy,
                name=name,
            )
            norm.build(decoder_sequence_shape)
            return norm

        def dropout(name):
            return keras.layers.Dropout(
                rate=self.dropout, dtype=self.dtype_policy, name=name
            )

        self._self_attention_layer = self._make_self_attention(head_dim)
        if not self._self_attention_layer.built:
            self._self_attention_layer.build(
                query_shape=decoder_sequence_shape,
                value_shape=decoder_sequence_shape,
            )
        self._self_attention_layer_norm = layer_norm(
            "self_attention_layer_norm"
        )
        self._self_attention_dropout = dropout("self_attention_dropout")

        self._cross_attention_layer = None
        if encoder_sequence_shape:
            self._cross_attention_layer = (
                keras_hub.layers.CachedMultiHeadAttention(
                    num_heads=self.num_heads,
                    key_dim=head_dim,
                    value_dim=head_dim,
                    dropout=self.dropout,
                    kernel_initializer=_clone_initializer(
                        self.kernel_initializer
                    ),
                    bias_initializer=_clone_initializer(
                        self.bias_initializer
                    ),
                    dtype=self.dtype_policy,
                    name="cross_attention",
                )
            )
            self._cross_attention_layer.build(
                query_shape=decoder_sequence_shape,
                value_shape=encoder_sequence_shape,
            )
            self._cross_attention_layer_norm = layer_norm(
                "cross_attention_layer_norm"
            )
            self._cross_attention_dropout = dropout("cross_attention_dropout")

        self._feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            kernel_initializer=_clone_initializer(self.kernel_initializer),
            bias_initializer=_clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feedforward_intermediate_dense",
        )
        self._feedforward_intermediate_dense.build(decoder_sequence_shape)
        self._feedforward_output_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=_clone_initializer(self.kernel_initializer),
            bias_initializer=_clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feedforward_output_dense",
        )
        intermediate_shape = list(decoder_sequence_shape)
        intermediate_shape[-1] = self.intermediate_dim
        self._feedforward_output_dense.build(tuple(intermediate_shape))
        self._feedforward_layer_norm = layer_norm("feedforward_layer_norm")
        self._feedforward_dropout = dropout("feedforward_dropout")
        self.built = True

    def empty_self_attention_cache(self, batch_size, max_length, dtype=None):
        """A zero self-attention cache `(B, 2, max_length, num_heads,
        head_dim)` for `self_attention_cache` (built blocks only).

        The layout is KerasHub's for every attention choice; what slot 0
        holds depends on the layer (projected keys, or Neural Attention's
        key terms).
        """
        if not self.built:
            raise ValueError(
                "Build the block (call it once) before asking for a cache."
            )
        layer = self._self_attention_layer
        if hasattr(layer, "empty_cache"):
            return layer.empty_cache(batch_size, max_length, dtype=dtype)
        head_dim = int(self._decoder_sequence_shape[-1] // self.num_heads)
        return keras.ops.zeros(
            (batch_size, 2, max_length, self.num_heads, head_dim),
            dtype=dtype or self.compute_dtype,
        )

    def get_config(self):
        config = super().get_config()
        attention = self.attention
        if not isinstance(attention, str):
            attention = keras.saving.serialize_keras_object(attention)
        config.update(
            {
                "attention": attention,
                "projection_dim": self.projection_dim,
                "hidden_units": (
                    list(self.hidden_units)
                    if isinstance(self.hidden_units, tuple)
                    else self.hidden_units
                ),
                "attention_kwargs": dict(self.attention_kwargs),
            }
        )
        return config
