"""Neural Attention end to end (scores, masked softmax, values), in blocks.

`neural_attention` is the one function every layer calls. It resolves the
implementation (`"auto"` picks the fastest correct path available on the
current backend and device), splits the queries into blocks so that the
`(batch, heads, block, S, hidden)` intermediates of the scoring network never
exist for the whole sequence at once, and rematerializes each block during
the backward pass so that training memory is bounded the same way.
"""

import keras
from keras import ops

from keras_neural_attention.kernels import dispatch as kernel_dispatch
from keras_neural_attention.ops.activations import get_scoring_activation
from keras_neural_attention.ops.masks import normalize_attention_mask
from keras_neural_attention.ops.scoring import IMPLEMENTATIONS
from keras_neural_attention.ops.scoring import cast_scoring_weights
from keras_neural_attention.ops.scoring import key_terms
from keras_neural_attention.ops.scoring import pair_scores
from keras_neural_attention.ops.scoring import query_terms
from keras_neural_attention.ops.scoring import scoring_dtype
from keras_neural_attention.ops.scoring import validate_implementation
from keras_neural_attention.ops.separable import separable_attention
from keras_neural_attention.ops.separable import separable_support
from keras_neural_attention.ops.softmax import masked_softmax

FUSED_IMPLEMENTATIONS = tuple(kernel_dispatch.FUSED_IMPLEMENTATIONS)
ALL_IMPLEMENTATIONS = (
    ("auto",) + IMPLEMENTATIONS + ("separable",) + FUSED_IMPLEMENTATIONS
)

# Largest number of elements one intermediate tensor of a block of the scoring
# network may hold when `query_chunk_size="auto"` (64 MiB in float32). A block
# keeps a few such tensors alive at once (pre-activation, activation, scores).
AUTO_CHUNK_ELEMENTS = 2**24


def resolve_implementation(
    implementation,
    weights=None,
    activation="relu",
    value_dtype="float32",
    shapes=None,
    needs_probabilities=False,
    per_head_mask=False,
):
    """Maps an `implementation` argument to the path that will run.

    Every implementation computes the same function. `"auto"` picks
    `"separable"` (`keras.ops.dot_product_attention` on expanded features,
    `ops.separable`) when the scoring network has one hidden layer and a
    separable activation (`"linear"`, `"square"`, `"cube"`,
    `"exponential"`); otherwise a fused kernel (`"triton"` on PyTorch,
    `"pallas"` on JAX) when one is compiled for the GPU in use and supports
    the call, and `"factored"` otherwise (never slower nor larger than
    `"reference"`). The fused kernels return no probabilities and apply no
    dropout, so calls that need either use `"factored"`; asking for a fused
    kernel by name then raises.

    Args:
        implementation: `"auto"`, `"reference"`, `"factored"`,
            `"separable"`, `"triton"` or `"pallas"`.
        weights: the call's `ScoringWeights` (needed to consider kernels).
        activation: the scoring network's activation.
        value_dtype: dtype of the values.
        shapes: `(a_shape, c_shape, v_shape)` in the kernels' `(B, N, L, .)`
            layout.
        needs_probabilities: the call returns attention scores or applies
            dropout to them.
        per_head_mask: the call's mask differs between heads. The kernels
            take one mask for every head: with a scoring network shared by
            the heads the call runs with the heads folded into the batch;
            with per-head networks `"auto"` uses `"factored"`.

    Returns:
        The name of the implementation that will run.
    """
    validate_implementation(implementation, ALL_IMPLEMENTATIONS)
    if weights is not None:
        first_width = int(weights.hidden_kernels[0].shape[-1])
        hidden_widths = [int(k.shape[-1]) for k in weights.hidden_kernels[1:]]
    if implementation == "separable" and weights is not None:
        ok, reason = separable_support(activation, weights)
        if not ok:
            raise ValueError(
                "implementation='separable' cannot run this scoring network: "
                f"{reason}. Use implementation='auto'."
            )
    if implementation == "auto" and weights is not None:
        if separable_support(activation, weights)[0]:
            return "separable"
    if implementation in FUSED_IMPLEMENTATIONS:
        if needs_probabilities:
            raise ValueError(
                f"implementation={implementation!r} is a fused kernel: it "
                "returns no attention scores and applies no dropout. Use "
                "implementation='auto' or 'factored' with "
                "return_attention_scores=True or dropout in training."
            )
        if weights is None:
            return implementation
        if per_head_mask and weights.per_head:
            raise ValueError(
                f"implementation={implementation!r} is a fused kernel: it "
                "takes one attention mask for every head, and this call has "
                "a per-head mask `(B, num_heads, T, S)` with a scoring "
                "network per head (share_scoring_across_heads=False). Use "
                "implementation='auto' or 'factored' for such calls."
            )
        ok, reason = kernel_dispatch.fused_support(
            implementation, activation, value_dtype, first_width,
            hidden_widths, shapes,
        )
        if not ok:
            raise ValueError(
                f"implementation={implementation!r} cannot run this call: "
                f"{reason}. Use implementation='auto' to fall back to the "
                "keras.ops path."
            )
        return implementation
    if implementation == "auto":
        if (
            weights is not None
            and not needs_probabilities
            and not (per_head_mask and weights.per_head)
        ):
            fused = kernel_dispatch.select_fused(
                activation, value_dtype, first_width, hidden_widths, shapes
            )
            if fused is not None:
                return fused
        return "factored"
    return implementation


