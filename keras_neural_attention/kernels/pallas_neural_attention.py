"""Fused, flash-style Neural Attention for JAX in Pallas (Triton lowering).

Neural Attention scores a (query, key) pair with a small feed-forward
network. Its first layer splits into a per-query term `a_i = q'_i W_1[:d'] +
b_1` and a per-key term `c_j = k'_j W_1[d':]` (see `ops.scoring`), so

    h1_ij = relu(a_i + c_j)                      (H1 units)
    h_ij  = relu(h_ij W_l + b_l)                 (further layers l = 2..L)
    s_ij  = h_ij w_out                           (the output bias cancels)
    out_i = sum_j softmax_j(s_ij masked) v_j

`pallas_neural_attention` computes `out` FlashAttention-2 style: one program
per (query block, batch, head) loops over key blocks with an online softmax;
neither the `(T, S)` scores nor the `(T, S, H)` activations are ever stored.
The backward pass (`jax.custom_vjp`) recomputes the scores per tile from the
saved log-sum-exp: a query-major kernel accumulates `d a`, a key-major kernel
accumulates `d c`, `d v` and per-program partial sums of the weight
gradients, which are summed in `jnp`. With a single hidden layer the kernels
only return the ReLU gate sums and every gradient follows in `jnp` from ReLU's
positive homogeneity (see `_tile_backward`).

Performance status (H100, see the constants below): the paper's network
(H1 = 2, then width 1) runs at about 3x cuDNN flash attention; wide first
layers are slow, especially the backward pass (H1 = 32: backward about 10x
the forward), most likely register pressure from the per-unit accumulators
(not yet profiled).

Precision of near-zero weight gradients (checked against float64, issue
13): the gradient of a last-hidden-layer bias is `d b_L[u] = sum_ij dS_ij
w_out[u] 1[pre_L[u]_ij > 0]`. For a unit active on every kept pair the gate
is constant and the sum is `w_out[u] sum_i sum_j dS_ij = 0` exactly (a bias
added to every score of a row cancels in the softmax, so each row of dS sums
to 0); float32 then returns rounding noise of order eps32 * sum |terms|. An
interpreter run had reported relative differences of 1 to 2.3 between this
kernel and the factored float32 path on such gradients; that is noise
against noise, not a bug. Measured (3 hidden layers H1 = 3, (4, 2), per-head
weights, causal, T = 45, S = 20, seeds 0-2; `/tmp` script, not kept):
float64 gives 2e-16 to 1e-15 on the five such units, with sum |terms| of 38
to 76; the kernel and the float32 reference give 1e-8 to 7e-7 of either
sign (relative difference between them 1.4 to 17); measured against float64
as |g32 - g64| / sum |terms|, every last-bias gradient of the kernel is
within 1.3e-8 (0.1 eps32) and of the float32 reference within 2.3e-8. The summation order differs (per tile and
per key-block program here, one reduction there), so the last bits differ.
`test_last_hidden_bias_gradient_against_float64` holds both float32 paths
to 4 eps32 * sum |terms| (the kernel measured 0.1 and 0.25 eps32 there; a
0.1 % error in the bias gradient measures about 640).

The kernels are written to the Pallas API shared by jax 0.10.2 and 0.11.2
(ref indexing with `pl.ds`, `lax.dot_general` with float32 accumulation,
compiler parameters from `jax.experimental.pallas.triton`). On a machine
without a GPU they run in Pallas' interpreter (`interpret=True`), which is
what the test suite exercises; `reference_neural_attention` is the
materializing oracle.

Layout inside the kernels: `a`, `c` are transposed to `(B, N, H1, length)`
(one contiguous row per hidden unit, loaded as a vector), the sequence
lengths are padded to whole blocks (padded keys are masked, padded query rows
sliced off) and the value width is padded to a power of two >= 16 (Triton's
`dot` minimum). All scoring-network weights of one head are packed into one
float32 vector read as scalars.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

try:  # Triton compiler parameters (GPU); absent in very old / odd builds.
    from jax.experimental.pallas import triton as _plgpu
except ImportError:  # pragma: no cover
    _plgpu = None

SUPPORTED_ACTIVATIONS = ("relu",)
SUPPORTED_VALUE_DTYPES = ("float32", "bfloat16", "float16")

# Default tiles: small in the interpreter (cheap on CPU, still several
# blocks for the test shapes). GPU defaults from a short sweep on an H100
# (jax 0.11.2, B = N = 8, T = S = 2048, Dv = 64, bf16 values) over
# (block_q, block_k) in {(32, 32), (64, 32), (64, 64), (128, 64)} and 4 / 8
# warps: (64, 32) was best for forward+backward both for H1 = 2 + a width-1
# layer (4 warps: 1.07 ms forward, 3.5 ms forward+backward; cuDNN flash
# attention: 0.38 / 0.98 ms) and for H1 = 32 (8 warps: 7.0 / 83 ms; (128, 64)
# not measured).
INTERPRET_BLOCK = 16
GPU_BLOCK_Q = 64
GPU_BLOCK_K = 32
# Scoring networks with more hidden units than this get 8 warps, others 4.
SMALL_NETWORK_UNITS = 8
# Largest number of packed weight scalars (hidden layers 2..L plus the
# output kernel) one head may have: every scalar is unrolled into the kernel.
MAX_PACKED_WEIGHTS = 1024
# Largest first-layer width: the first layer is unrolled unit by unit.
MAX_FIRST_WIDTH = 256

_NEG_INF = float("-inf")


# --------------------------------------------------------------------------
# Arguments.


def _activation_name(activation):
    if isinstance(activation, str):
        return activation.lower()
    name = getattr(activation, "__name__", None)
    module = getattr(activation, "__module__", "") or ""
    if name == "relu" and module.split(".")[0] in ("jax", "keras"):
        return "relu"
    return None


def _check_activation(activation):
    if _activation_name(activation) not in SUPPORTED_ACTIVATIONS:
        raise ValueError(
            "The fused Pallas Neural Attention kernel only supports "
            f"`activation` in {SUPPORTED_ACTIVATIONS}. "
            f"Received: activation={activation!r}"
        )


def _is_gpu_backend():
    try:
        return jax.default_backend() == "gpu"
    except Exception:  # pragma: no cover
        return False


def supports(
    activation="relu",
    value_dtype="float32",
    first_width=None,
    hidden_widths=(),
    platform=None,
):
    """Whether `pallas_neural_attention` can run a configuration.

    Args:
        activation: activation of the hidden layers; only `"relu"` (or the
            jax / keras relu function) is supported.
        value_dtype: dtype of the values: float32, bfloat16 or float16.
        first_width: H1, the width of the first hidden layer (optional).
        hidden_widths: widths of the hidden layers 2..L.
        platform: `"gpu"`, `"cpu"`, ... ; defaults to
            `jax.default_backend()`. On `"gpu"` the kernel runs compiled
            through Triton (needs a CUDA GPU of compute capability >= 8.0,
            which this function checks when it can); elsewhere it runs in the
            Pallas interpreter (correct, but slow: for tests only).

    Returns:
        True when the kernel supports the configuration. The check is on
        static properties only: it does not look at sequence lengths.
    """
    if _activation_name(activation) not in SUPPORTED_ACTIVATIONS:
        return False
    try:
        if jnp.dtype(value_dtype).name not in SUPPORTED_VALUE_DTYPES:
            return False
    except TypeError:
        return False
    widths = tuple(int(w) for w in hidden_widths)
    if any(w < 1 for w in widths):
        return False
    if first_width is not None:
        first_width = int(first_width)
        if first_width < 1 or first_width > MAX_FIRST_WIDTH:
            return False
        if _packed_size(first_width, widths) > MAX_PACKED_WEIGHTS:
            return False
    if platform is None:
        platform = jax.default_backend()
    if platform == "gpu":
        if _plgpu is None:
            return False
        try:
            devices = jax.devices("gpu")
            capability = getattr(devices[0], "compute_capability", None)
            if capability is not None and float(capability) < 8.0:
                return False
        except Exception:  # pragma: no cover
            return False
    return True


def _packed_size(first_width, widths):
    size, previous = 0, first_width
    for width in widths:
        size += previous * width + width
        previous = width
    return size + previous


class _Layout(NamedTuple):
    """Offsets of the packed per-head weight vector (all static)."""

    first_width: int
    widths: tuple  # widths of hidden layers 2..L
    kernel_offsets: tuple  # (in, out) row-major kernel of each layer
    bias_offsets: tuple
    output_offset: int
    size: int

    @classmethod
    def make(cls, first_width, widths):
        kernel_offsets, bias_offsets = [], []
        offset, previous = 0, first_width
        for width in widths:
            kernel_offsets.append(offset)
            offset += previous * width
            bias_offsets.append(offset)
            offset += width
            previous = width
        return cls(
            first_width,
            tuple(widths),
            tuple(kernel_offsets),
            tuple(bias_offsets),
            offset,
            offset + previous,
        )

    def in_width(self, layer):
        return self.first_width if layer == 0 else self.widths[layer - 1]

    @property
    def last_width(self):
        return self.widths[-1] if self.widths else self.first_width


class _Config(NamedTuple):
    """Static configuration of one call (hashable: jit / custom_vjp key)."""

    layout: _Layout
    T: int
    S: int
    T_pad: int
    S_pad: int
    block_q: int
    block_k: int
    causal: bool
    has_mask: bool
    mask_batched: bool
    interpret: bool
    num_warps: int
    num_stages: int


def _pack_weights(hidden_layers, output_kernel, heads, first_width):
    """Packs the weights into one `(heads, size)` float32 array (jnp, so
    autodiff carries the gradient back to shared or per-head weights)."""
    pieces = []
    previous = first_width

    def per_head(x, shape):
        x = jnp.asarray(x, jnp.float32)
        if x.ndim == len(shape):
            if tuple(x.shape) != shape:
                raise ValueError(f"Expected a weight of shape {shape}, got "
                                 f"{tuple(x.shape)}.")
            x = jnp.broadcast_to(x, (heads,) + shape)
        elif tuple(x.shape) != (heads,) + shape:
            raise ValueError(
                f"Expected a weight of shape {shape} or {(heads,) + shape}, "
                f"got {tuple(x.shape)}."
            )
        return x.reshape(heads, -1)

    for kernel, bias in hidden_layers:
        width = int(jnp.shape(kernel)[-1])
        pieces.append(per_head(kernel, (previous, width)))
        pieces.append(per_head(bias, (width,)))
        previous = width
    pieces.append(per_head(output_kernel, (previous, 1)))
    return jnp.concatenate(pieces, axis=1)


def _round_up(x, m):
    return -(-x // m) * m


def _block(requested, length, default):
    block = default if requested is None else int(requested)
    if block < 16 or block & (block - 1):
        raise ValueError(
            "Block sizes must be powers of two >= 16. "
            f"Received: {requested!r}"
        )
    # No point in a block much longer than the sequence.
    return min(block, max(16, pl.next_power_of_2(length)))


# --------------------------------------------------------------------------
# Per-tile math shared by the kernels. `a_col(r)` loads the (block_q,) query
# term of unit r, `c_col(r)` the (block_k,) key term (loaded where used, per
# tile and unit, rather than kept in registers across the key loop: for wide
# first layers that would spill), `w` is the list of packed weight scalars.


def _relu(x):
    return jnp.maximum(x, 0.0)


def _tile_scores(a_col, c_col, w, layout):
    """Returns the (block_q, block_k) scores and the pre-activations of the
    hidden layers 2..L (lists of tiles; empty for one hidden layer)."""
    lay = layout
    if not lay.widths:
        s = None
        for r in range(lay.first_width):
            h = _relu(a_col(r)[:, None] + c_col(r)[None, :])
            term = h * w[lay.output_offset + r]
            s = term if s is None else s + term
        return s, []
    # Layer 2 by accumulating each first-layer unit into every layer-2 unit
    # (the first layer is never held whole).
    width = lay.widths[0]
    k0 = lay.kernel_offsets[0]
    pre = [None] * width
    for r in range(lay.first_width):
        h = _relu(a_col(r)[:, None] + c_col(r)[None, :])
        for u in range(width):
            term = h * w[k0 + r * width + u]
            pre[u] = term if pre[u] is None else pre[u] + term
    pre = [p + w[lay.bias_offsets[0] + u] for u, p in enumerate(pre)]
    pres = [pre]
    for layer in range(1, len(lay.widths)):
        h = [_relu(p) for p in pres[-1]]
        n_in, n_out = lay.in_width(layer), lay.widths[layer]
        k_off = lay.kernel_offsets[layer]
        pre = []
        for u in range(n_out):
            acc = h[0] * w[k_off + u]
            for t in range(1, n_in):
                acc = acc + h[t] * w[k_off + t * n_out + u]
            pre.append(acc + w[lay.bias_offsets[layer] + u])
        pres.append(pre)
    s = None
    for u, p in enumerate(pres[-1]):
        term = _relu(p) * w[lay.output_offset + u]
        s = term if s is None else s + term
    return s, pres


def _tile_backward(ds, a_col, c_col, pres, w, layout, axis, want_weights):
    """Backpropagates `ds` (d loss / d score, a tile) through the scoring
    network of the tile.

    Returns `(d_first, d_weights)`: `d_first[r]` is d loss / d (a or c) of
    unit r summed over `axis` (1: per query, 0: per key); `d_weights` maps
    packed-weight indices to (block_k,) partial sums over the tile's queries
    (only when `want_weights`).

    One hidden layer (`s = sum_r w_r relu(pre_r)`) is special-cased:
    `d_first[r]` is the gate sum `G_r = sum dS 1[pre_r > 0]` *without* the
    factor `w_r`, and no weight gradient is computed in the kernel: ReLU is
    positively homogeneous (`relu(x) = x 1[x > 0]`, `pre = a_i + c_j`), so
    `d w_r = sum_ij dS relu(pre) = sum_i a_ir G^a_ir + sum_j c_jr G^c_jr`,
    which `_fused_bwd` forms in `jnp` from the two kernels' gate sums.
    """
    lay = layout
    dw = {}
    d_first = [None] * lay.first_width
    if not lay.widths:
        for r in range(lay.first_width):
            pre = a_col(r)[:, None] + c_col(r)[None, :]
            d_first[r] = jnp.sum(jnp.where(pre > 0, ds, 0.0), axis=axis)
        return d_first, dw
    hs = [_relu(p) for p in pres[-1]]
    dh = []
    for u, h in enumerate(hs):
        dh.append(ds * w[lay.output_offset + u])
        if want_weights:
            dw[lay.output_offset + u] = jnp.sum(ds * h, axis=0)
    for layer in range(len(lay.widths) - 1, -1, -1):
        n_in, n_out = lay.in_width(layer), lay.widths[layer]
        k_off = lay.kernel_offsets[layer]
        dpre = [jnp.where(p > 0, g, 0.0) for p, g in zip(pres[layer], dh)]
        if want_weights:
            for u in range(n_out):
                dw[lay.bias_offsets[layer] + u] = jnp.sum(dpre[u], axis=0)
        if layer > 0:
            h_in = [_relu(p) for p in pres[layer - 1]]
            dh = []
            for t in range(n_in):
                acc = dpre[0] * w[k_off + t * n_out]
                for u in range(1, n_out):
                    acc = acc + dpre[u] * w[k_off + t * n_out + u]
                dh.append(acc)
                if want_weights:
                    for u in range(n_out):
                        dw[k_off + t * n_out + u] = jnp.sum(
                            dpre[u] * h_in[t], axis=0
                        )
        else:
            # The first layer, recomputed unit by unit.
            for r in range(lay.first_width):
                pre1 = a_col(r)[:, None] + c_col(r)[None, :]
                acc = dpre[0] * w[k_off + r * n_out]
                for u in range(1, n_out):
                    acc = acc + dpre[u] * w[k_off + r * n_out + u]
                d_first[r] = jnp.sum(
                    jnp.where(pre1 > 0, acc, 0.0), axis=axis
                )
                if want_weights:
                    h1 = _relu(pre1)
                    for u in range(n_out):
                        dw[k_off + r * n_out + u] = jnp.sum(
                            dpre[u] * h1, axis=0
                        )
    return d_first, dw


def _keep_tile(q_start, k_start, cfg, mask_tile):
    """Boolean (block_q, block_k) tile of kept pairs, or None if all kept."""
    bq, bk = cfg.block_q, cfg.block_k
    keep = None
    if cfg.causal or (cfg.S_pad != cfg.S and not cfg.has_mask):
        k_idx = k_start + lax.broadcasted_iota(jnp.int32, (bq, bk), 1)
        if cfg.S_pad != cfg.S and not cfg.has_mask:
            keep = k_idx < cfg.S
        if cfg.causal:
            q_idx = q_start + lax.broadcasted_iota(jnp.int32, (bq, bk), 0)
            causal = q_idx >= k_idx
            keep = causal if keep is None else jnp.logical_and(keep, causal)
    if mask_tile is not None:
        kept = mask_tile != 0
        keep = kept if keep is None else jnp.logical_and(keep, kept)
    return keep


def _dot(x, y, trans_a=False, trans_b=False):
    """x @ y (optionally transposed operands) with float32 accumulation;
    IEEE float32 for float32 operands (no TF32)."""
    dims = (((0,) if trans_a else (1,), (1,) if trans_b else (0,)), ((), ()))
    precision = (
        lax.Precision.HIGHEST if x.dtype == jnp.float32 else None
    )
    return lax.dot_general(
        x, y, dims, precision=precision, preferred_element_type=jnp.float32
    )


def _load_weights(w_ref, layout):
    return [w_ref[i] for i in range(layout.size)]


def _num_key_blocks(cfg, q_block):
    n_k = cfg.S_pad // cfg.block_k
    if not cfg.causal:
        return n_k
    # Keys up to the last query of the block: ceil((i + 1) bq / bk).
    # Static divisors as int32: `lax.div` does not promote, and with
    # `jax_enable_x64` a Python int would become int64 against the int32
    # program id.
    upper = lax.div(
        (q_block + 1) * cfg.block_q + cfg.block_k - 1,
        jnp.int32(cfg.block_k),
    )
    return jnp.minimum(upper, n_k)


def _first_query_block(cfg, k_block):
    if not cfg.causal:
        return 0
    return lax.div(k_block * cfg.block_k, jnp.int32(cfg.block_q))


# --------------------------------------------------------------------------
# Kernels.


def _forward_kernel(a_ref, c_ref, v_ref, w_ref, *refs, cfg):
    if cfg.has_mask:
        mask_ref, o_ref, lse_ref = refs
    else:
        mask_ref = None
        o_ref, lse_ref = refs
    lay = cfg.layout
    bq, bk = cfg.block_q, cfg.block_k
    i = pl.program_id(0)
    q_start = i * bq
    w = _load_weights(w_ref, lay)
    dv = o_ref.shape[-1]

    def body(kb, carry):
        acc, m, l = carry
        k_start = kb * bk
        k_slice = pl.ds(k_start, bk)
        # The columns are (re)loaded per tile rather than kept in registers
        # across the loop: for wide first layers that would spill.
        a_col = lambda r: a_ref[r, :]  # noqa: E731
        c_col = lambda r: c_ref[r, k_slice]  # noqa: E731
        s, _ = _tile_scores(a_col, c_col, w, lay)
        mask_tile = None if mask_ref is None else mask_ref[:, k_slice]
        keep = _keep_tile(q_start, k_start, cfg, mask_tile)
        if keep is not None:
            s = jnp.where(keep, s, _NEG_INF)
        m_new = jnp.maximum(m, jnp.max(s, axis=1))
        if keep is not None:
            # Rows with nothing kept so far: subtract 0, exp(-inf) = 0.
            m_safe = jnp.where(m_new == _NEG_INF, 0.0, m_new)
        else:
            m_safe = m_new
        p = jnp.exp(s - m_safe[:, None])
        alpha = jnp.exp(m - m_safe)
        l = l * alpha + jnp.sum(p, axis=1)
        v = v_ref[k_slice, :]
        acc = acc * alpha[:, None] + _dot(p.astype(v.dtype), v)
        return acc, m_new, l

    carry = (
        jnp.zeros((bq, dv), jnp.float32),
        jnp.full((bq,), _NEG_INF, jnp.float32),
        jnp.zeros((bq,), jnp.float32),
    )
    acc, m, l = lax.fori_loop(0, _num_key_blocks(cfg, i), body, carry)
    empty = l == 0.0
    l_safe = jnp.where(empty, 1.0, l)
    o_ref[...] = (acc / l_safe[:, None]).astype(o_ref.dtype)
    lse_ref[...] = jnp.where(empty, 0.0, m + jnp.log(l_safe))


def _backward_query_kernel(a_ref, c_ref, v_ref, w_ref, *refs, cfg):
    """d a for one query block (loop over key blocks)."""
    if cfg.has_mask:
        mask_ref, do_ref, lse_ref, delta_ref, da_ref = refs
    else:
        mask_ref = None
        do_ref, lse_ref, delta_ref, da_ref = refs
    lay = cfg.layout
    bq, bk = cfg.block_q, cfg.block_k
    i = pl.program_id(0)
    q_start = i * bq
    w = _load_weights(w_ref, lay)
    do = do_ref[...]
    lse = lse_ref[...]
    delta = delta_ref[...]

    def body(kb, d_a):
        k_start = kb * bk
        k_slice = pl.ds(k_start, bk)
        a_col = lambda r: a_ref[r, :]  # noqa: E731
        c_col = lambda r: c_ref[r, k_slice]  # noqa: E731
        s, pres = _tile_scores(a_col, c_col, w, lay)
        mask_tile = None if mask_ref is None else mask_ref[:, k_slice]
        keep = _keep_tile(q_start, k_start, cfg, mask_tile)
        if keep is not None:
            s = jnp.where(keep, s, _NEG_INF)
        p = jnp.exp(s - lse[:, None])
        v = v_ref[k_slice, :]
        dp = _dot(do, v, trans_b=True)
        ds = p * (dp - delta[:, None])
        d_first, _ = _tile_backward(
            ds, a_col, c_col, pres, w, lay, axis=1, want_weights=False
        )
        return tuple(x + y for x, y in zip(d_a, d_first))

    d_a = tuple(
        jnp.zeros((bq,), jnp.float32) for _ in range(lay.first_width)
    )
    d_a = lax.fori_loop(0, _num_key_blocks(cfg, i), body, d_a)
    for r in range(lay.first_width):
        da_ref[r, :] = d_a[r]


def _backward_key_kernel(a_ref, c_ref, v_ref, w_ref, *refs, cfg):
    """d c, d v and partial weight gradients for one key block (loop over
    query blocks)."""
    lay = cfg.layout
    want_weights = bool(lay.widths)
    if cfg.has_mask:
        mask_ref, *refs = refs
    else:
        mask_ref = None
    if want_weights:
        do_ref, lse_ref, delta_ref, dc_ref, dv_ref, dw_ref = refs
    else:
        do_ref, lse_ref, delta_ref, dc_ref, dv_ref = refs
    bq, bk = cfg.block_q, cfg.block_k
    j = pl.program_id(0)
    k_start = j * bk
    w = _load_weights(w_ref, lay)
    v = v_ref[...]

    def body(qb, carry):
        d_c, d_v, d_w = carry
        q_start = qb * bq
        q_slice = pl.ds(q_start, bq)
        a_col = lambda r: a_ref[r, q_slice]  # noqa: E731
        c_col = lambda r: c_ref[r, :]  # noqa: E731
        s, pres = _tile_scores(a_col, c_col, w, lay)
        mask_tile = None if mask_ref is None else mask_ref[q_slice, :]
        keep = _keep_tile(q_start, k_start, cfg, mask_tile)
        if keep is not None:
            s = jnp.where(keep, s, _NEG_INF)
        lse = lse_ref[q_slice]
        delta = delta_ref[q_slice]
        p = jnp.exp(s - lse[:, None])
        do = do_ref[q_slice, :]
        d_v = d_v + _dot(p.astype(do.dtype), do, trans_a=True)
        dp = _dot(do, v, trans_b=True)
        ds = p * (dp - delta[:, None])
        d_first, dw = _tile_backward(
            ds, a_col, c_col, pres, w, lay, axis=0,
            want_weights=want_weights,
        )
        d_c = tuple(x + y for x, y in zip(d_c, d_first))
        d_w = tuple(x + dw[k] for k, x in enumerate(d_w))
        return d_c, d_v, d_w

    zeros = jnp.zeros((bk,), jnp.float32)
    carry = (
        tuple(zeros for _ in range(lay.first_width)),
        jnp.zeros((bk, dv_ref.shape[-1]), jnp.float32),
        tuple(zeros for _ in range(lay.size if want_weights else 0)),
    )
    n_q = cfg.T_pad // bq
    d_c, d_v, d_w = lax.fori_loop(
        _first_query_block(cfg, j), n_q, body, carry
    )
    for r in range(lay.first_width):
        dc_ref[r, :] = d_c[r]
    dv_ref[...] = d_v.astype(dv_ref.dtype)
    for k in range(len(d_w)):
        dw_ref[k] = jnp.sum(d_w[k])


# --------------------------------------------------------------------------
# pallas_call wrappers on padded, transposed arrays:
#   a_t (B, N, H1, T_pad) f32, c_t (B, N, H1, S_pad) f32,
#   v (B, N, S_pad, Dv_pad), w (N, P) f32, mask (Bm, T_pad, S_pad) int8.


def _compiler_params(cfg):
    if cfg.interpret or _plgpu is None:
        return None
    return _plgpu.CompilerParams(
        num_warps=cfg.num_warps, num_stages=cfg.num_stages
    )


def _mask_index(cfg):
    if cfg.mask_batched:
        return lambda b: b
    return lambda b: 0


def _query_major_inputs(a_t, c_t, v, w, mask, cfg):
    """Block specs and arguments shared by the kernels whose grid walks the
    query blocks (forward and query-side backward): a query block of `a`,
    all of `c`, `v`, the head's packed weights, and the mask rows."""
    H1, S_pad, dv = a_t.shape[2], v.shape[2], v.shape[3]
    bq = cfg.block_q
    mb = _mask_index(cfg)
    in_specs = [
        pl.BlockSpec((None, None, H1, bq), lambda i, b, n: (b, n, 0, i)),
        pl.BlockSpec((None, None, H1, S_pad), lambda i, b, n: (b, n, 0, 0)),
        pl.BlockSpec((None, None, S_pad, dv), lambda i, b, n: (b, n, 0, 0)),
        pl.BlockSpec((None, w.shape[1]), lambda i, b, n: (n, 0)),
    ]
    args = [a_t, c_t, v, w]
    if cfg.has_mask:
        in_specs.append(
            pl.BlockSpec((None, bq, S_pad), lambda i, b, n: (mb(b), i, 0))
        )
        args.append(mask)
    return in_specs, args


