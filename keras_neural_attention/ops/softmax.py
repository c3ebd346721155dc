"""Masked softmax that never produces NaN."""

from keras import ops

from keras_neural_attention.ops.scoring import scoring_dtype


def masked_softmax(scores, mask=None):
    """Softmax over the last axis with masked positions zeroed.

    Masked positions get probability 0 and no gradient. A row in which every
    position is masked gets all zeros, never NaN, and its gradient is zero
    too. Masked scores may hold any finite value, however large.

    Args:
        scores: `(..., S)` tensor of raw scores.
        mask: optional boolean tensor broadcastable to `scores`; `True` keeps
            a position.

    Returns:
        Probabilities with the shape of `scores`, in float32 (float64 for
        float64 scores) whatever the dtype of `scores`.
    """
    dtype = scoring_dtype(scores.dtype)
    scores = ops.cast(scores, dtype)
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    lowest = ops.convert_to_tensor(-3.4028234663852886e38, dtype=dtype)
    masked = ops.where(mask, scores, lowest)
    row_max = ops.stop_gradient(ops.max(masked, axis=-1, keepdims=True))
    exps = ops.exp(masked - row_max) * ops.cast(mask, dtype)
    total = ops.sum(exps, axis=-1, keepdims=True)
    # A row with at least one kept position has total >= 1 (its maximum
    # contributes exp(0)); only fully masked rows have total == 0.
    return exps / ops.where(total > 0, total, ops.ones_like(total))
