"""Key/value caching for the package's attention layers (private base).

`CachedAttentionMixin` gives a `ScoredMultiHeadAttention` subclass the call
contract of KerasHub's `CachedMultiHeadAttention` without importing KerasHub:

```
call(query, value, key=None, attention_mask=None, cache=None,
     cache_update_index=None, return_attention_scores=False, training=None)
```

The cache is one tensor `(B, 2, S, num_heads, cache_width)`: slot 0 holds what
the layer keeps of every key (`_encode_cached_keys`; the projected keys by
default, as in KerasHub), slot 1 the projected values. Subclasses may store
something other than projected keys in slot 0 (`CachedNeuralAttention` stores
the key side of its scoring network's first layer) and then override
`_attend_cached`.
"""

import keras
from keras import ops


class CachedAttentionMixin:
    """Adds KerasHub's key/value cache contract to an attention layer.

    Mixed in before a `ScoredMultiHeadAttention` subclass. Subclasses may
    override `cache_width`, `_encode_cached_keys` and `_attend_cached`.
    """

    @property
    def cache_width(self):
        """Size of the last axis of the cache: the key and value head size
        (which must be equal for a layer that caches projected keys)."""
        if self._key_dim != self._value_dim:
            raise ValueError(
                f"{type(self).__name__} caches keys and values in one tensor: "
                "with a cache, `key_dim` must equal `value_dim`. Received: "
                f"key_dim={self._key_dim}, value_dim={self._value_dim}"
            )
        return self._value_dim

    def cache_shape(self, batch_size, max_length):
        """Shape `(batch_size, 2, max_length, num_heads, cache_width)` of the
        cache this layer reads and writes."""
        return (batch_size, 2, max_length, self._num_heads, self.cache_width)

    def empty_cache(self, batch_size, max_length, dtype=None):
        """A zero cache for sequences of up to `max_length` tokens.

        Args:
            batch_size: int or scalar tensor.
            max_length: int or scalar tensor, the cache's sequence length `S`
                (the last axis of the attention masks used with it).
            dtype: dtype of the cache; defaults to the layer's compute dtype.

        Returns:
            A zero tensor of shape `cache_shape(batch_size, max_length)`.
        """
        return ops.zeros(
            self.cache_shape(batch_size, max_length),
            dtype=dtype or self.compute_dtype,
        )

    def _encode_cached_keys(self, key):
        """What slot 0 of the cache stores for projected keys `(B, S, N, Dk)`:
        a `(B, S, N, cache_width)` tensor."""
        return key

    def _attend_cached(self, query, cached_keys, value, attention_mask,
                       training, return_attention_scores):
        """Attention of projected queries on slot 0 and slot 1 of a cache."""
        return self._compute_attention(
            query=query,
            key=cached_keys,
            value=value,
            attention_mask=attention_mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        cache=None,
        cache_update_index=None,
        return_attention_scores=False,
        training=None,
    ):
        output = keras.KerasTensor(
            self.compute_output_shape(query.shape, value.shape),
            dtype=self.compute_dtype,
        )
        key_length = value.shape[1] if cache is None else cache.shape[2]
        scores = keras.KerasTensor(
            (query.shape[0], self._num_heads, query.shape[1], key_length),
            dtype=self.compute_dtype,
        )
        if cache is not None:
            cache = keras.KerasTensor(cache.shape, dtype=cache.dtype)
        if return_attention_scores and cache is not None:
            return output, scores, cache
        if return_attention_scores:
            return output, scores
        if cache is not None:
            return output, cache
        return output

    def call(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        cache=None,
        cache_update_index=None,
        return_attention_scores=False,
        training=None,
    ):
        if key is None:
            key = value
        self._check_input_dtypes(query, value, key)
        if cache is not None:
            expected = self.cache_shape(cache.shape[0], cache.shape[2])
            if tuple(cache.shape[1:]) != expected[1:]:
                raise ValueError(
                    f"Argument `cache` of {type(self).__name__} must have "
                    f"the shape (batch, 2, max_length, {self._num_heads}, "
                    f"{self.cache_width}) (see `empty_cache`). Received: "
                    f"cache.shape={tuple(cache.shape)}"
                )
        use_gate = getattr(self, "_use_gate", False)
        gate = self._gate_dense(query) if use_gate else None
        projected_query = self._query_dense(query)
        if cache is None:
            if cache_update_index is not None:
                raise ValueError(
                    "`cache_update_index` must be None when `cache` is None. "
                    f"Received: cache_update_index={cache_update_index!r}"
                )
            output, scores = self._compute_attention(
                query=projected_query,
                key=self._key_dense(key),
                value=self._value_dense(value),
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
            )
        else:
            cached_keys = cache[:, 0, ...]
            cached_values = cache[:, 1, ...]
            if cache_update_index is not None:
                new_keys = ops.cast(
                    self._encode_cached_keys(self._key_dense(key)),
                    cache.dtype,
                )
                new_values = ops.cast(self._value_dense(value), cache.dtype)
                start = [0, cache_update_index, 0, 0]
                cached_keys = ops.slice_update(cached_keys, start, new_keys)
                cached_values = ops.slice_update(
                    cached_values, start, new_values
                )
                cache = ops.stack((cached_keys, cached_values), axis=1)
            output, scores = self._attend_cached(
                projected_query,
                cached_keys,
                ops.cast(cached_values, self.compute_dtype),
                attention_mask,
                training,
                return_attention_scores,
            )
        if gate is not None:
            output = ops.multiply(output, gate)
        output = self._output_dense(output)
        if return_attention_scores and cache is not None:
            return output, scores, cache
        if return_attention_scores:
            return output, scores
        if cache is not None:
            return output, cache
        return output
