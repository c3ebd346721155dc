"""Attention over several axes, as `MultiHeadAttention(attention_axes=...)`.

`keras.layers.MultiHeadAttention` projects an input of shape
`(B, d_1, ..., d_m, features)` to `(B, d_1, ..., d_m, num_heads, head_dim)`
and attends over the axes listed in `attention_axes` (by default every axis
between the batch and the features); the other middle axes are extra batch
axes. Its scores have the layout

    (B, <non-attention axes>, num_heads, <query attention axes>,
     <key attention axes>)

with the non-attention axes in increasing order and the attention axes in
the order given. The package's attention math works on one sequence axis,
`(batch, length, heads, head_dim)`: `AttentionAxesLayout` flattens the
attention axes into one sequence (row-major over the axes in the order
given), folds the non-attention axes into the batch, and restores the
original layout of outputs and scores afterwards. For `(B, T, features)`
inputs with the default axes it changes nothing.
"""

import math

from keras import ops

from keras_neural_attention.ops.masks import expand_mask_to_scores_rank


def _static(dim):
    return dim if isinstance(dim, int) else None


def _product(dims):
    static = [_static(d) for d in dims]
    if all(d is not None for d in static):
        return math.prod(static)
    total = dims[0]
    for dim in dims[1:]:
        total = total * dim
    return total


def normalize_attention_axes(attention_axes, input_rank):
    """`MultiHeadAttention`'s attention axes for inputs of rank `input_rank`.

    Args:
        attention_axes: None (every axis between batch and features), an int
            or a tuple/list of ints; negative axes count from the end of the
            input shape (`-2` is the last axis before the features).
        input_rank: rank of the query (at least 3).

    Returns:
        A tuple of axes in `[1, input_rank - 2]`, in the order given.

    Raises:
        ValueError: an axis is out of range, repeated, or not an int.
    """
    if attention_axes is None:
        return tuple(range(1, input_rank - 1))
    if isinstance(attention_axes, int) and not isinstance(
        attention_axes, bool
    ):
        attention_axes = (attention_axes,)
    axes = []
    for axis in attention_axes:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(
                "Argument `attention_axes` must be None, an int or a tuple "
                f"of ints. Received: attention_axes={attention_axes!r}"
            )
        normalized = axis + input_rank if axis < 0 else axis
        if not 1 <= normalized <= input_rank - 2:
            raise ValueError(
                "Argument `attention_axes` must name axes between the batch "
                f"axis and the feature axis of the inputs: for inputs of "
                f"rank {input_rank}, axes 1 to {input_rank - 2} (or "
                f"{2 - input_rank} to -2). "
                f"Received: attention_axes={attention_axes!r}"
            )
        axes.append(normalized)
    if not axes or len(set(axes)) != len(axes):
        raise ValueError(
            "Argument `attention_axes` must name at least one axis, each at "
            f"most once. Received: attention_axes={attention_axes!r}"
        )
    return tuple(axes)


