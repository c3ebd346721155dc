"""Separable scores: Neural Attention as dot-product attention on expanded
features.

With one hidden layer the score of a pair is

    s_ij = sum_r w_r act(a_ir + c_jr) + b_a,

with `a = q' W_1[:d'] + b_1` per query and `c = k' W_1[d':]` per key (the
factored terms of `ops.scoring`). For some activations `act(a + c)` splits
into sums of products of a query factor and a key factor, and the score is
then exactly a dot product `phi_i . psi_j` of expanded features plus terms
that depend on the query only. A row's softmax ignores those (it is
invariant to adding a constant to a row), so attention is
`dot_product_attention(phi, psi, v, scale=1)`, which runs on the backend's
flash / cuDNN / SDPA / Splash kernels where it has them. The per-key bias is
one more feature: query feature 1, key feature the bias.

- `x**p` (`"linear"` p = 1, `"square"` p = 2, `"cube"` p = 3): by the
  binomial theorem `(a + c)**p = sum_k C(p, k) a**k c**(p - k)`. The term
  `k = p` depends on the query only and drops; `k = 0` is the key bias
  `sum_r w_r c_r**p`; the others give features `a_r**k` and
  `C(p, k) w_r c_r**(p - k)`, `(p - 1) h + 1` in all.
- `"exponential"`: `sum_r w_r e^{a_r} e^{c_r}`, `h` features. Computed
  without overflow as below.

Exponential, numerically safe. Let `alpha_i = max_r a_ir` and `gamma =
max_{j kept, r} c_jr` (one number per batch and head, over the keys some
query may attend to), and `L = log(max_float / 2) - log(max(1, sum_r |w_r|))`.
The features

    phi_ir = exp(a_ir - alpha_i + min(alpha_i + gamma, L))
    psi_jr = w_r exp(min(c_jr - gamma, 0))

satisfy, for every kept key (`c_jr <= gamma`) and whenever `alpha_i + gamma
<= L`, `phi_i . psi_j = sum_r w_r exp(a_ir + c_jr) = s_ij - b_a` exactly
(the shifts cancel: `(a - alpha + alpha + gamma) + (c - gamma) = a + c`).
Every factor is at most `e^L` and every dot product at most `max_float / 2`,
so nothing overflows and nothing is NaN, whatever the inputs.

The bound of exactness is therefore `max_r a_ir + max_{j, r} c_jr <= L`
(about 88.7 - log(max(1, sum_r |w_r|)) in float32): the factors `e^{a_ir}`
and `e^{c_jr}` may each overflow (a = 150 and c = -100 is exact), only
their products must not. Beyond the bound, scores of that row can exceed
the float range; the row's scores are then divided by the positive constant
`e^{alpha_i + gamma - L}`: finite, never NaN, the keys keep their order
(the arg max is kept), but the softmax is flatter than the exact one (whose
scores float32 cannot hold). The `"reference"` and `"factored"` paths
evaluate `exp(a + c)` itself, which overflows to inf, and with hidden units
of both output signs to NaN, once `a + c > log(max_float)` (about 88.7 in
float32), and so do networks with more hidden layers.

Keys whose `c` lies more than about 87 below `gamma` contribute zero (their
factor underflows); that is exact to rounding unless every key a query may
attend to lies that far below a key that only other queries attend to.
"""

import math

import keras
from keras import ops

from keras_neural_attention.ops.activations import POLYNOMIAL_DEGREES
from keras_neural_attention.ops.scoring import cast_scoring_weights
from keras_neural_attention.ops.scoring import key_terms
from keras_neural_attention.ops.scoring import query_terms
from keras_neural_attention.ops.scoring import scoring_dtype
from keras_neural_attention.ops.softmax import masked_softmax


def separable_form(activation):
    """`("power", p)`, `("exponential", None)` or None (not separable)."""
    if activation is keras.activations.exponential:
        return ("exponential", None)
    try:
        degree = POLYNOMIAL_DEGREES.get(activation)
    except TypeError:  # an unhashable callable
        return None
    if degree is None:
        return None
    return ("power", degree)


def separable_support(activation, weights):
    """Whether the separable path computes this scoring network exactly,
    and if not, why: `(True, "")` or `(False, reason)`."""
    if separable_form(activation) is None:
        return False, (
            "its activation is not separable (separable: 'linear', "
            "'square', 'cube', 'exponential')"
        )
    if len(weights.hidden_kernels) != 1:
        return False, (
            "it has more than one hidden layer (hidden_units="
            f"{tuple(int(k.shape[-1]) for k in weights.hidden_kernels)}); "
            "only a single hidden layer is separable"
        )
    return True, ""


def _output_weights(weights):
    """`w_r` shaped to broadcast against `(B, N, L, h)` terms."""
    w = weights.output_kernel[..., 0]
    if len(w.shape) == 2:  # per head: (N, h)
        return ops.reshape(w, (1, w.shape[0], 1, w.shape[1]))
    return ops.reshape(w, (1, 1, 1, w.shape[0]))


