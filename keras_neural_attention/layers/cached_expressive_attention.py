"""`CachedExpressiveAttention`: Expressive Attention with a decoding cache."""

import keras

from keras_neural_attention.layers.cached_attention import (
    CachedAttentionMixin,
)
from keras_neural_attention.layers.expressive_attention import (
    ExpressiveAttention,
)


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class CachedExpressiveAttention(CachedAttentionMixin, ExpressiveAttention):
    """Expressive Attention with the key/value cache of KerasHub's
    `CachedMultiHeadAttention`, for autoregressive decoding.

    The layer is an `ExpressiveAttention` (same constructor, same function)
    whose `call` follows the contract of
    `keras_hub.layers.CachedMultiHeadAttention`: without a cache it attends
    `query` to `key`/`value`; with a cache and `cache_update_index=i` it
    writes the projected keys and values of `key`/`value` into the cache from
    position `i` and attends to the whole cache; with a cache and
    `cache_update_index=None` it uses the cache as it is. The cache has
    KerasHub's layout `(B, 2, S, num_heads, key_dim)` (slot 0 projected keys,
    slot 1 projected values), so `key_dim` must equal `value_dim` when a cache
    is used; `empty_cache(batch_size, max_length)` creates one. As in
    KerasHub's layer, only `attention_mask` is used (Keras masks of the
    inputs are not read).

    Args:
        **kwargs: the arguments of
            `keras_neural_attention.layers.ExpressiveAttention`
            (`num_heads`, `key_dim`, `value_dim`, `dropout`, ...,
            `normalization`, `epsilon`), unchanged.

    Call arguments:
        - query: `(B, T, dim)` query tensor.
        - value: `(B, S*, dim)` value tensor (`S* = S` without a cache).
        - key: optional `(B, S*, dim)` key tensor; defaults to `value`.
        - attention_mask: optional boolean `(B, T, S)`; `True` lets a query
          attend to a key.
        - cache: optional float tensor `(B, 2, S, num_heads, key_dim)`.
        - cache_update_index: optional int or int tensor, where to write the
          new keys and values into `cache`. Must be None without a cache.
        - return_attention_scores: bool. Also return the attention weights
          `(B, num_heads, T, S)`.
        - training: bool. Whether dropout is active.

    Returns:
        `output`, `(output, scores)`, `(output, cache)` or
        `(output, scores, cache)`, like `CachedMultiHeadAttention`.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.layers import CachedExpressiveAttention

    attn = CachedExpressiveAttention(num_heads=2, key_dim=8)
    x = np.random.normal(size=(1, 4, 16)).astype("float32")
    causal = np.tril(np.ones((1, 4, 4), dtype=bool))
    cache = attn.empty_cache(batch_size=1, max_length=4)  # (1, 2, 4, 2, 8)
    y, cache = attn(x, x, attention_mask=causal, cache=cache,
                    cache_update_index=0)                 # prefill, (1, 4, 16)
    ```

    Reference:
        - [Gros, "Reorganizing attention-space geometry with expressive
          attention", arXiv 2407.18601](https://arxiv.org/abs/2407.18601)
    """
