"""`TransformerEncoderBlock`: a Transformer encoder block whose
self-attention is dot-product, Neural or Expressive attention."""

import inspect

import keras

from keras_neural_attention.layers import argument_checks

from keras_neural_attention.layers.expressive_attention import (
    ExpressiveAttention,
)
from keras_neural_attention.layers.neural_attention import NeuralAttention

ATTENTION_TYPES = ("dot_product", "neural", "expressive")


def attention_class(attention_type):
    """The attention layer class of an `attention_type` string."""
    classes = {
        "dot_product": keras.layers.MultiHeadAttention,
        "neural": NeuralAttention,
        "expressive": ExpressiveAttention,
    }
    if attention_type not in classes:
        raise ValueError(
            f"Argument `attention_type` must be one of {ATTENTION_TYPES}. "
            f"Received: attention_type={attention_type!r}"
        )
    return classes[attention_type]


# Arguments of the attention layer that the block sets itself.
_BLOCK_ATTENTION_ARGUMENTS = (
    "num_heads",
    "key_dim",
    "dropout",
    "use_bias",
    "name",
    "kernel_initializer",
    "bias_initializer",
    "dtype",
)
# `keras.layers.Layer` keyword arguments every attention layer takes.
_LAYER_ARGUMENTS = ("trainable", "autocast", "input_shape", "input_dim")


def _check_attention_options(attention_type, attention_options):
    if attention_options is None:
        return
    if not isinstance(attention_options, dict):
        raise TypeError(
            "Argument `attention_options` must be a dict of keyword "
            "arguments of the attention layer, or None. "
            f"Received: attention_options={attention_options!r}"
        )
    reserved = sorted(set(attention_options) & set(_BLOCK_ATTENTION_ARGUMENTS))
    if reserved:
        raise ValueError(
            "Argument `attention_options` must not set the arguments the "
            f"block sets itself ({', '.join(_BLOCK_ATTENTION_ARGUMENTS)}; use "
            "the block's own `num_heads`, `key_dim`, `attention_dropout`, "
            "`use_attention_bias`, ...). Received: "
            f"attention_options={attention_options!r}"
        )
    accepted = set(_LAYER_ARGUMENTS)
    for cls in attention_class(attention_type).__mro__:
        if "__init__" in vars(cls):
            accepted |= set(inspect.signature(cls.__init__).parameters)
    accepted -= {"self", "args", "kwargs"}
    unknown = sorted(set(attention_options) - accepted)
    if unknown:
        raise ValueError(
            "Argument `attention_options` holds arguments that "
            f"`{attention_class(attention_type).__name__}` does not take: "
            f"{unknown}. Received: attention_options={attention_options!r}"
        )


def _is_positive_int(value):
    return (
        isinstance(value, int) and not isinstance(value, bool) and value > 0
    )


