"""Shared base of the package's `MultiHeadAttention` subclasses."""

import keras
from keras import ops

# Keras keeps the mask helpers of `MultiHeadAttention.call` private; they
# read and clear the `_keras_mask` that layers such as `Embedding(
# mask_zero=True)` attach to their outputs.
from keras.src.backend import get_keras_mask
from keras.src.backend import set_keras_mask

from keras_neural_attention.ops.attention_axes import AttentionAxesLayout
from keras_neural_attention.ops.attention_axes import normalize_attention_axes
from keras_neural_attention.ops.masks import expand_mask_to_scores_rank

_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def native_attention(method):
    """Marks a package implementation of `_compute_attention` or
    `_compute_attention_mask`.

    While both methods of a layer are the package's own, a call whose only
    mask is `use_causal_mask=True` passes `attention_mask=None` and
    `use_causal_mask=True` to `_compute_attention`, which applies causality
    without building a `(T, S)` mask (the fused kernels skip whole blocks). A
    subclass that overrides either method gets `MultiHeadAttention`'s
    contract instead: a materialized mask, and no `use_causal_mask`.
    """
    method._keras_neural_attention_native = True
    return method


def _is_native(method):
    return getattr(method, "_keras_neural_attention_native", False)


def _static(dim):
    return dim if isinstance(dim, int) else None

from keras_neural_attention.layers.argument_checks import (
    check_multi_head_attention_arguments,
)


