"""`ScaledSinusoidalEncoding`: the positional encoding of the Neural
Attention paper's released code."""

import math

import keras
from keras import ops

from keras_neural_attention.layers import argument_checks

FREQUENCIES = ("released_code", "standard")


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class ScaledSinusoidalEncoding(keras.layers.Layer):
    """Scaled token embeddings plus a sinusoidal position signal.

    Returns `dropout(input_scale * inputs + pe)` for positions
    `start_index, start_index + 1, ...`. This is the positional-encoding
    module of the Neural Attention authors' released code, whose model then
    adds the result to the embeddings: `x + dropout(sqrt(d) * x + pe)`, i.e.
    `(1 + sqrt(d)) * x + pe` at inference. Used as the `position_embedding`
    of `NeuralAttentionLMBackbone`, followed by its `embeddings_add`, it
    reproduces that input (the released baseline model's form, used here for
    both the baseline and the Neural model).

    The layer has no weights. It is called like KerasHub's position
    embeddings (`layer(token_embeddings, start_index=i)`), so
    `keras_hub.models.GPT2CausalLM` can use it during cached decoding.

    Two sinusoids are available, for even channel `i` and position `p`:

    - `"released_code"` (default): `pe[p, i] = sin(p / 10000**(2 i / d))`,
      `pe[p, i + 1] = cos(p / 10000**((2 i + 1) / d))`, as written in the
      released code (about twice the standard exponents).
    - `"standard"`: `pe[p, i] = sin(p / 10000**(i / d))`,
      `pe[p, i + 1] = cos(p / 10000**(i / d))` (Vaswani et al.).

    Args:
        max_sequence_length: int. Largest position + 1 the layer accepts
            (the signal is computed on the fly; a longer input of static
            length raises `ValueError`).
        input_scale: float or None. Factor on the inputs; None (default)
            uses `sqrt(d)` with `d` the feature size.
        frequencies: `"released_code"` (default) or `"standard"`.
        dropout: float. Dropout rate applied to the sum (the released code
            uses 0.1).
        **kwargs: arguments of `keras.layers.Layer`.

    Call arguments:
        - inputs: `(B, T, d)` token embeddings.
        - start_index: int or int tensor. Position of the first token.
        - training: bool. Whether dropout is active.

    Returns:
        `(B, T, d)`: `dropout(input_scale * inputs + pe)`.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.layers import ScaledSinusoidalEncoding

    x = np.random.normal(size=(2, 8, 16)).astype("float32")
    y = ScaledSinusoidalEncoding(max_sequence_length=8)(x)   # (2, 8, 16)
    ```

    Reference:
        - [DiGiugno & Mahmood, "Neural Attention", arXiv 2502.17206](
          https://arxiv.org/abs/2502.17206), released code
          `awayfromzel/neural-attention-research`.
    """

    def __init__(
        self,
        max_sequence_length,
        input_scale=None,
        frequencies="released_code",
        dropout=0.0,
        **kwargs,
    ):
        if (
            isinstance(max_sequence_length, bool)
            or not isinstance(max_sequence_length, int)
            or max_sequence_length <= 0
        ):
            raise ValueError(
                "Argument `max_sequence_length` must be a positive integer. "
                f"Received: max_sequence_length={max_sequence_length!r}"
            )
        if frequencies not in FREQUENCIES:
            raise ValueError(
                "Argument `frequencies` must be one of "
                f"{', '.join(repr(f) for f in FREQUENCIES)}. "
                f"Received: frequencies={frequencies!r}"
            )
        if input_scale is not None and (
            isinstance(input_scale, bool)
            or not isinstance(input_scale, (int, float))
            or not math.isfinite(input_scale)
        ):
            raise ValueError(
                "Argument `input_scale` must be a finite number or None. "
                f"Received: input_scale={input_scale!r}"
            )
        argument_checks.check_rate("dropout", dropout)
        super().__init__(**kwargs)
        self.max_sequence_length = max_sequence_length
        self.input_scale = input_scale
        self.frequencies = frequencies
        self.dropout = dropout
        self._dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy
        )
        # Every position is shifted on its own: a padding mask (for example
        # from `Embedding(mask_zero=True)`) passes through unchanged instead
        # of being dropped.
        self.supports_masking = True
        self.built = True

    def _inverse_wavelengths(self, depth):
        """`(sin, cos)` inverse wavelengths, one per channel pair."""
        even = ops.arange(0, depth, 2, dtype="float32")
        log_base = math.log(10000.0)
        if self.frequencies == "released_code":
            sin = ops.exp(-log_base * 2.0 * even / depth)
            cos = ops.exp(-log_base * (2.0 * even + 1.0) / depth)
        else:
            sin = ops.exp(-log_base * even / depth)
            cos = sin
        return sin, cos

    def position_signal(self, length, depth, start_index=0):
        """The `(length, depth)` sinusoid for positions `start_index, ...`."""
        positions = ops.cast(
            ops.arange(length, dtype="int32") + start_index, "float32"
        )
        sin_rate, cos_rate = self._inverse_wavelengths(depth)
        positions = ops.expand_dims(positions, 1)
        sin = ops.sin(positions * ops.expand_dims(sin_rate, 0))
        cos = ops.cos(positions * ops.expand_dims(cos_rate, 0))
        signal = ops.reshape(
            ops.stack([sin, cos], axis=-1), (length, -1)
        )
        return signal[:, :depth]

    def _check_inputs(self, inputs, start_index):
        name = type(self).__name__
        if len(inputs.shape) != 3:
            raise ValueError(
                f"{name} expects `inputs` of shape `(batch, seq, features)` "
                f"(rank 3). Received: inputs.shape={tuple(inputs.shape)}"
            )
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if "float" not in dtype:
            raise TypeError(
                f"{name} expects floating-point `inputs` (token "
                "embeddings): the position signal would be truncated to "
                f"{dtype}. Received: inputs.dtype={dtype}"
            )
        length = inputs.shape[1]
        if (
            length is not None
            and isinstance(start_index, int)
            and start_index + length > self.max_sequence_length
        ):
            raise ValueError(
                f"{name} encodes positions below `max_sequence_length="
                f"{self.max_sequence_length}`. Received: inputs of length "
                f"{length} from start_index={start_index}"
            )

    def call(self, inputs, start_index=0, training=None):
        self._check_inputs(inputs, start_index)
        depth = inputs.shape[-1]
        scale = (
            math.sqrt(depth) if self.input_scale is None else self.input_scale
        )
        signal = self.position_signal(ops.shape(inputs)[1], depth, start_index)
        outputs = inputs * ops.cast(scale, inputs.dtype) + ops.cast(
            signal, inputs.dtype
        )
        return self._dropout_layer(outputs, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_sequence_length": self.max_sequence_length,
                "input_scale": self.input_scale,
                "frequencies": self.frequencies,
                "dropout": self.dropout,
            }
        )
        return config