def validate_query_chunk_size(query_chunk_size):
    if query_chunk_size is None or query_chunk_size == "auto":
        return
    if (
        isinstance(query_chunk_size, bool)
        or not isinstance(query_chunk_size, int)
        or query_chunk_size <= 0
    ):
        raise ValueError(
            "Argument `query_chunk_size` must be a positive integer, "
            "'auto' or None. "
            f"Received: query_chunk_size={query_chunk_size!r}"
        )


def auto_query_chunk_size(batch, heads, key_length, widest_layer):
    """Query rows per block so that one block holds at most
    `AUTO_CHUNK_ELEMENTS` elements of the widest scoring-network layer.

    Unknown batch sizes (`None`, or a symbolic dimension while a layer's
    output shape is traced) count as 1.
    """
    if not isinstance(batch, int) or isinstance(batch, bool):
        batch = 1
    per_row = batch * heads * key_length * widest_layer
    rows = max(1, AUTO_CHUNK_ELEMENTS // max(1, per_row))
    if rows >= 8:
        rows -= rows % 8
    return rows


def _widest_layer(weights, implementation):
    widths = [int(k.shape[-1]) for k in weights.hidden_kernels]
    if implementation == "reference":
        widths.append(2 * weights.projection_dim)
    return max(widths)


def neural_attention(
    query,
    key,
    value,
    weights,
    activation="relu",
    attention_mask=None,
    implementation="auto",
    query_chunk_size="auto",
    dropout=None,
    return_attention_scores=False,
    causal=False,
):
    """Multi-head Neural Attention on projected queries, keys and values.

    Args:
        query: `(batch, T, heads, key_dim)`.
        key: `(batch, S, heads, key_dim)`.
        value: `(batch, S, heads, value_dim)`.
        weights: `ScoringWeights` of the scoring network.
        activation: activation of the hidden layers (name or callable).
        attention_mask: optional mask in any form
            `keras.layers.MultiHeadAttention` accepts for `(batch, heads, T,
            S)` scores: `(T, S)`, `(batch, T, S)`, `(batch, 1, T, S)` or
            `(batch, heads, T, S)` (axes of size 1 broadcast), boolean or 0/1
            integers; `True` keeps a pair. Rows with no kept pair output
            zeros. Other shapes raise `ValueError`.
        implementation: `"auto"`, `"reference"`, `"factored"`,
            `"separable"` (one hidden layer, separable activation), `"triton"`
            or `"pallas"` (see `resolve_implementation`).
        query_chunk_size: number of query rows scored at once; `"auto"`
            bounds each block to `AUTO_CHUNK_ELEMENTS` elements; `None`
            scores all rows at once.
        dropout: optional callable applied to the attention probabilities
            (for example a `keras.layers.Dropout` in training mode).
        return_attention_scores: also return the probabilities.
        causal: also mask every key after its query position (`j > i`).
            Fused kernels then skip the key blocks above the diagonal
            without building a mask.

    Returns:
        `(output, probabilities)`: output `(batch, T, heads, value_dim)` in the
        dtype of `value`; probabilities `(batch, heads, T, S)` in float32, or
        `None` when not requested. Scores and softmax are computed in float32
        (float64 for float64 inputs) whatever the input dtype.
    """
    validate_query_chunk_size(query_chunk_size)
    activation = get_scoring_activation(activation)
    dtype = scoring_dtype(query.dtype)
    weights = cast_scoring_weights(weights, dtype)
    batch, query_length, heads = query.shape[:3]
    key_length = key.shape[1]
    attention_mask = normalize_attention_mask(
        attention_mask, batch, heads, query_length, key_length
    )
    per_head_mask = attention_mask is not None and (
        attention_mask.shape[1] != 1
    )
    first_width = int(weights.hidden_kernels[0].shape[-1])
    implementation = resolve_implementation(
        implementation,
        weights,
        activation,
        value.dtype,
        shapes=(
            (batch, heads, query_length, first_width),
            (batch, heads, key_length, first_width),
            (batch, heads, key_length, value.shape[-1]),
        ),
        needs_probabilities=dropout is not None or return_attention_scores,
        per_head_mask=per_head_mask,
    )
    if implementation == "separable":
        return separable_attention(
            query, key, value, weights, activation, attention_mask, causal,
            dropout, return_attention_scores,
        )
    if implementation in FUSED_IMPLEMENTATIONS:
        return _fused_attention(
            implementation, query, key, value, weights, activation,
            attention_mask, causal, dtype,
        ), None
    mask = attention_mask
    if causal:
        causal_mask = _causal_mask(ops.shape(query)[1], ops.shape(key)[1])
        mask = causal_mask if mask is None else ops.logical_and(
            mask, causal_mask
        )
    q_terms = query_terms(ops.cast(query, dtype), weights, implementation)
    k_terms = key_terms(ops.cast(key, dtype), weights, implementation)

    # The block function must see every tensor it differentiates as an
    # argument (rematerialization replays it from its arguments alone).
    flat_weights = keras.tree.flatten(weights)
    fuse_values = dropout is None and not return_attention_scores

    def block(q_block, k_block, value_block, mask_block, *flat_w):
        block_weights = keras.tree.pack_sequence_as(weights, flat_w)
        scores = pair_scores(
            q_block, k_block, block_weights, activation, implementation
        )
        probs = masked_softmax(scores, mask_block)
        if not fuse_values:
            return probs
        return _attend(probs, value_block)

    query_length = q_terms.shape[2]
    chunk = query_chunk_size
    if chunk == "auto" and query_length is not None:
        chunk = auto_query_chunk_size(
            q_terms.shape[0],
            int(q_terms.shape[1]),
            k_terms.shape[2] or 1,
            _widest_layer(weights, implementation),
        )
    if chunk is None or (query_length is not None and chunk >= query_length):
        result = block(q_terms, k_terms, value, mask, *flat_weights)
    elif query_length is None or keras.backend.backend() == "jax":
        # JAX compiles a Python loop of independent blocks into one program
        # in which XLA may keep every block alive at once; a sequential map
        # (`lax.map`) runs them one after another.
        result = _map_blocks(block, q_terms, k_terms, value, mask, chunk,
                             flat_weights, fuse_values,
                             remat=keras.backend.backend() == "jax",
                             widest_layer=_widest_layer(weights,
                                                        implementation))
    else:
        result = _loop_blocks(block, q_terms, k_terms, value, mask, chunk,
                              flat_weights, fuse_values)
    if fuse_values:
        return result, None
    output = _attend(result if dropout is None else dropout(result), value)
    return output, (result if return_attention_scores else None)


def _attend(probs, value):
    """`(B, N, T, S)` weights times `(B, S, N, D)` values -> `(B, T, N, D)`."""
    return ops.einsum("bnts,bsnd->btnd", ops.cast(probs, value.dtype), value)


def _causal_mask(query_length, key_length):
    """`(1, 1, T, S)` boolean, True where key `j <= query i`."""
    rows = ops.expand_dims(ops.arange(query_length, dtype="int32"), 1)
    cols = ops.expand_dims(ops.arange(key_length, dtype="int32"), 0)
    return ops.greater_equal(rows, cols)[None, None]


def _fused_attention(name, query, key, value, weights, activation,
                     attention_mask, causal, dtype):
    """Runs a fused kernel on the factored terms (see `kernels.dispatch`).

    The O(length * width) projections stay in keras.ops, so their gradients
    come from the backend's autodiff; the kernel differentiates the rest.
    The kernels take one `(B or 1, T, S)` mask for every head: a per-head
    mask (possible only with a scoring network shared by the heads, see
    `resolve_implementation`) runs with the heads folded into the batch.
    """
    a = query_terms(ops.cast(query, dtype), weights, "factored")
    c = key_terms(ops.cast(key, dtype), weights, "factored")
    v = ops.transpose(value, (0, 2, 1, 3))
    mask = None
    fold_heads = False
    if attention_mask is not None:
        shape_a, shape_c = ops.shape(a), ops.shape(c)
        fold_heads = attention_mask.shape[1] != 1
        if fold_heads:
            mask = ops.broadcast_to(
                attention_mask, (shape_a[0], shape_a[1], shape_a[2],
                                 shape_c[2])
            )
            mask = ops.reshape(
                mask, (shape_a[0] * shape_a[1], shape_a[2], shape_c[2])
            )
        else:
            mask = ops.broadcast_to(
                attention_mask[:, 0],
                (ops.shape(attention_mask)[0], shape_a[2], shape_c[2]),
            )
    if fold_heads:
        heads = ops.shape(a)[1]

        def fold(x):
            shape = ops.shape(x)
            return ops.reshape(x, (shape[0] * shape[1], 1, shape[2],
                                   shape[3]))

        a, c, v = fold(a), fold(c), fold(v)
    hidden_layers = tuple(
        zip(weights.hidden_kernels[1:], weights.hidden_biases[1:])
    )
    out = kernel_dispatch.fused_neural_attention(
        name, a, c, v, hidden_layers, weights.output_kernel, mask=mask,
        causal=causal, activation=activation,
    )
    if fold_heads:
        shape = ops.shape(out)
        out = ops.reshape(out, (shape[0] // heads, heads, shape[2],
                                shape[3]))
    out = ops.transpose(out, (0, 2, 1, 3))
    # The output bias cancels in the softmax (the kernels do not take it);
    # keep it in the graph so that it gets its exact, zero, gradient.
    return out + ops.cast(ops.sum(weights.output_bias) * 0, out.dtype)


def _mask_rows(mask, start, stop):
    if mask.shape[2] == 1:
        return mask
    return mask[:, :, start:stop, :]


def _loop_blocks(block, q_terms, k_terms, value, mask, chunk, flat_weights,
                 fuse_values):
    """Static query length: a Python loop over blocks, each rematerialized
    (recomputed from its inputs in the backward pass)."""
    if mask is None:
        # TensorFlow's `recompute_grad` takes tensors only: leave `None` out.
        def unmasked(q_block, k_block, value_block, *flat_w):
            return block(q_block, k_block, value_block, None, *flat_w)

        remat_block = keras.remat(unmasked)
    else:
        remat_block = keras.remat(block)
    query_length = q_terms.shape[2]
    pieces = []
    for start in range(0, query_length, chunk):
        stop = min(start + chunk, query_length)
        args = [q_terms[:, :, start:stop, :], k_terms, value]
        if mask is not None:
            args.append(_mask_rows(mask, start, stop))
        pieces.append(remat_block(*args, *flat_weights))
    return ops.concatenate(pieces, axis=1 if fuse_values else 2)


def _map_blocks(block, q_terms, k_terms, value, mask, chunk, flat_weights,
                fuse_values, remat=False, widest_layer=1):
    """Pads the queries to whole blocks and `keras.ops.map`s over them, one
    block after another.

    Used on JAX (with `remat=True`: each block is recomputed in the backward
    pass) and for TensorFlow graphs traced with an unknown sequence length
    (without rematerialization: `tf.recompute_grad` inside `tf.map_fn` is not
    used, so there the backward pass keeps every block's activations).

    With an unknown query length the block size is a tensor: `"auto"` is
    sized from the lengths the graph runs with, and no block is longer
    than the queries (a block size past the length would pad them to it).
    """
    if remat:
        block = keras.remat(block)
    shape = ops.shape(q_terms)
    query_length = shape[2]
    if not isinstance(query_length, int):
        if chunk == "auto":
            key_shape = ops.shape(k_terms)
            per_row = shape[0] * shape[1] * key_shape[2] * widest_layer
            chunk = ops.maximum(AUTO_CHUNK_ELEMENTS // per_row, 1)
        chunk = ops.minimum(chunk, query_length)
    num_blocks = (query_length + chunk - 1) // chunk
    padding = num_blocks * chunk - query_length
    q_padded = ops.pad(q_terms, [[0, 0], [0, 0], [0, padding], [0, 0]])
    q_blocks = ops.reshape(
        q_padded, (shape[0], shape[1], num_blocks, chunk, shape[3])
    )
    q_blocks = ops.moveaxis(q_blocks, 2, 0)
    if mask is not None and mask.shape[2] != 1:
        mask = ops.broadcast_to(
            mask,
            (ops.shape(mask)[0], ops.shape(mask)[1], query_length,
             ops.shape(k_terms)[2]),
        )
        mask_padded = ops.pad(mask, [[0, 0], [0, 0], [0, padding], [0, 0]])
        mask_blocks = ops.moveaxis(
            ops.reshape(
                mask_padded,
                (ops.shape(mask)[0], ops.shape(mask)[1], num_blocks, chunk,
                 ops.shape(mask)[3]),
            ),
            2,
            0,
        )
        blocks = ops.map(
            lambda xs: block(xs[0], k_terms, value, xs[1], *flat_weights),
            (q_blocks, mask_blocks),
        )
    else:
        blocks = ops.map(
            lambda q_block: block(q_block, k_terms, value, mask,
                                  *flat_weights),
            q_blocks,
        )
    if fuse_values:
        # (blocks, B, chunk, N, D) -> (B, blocks * chunk, N, D)
        blocks = ops.moveaxis(blocks, 0, 1)
        out_shape = ops.shape(blocks)
        merged = ops.reshape(
            blocks,
            (out_shape[0], num_blocks * chunk, out_shape[3], out_shape[4]),
        )
        return merged[:, :query_length]
    # (blocks, B, N, chunk, S) -> (B, N, blocks * chunk, S)
    blocks = ops.moveaxis(blocks, 0, 2)
    out_shape = ops.shape(blocks)
    merged = ops.reshape(
        blocks, (out_shape[0], out_shape[1], num_blocks * chunk, out_shape[4])
    )
    return merged[:, :, :query_length]