def expanded_features(a, c, weights, activation, kept_keys=None):
    """Query and key features whose dot products are the scores.

    Args:
        a: `(B, N, T, h)` query terms (`query_terms(..., "factored")`).
        c: `(B, N, S, h)` key terms (`key_terms(..., "factored")`).
        weights: `ScoringWeights` with one hidden layer, in `a`'s dtype.
        activation: a separable activation (see `separable_form`).
        kept_keys: optional boolean, broadcastable to `(B, N, S)`: the keys
            some query may attend to (the exponential form's shift is taken
            over them).

    Returns:
        `(phi, psi)`, `(B, N, T, F)` and `(B, N, S, F)`, with
        `phi_i . psi_j = s_ij - (a term of query i alone)`; see the module
        docstring for the exponential form's range.
    """
    kind, degree = separable_form(activation)
    w = _output_weights(weights)
    if kind == "power":
        # a_powers[k] = a**k and c_powers[k] = c**k.
        a_powers = [None, a]
        c_powers = [ops.ones_like(c), c]
        for k in range(2, degree + 1):
            if k < degree:
                a_powers.append(a_powers[-1] * a)
            c_powers.append(c_powers[-1] * c)
        phi = [a_powers[k] for k in range(1, degree)]
        phi.append(ops.ones_like(a[..., :1]))
        psi = [
            math.comb(degree, k) * w * c_powers[degree - k]
            for k in range(1, degree)
        ]
        psi.append(ops.sum(w * c_powers[degree], axis=-1, keepdims=True))
        return ops.concatenate(phi, axis=-1), ops.concatenate(psi, axis=-1)

    dtype = keras.backend.standardize_dtype(a.dtype)
    finfo_max = 1.7976931348623157e308 if dtype == "float64" else (
        3.4028234663852886e38
    )
    lowest = ops.convert_to_tensor(-finfo_max, dtype=dtype)
    alpha = ops.stop_gradient(ops.max(a, axis=-1, keepdims=True))
    key_max = ops.max(c, axis=-1)  # (B, N, S)
    if kept_keys is not None:
        key_max = ops.where(kept_keys, key_max, lowest)
    gamma = ops.stop_gradient(ops.max(key_max, axis=-1, keepdims=True))
    # No kept key at all: any finite shift will do.
    gamma = ops.where(gamma > lowest, gamma, ops.zeros_like(gamma))
    gamma = ops.expand_dims(gamma, -1)  # (B, N, 1, 1)
    weight_sum = ops.stop_gradient(ops.sum(ops.abs(w), axis=-1, keepdims=True))
    limit = math.log(finfo_max / 2) - ops.log(
        _maximum(weight_sum, ops.ones_like(weight_sum))
    )
    phi = ops.exp(a - alpha + _minimum(alpha + gamma, limit))
    psi = w * ops.exp(_minimum(c - gamma, ops.zeros_like(c)))
    return phi, psi


# Keras' torch `minimum` / `maximum` return float32 for float64 inputs
# (keras 3.15.1); `where` keeps the dtype on every backend.
def _minimum(x, y):
    return ops.where(x <= y, x, y)  # ties: x, which carries the gradient


def _maximum(x, y):
    return ops.where(x >= y, x, y)


def _uses_dot_product_attention(dtype):
    """Whether to call `keras.ops.dot_product_attention` rather than the
    explicit form (einsum, `masked_softmax`, einsum; same memory as
    `MultiHeadAttention` on a CPU).

    Not for float64: Keras computes its softmax in float32 (JAX, PyTorch).
    Not on TensorFlow: there it is the same einsum-softmax-einsum, with no
    fused kernel, and its gradient through rows with a saturated softmax
    (exponential scores) measured up to 3e-3 off the exact zero, where
    `masked_softmax`'s gradient is exact."""
    return (
        keras.backend.standardize_dtype(dtype) != "float64"
        and keras.backend.backend() != "tensorflow"
    )


def _on_accelerator():
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    return False


def _pad_last(x, width):
    extra = width - x.shape[-1]
    if extra <= 0:
        return x
    return ops.pad(x, [[0, 0]] * (len(x.shape) - 1) + [[0, extra]])


def _causal_mask(query_length, key_length):
    """`(1, 1, T, S)`, True where key `j <= query i` (as `ops.attention`)."""
    rows = ops.expand_dims(ops.arange(query_length, dtype="int32"), 1)
    cols = ops.expand_dims(ops.arange(key_length, dtype="int32"), 0)
    return ops.greater_equal(rows, cols)[None, None]