class ScoredMultiHeadAttention(keras.layers.MultiHeadAttention):
    """`MultiHeadAttention` whose scores are not scaled dot products.

    Base class of `NeuralAttention` and `ExpressiveAttention`: it keeps the
    whole constructor and call signature of `keras.layers.MultiHeadAttention`
    and adds what every such subclass needs:

    - every mask form `MultiHeadAttention` accepts means what it means there
      (`(T, S)`, `(B, T, S)`, `(B, 1, T, S)`, `(B, num_heads, T, S)`, boolean
      or 0/1 integers, combined with the Keras masks of the inputs, causal
      masks and sliding windows), and a mask that cannot broadcast raises a
      `ValueError` naming `attention_mask`;
    - `attention_axes` works as in `MultiHeadAttention` for inputs of any
      rank: the attention axes are flattened into one sequence (row-major,
      in the order given) for scoring and restored afterwards, and the other
      middle axes act as batch axes. Causal masks and sliding windows then
      apply to the flattened sequence;
    - inputs are checked (floating dtypes, ranks, batch sizes, feature sizes
      against those the layer was built with) with errors that name the
      argument;
    - `flash_attention=True` is refused (flash kernels compute softmax of dot
      products), and a global `keras.config.enable_flash_attention()` is
      ignored;
    - returned attention scores have `MultiHeadAttention`'s layout (`(B,
      heads, T, S)` for `(B, T, dim)` inputs) in symbolic calls too
      (cross-attention included);
    - `attention_probability_dropout(training)` gives the dropout to apply
      to the attention weights, or None.

    The override points behave as in Keras: `_compute_attention_mask`
    receives the unprojected inputs and returns the mask given to
    `_compute_attention(query, key, value, attention_mask, training,
    return_attention_scores)`; a subclass that overrides either always
    receives a materialized mask (see `native_attention`).

    Subclasses set `SCORE_DESCRIPTION` (used in the flash error message) and
    override `_compute_attention` (decorated with `native_attention`).

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
        if attention_axes is not None:
            axes = (
                (attention_axes,)
                if not isinstance(attention_axes, (list, tuple))
                else tuple(attention_axes)
            )
            if not axes or not all(
                isinstance(a, int) and not isinstance(a, bool) for a in axes
            ):
                raise ValueError(
                    "Argument `attention_axes` must be None, an int or a "
                    "non-empty tuple of ints. "
                    f"Received: attention_axes={attention_axes!r}"
                )
            if len(set(axes)) != len(axes):
                raise ValueError(
                    "Argument `attention_axes` must name each axis at most "
                    f"once. Received: attention_axes={attention_axes!r}"
                )
            attention_axes = axes
        super().__init__(
            num_heads=num_heads,
            key_dim=key_dim,
            attention_axes=attention_axes,
            flash_attention=False,
            **kwargs,
        )
        # `flash_attention=False` is overridden by a global
        # `keras.config.enable_flash_attention()`; these layers never use it.
        self._flash_attention = False
        self._built_input_shapes = None

    # ------------------------------------------------------------------
    # Build and shapes
    # ------------------------------------------------------------------

    def _check_input_shapes(self, query_shape, value_shape, key_shape):
        """Ranks and sizes of the inputs, with errors naming the argument."""
        name = type(self).__name__
        query_shape = tuple(query_shape)
        value_shape = tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if len(query_shape) < 3:
            raise ValueError(
                f"{name} expects `query` of shape `(batch, ..., features)` "
                "with at least one axis between batch and features (rank "
                f"3 or more). Received: query.shape={query_shape}"
            )
        for arg, shape in (("value", value_shape), ("key", key_shape)):
            if len(shape) != len(query_shape):
                raise ValueError(
                    f"Argument `{arg}` of {name} must have the rank of "
                    f"`query` ({len(query_shape)}). Received: "
                    f"query.shape={query_shape}, {arg}.shape={shape}"
                )
        if value_shape[1:-1] != key_shape[1:-1] and all(
            d is not None for d in value_shape[1:-1] + key_shape[1:-1]
        ):
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, "
                f"must be equal. Received: value_shape={value_shape} and "
                f"key_shape={key_shape}"
            )
        axes = normalize_attention_axes(
            self._attention_axes_argument(), len(query_shape)
        )
        for arg, shape in (("value", value_shape), ("key", key_shape)):
            for axis in (0,) + tuple(
                a for a in range(1, len(query_shape) - 1) if a not in axes
            ):
                q_dim, v_dim = _static(query_shape[axis]), _static(shape[axis])
                if q_dim is None or v_dim is None or q_dim == v_dim:
                    continue
                what = "batch size" if axis == 0 else (
                    f"size of axis {axis} (not an attention axis)"
                )
                raise ValueError(
                    f"Arguments `query` and `{arg}` of {name} must have the "
                    f"same {what}. Received: query.shape={query_shape}, "
                    f"{arg}.shape={shape}"
                )
        if self._built_input_shapes is not None:
            built = self._built_input_shapes
            for arg, shape, built_shape in zip(
                ("query", "value", "key"),
                (query_shape, value_shape, key_shape),
                built,
            ):
                if len(shape) != len(built_shape):
                    raise ValueError(
                        f"{name} was built for `{arg}` of rank "
                        f"{len(built_shape)} (shape {built_shape}). Received: "
                        f"{arg}.shape={shape}"
                    )
                if (
                    shape[-1] is not None
                    and built_shape[-1] is not None
                    and shape[-1] != built_shape[-1]
                ):
                    raise ValueError(
                        f"{name} was built for `{arg}` with "
                        f"{built_shape[-1]} features (shape {built_shape}); "
                        "a built layer's feature sizes are fixed. Received: "
                        f"{arg}.shape={shape}"
                    )
        return axes

    def _attention_axes_argument(self):
        # Before build `_attention_axes` holds the constructor argument; build
        # replaces it by the normalized tuple (as `MultiHeadAttention` does).
        return self._attention_axes

    def build(self, query_shape, value_shape, key_shape=None):
        axes = self._check_input_shapes(query_shape, value_shape, key_shape)
        self._attention_axes = axes
        super().build(query_shape, value_shape, key_shape)
        key_shape = value_shape if key_shape is None else key_shape
        self._built_input_shapes = (
            tuple(query_shape), tuple(value_shape), tuple(key_shape)
        )

    def _layout(self, rank):
        """The `AttentionAxesLayout` for projected tensors of rank `rank`."""
        axes = normalize_attention_axes(self._attention_axes, rank - 1)
        return AttentionAxesLayout(rank, axes)

    def _input_score_shape(self, query_shape, value_shape, axes):
        """Scores' shape in `MultiHeadAttention`'s layout, from the input
        shapes (entries may be None or tensors)."""
        layout = AttentionAxesLayout(len(query_shape) + 1, axes)
        heads = (self._num_heads, 0)
        return layout, layout.score_shape(
            tuple(query_shape[:-1]) + heads, tuple(value_shape[:-1]) + heads
        )

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        self._check_input_shapes(query_shape, value_shape, key_shape)
        return super().compute_output_shape(
            query_shape, value_shape, key_shape
        )

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
        key_shape = None if key is None else key.shape
        axes = self._check_input_shapes(query.shape, value.shape, key_shape)
        self._check_input_dtypes(query, value, key)
        _, score_shape = self._input_score_shape(
            query.shape, value.shape, axes
        )
        if attention_mask is not None:
            expand_mask_to_scores_rank(
                keras.KerasTensor(attention_mask.shape, dtype="bool"),
                score_shape,
                len(axes),
            )
        output_spec = keras.KerasTensor(
            self.compute_output_shape(query.shape, value.shape, key_shape),
            dtype=self.compute_dtype,
        )
        if not return_attention_scores:
            return output_spec
        return output_spec, keras.KerasTensor(
            score_shape, dtype=self.compute_dtype
        )

    # ------------------------------------------------------------------
    # Call
    # ------------------------------------------------------------------

    def _check_input_dtypes(self, query, value, key=None):
        name = type(self).__name__
        for arg, tensor in (("query", query), ("value", value), ("key", key)):
            if tensor is None:
                continue
            dtype = keras.backend.standardize_dtype(tensor.dtype)
            if dtype not in _FLOAT_DTYPES:
                raise TypeError(
                    f"Argument `{arg}` of {name} must be a floating-point "
                    f"tensor ({', '.join(_FLOAT_DTYPES)}); embed integer "
                    "token ids first (for example with "
                    f"`keras.layers.Embedding`). Received: {arg}.dtype={dtype}"
                )

    def _uses_native_attention(self):
        cls = type(self)
        return _is_native(cls._compute_attention) and _is_native(
            cls._compute_attention_mask
        )

    def call(
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
        if key is None:
            key = value
        self._check_input_dtypes(query, value, key)
        self._check_input_shapes(query.shape, value.shape, key.shape)
        # As in MultiHeadAttention, the Keras masks of the inputs are handled
        # here (merged into the attention mask), then removed from them.
        if query_mask is None:
            query_mask = get_keras_mask(query)
        set_keras_mask(query, None)
        set_keras_mask(value, None)
        set_keras_mask(key, None)

        causal_only = bool(
            use_causal_mask
            and query_mask is None
            and value_mask is None
            and key_mask is None
            and attention_mask is None
            and self._sliding_window is None
            and self._uses_native_attention()
        )
        if causal_only:
            attention_mask = None
        else:
            attention_mask = self._compute_attention_mask(
                query,
                value,
                query_mask=query_mask,
                value_mask=value_mask,
                key_mask=key_mask,
                attention_mask=attention_mask,
                use_causal_mask=use_causal_mask,
            )
        gate = self._gate_dense(query) if self._use_gate else None
        projected_query = self._query_dense(query)
        projected_key = self._key_dense(key)
        projected_value = self._value_dense(value)
        extra = {"use_causal_mask": True} if causal_only else {}
        attention_output, attention_scores = self._compute_attention(
            projected_query,
            projected_key,
            projected_value,
            attention_mask,
            training,
            return_attention_scores,
            **extra,
        )
        if gate is not None:
            attention_output = ops.multiply(attention_output, gate)
        attention_output = self._output_dense(attention_output)
        if query_mask is not None:
            set_keras_mask(attention_output, query_mask)
        if return_attention_scores:
            return attention_output, attention_scores
        return attention_output

    @native_attention
    def _compute_attention_mask(
        self,
        query,
        value,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
    ):
        """Merges every mask of a call into one boolean attention mask.

        Like `MultiHeadAttention._compute_attention_mask` (query masks hide
        query rows, value and key masks hide keys, causal and sliding-window
        masks are banded), but for every mask form and every
        `attention_axes`: the result has the scores' layout, with the heads
        axis only when `attention_mask` has one (`(B|1, T, S)` for `(B, T,
        dim)` inputs and per-query masks, as in Keras).

        Args:
            query: the (unprojected) query, `(B, ..., dim)`.
            value: the (unprojected) value.
            query_mask, value_mask, key_mask: optional Keras masks of the
                inputs, shaped like the inputs without their feature axis.
            attention_mask: optional mask in any form `MultiHeadAttention`
                accepts.
            use_causal_mask: mask keys after each query position (over the
                flattened attention axes).

        Returns:
            A boolean mask, or None when the call has no mask.

        Raises:
            ValueError: `attention_mask` cannot broadcast to the scores.
        """
        axes = normalize_attention_axes(self._attention_axes, len(query.shape))
        layout, static_scores = self._input_score_shape(
            tuple(_static(d) for d in query.shape),
            tuple(_static(d) for d in value.shape),
            axes,
        )
        k = len(axes)
        head_axis = len(static_scores) - 2 * k - 1
        keep_head_axis = False
        masks = []
        if attention_mask is not None:
            attention_mask = ops.convert_to_tensor(attention_mask)
            keep_head_axis = len(attention_mask.shape) == len(static_scores)
            masks.append(
                expand_mask_to_scores_rank(attention_mask, static_scores, k)
            )
        if query_mask is not None:
            masks.append(layout.flat_positions_mask(query_mask, False))
        for mask in (value_mask, key_mask):
            if mask is not None:
                masks.append(layout.flat_positions_mask(mask, True))
        if use_causal_mask or self._sliding_window is not None:
            query_length, key_length = self._flat_lengths(query, value, axes)
            if use_causal_mask:
                masks.append(
                    self._sequence_mask(layout, query, value, causal_band(
                        query_length, key_length
                    ))
                )
            if self._sliding_window is not None:
                masks.append(
                    self._sequence_mask(layout, query, value, window_band(
                        query_length, key_length, self._sliding_window
                    ))
                )
        if not masks:
            return None
        mask = masks[0]
        for other in masks[1:]:
            mask = ops.logical_and(mask, other)
        if not keep_head_axis and _static(mask.shape[head_axis]) == 1:
            mask = ops.squeeze(mask, axis=head_axis)
        return mask

    @staticmethod
    def _flat_lengths(query, value, axes):
        q_shape, v_shape = ops.shape(query), ops.shape(value)
        query_length, key_length = q_shape[axes[0]], v_shape[axes[0]]
        for axis in axes[1:]:
            query_length = query_length * q_shape[axis]
            key_length = key_length * v_shape[axis]
        return query_length, key_length

    @staticmethod
    def _sequence_mask(layout, query, value, band):
        """A `(T, S)` band over the flattened sequences, in the scores'
        layout (`(1, 1, T, S)` for `(B, T, dim)` inputs)."""
        heads = (1, 1)
        return layout.sequence_mask(
            band,
            tuple(ops.shape(query)[:-1]) + heads,
            tuple(ops.shape(value)[:-1]) + heads,
        )

    def attention_probability_dropout(self, training):
        """The dropout to apply to attention weights in this call, or None."""
        if not (training and self._dropout > 0.0):
            return None

        def dropout(weights):
            return self._dropout_layer(weights, training=training)

        return dropout

    def _flat_attention_inputs(self, query, key, value, attention_mask):
        """Projected tensors in any `attention_axes` layout -> the one-sequence
        form `(B', L, N, H)` with a `(B'|1, N|1, T|1, S|1)` boolean mask, and
        the layout that restores outputs and scores."""
        layout = self._layout(len(query.shape))
        mask = layout.flatten_mask(attention_mask, query, key)
        return (
            layout,
            layout.flatten(query),
            layout.flatten(key),
            layout.flatten(value),
            mask,
        )

    def get_config(self):
        config = super().get_config()
        axes = config.get("attention_axes")
        if axes is not None:
            config["attention_axes"] = list(axes)
        return config


def causal_band(query_length, key_length):
    """`(T, S)` boolean, True where key `j <= query i`."""
    rows = ops.expand_dims(ops.arange(query_length, dtype="int32"), 1)
    cols = ops.expand_dims(ops.arange(key_length, dtype="int32"), 0)
    return ops.greater_equal(rows, cols)


def window_band(query_length, key_length, window):
    """`(T, S)` boolean, True where `|i - j| < window` (Keras' sliding
    window)."""
    rows = ops.expand_dims(ops.arange(query_length, dtype="int32"), 1)
    cols = ops.expand_dims(ops.arange(key_length, dtype="int32"), 0)
    return ops.less(ops.abs(rows - cols), window)