def _clone_initializer(initializer):
    return initializer.__class__.from_config(initializer.get_config())


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class TransformerEncoderBlock(keras.layers.Layer):
    """Transformer encoder block with a selectable self-attention.

    One block of a bidirectional Transformer encoder (a ViT block), with
    the self-attention chosen by `attention_type`:
    `keras.layers.MultiHeadAttention` (`"dot_product"`), `NeuralAttention`
    (`"neural"`) or `ExpressiveAttention` (`"expressive"`). Extra arguments
    of the attention layer (for Neural Attention `projection_dim`,
    `hidden_units`, `implementation`, `query_chunk_size`, ...) go in
    `attention_options`.

    With `normalize_first=False` (default) the block is post-LN, as in the
    Neural Attention authors' released code (and the original Transformer):

    ```
    y = LayerNorm(x + Dropout(SelfAttention(x)))
    out = LayerNorm(y + FeedForward(y))
    ```

    With `normalize_first=True` it is the standard pre-LN ViT block:

    ```
    y = x + Dropout(SelfAttention(LayerNorm(x)))
    out = y + FeedForward(LayerNorm(y))
    ```

    `FeedForward = Dense(intermediate_dim) -> activation -> Dropout ->
    Dense(hidden_dim) -> Dropout` (the released code's ReLU and width 1024
    are `activation="relu"`, `intermediate_dim=1024`).

    KerasHub's `keras_hub.layers.TransformerEncoder` creates a plain
    `MultiHeadAttention` inside `build` and has no argument to choose the
    attention class, and the ViT blocks of `keras_hub.models.ViTBackbone`
    (`keras_hub.src.models.vit.vit_layers.ViTEncoderBlock`) are private and
    likewise hard-wire `MultiHeadAttention` (and are pre-LN only), so this
    block is our own; its structure and sublayer names follow
    `TransformerEncoder`.

    Args:
        num_heads: int. Number of attention heads.
        intermediate_dim: int. Width of the feed-forward hidden layer.
        attention_type: one of `"dot_product"` (default), `"neural"`,
            `"expressive"`.
        normalize_first: bool. `False` (default): post-LN; `True`: pre-LN.
        key_dim: int or None. Per-head query/key width; defaults to
            `hidden_dim // num_heads` (which must then divide evenly).
        dropout: float. Dropout after the attention and in the feed-forward
            network.
        attention_dropout: float. Dropout on the attention probabilities.
        activation: activation of the feed-forward hidden layer.
            Defaults to `"relu"`.
        layer_norm_epsilon: float. Epsilon of the layer normalizations.
            Defaults to `1e-5` (PyTorch's default, as in the released code).
        use_attention_bias: bool. Whether the attention's query, key, value
            and output projections have biases (the released code has none).
        attention_options: dict or None. Extra keyword arguments of the
            attention layer.
        kernel_initializer: initializer of all kernels.
        bias_initializer: initializer of all biases.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        - inputs: `(B, T, hidden_dim)` token sequence.
        - padding_mask: optional boolean `(B, T)`; `False` marks padding
          tokens, which no token attends to.
        - attention_mask: optional boolean `(B, T, T)`; `True` lets a query
          attend to a key.
        - training: bool. Whether dropout is active.
        - return_attention_scores: bool. Also return the attention
          probabilities `(B, num_heads, T, T)`.

    Returns:
        The transformed sequence `(B, T, hidden_dim)`, and with
        `return_attention_scores=True` a tuple `(output, scores)`.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.layers import TransformerEncoderBlock

    block = TransformerEncoderBlock(
        num_heads=8, intermediate_dim=1024, attention_type="neural",
        attention_options={"projection_dim": 3},
    )
    y = block(np.random.normal(size=(2, 65, 256)).astype("float32"))
    ```

    Reference:
        - [Vaswani et al., "Attention Is All You Need", NeurIPS 2017](
          https://arxiv.org/abs/1706.03762)
        - [Xiong et al., "On Layer Normalization in the Transformer
          Architecture", ICML 2020](https://arxiv.org/abs/2002.04745)
        - [DiGiugno & Mahmood, "Neural Attention", arXiv 2502.17206](
          https://arxiv.org/abs/2502.17206)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        attention_type="dot_product",
        normalize_first=False,
        key_dim=None,
        dropout=0.0,
        attention_dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        use_attention_bias=True,
        attention_options=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
        ):
            if not _is_positive_int(value):
                raise ValueError(
                    f"Argument `{name}` must be a positive integer. "
                    f"Received: {name}={value!r}"
                )
        if key_dim is not None and not _is_positive_int(key_dim):
            raise ValueError(
                "Argument `key_dim` must be a positive integer or None. "
                f"Received: key_dim={key_dim!r}"
            )
        attention_class(attention_type)
        if not isinstance(normalize_first, bool):
            raise ValueError(
                "Argument `normalize_first` must be True or False. "
                f"Received: normalize_first={normalize_first!r}"
            )
        if attention_options is not None and not isinstance(
            attention_options, dict
        ):
            raise TypeError(
                "Argument `attention_options` must be a dict of keyword "
                "arguments of the attention layer, or None. "
                f"Received: attention_options={attention_options!r}"
            )
        _check_attention_options(attention_type, attention_options)
        checks = argument_checks
        checks.check_rate("dropout", dropout)
        checks.check_rate("attention_dropout", attention_dropout)
        checks.check_activation("activation", activation)
        checks.check_positive_number("layer_norm_epsilon", layer_norm_epsilon)
        checks.check_bool("use_attention_bias", use_attention_bias)
        checks.check_initializer("kernel_initializer", kernel_initializer)
        checks.check_initializer("bias_initializer", bias_initializer)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.attention_type = attention_type
        self.normalize_first = normalize_first
        self.key_dim = key_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.use_attention_bias = use_attention_bias
        self.attention_options = dict(attention_options or {})
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        key_dim = self.key_dim
        if key_dim is None:
            if hidden_dim % self.num_heads:
                raise ValueError(
                    f"The input width {hidden_dim} is not divisible by "
                    f"`num_heads={self.num_heads}`: pass `key_dim`."
                )
            key_dim = hidden_dim // self.num_heads
        def common():
            # Fresh initializers per sublayer (a shared seeded initializer
            # would give equal draws to equal shapes).
            return {
                "kernel_initializer": _clone_initializer(
                    self.kernel_initializer
                ),
                "bias_initializer": _clone_initializer(self.bias_initializer),
                "dtype": self.dtype_policy,
            }

        self.self_attention_layer = attention_class(self.attention_type)(
            num_heads=self.num_heads,
            key_dim=key_dim,
            dropout=self.attention_dropout,
            use_bias=self.use_attention_bias,
            name="self_attention",
            **common(),
            **self.attention_options,
        )
        self.self_attention_layer.build(
            query_shape=inputs_shape, value_shape=inputs_shape
        )
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="self_attention_layer_norm",
        )
        self.self_attention_layer_norm.build(inputs_shape)
        self.self_attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="self_attention_dropout"
        )
        self.feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            name="feedforward_intermediate_dense",
            **common(),
        )
        self.feedforward_intermediate_dense.build(inputs_shape)
        self.feedforward_intermediate_dropout = keras.layers.Dropout(
            self.dropout,
            dtype=self.dtype_policy,
            name="feedforward_intermediate_dropout",
        )
        self.feedforward_output_dense = keras.layers.Dense(
            hidden_dim,
            name="feedforward_output_dense",
            **common(),
        )
        self.feedforward_output_dense.build(
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        )
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="feedforward_layer_norm",
        )
        self.feedforward_layer_norm.build(inputs_shape)
        self.feedforward_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="feedforward_dropout"
        )
        self.built = True

    def _merge_masks(self, inputs, padding_mask, attention_mask):
        mask = None
        if padding_mask is not None:
            padding_mask = keras.ops.cast(padding_mask, "bool")
            length = keras.ops.shape(inputs)[1]
            mask = keras.ops.broadcast_to(
                padding_mask[:, None, :],
                (keras.ops.shape(inputs)[0], length, length),
            )
        if attention_mask is not None:
            attention_mask = keras.ops.cast(attention_mask, "bool")
            mask = (
                attention_mask
                if mask is None
                else keras.ops.logical_and(mask, attention_mask)
            )
        return mask

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        mask = self._merge_masks(inputs, padding_mask, attention_mask)
        x = inputs
        residual = x
        if self.normalize_first:
            x = self.self_attention_layer_norm(x)
        attended = self.self_attention_layer(
            query=x,
            value=x,
            attention_mask=mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        scores = None
        if return_attention_scores:
            attended, scores = attended
        x = residual + self.self_attention_dropout(attended, training=training)
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        residual = x
        if self.normalize_first:
            x = self.feedforward_layer_norm(x)
        x = self.feedforward_intermediate_dense(x)
        x = self.feedforward_intermediate_dropout(x, training=training)
        x = self.feedforward_output_dense(x)
        x = residual + self.feedforward_dropout(x, training=training)
        if not self.normalize_first:
            x = self.feedforward_layer_norm(x)
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def compute_output_spec(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        output = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        scores = keras.KerasTensor(
            (inputs.shape[0], self.num_heads, inputs.shape[1], inputs.shape[1]),
            dtype=self.compute_dtype,
        )
        return output, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "attention_type": self.attention_type,
                "normalize_first": self.normalize_first,
                "key_dim": self.key_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "use_attention_bias": self.use_attention_bias,
                "attention_options": dict(self.attention_options),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