def separable_attention(
    query,
    key,
    value,
    weights,
    activation,
    attention_mask=None,
    causal=False,
    dropout=None,
    return_attention_scores=False,
):
    """Neural Attention with a separable single-layer scoring network, as
    `keras.ops.dot_product_attention` on expanded features.

    Computes the same function as `neural_attention(...,
    implementation="factored")` (see the module docstring for the
    exponential activation beyond float range).

    Args:
        query: `(B, T, N, key_dim)`.
        key: `(B, S, N, key_dim)`.
        value: `(B, S, N, value_dim)`.
        weights: `ScoringWeights` with one hidden layer.
        activation: a separable activation callable (see `separable_form`).
        attention_mask: optional boolean, broadcastable to `(B, N, T, S)`
            (rank 4); `True` keeps a pair. Rows with no kept pair output
            zeros.
        causal: also mask every key after its query position (`j > i`).
        dropout: optional callable applied to the probabilities.
        return_attention_scores: also return the probabilities.

    Returns:
        `(output, probabilities)` as `neural_attention`.
    """
    dtype = scoring_dtype(query.dtype)
    weights = cast_scoring_weights(weights, dtype)
    a = query_terms(ops.cast(query, dtype), weights, "factored")
    c = key_terms(ops.cast(key, dtype), weights, "factored")
    query_length, key_length = a.shape[2], c.shape[2]
    if query_length is None or key_length is None:
        query_length, key_length = ops.shape(a)[2], ops.shape(c)[2]

    mask = None
    if attention_mask is not None:
        mask = ops.cast(attention_mask, "bool")
    full_mask = mask
    if causal:
        causal_mask = _causal_mask(query_length, key_length)
        full_mask = (
            causal_mask if mask is None else ops.logical_and(mask, causal_mask)
        )
    kept_keys = None
    if full_mask is not None:
        kept_keys = ops.any(full_mask, axis=2)  # (B|1, N|1, S)

    phi, psi = expanded_features(a, c, weights, activation, kept_keys)
    # Terms with an exact zero gradient keep every weight in the graph (the
    # output bias cancels in the softmax; `linear` scores ignore `a`).
    anchor = (
        ops.sum(weights.output_bias) + ops.sum(a[:, :1, :1, :1])
    ) * 0

    explicit = (
        dropout is not None
        or return_attention_scores
        or not _uses_dot_product_attention(dtype)
    )
    if explicit:
        scores = ops.einsum("bntf,bnsf->bnts", phi, psi)
        probs = masked_softmax(scores, full_mask)
        used = probs if dropout is None else dropout(probs)
        out = ops.einsum(
            "bnts,bsnd->btnd", ops.cast(used, value.dtype), value
        )
        out = out + ops.cast(anchor, out.dtype)
        return out, (probs if return_attention_scores else None)

    value_width = value.shape[-1]
    v = ops.cast(value, dtype)
    width = phi.shape[-1]
    if keras.backend.backend() == "jax" or _on_accelerator():
        # jax.nn.dot_product_attention needs one head size for queries, keys
        # and values; flash kernels want equal sizes in multiples of 8. Zero
        # features add nothing to a dot product, zero values are cut off.
        # (PyTorch on a CPU is left unpadded: its SDPA then takes the math
        # kernel, which stores the (T, S) scores. Padded, it takes the CPU
        # flash kernel, whose gradients measured up to 2e-4 off the factored
        # path for 'cube' scores, beyond this package's 1e-4.)
        width = max(width, value_width)
        if _on_accelerator():
            width = -(-width // 8) * 8
        v = _pad_last(v, width)
    phi = _pad_last(ops.transpose(phi, (0, 2, 1, 3)), width)
    psi = _pad_last(ops.transpose(psi, (0, 2, 1, 3)), width)

    dpa_mask = None
    row_kept = None
    if mask is not None:
        # A row with no kept key attends everywhere (never NaN) and is then
        # zeroed, so it also gets a zero gradient.
        row_kept = ops.any(full_mask, axis=-1, keepdims=True)
        dpa_mask = ops.logical_or(full_mask, ops.logical_not(row_kept))
    out = ops.dot_product_attention(
        phi,
        psi,
        v,
        mask=dpa_mask,
        scale=1.0,
        is_causal=bool(causal) and mask is None,
        flash_attention=_flash_setting(dpa_mask),
    )
    out = out[..., :value_width]
    if row_kept is not None:
        out = ops.where(
            ops.transpose(row_kept, (0, 2, 1, 3)), out, ops.zeros_like(out)
        )
    out = ops.cast(out, value.dtype)
    return out + ops.cast(anchor, out.dtype), None


def _flash_setting(mask):
    """`flash_attention` for `dot_product_attention`: Keras decides (None),
    except on TPU with a mask, where Keras' Splash path applies the first
    batch element's mask to the whole batch."""
    if mask is None or keras.backend.backend() != "jax":
        return None
    import jax

    if jax.default_backend() == "tpu":
        return False
    return None