def _forward_call(a_t, c_t, v, w, mask, cfg):
    B, N, H1, T_pad = a_t.shape
    dv = v.shape[3]
    bq = cfg.block_q
    in_specs, args = _query_major_inputs(a_t, c_t, v, w, mask, cfg)
    return pl.pallas_call(
        functools.partial(_forward_kernel, cfg=cfg),
        grid=(T_pad // bq, B, N),
        in_specs=in_specs,
        out_specs=[
            pl.BlockSpec((None, None, bq, dv), lambda i, b, n: (b, n, i, 0)),
            pl.BlockSpec((None, None, bq), lambda i, b, n: (b, n, i)),
        ],
        out_shape=[
            jax.ShapeDtypeStruct((B, N, T_pad, dv), v.dtype),
            jax.ShapeDtypeStruct((B, N, T_pad), jnp.float32),
        ],
        compiler_params=_compiler_params(cfg),
        interpret=cfg.interpret,
        name="neural_attention_forward",
    )(*args)


def _backward_query_call(a_t, c_t, v, w, mask, do, lse, delta, cfg):
    B, N, H1, T_pad = a_t.shape
    dv = v.shape[3]
    bq = cfg.block_q
    in_specs, args = _query_major_inputs(a_t, c_t, v, w, mask, cfg)
    in_specs += [
        pl.BlockSpec((None, None, bq, dv), lambda i, b, n: (b, n, i, 0)),
        pl.BlockSpec((None, None, bq), lambda i, b, n: (b, n, i)),
        pl.BlockSpec((None, None, bq), lambda i, b, n: (b, n, i)),
    ]
    args += [do, lse, delta]
    return pl.pallas_call(
        functools.partial(_backward_query_kernel, cfg=cfg),
        grid=(T_pad // bq, B, N),
        in_specs=in_specs,
        out_specs=pl.BlockSpec(
            (None, None, H1, bq), lambda i, b, n: (b, n, 0, i)
        ),
        out_shape=jax.ShapeDtypeStruct(a_t.shape, jnp.float32),
        compiler_params=_compiler_params(cfg),
        interpret=cfg.interpret,
        name="neural_attention_backward_query",
    )(*args)


def _backward_key_call(a_t, c_t, v, w, mask, do, lse, delta, cfg):
    B, N, H1, T_pad = a_t.shape
    S_pad, dv = v.shape[2], v.shape[3]
    bk = cfg.block_k
    n_k = S_pad // bk
    P = w.shape[1]
    mb = _mask_index(cfg)
    in_specs = [
        pl.BlockSpec((None, None, H1, T_pad), lambda j, b, n: (b, n, 0, 0)),
        pl.BlockSpec((None, None, H1, bk), lambda j, b, n: (b, n, 0, j)),
        pl.BlockSpec((None, None, bk, dv), lambda j, b, n: (b, n, j, 0)),
        pl.BlockSpec((None, P), lambda j, b, n: (n, 0)),
    ]
    args = [a_t, c_t, v, w]
    if cfg.has_mask:
        in_specs.append(
            pl.BlockSpec((None, T_pad, bk), lambda j, b, n: (mb(b), 0, j))
        )
        args.append(mask)
    in_specs += [
        pl.BlockSpec((None, None, T_pad, dv), lambda j, b, n: (b, n, 0, 0)),
        pl.BlockSpec((None, None, T_pad), lambda j, b, n: (b, n, 0)),
        pl.BlockSpec((None, None, T_pad), lambda j, b, n: (b, n, 0)),
    ]
    args += [do, lse, delta]
    out_specs = [
        pl.BlockSpec((None, None, H1, bk), lambda j, b, n: (b, n, 0, j)),
        pl.BlockSpec((None, None, bk, dv), lambda j, b, n: (b, n, j, 0)),
    ]
    out_shape = [
        jax.ShapeDtypeStruct(c_t.shape, jnp.float32),
        jax.ShapeDtypeStruct(v.shape, v.dtype),
    ]
    if cfg.layout.widths:  # weight gradients: partial sums per program
        out_specs.append(
            pl.BlockSpec((None, None, None, P), lambda j, b, n: (j, b, n, 0))
        )
        out_shape.append(jax.ShapeDtypeStruct((n_k, B, N, P), jnp.float32))
    return pl.pallas_call(
        functools.partial(_backward_key_kernel, cfg=cfg),
        grid=(n_k, B, N),
        in_specs=in_specs,
        out_specs=out_specs,
        out_shape=out_shape,
        compiler_params=_compiler_params(cfg),
        interpret=cfg.interpret,
        name="neural_attention_backward_key",
    )(*args)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _fused(a_t, c_t, v, w, mask, cfg):
    return _forward_call(a_t, c_t, v, w, mask, cfg)[0]


def _fused_fwd(a_t, c_t, v, w, mask, cfg):
    out, lse = _forward_call(a_t, c_t, v, w, mask, cfg)
    return out, (a_t, c_t, v, w, mask, out, lse)


def _fused_bwd(cfg, residuals, d_out):
    a_t, c_t, v, w, mask, out, lse = residuals
    d_out = d_out.astype(v.dtype)
    delta = jnp.sum(
        d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1
    )
    d_a = _backward_query_call(a_t, c_t, v, w, mask, d_out, lse, delta, cfg)
    outs = _backward_key_call(a_t, c_t, v, w, mask, d_out, lse, delta, cfg)
    if cfg.layout.widths:
        d_c, d_v, d_w = outs
        d_w = jnp.sum(d_w, axis=(0, 1))
    else:
        # One hidden layer: the kernels returned gate sums G (see
        # `_tile_backward`); d a = w G^a, d c = w G^c and
        # d w_r = sum_i a_ir G^a_ir + sum_j c_jr G^c_jr (ReLU homogeneity).
        g_a, (g_c, d_v) = d_a, outs
        w_out = w[None, :, :, None]  # (N, H1) -> (1, N, H1, 1)
        d_a, d_c = g_a * w_out, g_c * w_out
        d_w = jnp.sum(a_t * g_a, axis=(0, 3)) + jnp.sum(c_t * g_c, axis=(0, 3))
    return d_a, d_c, d_v, d_w, None


_fused.defvjp(_fused_fwd, _fused_bwd)


# --------------------------------------------------------------------------
# Public API.


def _validate(a, c, v, hidden_layers, output_kernel, mask):
    if a.ndim != 4 or c.ndim != 4 or v.ndim != 4:
        raise ValueError(
            "Expected `a` (B, N, T, H1), `c` (B, N, S, H1) and `v` "
            f"(B, N, S, Dv). Received shapes {a.shape}, {c.shape}, {v.shape}."
        )
    B, N, T, H1 = a.shape
    if c.shape[:2] != (B, N) or c.shape[3] != H1:
        raise ValueError(f"`c` shape {c.shape} does not match `a` {a.shape}.")
    S = c.shape[2]
    if v.shape[:3] != (B, N, S):
        raise ValueError(f"`v` shape {v.shape} does not match `c` {c.shape}.")
    if jnp.dtype(v.dtype).name not in SUPPORTED_VALUE_DTYPES:
        raise ValueError(
            f"`v` must be one of {SUPPORTED_VALUE_DTYPES}. "
            f"Received dtype {v.dtype}."
        )
    if output_kernel is None:
        raise ValueError("`output_kernel` is required.")
    for layer in hidden_layers:
        if len(layer) != 2:
            raise ValueError(
                "`hidden_layers` must be a sequence of (kernel, bias) pairs."
            )
    if mask is not None:
        if mask.ndim != 3 or mask.shape[0] not in (1, B) or tuple(
            mask.shape[1:]
        ) != (T, S):
            raise ValueError(
                f"`mask` must have shape ({B} or 1, {T}, {S}). "
                f"Received {mask.shape}."
            )


def pallas_neural_attention(
    a,
    c,
    v,
    hidden_layers=(),
    output_kernel=None,
    mask=None,
    causal=False,
    activation="relu",
    block_q=None,
    block_k=None,
    interpret=None,
    *,
    num_warps=None,
    num_stages=None,
):
    """Fused Neural Attention (forward and backward Pallas kernels).

    Args:
        a: `(B, N, T, H1)` first-layer query term including the first bias
            `b1`; computed in float32.
        c: `(B, N, S, H1)` first-layer key term.
        v: `(B, N, S, Dv)` values: float32, bfloat16 or float16.
        hidden_layers: tuple of `(kernel, bias)` pairs for hidden layers
            2..L: kernel `(H_{l-1}, H_l)` shared by all heads or
            `(N, H_{l-1}, H_l)` per head; bias `(H_l,)` or `(N, H_l)`.
        output_kernel: `(H_L, 1)` or `(N, H_L, 1)`. The output bias is not
            passed: it cancels in the row softmax.
        mask: optional boolean `(B or 1, T, S)`, True = keep. Rows with no
            kept key output exactly 0.
        causal: mask key `j > query i` (top-left aligned) and skip the key
            blocks above the diagonal.
        activation: `"relu"` (the only supported activation; anything else
            raises `ValueError`).
        block_q: query tile size (a power of two >= 16); default 16 in the
            interpreter, 64 on a GPU.
        block_k: key tile size; default 16 in the interpreter, 32 on a GPU.
        interpret: run in the Pallas interpreter; `None` = when the default
            backend is not a GPU.
        num_warps: Triton launch parameter (GPU tuning; default 4 warps for
            scoring networks of at most 8 hidden units, else 8; ignored by
            the interpreter).
        num_stages: Triton pipelining stages (default 2; ignored by the
            interpreter).

    Returns:
        `(B, N, T, Dv)` in `v.dtype`, differentiable (`jax.custom_vjp`) with
        respect to `a`, `c`, `v`, every hidden-layer kernel and bias and
        `output_kernel`. Works under `jax.jit`, `jax.grad` and `jax.vmap`.
    """
    _check_activation(activation)
    a = jnp.asarray(a)
    c = jnp.asarray(c)
    v = jnp.asarray(v)
    hidden_layers = tuple(tuple(layer) for layer in hidden_layers)
    if mask is not None:
        mask = jnp.asarray(mask)
    _validate(a, c, v, hidden_layers, output_kernel, mask)
    B, N, T, H1 = a.shape
    S, dv = c.shape[2], v.shape[3]
    widths = tuple(int(jnp.shape(k)[-1]) for k, _ in hidden_layers)
    layout = _Layout.make(H1, widths)
    if interpret is None:
        interpret = not _is_gpu_backend()
    interpret = bool(interpret)
    default_q = INTERPRET_BLOCK if interpret else GPU_BLOCK_Q
    default_k = INTERPRET_BLOCK if interpret else GPU_BLOCK_K
    bq = _block(block_q, T, default_q)
    bk = _block(block_k, S, default_k)
    T_pad, S_pad = _round_up(T, bq), _round_up(S, bk)
    dv_pad = max(16, pl.next_power_of_2(dv))
    cfg = _Config(
        layout=layout,
        T=T,
        S=S,
        T_pad=T_pad,
        S_pad=S_pad,
        block_q=bq,
        block_k=bk,
        causal=bool(causal),
        has_mask=mask is not None,
        mask_batched=mask is not None and mask.shape[0] == B and B > 1,
        interpret=interpret,
        num_warps=(
            (4 if H1 + sum(widths) <= SMALL_NETWORK_UNITS else 8)
            if num_warps is None else int(num_warps)
        ),
        num_stages=2 if num_stages is None else int(num_stages),
    )
    w = _pack_weights(hidden_layers, output_kernel, N, H1)
    a_t = jnp.swapaxes(a.astype(jnp.float32), 2, 3)
    c_t = jnp.swapaxes(c.astype(jnp.float32), 2, 3)
    a_t = jnp.pad(a_t, ((0, 0), (0, 0), (0, 0), (0, T_pad - T)))
    c_t = jnp.pad(c_t, ((0, 0), (0, 0), (0, 0), (0, S_pad - S)))
    v_p = jnp.pad(v, ((0, 0), (0, 0), (0, S_pad - S), (0, dv_pad - dv)))
    mask_p = None
    if mask is not None:
        mask_p = jnp.pad(
            mask.astype(jnp.int8), ((0, 0), (0, T_pad - T), (0, S_pad - S))
        )
    out = _fused(a_t, c_t, v_p, w, mask_p, cfg)
    return out[:, :, :T, :dv]


def reference_neural_attention(
    a,
    c,
    v,
    hidden_layers=(),
    output_kernel=None,
    mask=None,
    causal=False,
    activation="relu",
    block_q=None,
    block_k=None,
    interpret=None,
):
    """Plain `jnp` Neural Attention that materializes the `(B, N, T, S, H)`
    activations: the oracle for tests and benchmarks. Same signature and
    semantics as `pallas_neural_attention` (`block_q`, `block_k` and
    `interpret` are ignored); float32 math, output in `v.dtype`."""
    del block_q, block_k, interpret
    _check_activation(activation)
    a = jnp.asarray(a, jnp.float32)
    c = jnp.asarray(c, jnp.float32)
    v = jnp.asarray(v)
    hidden_layers = tuple(tuple(layer) for layer in hidden_layers)
    if mask is not None:
        mask = jnp.asarray(mask)
    _validate(a, c, v, hidden_layers, output_kernel, mask)
    T, S = a.shape[2], c.shape[2]
    N = a.shape[1]
    highest = lax.Precision.HIGHEST

    def dense(x, kernel, bias):
        kernel = jnp.asarray(kernel, jnp.float32)
        if kernel.ndim == 3:
            y = jnp.einsum("bntsi,nio->bntso", x, kernel, precision=highest)
        else:
            y = jnp.einsum("bntsi,io->bntso", x, kernel, precision=highest)
        if bias is not None:
            bias = jnp.asarray(bias, jnp.float32)
            if bias.ndim == 2:
                bias = bias.reshape(1, N, 1, 1, -1)
            y = y + bias
        return y

    h = jax.nn.relu(a[:, :, :, None, :] + c[:, :, None, :, :])
    for kernel, bias in hidden_layers:
        h = jax.nn.relu(dense(h, kernel, bias))
    s = dense(h, output_kernel, None)[..., 0]
    keep = jnp.ones((1, 1, T, S), bool)
    if mask is not None:
        keep = jnp.logical_and(keep, mask.astype(bool)[:, None])
    if causal:
        keep = jnp.logical_and(keep, jnp.tril(jnp.ones((T, S), bool)))
    s = jnp.where(keep, s, -jnp.inf)
    m = jnp.max(s, axis=-1, keepdims=True)
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    e = jnp.where(keep, jnp.exp(s - m), 0.0)
    l = jnp.sum(e, axis=-1, keepdims=True)
    p = e / jnp.where(l > 0, l, 1.0)
    out = jnp.einsum(
        "bnts,bnsd->bntd", p, v.astype(jnp.float32), precision=highest,
    )
    return out.astype(v.dtype)
