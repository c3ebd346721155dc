"""Shared base of the package's `MultiHeadAttention` subclasses."""

import keras

from keras_neural_attention.layers.argument_checks import (
    check_multi_head_attention_arguments,
)


class ScoredMultiHeadAttention(keras.layers.MultiHeadAttention):
    """`MultiHeadAttention` whose scores are not scaled dot products.

    Base class of `NeuralAttention` and `ExpressiveAttention`: it keeps the
    whole constructor and call signature of `keras.layers.MultiHeadAttention`
    and adds what every such subclass needs:

    - `flash_attention=True` is refused (flash kernels compute softmax of dot
      products), and a global `keras.config.enable_flash_attention()` is
      ignored;
    - attention runs over the sequence axis of `(batch, seq, features)`
      inputs only (`attention_axes` must be `None` or `1`);
    - returned attention scores have the shape `(B, heads, T, S)` in
      symbolic calls too (cross-attention included);
    - `attention_probability_dropout(training)` gives the dropout to apply
      to the attention weights, or None.

    Subclasses set `SCORE_DESCRIPTION` (used in the flash error message) and
    override `_compute_attention`.

    Args:
        num_heads, key_dim, ...: the arguments of
            `keras.layers.MultiHeadAttention`.
    """

    SCORE_DESCRIPTION = "its scores are not dot products"

    def __init__(self, num_heads, key_dim, attention_axes=None,
                 flash_attention=None, **kwargs):
        check_multi_head_attention_arguments(
            num_heads=num_heads, key_dim=key_dim, **kwargs
        )
        name = type(self).__name__
        if flash_attention:
            raise ValueError(
                f"{name} does not support `flash_attention=True`: "
                f"{self.SCORE_DESCRIPTION}, so flash dot-product kernels "
                "cannot compute them. Use `flash_attention=None` (default) "
                f"or `False`. Received: flash_attention={flash_attention!r}"
            )
        if attention_axes not in (None, 1, (1,), [1]):
            raise ValueError(
                f"{name} attends over the sequence axis of "
                "`(batch, seq, features)` inputs only: `attention_axes` must "
                "be None (or its equivalent, 1). "
                f"Received: attention_axes={attention_axes!r}"
            )
        super().__init__(
            num_heads=num_heads,
            key_dim=key_dim,
            attention_axes=None,
            flash_attention=False,
            **kwargs,
        )
        # `flash_attention=False` is overridden by a global
        # `keras.config.enable_flash_attention()`; these layers never use it.
        self._flash_attention = False

    def _build_attention(self, rank):
        if rank != 4:
            raise ValueError(
                f"{type(self).__name__} expects `query`, `key` and `value` "
                "of shape `(batch, seq, features)` (rank 3). Received inputs "
                f"of rank {rank - 1}."
            )
        super()._build_attention(rank)

    def attention_probability_dropout(self, training):
        """The dropout to apply to attention weights in this call, or None."""
        if not (training and self._dropout > 0.0):
            return None

        def dropout(weights):
            return self._dropout_layer(weights, training=training)

        return dropout

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        output_spec = super().compute_output_spec(
            query, value, key=key, return_attention_scores=False
        )
        if not return_attention_scores:
            return output_spec
        scores_shape = (
            query.shape[0],
            self._num_heads,
            query.shape[1],
            value.shape[1],
        )
        return output_spec, keras.KerasTensor(
            scores_shape, dtype=self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        # The attention axes are always the sequence axis (the built layer
        # stores them as a tuple, which __init__ would refuse).
        config.pop("attention_axes", None)
        return config
