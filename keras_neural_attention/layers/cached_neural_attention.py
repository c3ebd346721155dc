"""`CachedNeuralAttention`: Neural Attention with a decoding cache."""

import keras
from keras import ops

from keras_neural_attention.layers.cached_attention import (
    CachedAttentionMixin,
)
from keras_neural_attention.layers.neural_attention import NeuralAttention
from keras_neural_attention.ops.attention import auto_query_chunk_size
from keras_neural_attention.ops.masks import normalize_attention_mask
from keras_neural_attention.ops.scoring import cast_scoring_weights
from keras_neural_attention.ops.scoring import key_terms
from keras_neural_attention.ops.scoring import pair_scores
from keras_neural_attention.ops.scoring import query_terms
from keras_neural_attention.ops.scoring import scoring_dtype
from keras_neural_attention.ops.softmax import masked_softmax


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class CachedNeuralAttention(CachedAttentionMixin, NeuralAttention):
    """Neural Attention with the key/value cache of KerasHub's
    `CachedMultiHeadAttention`, for autoregressive decoding.

    The layer is a `NeuralAttention` (same constructor, same weights, same
    function) whose `call` follows the contract of
    `keras_hub.layers.CachedMultiHeadAttention`, so that it can serve as the
    self-attention of `keras_hub.layers.TransformerDecoder`-style blocks and
    of KerasHub's causal-LM tasks. It runs in one of three modes:

    - No cache: ordinary attention of `query` on `key`/`value`.
    - Cache with `cache_update_index=None`: the cached keys and values are
      used as they are and `key`/`value` are ignored (static cross-attention
      caches).
    - Cache with `cache_update_index=i`: `key` and `value` (`S*` positions)
      are projected, written into the cache from position `i`, and the query
      attends to the whole updated cache.

    What is cached. The scoring network's first layer splits into a query
    term and a key term, `s_ij = f(a_i + c_j)` with
    `c_j = (k_j P_k + b_k) W_1[d':]` of width `h_1` (the first hidden width,
    d' by default). The cache stores `c_j` rather than the projected key, so
    a decoding step projects only the new token's key and costs
    `O(S * num_heads * (hidden + value_dim))` for a prefix of `S` tokens,
    with no re-projection of the prefix. The cache has KerasHub's layout
    `(B, 2, S, num_heads, value_dim)`:

    - `cache[:, 0, :, :, :h_1]` holds the key terms `c_j` (the remaining
      `value_dim - h_1` channels stay zero);
    - `cache[:, 1]` holds the projected values.

    Because the layout is KerasHub's, `keras_hub.models.GPT2CausalLM` builds
    and threads the cache of a decoder using this layer unchanged. It
    requires `h_1 <= value_dim` (true for the defaults, `h_1 = d' =
    key_dim // 32`); otherwise caching raises `ValueError`. Use
    `empty_cache(batch_size, max_length)` to create an empty cache. Cached
    key terms are stored in the cache's dtype (the compute dtype by
    default) and scored in float32. The cached path computes the scores
    with the `"factored"` implementation (same function as the others), in
    query blocks of `query_chunk_size` rows.

    Masks: as in KerasHub's layer, only `attention_mask` is used (Keras
    masks of the inputs are not read); with a cache it has shape
    `(B, T, S)` with `S` the cache length, and must mask the positions not
    yet written. Rows in which every key is masked output zeros, never NaN.

    Args:
        **kwargs: the arguments of
            `keras_neural_attention.layers.NeuralAttention`
            (`num_heads`, `key_dim`, `value_dim`, `dropout`, ...,
            `projection_dim`, `hidden_units`, `activation`,
            `share_scoring_across_heads`, `implementation`,
            `query_chunk_size`), unchanged.

    Call arguments:
        - query: `(B, T, dim)` query tensor.
        - value: `(B, S*, dim)` value tensor. Without a cache `S* = S`; with
          a cache and `cache_update_index`, its projection is written into
          the cache at `cache_update_index`.
        - key: optional `(B, S*, dim)` key tensor; defaults to `value`.
        - attention_mask: optional boolean `(B, T, S)`; `True` lets a query
          attend to a key.
        - cache: optional float tensor `(B, 2, S, num_heads, value_dim)`
          laid out as above.
        - cache_update_index: optional int or int tensor, where to write the
          new keys and values into `cache`. Must be None without a cache.
        - return_attention_scores: bool. Also return the attention
          probabilities `(B, num_heads, T, S)`.
        - training: bool. Whether dropout is active.

    Returns:
        `output`, `(output, scores)`, `(output, cache)` or
        `(output, scores, cache)`, like `CachedMultiHeadAttention`; `output`
        has shape `(B, T, dim)`.

    Example:

    ```python
    import numpy as np
    from keras import ops
    from keras_neural_attention.layers import CachedNeuralAttention

    attn = CachedNeuralAttention(num_heads=2, key_dim=32)
    x = np.random.normal(size=(1, 6, 16)).astype("float32")
    causal = np.tril(np.ones((1, 6, 6), dtype=bool))
    full = attn(x, x, attention_mask=causal)              # (1, 6, 16)
    cache = attn.empty_cache(batch_size=1, max_length=6)  # (1, 2, 6, 2, 32)
    steps = []
    for i in range(6):
        y, cache = attn(x[:, i:i + 1], x[:, i:i + 1],
                        attention_mask=causal[:, i:i + 1],
                        cache=cache, cache_update_index=i)
        steps.append(y)
    # ops.concatenate(steps, axis=1) equals `full`.
    ```

    Reference:
        - [DiGiugno & Mahmood, "Neural Attention: A Novel Mechanism for
          Enhanced Expressive Power in Transformer Models", arXiv 2502.17206](
          https://arxiv.org/abs/2502.17206)
    """

    @property
    def cache_width(self):
        """Size of the cache's last axis (`value_dim`); the key terms use its
        first `hidden_units[0]` channels."""
        first_width = self.hidden_units[0]
        if first_width > self._value_dim:
            raise ValueError(
                "CachedNeuralAttention stores the key terms of the scoring "
                "network's first layer (width `hidden_units[0]`) next to the "
                "values (width `value_dim`) in one cache tensor, so caching "
                "needs `hidden_units[0] <= value_dim`. Received: "
                f"hidden_units={self.hidden_units!r}, "
                f"value_dim={self._value_dim}"
            )
        return self._value_dim

    def _encode_cached_keys(self, key):
        padding = self.cache_width - self.hidden_units[0]
        dtype = scoring_dtype(key.dtype)
        weights = cast_scoring_weights(self.scoring_weights, dtype)
        terms = key_terms(ops.cast(key, dtype), weights, "factored")
        terms = ops.transpose(terms, (0, 2, 1, 3))  # (B, S, N, h_1)
        if padding:
            terms = ops.pad(terms, [[0, 0], [0, 0], [0, 0], [0, padding]])
        return terms

    def _attend_cached(self, query, cached_keys, value, attention_mask,
                       training, return_attention_scores):
        dtype = scoring_dtype(query.dtype)
        weights = cast_scoring_weights(self.scoring_weights, dtype)
        q_terms = query_terms(ops.cast(query, dtype), weights, "factored")
        k_terms = ops.transpose(
            ops.cast(cached_keys[..., : self.hidden_units[0]], dtype),
            (0, 2, 1, 3),
        )
        mask = normalize_attention_mask(
            attention_mask, query.shape[0], self._num_heads, query.shape[1],
            cached_keys.shape[1],
        )
        dropout = self.attention_probability_dropout(training)
        query_length = q_terms.shape[2]
        chunk = self.query_chunk_size
        if chunk == "auto":
            chunk = auto_query_chunk_size(
                q_terms.shape[0],
                self._num_heads,
                k_terms.shape[2] or 1,
                max(self.hidden_units),
            )
        if query_length is None or chunk is None:
            chunk = query_length
        outputs, all_probs = [], []
        for start in range(0, query_length or 1, chunk or 1):
            if query_length is None:
                q_block, mask_block = q_terms, mask
            else:
                stop = min(start + chunk, query_length)
                q_block = q_terms[:, :, start:stop]
                mask_block = mask
                if mask is not None and mask.shape[2] != 1:
                    mask_block = mask[:, :, start:stop]
            scores = pair_scores(
                q_block, k_terms, weights, self.activation, "factored"
            )
            probs = masked_softmax(scores, mask_block)
            if return_attention_scores:
                all_probs.append(probs)
            if dropout is not None:
                probs = dropout(probs)
            outputs.append(
                ops.einsum(
                    "bnts,bsnd->btnd", ops.cast(probs, value.dtype), value
                )
            )
        output = outputs[0] if len(outputs) == 1 else ops.concatenate(
            outputs, axis=1
        )
        if not return_attention_scores:
            return output, None
        probs = all_probs[0] if len(all_probs) == 1 else ops.concatenate(
            all_probs, axis=2
        )
        return output, ops.cast(probs, self.compute_dtype)