class AttentionAxesLayout:
    """Flattens `MultiHeadAttention`'s multi-axis layout into one sequence.

    Args:
        projected_rank: rank of the projected query/key/value tensors
            (`input_rank + 1`: `(B, d_1, ..., d_m, num_heads, head_dim)`).
        attention_axes: the normalized attention axes (see
            `normalize_attention_axes`).
    """

    def __init__(self, projected_rank, attention_axes):
        self.rank = projected_rank
        self.attention_axes = tuple(attention_axes)
        self.batch_axes = tuple(
            axis for axis in range(1, projected_rank - 2)
            if axis not in self.attention_axes
        )
        self.identity = projected_rank == 4 and self.attention_axes == (1,)
        self._perm = (
            (0,) + self.batch_axes + self.attention_axes
            + (projected_rank - 2, projected_rank - 1)
        )
        inverse = [0] * projected_rank
        for position, axis in enumerate(self._perm):
            inverse[axis] = position
        self._inverse_perm = tuple(inverse)

    @property
    def num_attention_axes(self):
        return len(self.attention_axes)

    def score_shape(self, query_shape, key_shape):
        """Shape of the scores in `MultiHeadAttention`'s layout, from the
        projected query and key shapes (static tuples or tensors)."""
        heads = query_shape[self.rank - 2]
        return (
            (query_shape[0],)
            + tuple(query_shape[axis] for axis in self.batch_axes)
            + (heads,)
            + tuple(query_shape[axis] for axis in self.attention_axes)
            + tuple(key_shape[axis] for axis in self.attention_axes)
        )

    def flatten(self, x):
        """`(B, d_1..d_m, N, H)` -> `(B * non-attention sizes, L, N, H)`."""
        if self.identity:
            return x
        x = ops.transpose(x, self._perm)
        shape = ops.shape(x)
        num_batch = 1 + len(self.batch_axes)
        num_attn = len(self.attention_axes)
        batch = _product(shape[:num_batch])
        length = _product(shape[num_batch:num_batch + num_attn])
        return ops.reshape(x, (batch, length, shape[-2], shape[-1]))

    def unflatten_output(self, output, query):
        """Flattened `(B', T, N, Dv)` output -> the projected query's layout
        `(B, d_1..d_m, N, Dv)`."""
        if self.identity:
            return output
        shape = ops.shape(query)
        permuted = tuple(shape[axis] for axis in self._perm[:-1])
        output = ops.reshape(output, permuted + (ops.shape(output)[-1],))
        return ops.transpose(output, self._inverse_perm)

    def unflatten_scores(self, scores, query, key):
        """Flattened `(B', N, T, S)` scores -> `MultiHeadAttention`'s layout."""
        if self.identity or scores is None:
            return scores
        return ops.reshape(
            scores, self.score_shape(ops.shape(query), ops.shape(key))
        )

    def flatten_mask(self, mask, query, key):
        """A mask in any form `MultiHeadAttention` accepts -> boolean
        `(B'|1, N|1, T|1, S|1)` for the flattened scores.

        Raises:
            ValueError: the mask cannot broadcast to the scores.
        """
        if mask is None:
            return None
        mask = ops.convert_to_tensor(mask)
        static_scores = self.score_shape(
            tuple(_static(d) for d in query.shape),
            tuple(_static(d) for d in key.shape),
        )
        mask = expand_mask_to_scores_rank(
            mask, static_scores, self.num_attention_axes
        )
        if self.identity:
            return mask
        scores = self.score_shape(ops.shape(query), ops.shape(key))
        num_batch = 1 + len(self.batch_axes)
        k = self.num_attention_axes
        groups = (
            (0, num_batch),
            (num_batch, num_batch + 1),
            (num_batch + 1, num_batch + 1 + k),
            (num_batch + 1 + k, num_batch + 1 + 2 * k),
        )
        target, flat = [], []
        for start, stop in groups:
            if all(_static(mask.shape[i]) == 1 for i in range(start, stop)):
                target.extend([1] * (stop - start))
                flat.append(1)
            else:
                target.extend(scores[start:stop])
                flat.append(_product(scores[start:stop]))
        mask = ops.broadcast_to(mask, tuple(target))
        return ops.reshape(mask, tuple(flat))

    def flat_positions_mask(self, mask, for_keys):
        """A Keras input mask `(B, d_1..d_m)` (e.g. from `Embedding(
        mask_zero=True)`) -> its place in the scores' layout: query masks
        `(B, <batch axes>, 1, <T axes>, 1...)`, key masks
        `(B, <batch axes>, 1, 1..., <S axes>)`."""
        mask = ops.cast(mask, "bool")
        perm = (0,) + self.batch_axes + self.attention_axes
        if perm != tuple(range(len(perm))):
            mask = ops.transpose(mask, perm)
        shape = ops.shape(mask)
        num_batch = 1 + len(self.batch_axes)
        k = self.num_attention_axes
        lead = tuple(shape[:num_batch]) + (1,)
        dims = tuple(shape[num_batch:])
        if for_keys:
            new_shape = lead + (1,) * k + dims
        else:
            new_shape = lead + dims + (1,) * k
        return ops.reshape(mask, new_shape)

    def sequence_mask(self, flat_mask, query_shape, key_shape):
        """A `(T, S)` mask over the flattened sequences (causal, sliding
        window) -> `(1, ..., 1, <T axes>, <S axes>)` in the scores' layout.

        `query_shape` and `key_shape` are the projected shapes (or any
        shapes with the same middle axes)."""
        scores = self.score_shape(query_shape, key_shape)
        num_batch = 1 + len(self.batch_axes)
        return ops.reshape(
            flat_mask, (1,) * (num_batch + 1) + tuple(scores[num_batch + 1:])
        )
