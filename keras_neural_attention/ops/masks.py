"""Attention masks in every form `keras.layers.MultiHeadAttention` accepts.

`MultiHeadAttention` computes scores of shape

    (B, <non-attention axes>, num_heads, <query attention axes>,
     <key attention axes>)

(`(B, num_heads, T, S)` for `(batch, seq, features)` inputs) and accepts an
`attention_mask` of any rank from `2 * k` (`k` = number of attention axes) to
that of the scores: a mask of lower rank gets size-1 axes inserted just
before its last `2 * k` axes (where the heads axis is) until the ranks match,
and then broadcasts against the scores. So with one attention axis `(T, S)`
means `(1, 1, T, S)`, `(B, T, S)` means `(B, 1, T, S)`, and `(B, 1, T, S)` and
`(B, num_heads, T, S)` are taken as they are. Boolean masks and 0/1 integer
masks mean the same (`True` / non-zero keeps a pair).

The functions here bring any such mask to the one form the package's
attention math uses, `(B or 1, num_heads or 1, T, S)` boolean, and refuse
with a `ValueError` (naming `attention_mask`, the shape received and the
shapes accepted) every mask that does not broadcast, instead of letting a
backend broadcast it some other way or fail with its own error.
"""

from keras import ops


def _static(dim):
    return dim if isinstance(dim, int) else None


def accepted_mask_shapes(score_shape, num_attention_axes=1):
    """Human-readable list of the mask shapes accepted for `score_shape`.

    Args:
        score_shape: the attention scores' shape, in `MultiHeadAttention`'s
            layout (`(B, N, T, S)` for one attention axis).
        num_attention_axes: number of attention axes `k`.

    Returns:
        A string such as `"(T, S), (B, T, S), (B, 1, T, S) or (B, N, T, S)
        with T=4, S=6, B=2, N=8 (any axis may also be 1)"`.
    """
    k = num_attention_axes
    rank = len(score_shape)
    batch_rank = rank - 2 * k - 1
    batch_names = ["B"] + [f"D{i}" for i in range(1, batch_rank)]
    if k == 1:
        query_names, key_names = ["T"], ["S"]
    else:
        query_names = [f"T{i}" for i in range(1, k + 1)]
        key_names = [f"S{i}" for i in range(1, k + 1)]
    names = batch_names + ["N"] + query_names + key_names
    forms = []
    for lead in range(batch_rank + 1):
        forms.append(batch_names[:lead] + query_names + key_names)
    forms.append(batch_names + ["1"] + query_names + key_names)
    forms.append(names)
    text = ", ".join("(" + ", ".join(f) + ")" for f in forms[:-1])
    text += " or (" + ", ".join(forms[-1]) + ")"
    sizes = ", ".join(
        f"{name}={dim}" for name, dim in zip(names, score_shape)
        if _static(dim) is not None
    )
    return f"{text}, with {sizes} (any axis may also be 1)"


def _mask_error(mask_shape, score_shape, num_attention_axes, reason=""):
    reason = f" ({reason})" if reason else ""
    return ValueError(
        "Argument `attention_mask` must broadcast to the attention scores "
        f"of shape {tuple(score_shape)} as in "
        "`keras.layers.MultiHeadAttention`: accepted shapes are "
        f"{accepted_mask_shapes(score_shape, num_attention_axes)}. "
        f"Received: attention_mask.shape={tuple(mask_shape)}{reason}"
    )


def expand_mask_to_scores_rank(mask, score_shape, num_attention_axes=1):
    """Inserts `MultiHeadAttention`'s size-1 axes into a mask and checks it.

    Args:
        mask: boolean or 0/1 integer tensor of rank `2 * k` to
            `len(score_shape)`.
        score_shape: the scores' shape (entries may be None).
        num_attention_axes: number of attention axes `k`.

    Returns:
        A boolean tensor of rank `len(score_shape)` that broadcasts to
        `score_shape`.

    Raises:
        ValueError: the mask's rank or a static size cannot broadcast.
    """
    rank = len(score_shape)
    k = num_attention_axes
    mask_shape = tuple(mask.shape)
    received = mask_shape
    mask_rank = len(mask_shape)
    if mask_rank < 2 * k or mask_rank > rank:
        raise _mask_error(
            mask_shape, score_shape, k,
            f"rank {mask_rank}, expected {2 * k} to {rank}",
        )
    if mask_rank < rank:
        missing = rank - mask_rank
        new_shape = (
            mask_shape[: mask_rank - 2 * k] + (1,) * missing
            + mask_shape[mask_rank - 2 * k:]
        )
        if all(_static(d) is not None for d in mask_shape):
            mask = ops.reshape(mask, new_shape)
        else:
            for _ in range(missing):
                mask = ops.expand_dims(mask, axis=-2 * k - 1)
        mask_shape = new_shape
    for mask_dim, score_dim in zip(mask_shape, score_shape):
        mask_dim, score_dim = _static(mask_dim), _static(score_dim)
        if mask_dim is None or mask_dim == 1 or score_dim is None:
            continue
        if mask_dim != score_dim:
            raise _mask_error(received, score_shape, k)
    dtype = getattr(mask, "dtype", None)
    if dtype is not None and "bool" not in str(dtype):
        mask = ops.not_equal(mask, 0)
    return ops.cast(mask, "bool")


def normalize_attention_mask(mask, batch_size, num_heads, query_length,
                             key_length):
    """Brings a mask for `(B, N, T, S)` scores to rank 4, boolean.

    Accepts every form `MultiHeadAttention` accepts for scores of that shape:
    `(T, S)`, `(B, T, S)`, `(B, 1, T, S)`, `(B, N, T, S)` (and any of their
    axes of size 1), boolean or 0/1 integers.

    Args:
        mask: the mask, or None.
        batch_size, num_heads, query_length, key_length: the scores' sizes
            (ints; None or tensors where unknown, which are not checked).

    Returns:
        None, or a boolean tensor of shape `(B|1, N|1, T|1, S|1)` that
        broadcasts to `(B, N, T, S)`.

    Raises:
        ValueError: the mask cannot broadcast to the scores.
    """
    if mask is None:
        return None
    mask = ops.convert_to_tensor(mask)
    score_shape = (batch_size, num_heads, query_length, key_length)
    return expand_mask_to_scores_rank(mask, score_shape, 1)


def check_mask_batch(mask, batch_size, name="attention_mask"):
    """Raises `ValueError` if a mask's static batch size can't broadcast."""
    if mask is None:
        return
    dim = _static(mask.shape[0]) if len(mask.shape) else None
    if dim not in (None, 1) and _static(batch_size) not in (None, dim):
        raise ValueError(
            f"Argument `{name}` has batch size {dim}, but the inputs have "
            f"batch size {batch_size}: its first axis must be 1 or the batch "
            f"size. Received: {name}.shape={tuple(mask.shape)}"
        )
