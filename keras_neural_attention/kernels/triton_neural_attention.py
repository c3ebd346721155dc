"""Fused, flash-style Neural Attention for PyTorch, written in Triton.

Neural Attention scores every (query, key) pair with a small feed-forward
network. With the first layer split into a per-query term `a_i = q'_i W_1[:d']
+ b_1` and a per-key term `c_j = k'_j W_1[d':]` (the "factored" form of
`keras_neural_attention.ops.scoring`):

    h_ij = act(a_i + c_j)                               # width H1
    h_ij = act(h_ij @ W_l + b_l)    for each further hidden layer
    s_ij = h_ij @ w_out                                  # (+ b_out, which
                                                         #  cancels in softmax)
    P = masked row softmax of s;   out = P @ V

`triton_neural_attention` computes this in one forward kernel (online softmax
over key blocks, as FlashAttention-2) and one backward kernel (key-block
major; recomputes the scores), so neither the `(T, S)` scores nor the
`(T, S, hidden)` activations ever exist in memory. Memory is
`O(B N (T + S) (H1 + Dv))`.

Specialized code paths (chosen from the weight shapes):

- `PATH_SINGLE`: no further hidden layer (any H1), `s = sum_r w_r act(a_r +
  c_r)`, one 2D `(BM, BN)` tile per hidden unit r.
- `PATH_SCALAR_HEAD`: one further hidden layer of width 1 (the released code's
  network for d' in {2, 3}), `s = w act(b_2 + sum_r W_2[r] act(a_r + c_r))`.
- `PATH_GENERAL`: anything else (several layers, widths > 1): the activations
  of a `(BM, BN)` tile are held as `(BM, BN, HP)` blocks (HP: widest layer,
  rounded up to a power of two). Correct for any depth and width, but meant
  for small widths (registers grow with `BM * BN * HP`); defaults use small
  blocks.

Gradients: `torch.autograd.Function`, w.r.t. `a`, `c`, `v`, every hidden-layer
kernel and bias and `output_kernel`. The backward kernel (FlashAttention-2
style: `D = rowsum(dO * O)` in PyTorch, then recompute scores and `P` from the
saved log-sum-exp, `dV += P^T dO`, `dP = dO V^T`, `dS = P (dP - D)`, then the
chain rule through the scoring network per pair) runs one program per (key
block, batch*head) and works on transposed `(keys, queries)` tiles. It
accumulates dV in registers, adds dA (and, on the two fast paths, dC per
hidden unit) with float32 `tl.atomic_add` (the summation order, hence the
last bits of dA, is not deterministic on a GPU), and writes per-program
partial weight gradients that are summed in PyTorch (deterministic). For
relu, `sum(dS * relu(a_i + c_j)) = a . rowsum(G) + c . colsum(G)` with
`G = dS * [a_i + c_j > 0]`, so a unit's weight gradient needs no extra
per-pair reduction.

Layout note (GPU): score tiles start from `_tile_zeros`, a tiny `tl.dot`, so
the per-pair arithmetic lives in the MMA accumulator layout (each thread holds
a small 2D patch). Without it Triton chose a layout giving each thread 32
query rows of a 64 x 64 tile, and with the loop-invariant first-layer terms
hoisted the H1 = 32 forward kernel spilled 7.4 kB of registers (ptxas,
sm_90); with it, 0.2 kB (0 with 64 x 32 blocks).

Host work per call: at short sequences the kernels finish before the host
has issued the next call, so the PyTorch operations around them bound the
speed. The two fast paths therefore read the caller's weight tensors in
place (head and row strides are kernel arguments; a shared weight has head
stride 0) instead of packing them, and no tensor is allocated to stand in for
an absent mask: a forward call does two layout copies (`a`, `c`) besides its
kernel, a backward call five small operations besides its kernel
(`benchmarks/triton_host_overhead.py` counts them). The general path packs
its weights into zero-padded per-head blocks with differentiable torch ops.

Masking: `mask` (True = keep) is any boolean tensor broadcastable to
`(B, T, S)` (e.g. `(B, T, S)`, `(1, T, S)`, `(B, 1, S)`); `causal=True` masks
key `j > i` for query `i` (top-left aligned, also when `T != S`: query `i`
sees keys `0..i`) and skips key blocks that are entirely above the diagonal.
Rows with no kept key give exactly 0 (never NaN) and get zero gradients.

Precision: scores, softmax and all accumulations are float32. `v` may be
float32, float16 or bfloat16; for float16/bfloat16 the probabilities are
rounded to `v.dtype` before `P @ V` (as the Keras layer does) and the output is
returned in `v.dtype`. float32 matmuls use `input_precision="ieee"` (no TF32).

Running on CPU: set `TRITON_INTERPRET=1` *before this module is imported*
(Triton decides between compiled and interpreted kernels when the `@jit`
decorators run). bfloat16 arithmetic is wrong in the Triton interpreter, so
in interpreter mode every operand is upcast to float32 right after loading
(rounding of P to `v.dtype` is kept, since casts are exact there).

Triton API: only `tl.load`/`tl.store` with pointer arithmetic and masks,
`tl.dot`, `tl.atomic_add`, `tl.static_range`, `tl.where`, reductions and
`tl.exp2`/`tl.log2`/`tl.exp` are used (no block pointers, no TMA descriptors,
no autotuning), so the same source works on Triton 3.6 (torch 2.11), 3.7.1
(torch 2.13 CUDA) and 3.9.
"""

import os

import torch

try:  # Import-safe without Triton: the kernels are simply unavailable.
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # pragma: no cover - depends on the environment
    triton = None
    tl = None
    HAS_TRITON = False

ACTIVATIONS = ("relu", "tanh")
SUPPORTED_VALUE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

PATH_SINGLE = 0
PATH_SCALAR_HEAD = 1
PATH_GENERAL = 2

# Widest hidden layer and value head dim the kernels accept.
MAX_FIRST_WIDTH = 256
MAX_HIDDEN_WIDTH = 32
MAX_VALUE_DIM = 256

def _interpreting():
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _next_pow2(x):
    return 1 << max(0, int(x) - 1).bit_length()


def _activation_code(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            "Argument `activation` must be one of "
            f"{', '.join(repr(a) for a in ACTIVATIONS)} for the Triton "
            f"kernel. Received: activation={activation!r}"
        )
    return ACTIVATIONS.index(activation)


def _path(hidden_widths):
    if len(hidden_widths) == 0:
        return PATH_SINGLE
    if len(hidden_widths) == 1 and hidden_widths[0] == 1:
        return PATH_SCALAR_HEAD
    return PATH_GENERAL


def triton_available():
    """Whether Triton is importable and can run here (a CUDA device, or
    `TRITON_INTERPRET=1` for CPU tensors)."""
    return HAS_TRITON and (torch.cuda.is_available() or _interpreting())


def supports(
    a_shape,
    c_shape,
    v_shape,
    hidden_widths=(),
    activation="relu",
    dtype=torch.float32,
    device="cuda",
):
    """Whether `triton_neural_attention` can run this configuration.

    Args:
        a_shape: `(B, N, T, H1)`.
        c_shape: `(B, N, S, H1)`.
        v_shape: `(B, N, S, Dv)`.
        hidden_widths: output widths of the hidden layers after the first
            (`()` for a single hidden layer, `(1,)` for the paper's scalar
            second layer).
        activation: activation name; `"relu"` and `"tanh"` are supported.
        dtype: dtype of `v` (float32, float16 or bfloat16).
        device: `"cuda"`/`"cpu"` or a `torch.device`. CPU runs only under
            the Triton interpreter (`TRITON_INTERPRET=1`; slow, for tests).

    Returns:
        `True` when the kernel supports the shapes, activation, dtype and
        device and Triton is available; never raises.
    """
    try:
        if not HAS_TRITON or activation not in ACTIVATIONS:
            return False
        if dtype not in SUPPORTED_VALUE_DTYPES:
            return False
        device = torch.device(device)
        if device.type == "cuda":
            if not torch.cuda.is_available() or _interpreting():
                return False
        elif device.type == "cpu":
            if not _interpreting():
                return False
        else:
            return False
        if len(a_shape) != 4 or len(c_shape) != 4 or len(v_shape) != 4:
            return False
        b, n, t, h1 = a_shape
        if tuple(c_shape[:2]) != (b, n) or c_shape[3] != h1:
            return False
        if tuple(v_shape[:3]) != tuple(c_shape[:3]):
            return False
        if not 1 <= h1 <= MAX_FIRST_WIDTH or not 1 <= v_shape[3] <= (
            MAX_VALUE_DIM
        ):
            return False
        if hidden_widths and (
            max(hidden_widths) > MAX_HIDDEN_WIDTH or min(hidden_widths) < 1
            or (_path(tuple(hidden_widths)) == PATH_GENERAL
                and h1 > MAX_HIDDEN_WIDTH)
        ):
            return False
        return True
    except Exception:  # noqa: BLE001 - a capability check must not raise
        return False


# ---------------------------------------------------------------------------
# Triton kernels
# ---------------------------------------------------------------------------

if HAS_TRITON:

    def _device_function(fn):
        """`fn` (a `@triton.jit` function of `triton.language`) callable from
        our kernels.

        `triton.language`'s own jit helpers (`tl.sum`, `tl.max`, ...) are
        compiled-mode `JITFunction`s when Triton was imported before
        `TRITON_INTERPRET=1` was set (importing `torch._dynamo`, as Keras'
        torch backend does, imports Triton), and the interpreter then refuses
        to call them. Wrap such a function for the interpreter; compiled
        kernels get `fn` itself.
        """
        from triton.runtime.jit import JITFunction

        if _interpreting() and isinstance(fn, JITFunction):
            from triton.runtime.interpreter import InterpretedFunction

            return InterpretedFunction(fn.fn)
        return fn

    # Kernels use only these two jit helpers of `triton.language` (zeros are
    # `tl.full`, a builtin).
    _sum = _device_function(tl.sum)
    _max = _device_function(tl.max)

    @triton.jit
    def _act(x, ACT: tl.constexpr):
        if ACT == 0:
            y = tl.maximum(x, 0.0)
        else:
            # tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|): no
            # overflow, no cancellation near 0.
            e = tl.exp(-2.0 * tl.abs(x))
            t = (1.0 - e) / (1.0 + e)
            y = tl.where(x < 0.0, -t, t)
        return y

    @triton.jit
    def _act_grad(x, y, ACT: tl.constexpr):
        """Derivative of the activation at `x`, given `y = act(x)`."""
        if ACT == 0:
            g = tl.where(x > 0.0, 1.0, 0.0)
        else:
            g = 1.0 - y * y
        return g

    @triton.jit
    def _tile_zeros(BM: tl.constexpr, BN: tl.constexpr):
        """A float32 zero `(BM, BN)` tile made by a (tiny) `tl.dot`, so that
        it and the score arithmetic built on it live in the MMA accumulator
        layout (each thread holds a small 2D patch: few query and few key
        values per hidden unit) instead of a layout that gives each thread
        many query rows."""
        left = tl.full([BM, 16], 0.0, dtype=tl.float16)
        right = tl.full([16, BN], 0.0, dtype=tl.float16)
        return tl.dot(left, right)

    @triton.jit
    def _layer3(h, w_ptr, b_ptr, HP: tl.constexpr):
        """`h @ W + b` on `(BM, BN, HP)` activations; `W` is a zero-padded
        row-major `(HP, HP)` matrix and `b` a zero-padded `(HP,)` vector."""
        offs_h = tl.arange(0, HP)
        z = h * 0.0
        for u in tl.static_range(HP):
            w_col = tl.load(w_ptr + offs_h * HP + u)
            z_u = _sum(h * w_col[None, None, :], axis=2)
            z = tl.where(offs_h[None, None, :] == u, z_u[:, :, None], z)
        bias = tl.load(b_ptr + offs_h)
        return z + bias[None, None, :]

    @triton.jit
    def _first3(at_ptr, ct_ptr, offs_m, offs_n, m_valid, n_valid, T, S,
                H1: tl.constexpr, HP: tl.constexpr):
        """First-layer pre-activations `a_i + c_j` as a `(BM, BN, HP)`
        block (zero in the padded units)."""
        offs_h = tl.arange(0, HP)
        h_valid = offs_h < H1
        a_blk = tl.load(
            at_ptr + offs_h[None, :] * T + offs_m[:, None],
            mask=m_valid[:, None] & h_valid[None, :], other=0.0)
        c_blk = tl.load(
            ct_ptr + offs_h[None, :] * S + offs_n[:, None],
            mask=n_valid[:, None] & h_valid[None, :], other=0.0)
        return a_blk[:, None, :] + c_blk[None, :, :]

    @triton.jit
    def _scores(at_ptr, ct_ptr, w_ptr, b_ptr, wo_ptr, offs_m, offs_n,
                m_valid, n_valid, T, S,
                PATH: tl.constexpr, H1: tl.constexpr, HP: tl.constexpr,
                NL: tl.constexpr, ACT: tl.constexpr,
                BM: tl.constexpr, BN: tl.constexpr, RC: tl.constexpr,
                W_SR: tl.constexpr):
        """Scores `(BM, BN)` of a query block and a key block (no mask, no
        output bias). `RC > 1`: first-layer units in chunks of RC as
        `(BM, BN, RC)` blocks (paths 0 and 1). `W_SR`: row stride of the
        second-layer kernel on path 1 (`W_2[r]` is at `w_ptr + r * W_SR`)."""
        if PATH == 0 and RC > 1:
            s = tl.full([BM, BN], 0.0, dtype=tl.float32)
            offs_c = tl.arange(0, RC)
            for r0 in tl.static_range(0, H1, RC):
                c_valid = (r0 + offs_c) < H1
                a_c = tl.load(
                    at_ptr + (r0 + offs_c)[None, :] * T + offs_m[:, None],
                    mask=m_valid[:, None] & c_valid[None, :], other=0.0)
                c_c = tl.load(
                    ct_ptr + (r0 + offs_c)[None, :] * S + offs_n[:, None],
                    mask=n_valid[:, None] & c_valid[None, :], other=0.0)
                w_c = tl.load(wo_ptr + r0 + offs_c, mask=c_valid, other=0.0)
                s += _sum(_act(a_c[:, None, :] + c_c[None, :, :], ACT)
                          * w_c[None, None, :], axis=2)
        elif PATH == 1 and RC > 1:
            z = tl.full([BM, BN], 0.0, dtype=tl.float32) + tl.load(b_ptr)
            offs_c = tl.arange(0, RC)
            for r0 in tl.static_range(0, H1, RC):
                c_valid = (r0 + offs_c) < H1
                a_c = tl.load(
                    at_ptr + (r0 + offs_c)[None, :] * T + offs_m[:, None],
                    mask=m_valid[:, None] & c_valid[None, :], other=0.0)
                c_c = tl.load(
                    ct_ptr + (r0 + offs_c)[None, :] * S + offs_n[:, None],
                    mask=n_valid[:, None] & c_valid[None, :], other=0.0)
                w_c = tl.load(w_ptr + (r0 + offs_c) * W_SR, mask=c_valid,
                              other=0.0)
                z += _sum(_act(a_c[:, None, :] + c_c[None, :, :], ACT)
                          * w_c[None, None, :], axis=2)
            s = tl.load(wo_ptr) * _act(z, ACT)
        elif PATH == 0:
            s = _tile_zeros(BM, BN)
            for r in tl.static_range(H1):
                a_r = tl.load(at_ptr + r * T + offs_m, mask=m_valid,
                              other=0.0)
                c_r = tl.load(ct_ptr + r * S + offs_n, mask=n_valid,
                              other=0.0)
                w_r = tl.load(wo_ptr + r)
                s += w_r * _act(a_r[:, None] + c_r[None, :], ACT)
        elif PATH == 1:
            z = _tile_zeros(BM, BN) + tl.load(b_ptr)
            for r in tl.static_range(H1):
                a_r = tl.load(at_ptr + r * T + offs_m, mask=m_valid,
                              other=0.0)
                c_r = tl.load(ct_ptr + r * S + offs_n, mask=n_valid,
                              other=0.0)
                w_r = tl.load(w_ptr + r * W_SR)
                z += w_r * _act(a_r[:, None] + c_r[None, :], ACT)
            s = tl.load(wo_ptr) * _act(z, ACT)
        else:
            h = _act(_first3(at_ptr, ct_ptr, offs_m, offs_n, m_valid,
                             n_valid, T, S, H1, HP), ACT)
            for layer in tl.static_range(NL):
                h = _act(_layer3(h, w_ptr + layer * HP * HP,
                                 b_ptr + layer * HP, HP), ACT)
            wo = tl.load(wo_ptr + tl.arange(0, HP))
            s = _sum(h * wo[None, None, :], axis=2)
        return s

    @triton.jit
    def _unit_backward(at_b, ct_b, dat_b, dct_b, r: tl.constexpr, T, S,
                       offs_m, offs_n, m_valid, n_valid, up, w_r,
                       ACT: tl.constexpr):
        """Backward through first-layer unit r of a tile: `up` is the
        gradient w.r.t. `h_r = act(a_r + c_r)` divided by its weight `w_r`
        (dS for a single layer). Adds dA[:, r] and dC[:, r] atomically and
        returns `sum(up * h_r)` (the gradient of `w_r`)."""
        a_r = tl.load(at_b + r * T + offs_m, mask=m_valid, other=0.0)
        c_r = tl.load(ct_b + r * S + offs_n, mask=n_valid, other=0.0)
        pre = a_r[:, None] + c_r[None, :]
        if ACT == 0:
            # relu: up * relu(pre) = gated * (a_r + c_r), so the weight
            # gradient follows from the row and column sums of the gated
            # upstream (two adds per pair instead of a full reduction).
            gated = tl.where(pre > 0.0, up, 0.0)
            row = _sum(gated, axis=1)
            col = _sum(gated, axis=0)
            dw = _sum(a_r * row, axis=0) + _sum(c_r * col, axis=0)
        else:
            h = _act(pre, ACT)
            dw = _sum(_sum(up * h, axis=1), axis=0)
            gated = up * _act_grad(pre, h, ACT)
            row = _sum(gated, axis=1)
            col = _sum(gated, axis=0)
        tl.atomic_add(dat_b + r * T + offs_m, w_r * row, mask=m_valid)
        tl.atomic_add(dct_b + r * S + offs_n, w_r * col, mask=n_valid)
        return dw

    @triton.jit
    def _keep(mask_ptr, batch, offs_m, offs_n, m_valid, n_valid,
              smb, smt, sms, HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr):
        keep = m_valid[:, None] & n_valid[None, :]
        if CAUSAL:
            keep = keep & (offs_n[None, :] <= offs_m[:, None])
        if HAS_MASK:
            mt = tl.load(
                mask_ptr + batch * smb + offs_m[:, None] * smt
                + offs_n[None, :] * sms,
                mask=m_valid[:, None] & n_valid[None, :], other=0)
            keep = keep & (mt != 0)
        return keep

    @triton.jit
    def _fwd_kernel(
        at_ptr, ct_ptr, v_ptr, out_ptr, lse_ptr, mask_ptr,
        w_ptr, b_ptr, wo_ptr,
        T, S, N, smb, smt, sms, w_sh, b_sh, wo_sh,
        PATH: tl.constexpr, H1: tl.constexpr, HP: tl.constexpr,
        NL: tl.constexpr, NLW: tl.constexpr, ACT: tl.constexpr,
        HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr,
        DV: tl.constexpr, DVP: tl.constexpr,
        LOWP_DOT: tl.constexpr,
        BM: tl.constexpr, BN: tl.constexpr, RC: tl.constexpr,
        W_SR: tl.constexpr,
    ):
        pid_m = tl.program_id(0)
        bh = tl.program_id(1)
        head = bh % N
        # 64-bit base offsets: B*N*T*Dv or B*T*S (mask) may exceed 2**31.
        batch = (bh // N).to(tl.int64)
        bh = bh.to(tl.int64)
        offs_m = pid_m * BM + tl.arange(0, BM)
        m_valid = offs_m < T
        offs_d = tl.arange(0, DVP)
        d_valid = offs_d < DV
        at_b = at_ptr + bh * H1 * T
        ct_b = ct_ptr + bh * H1 * S
        v_b = v_ptr + bh * S * DV
        w_b = w_ptr + head * w_sh
        b_b = b_ptr + head * b_sh
        wo_b = wo_ptr + head * wo_sh

        m_i = tl.full([BM], float("-inf"), dtype=tl.float32)
        l_i = tl.full([BM], 0.0, dtype=tl.float32)
        acc = tl.full([BM, DVP], 0.0, dtype=tl.float32)

        hi = S
        if CAUSAL:
            hi = tl.minimum(hi, (pid_m + 1) * BM)
        for start_n in range(0, hi, BN):
            offs_n = start_n + tl.arange(0, BN)
            n_valid = offs_n < S
            s = _scores(at_b, ct_b, w_b, b_b, wo_b, offs_m, offs_n,
                        m_valid, n_valid, T, S, PATH, H1, HP, NL, ACT,
                        BM, BN, RC, W_SR)
            keep = _keep(mask_ptr, batch, offs_m, offs_n, m_valid, n_valid,
                         smb, smt, sms, HAS_MASK, CAUSAL)
            s = tl.where(keep, s * 1.4426950408889634, float("-inf"))
            m_new = tl.maximum(m_i, _max(s, axis=1))
            # Rows with no kept key so far: shift by 0, so exp2 gives 0
            # (not NaN) for both p and alpha.
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            p = tl.exp2(s - m_safe[:, None])
            alpha = tl.exp2(m_i - m_safe)
            l_i = l_i * alpha + _sum(p, axis=1)
            vt = tl.load(
                v_b + offs_n[:, None] * DV + offs_d[None, :],
                mask=n_valid[:, None] & d_valid[None, :], other=0.0)
            if LOWP_DOT:
                pv = tl.dot(p.to(vt.dtype), vt)
            else:
                pv = tl.dot(p.to(vt.dtype).to(tl.float32),
                            vt.to(tl.float32), input_precision="ieee")
            acc = acc * alpha[:, None] + pv
            m_i = m_new

        l_safe = tl.where(l_i > 0.0, l_i, 1.0)
        o = acc / l_safe[:, None]
        tl.store(
            out_ptr + bh * T * DV + offs_m[:, None] * DV + offs_d[None, :],
            o.to(out_ptr.dtype.element_ty),
            mask=m_valid[:, None] & d_valid[None, :])
        lse = tl.where(l_i > 0.0, m_i + tl.log2(l_safe), 0.0)
        tl.store(lse_ptr + bh * T + offs_m, lse, mask=m_valid)

    @triton.jit
    def _bwd_kernel(
        at_ptr, ct_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr, mask_ptr,
        w_ptr, b_ptr, wo_ptr,
        dat_ptr, dct_ptr, dv_ptr, dw_part_ptr,
        T, S, N, NUM_NB, smb, smt, sms, w_sh, b_sh, wo_sh,
        PATH: tl.constexpr, H1: tl.constexpr, HP: tl.constexpr,
        NL: tl.constexpr, NLW: tl.constexpr, NLP: tl.constexpr,
        ACT: tl.constexpr,
        HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr,
        DV: tl.constexpr, DVP: tl.constexpr,
        LOWP_DOT: tl.constexpr,
        BM: tl.constexpr, BN: tl.constexpr, RC: tl.constexpr,
        W_SR: tl.constexpr,
    ):
        pid_n = tl.program_id(0)
        bh = tl.program_id(1)
        head = bh % N
        # 64-bit base offsets: B*N*T*Dv or B*T*S (mask) may exceed 2**31.
        batch = (bh // N).to(tl.int64)
        bh = bh.to(tl.int64)
        offs_n = pid_n * BN + tl.arange(0, BN)
        n_valid = offs_n < S
        offs_d = tl.arange(0, DVP)
        d_valid = offs_d < DV
        offs_h = tl.arange(0, HP)
        h_valid = offs_h < H1
        offs_l = tl.arange(0, NLP)
        at_b = at_ptr + bh * H1 * T
        ct_b = ct_ptr + bh * H1 * S
        dat_b = dat_ptr + bh * H1 * T
        dct_b = dct_ptr + bh * H1 * S
        w_b = w_ptr + head * w_sh
        b_b = b_ptr + head * b_sh
        wo_b = wo_ptr + head * wo_sh

        vt = tl.load(
            v_ptr + bh * S * DV + offs_n[:, None] * DV + offs_d[None, :],
            mask=n_valid[:, None] & d_valid[None, :], other=0.0)
        if not LOWP_DOT:
            vt = vt.to(tl.float32)
        dv_acc = tl.full([BN, DVP], 0.0, dtype=tl.float32)
        dc_acc = tl.full([BN, HP], 0.0, dtype=tl.float32)  # PATH 2
        dwo_acc = tl.full([HP], 0.0, dtype=tl.float32)
        dwcol_acc = tl.full([HP], 0.0, dtype=tl.float32)  # PATH 1: W_2[:, 0]
        db2_acc = tl.full([HP], 0.0, dtype=tl.float32)  # PATH 1: b_2[0]
        dw_acc = tl.full([NLP, HP, HP], 0.0, dtype=tl.float32)  # PATH 2
        db_acc = tl.full([NLP, HP], 0.0, dtype=tl.float32)  # PATH 2

        lo = 0
        if CAUSAL:
            lo = ((pid_n * BN) // BM) * BM
        for start_m in range(lo, T, BM):
            offs_m = start_m + tl.arange(0, BM)
            m_valid = offs_m < T
            do = tl.load(
                do_ptr + bh * T * DV + offs_m[:, None] * DV
                + offs_d[None, :],
                mask=m_valid[:, None] & d_valid[None, :], other=0.0)
            if not LOWP_DOT:
                do = do.to(tl.float32)
            lse = tl.load(lse_ptr + bh * T + offs_m, mask=m_valid,
                          other=0.0)
            delta = tl.load(delta_ptr + bh * T + offs_m, mask=m_valid,
                            other=0.0)
            # Tiles are transposed, (keys, queries) = (BN, BM): the scoring
            # network is symmetric in (a, c), and this way the key-side terms
            # that stay fixed in this loop (and get hoisted into registers)
            # are the ones each thread holds few of.
            s_t = _scores(ct_b, at_b, w_b, b_b, wo_b, offs_n, offs_m,
                          n_valid, m_valid, S, T, PATH, H1, HP, NL, ACT,
                          BN, BM, RC, W_SR)
            keep_t = n_valid[:, None] & m_valid[None, :]
            if CAUSAL:
                keep_t = keep_t & (offs_n[:, None] <= offs_m[None, :])
            if HAS_MASK:
                mt = tl.load(
                    mask_ptr + batch * smb + offs_m[None, :] * smt
                    + offs_n[:, None] * sms,
                    mask=n_valid[:, None] & m_valid[None, :], other=0)
                keep_t = keep_t & (mt != 0)
            p_t = tl.where(
                keep_t, tl.exp2(s_t * 1.4426950408889634 - lse[None, :]),
                0.0)
            # dV += P^T dO ; dP^T = V dO^T ; dS = P (dP - D)
            if LOWP_DOT:
                dv_acc += tl.dot(p_t.to(vt.dtype), do)
                dp_t = tl.dot(vt, tl.trans(do))
            else:
                p_r = p_t.to(v_ptr.dtype.element_ty).to(tl.float32)
                dv_acc += tl.dot(p_r, do, input_precision="ieee")
                dp_t = tl.dot(vt, tl.trans(do), input_precision="ieee")
            ds_t = p_t * (dp_t - delta[None, :])

            if PATH == 0:
                for r in tl.static_range(H1):
                    dw_r = _unit_backward(
                        ct_b, at_b, dct_b, dat_b, r, S, T, offs_n, offs_m,
                        n_valid, m_valid, ds_t, tl.load(wo_b + r), ACT)
                    dwo_acc += tl.where(offs_h == r, dw_r, 0.0)
            elif PATH == 1:
                z = _tile_zeros(BN, BM) + tl.load(b_b)
                for r in tl.static_range(H1):
                    a_r = tl.load(at_b + r * T + offs_m, mask=m_valid,
                                  other=0.0)
                    c_r = tl.load(ct_b + r * S + offs_n, mask=n_valid,
                                  other=0.0)
                    z += tl.load(w_b + r * W_SR) * _act(
                        c_r[:, None] + a_r[None, :], ACT)
                hz = _act(z, ACT)
                dwo_acc += tl.where(
                    offs_h == 0, _sum(_sum(ds_t * hz, axis=1), axis=0),
                    0.0)
                g = ds_t * tl.load(wo_b) * _act_grad(z, hz, ACT)
                db2_acc += tl.where(
                    offs_h == 0, _sum(_sum(g, axis=1), axis=0), 0.0)
                for r in tl.static_range(H1):
                    dw_r = _unit_backward(
                        ct_b, at_b, dct_b, dat_b, r, S, T, offs_n, offs_m,
                        n_valid, m_valid, g, tl.load(w_b + r * W_SR), ACT)
                    dwcol_acc += tl.where(offs_h == r, dw_r, 0.0)
            else:
                pre0 = _first3(ct_b, at_b, offs_n, offs_m, n_valid, m_valid,
                               S, T, H1, HP)
                h0 = _act(pre0, ACT)
                h = h0
                for lf in tl.static_range(NL):
                    h = _act(_layer3(h, w_b + lf * HP * HP, b_b + lf * HP,
                                     HP), ACT)
                wo = tl.load(wo_b + offs_h)
                dwo_acc += _sum(_sum(ds_t[:, :, None] * h, axis=1), axis=0)
                dh = ds_t[:, :, None] * wo[None, None, :]
                # Back through the layers, last first; the input of layer
                # `l` is recomputed from h0 (widths are small).
                for layer in tl.static_range(NL - 1, -1, -1):
                    h_in = h0
                    for m in tl.static_range(layer):
                        h_in = _act(_layer3(h_in, w_b + m * HP * HP,
                                            b_b + m * HP, HP), ACT)
                    z = _layer3(h_in, w_b + layer * HP * HP,
                                b_b + layer * HP, HP)
                    dz = dh * _act_grad(z, _act(z, ACT), ACT)
                    db_acc += tl.where(
                        offs_l[:, None] == layer,
                        _sum(_sum(dz, axis=1), axis=0)[None, :], 0.0)
                    dh = dz * 0.0
                    for u in tl.static_range(HP):
                        dz_u = _sum(
                            tl.where(offs_h[None, None, :] == u, dz, 0.0),
                            axis=2)
                        w_col = tl.load(
                            w_b + layer * HP * HP + offs_h * HP + u)
                        dh += dz_u[:, :, None] * w_col[None, None, :]
                        g_col = _sum(
                            _sum(h_in * dz_u[:, :, None], axis=1), axis=0)
                        dw_acc += tl.where(
                            (offs_l[:, None, None] == layer)
                            & (offs_h[None, None, :] == u),
                            g_col[None, :, None], 0.0)
                dpre0 = dh * _act_grad(pre0, h0, ACT)
                dc_acc += _sum(dpre0, axis=1)
                tl.atomic_add(
                    dat_b + offs_h[None, :] * T + offs_m[:, None],
                    _sum(dpre0, axis=0),
                    mask=m_valid[:, None] & h_valid[None, :])

        tl.store(
            dv_ptr + bh * S * DV + offs_n[:, None] * DV + offs_d[None, :],
            dv_acc.to(dv_ptr.dtype.element_ty),
            mask=n_valid[:, None] & d_valid[None, :])
        if PATH == 2:
            tl.store(dct_b + offs_h[None, :] * S + offs_n[:, None], dc_acc,
                     mask=n_valid[:, None] & h_valid[None, :])
        # Partial weight gradients of this program, laid out as
        # [W (NLP, HP, HP) | b (NLP, HP) | w_out (HP)].
        part = dw_part_ptr + (bh * NUM_NB + pid_n) * (
            NLP * HP * HP + NLP * HP + HP)
        tl.store(part + NLP * HP * HP + NLP * HP + offs_h, dwo_acc)
        if PATH == 1:
            tl.store(part + offs_h * HP, dwcol_acc)
            tl.store(part + NLP * HP * HP + offs_h, db2_acc)
        if PATH == 2:
            tl.store(
                part + offs_l[:, None, None] * HP * HP
                + offs_h[None, :, None] * HP + offs_h[None, None, :],
                dw_acc)
            tl.store(part + NLP * HP * HP + offs_l[:, None] * HP
                     + offs_h[None, :], db_acc)


# ---------------------------------------------------------------------------
# PyTorch side
# ---------------------------------------------------------------------------


def _default_blocks(path, hp, block_m, block_n):
    if _interpreting():
        bm = bn = 32 if path != PATH_GENERAL else 16
    elif path == PATH_GENERAL:
        bm = bn = 32 if hp <= 4 else 16
    else:
        bm, bn = 64, 64
    bm = block_m or bm
    bn = block_n or bn
    for name, value in (("block_m", bm), ("block_n", bn)):
        if value < 16 or value & (value - 1):
            raise ValueError(
                f"Argument `{name}` must be a power of two >= 16. "
                f"Received: {name}={value}"
            )
    return bm, bn


def _prepare_mask(mask, batch, t, s, device):
    """A uint8 view of `mask` broadcast to `(batch, t, s)` (no copy for
    broadcast axes) and its three element strides; `(None, (0, 0, 0))`
    without a mask."""
    if mask is None:
        return None, (0, 0, 0)
    if mask.dim() == 4:
        if mask.shape[1] != 1:
            raise ValueError(
                "A 4D `mask` must have a heads axis of size 1 (the mask is "
                f"shared by every head). Received: mask.shape={mask.shape}"
            )
        mask = mask[:, 0]
    if mask.dtype != torch.bool:
        mask = mask != 0
    mask = mask.to(device)
    mask = torch.broadcast_to(mask.view(torch.uint8), (batch, t, s))
    return mask, tuple(mask.stride())


def _float32_weight(x, base_rank, num_heads, device):
    """`x` as float32 on `device`, checked to be shared (`base_rank` dims)
    or per head (a leading axis of size `num_heads`)."""
    x = x.to(device=device, dtype=torch.float32)
    if x.dim() != base_rank and (
        x.dim() != base_rank + 1 or x.shape[0] != num_heads
    ):
        raise ValueError(
            "Per-head scoring weights must have a leading axis of size "
            f"num_heads={num_heads}. Received shape {tuple(x.shape)}"
        )
    return x


def _check_output_kernel(wo, fan_in, output_kernel):
    if tuple(wo.shape[-2:]) != (fan_in, 1):
        raise ValueError(
            f"`output_kernel` must have shape ({fan_in}, 1) or "
            f"(num_heads, {fan_in}, 1). Received {tuple(output_kernel.shape)}"
        )


def _direct_weights(hidden_layers, output_kernel, num_heads, h1, path,
                    device):
    """The weights of the two fast paths as the kernels read them, without
    copies: `(w, b, wo, strides)`, `strides = (w_sh, b_sh, wo_sh, w_sr)`
    (head strides are 0 for weights shared by every head).

    Path 0 reads `w_out[r]` at `wo + head * wo_sh + r`; path 1 reads
    `W_2[r, 0]` at `w + head * w_sh + r * w_sr`, `b_2[0]` and `w_out[0]`.
    `w` and `b` are None on path 0.
    """
    w = b = None
    w_sh = b_sh = 0
    w_sr = 1
    fan_in = h1
    if path == PATH_SCALAR_HEAD:
        ((kernel, bias),) = hidden_layers
        w = _float32_weight(kernel, 2, num_heads, device)
        if w.shape[-2] != h1:
            raise ValueError(
                f"Hidden kernel of shape {tuple(kernel.shape)} does not "
                f"follow a layer of width {h1}."
            )
        if bias is None:
            bias = torch.zeros((1,), device=device)
        b = _float32_weight(bias, 1, num_heads, device)
        # `W_2[r, 0]` of head n is w[n, r, 0]: any strides, no copy.
        w_sh = w.stride(0) if w.dim() == 3 else 0
        w_sr = w.stride(-2)
        b_sh = b.stride(0) if b.dim() == 2 else 0
        fan_in = 1
    wo = _float32_weight(output_kernel, 2, num_heads, device)
    _check_output_kernel(wo, fan_in, output_kernel)
    if wo.stride(-2) != 1:
        wo = wo.contiguous()
    wo_sh = wo.stride(0) if wo.dim() == 3 else 0
    return w, b, wo, (w_sh, b_sh, wo_sh, w_sr)


def _pack_weights(hidden_layers, output_kernel, num_heads, h1, hp, device):
    """Per-head, zero-padded weights of the general path, built with
    differentiable torch ops: W (N, NLW, HP, HP), b (N, NLW, HP), w_out
    (N, HP)."""

    def per_head(x, base_rank):
        x = _float32_weight(x, base_rank, num_heads, device)
        if x.dim() == base_rank:
            x = x.unsqueeze(0).expand((num_heads,) + tuple(x.shape))
        return x

    kernels, biases = [], []
    fan_in = h1
    for kernel, bias in hidden_layers:
        kernel = per_head(kernel, 2)
        if kernel.shape[1] != fan_in:
            raise ValueError(
                f"Hidden kernel of shape {tuple(kernel.shape)} does not "
                f"follow a layer of width {fan_in}."
            )
        fan_out = kernel.shape[2]
        kernels.append(torch.nn.functional.pad(
            kernel, (0, hp - fan_out, 0, hp - fan_in)))
        if bias is None:
            bias = torch.zeros((fan_out,), device=device)
        biases.append(torch.nn.functional.pad(per_head(bias, 1),
                                              (0, hp - fan_out)))
        fan_in = fan_out
    if kernels:
        w = torch.stack(kernels, dim=1)
        b = torch.stack(biases, dim=1)
    else:
        w = torch.zeros((num_heads, 1, hp, hp), device=device)
        b = torch.zeros((num_heads, 1, hp), device=device)
    wo = per_head(output_kernel, 2)
    _check_output_kernel(wo, fan_in, output_kernel)
    wo = torch.nn.functional.pad(wo[..., 0], (0, hp - fan_in))
    return w.contiguous(), b.contiguous(), wo.contiguous()


def _launch_options(num_warps, num_stages, backward=False):
    options = {"num_warps": num_warps}
    if num_stages is None and backward and not _interpreting():
        # Software pipelining of the backward's query loop prefetches every
        # first-layer column of the next tiles: with H1 = 32, ptxas reports
        # 3.3 kB of register spills at 3 stages vs 0.7 kB at 1 (sm_90,
        # 64 x 64 blocks). Chosen from spill counts, not yet timed.
        num_stages = 1
    if num_stages is not None:
        options["num_stages"] = num_stages
    return options


def _weight_gradients(parts, path, h1, hp, nlp, w, b, wo):
    """Gradients of `w`, `b`, `wo` (shaped like them) from the per-program
    partials `(B, N, num_key_blocks, part)` laid out as
    `[W (NLP, HP, HP) | b (NLP, HP) | w_out (HP)]`."""
    w_end = nlp * hp * hp
    b_end = w_end + nlp * hp
    if path == PATH_GENERAL:
        parts = parts.sum(dim=(0, 2))  # (N, part)
        heads, nlw = w.shape[0], w.shape[1]
        dw = parts[:, :w_end].reshape(heads, nlp, hp, hp)[:, :nlw]
        db = parts[:, w_end:b_end].reshape(heads, nlp, hp)[:, :nlw]
        return dw, db, parts[:, b_end:]
    # Fast paths: the weights are the caller's own tensors, shared (sum
    # the partials over heads too) or per head.
    shared = [x.dim() == base for x, base in ((w, 2), (b, 1), (wo, 2))
              if x is not None]
    if all(shared):
        parts = parts.sum(dim=(0, 1, 2))[None]  # (1, part)
    else:
        parts = parts.sum(dim=(0, 2))

    def like(grad, x, base_rank):  # grad: (N or 1, units)
        if x.dim() == base_rank:  # shared by every head
            grad = grad[0] if grad.shape[0] == 1 else grad.sum(0)
        return grad.reshape(x.shape)

    if path == PATH_SINGLE:
        return None, None, like(parts[:, b_end:b_end + h1], wo, 2)
    dw = like(parts[:, 0:h1 * hp:hp], w, 2)
    db = like(parts[:, w_end:w_end + 1], b, 1)
    return dw, db, like(parts[:, b_end:b_end + 1], wo, 2)


def _kernel_pointers(v, mask, w, b, wo):
    """`(mask, w, b)` as kernel arguments: tensors the kernel never reads
    (`v` without a mask, `wo` for the W and b absent on path 0) stand in
    for the None ones, so no tensor is allocated for them."""
    return (v if mask is None else mask, wo if w is None else w,
            wo if b is None else b)


class _NeuralAttentionFunction(torch.autograd.Function):
    """Autograd wrapper of the forward and backward Triton kernels.

    Inputs are float32 `a (B, N, T, H1)`, `c (B, N, S, H1)`, `v`, the
    weights (packed by `_pack_weights` on the general path; the caller's
    tensors, from `_direct_weights`, on the two fast paths, where `w` and
    `b` may be None) and the prepared mask (or None); only `out` is
    returned.
    """

    @staticmethod
    def forward(ctx, a, c, v, w, b, wo, mask, config):
        (mask_strides, has_mask, causal, path, act, nl, nlw, hp, bm, bn, rc,
         weight_strides, num_warps, num_stages) = config
        batch, heads, t, h1 = a.shape
        s = c.shape[2]
        dv = v.shape[3]
        at = a.transpose(-1, -2).contiguous()
        ct = c.transpose(-1, -2).contiguous()
        v = v.contiguous()
        out = torch.empty((batch, heads, t, dv), dtype=v.dtype,
                          device=v.device)
        lse = torch.empty((batch, heads, t), dtype=torch.float32,
                          device=v.device)
        lowp = v.dtype != torch.float32 and not _interpreting()
        dvp = max(16, _next_pow2(dv))
        w_sh, b_sh, wo_sh, w_sr = weight_strides
        grid = (triton.cdiv(t, bm), batch * heads)
        _fwd_kernel[grid](
            at, ct, v, out, lse, *_kernel_pointers(v, mask, w, b, wo), wo,
            t, s, heads, *mask_strides, w_sh, b_sh, wo_sh,
            PATH=path, H1=h1, HP=hp, NL=nl, NLW=nlw, ACT=act,
            HAS_MASK=has_mask, CAUSAL=causal, DV=dv, DVP=dvp,
            LOWP_DOT=lowp, BM=bm, BN=bn, RC=rc, W_SR=w_sr,
            **_launch_options(num_warps, num_stages),
        )
        ctx.save_for_backward(at, ct, v, w, b, wo, mask, out, lse)
        ctx.config = config
        return out

    @staticmethod
    def backward(ctx, grad_out):
        at, ct, v, w, b, wo, mask, out, lse = ctx.saved_tensors
        (mask_strides, has_mask, causal, path, act, nl, nlw, hp, bm, bn, rc,
         weight_strides, num_warps, num_stages) = ctx.config
        batch, heads, h1, t = at.shape
        s = ct.shape[3]
        dv = v.shape[3]
        grad_out = grad_out.to(v.dtype).contiguous()
        delta = (grad_out.float() * out.float()).sum(-1)
        nlp = _next_pow2(nlw)
        num_nb = triton.cdiv(s, bn)
        part_size = nlp * hp * hp + nlp * hp + hp
        dat = torch.zeros_like(at)
        # The general path stores dC once per key block; the fast paths add
        # it per hidden unit, atomically.
        dct = (torch.empty_like(ct) if path == PATH_GENERAL
               else torch.zeros_like(ct))
        dv_t = torch.empty_like(v)
        # Every entry `_weight_gradients` reads is written by each program.
        parts = torch.empty((batch, heads, num_nb, part_size),
                            dtype=torch.float32, device=v.device)
        lowp = v.dtype != torch.float32 and not _interpreting()
        dvp = max(16, _next_pow2(dv))
        w_sh, b_sh, wo_sh, w_sr = weight_strides
        grid = (num_nb, batch * heads)
        _bwd_kernel[grid](
            at, ct, v, grad_out, lse, delta,
            *_kernel_pointers(v, mask, w, b, wo), wo,
            dat, dct, dv_t, parts,
            t, s, heads, num_nb, *mask_strides, w_sh, b_sh, wo_sh,
            PATH=path, H1=h1, HP=hp, NL=nl, NLW=nlw, NLP=nlp, ACT=act,
            HAS_MASK=has_mask, CAUSAL=causal, DV=dv, DVP=dvp,
            LOWP_DOT=lowp, BM=bm, BN=bn, RC=rc, W_SR=w_sr,
            **_launch_options(num_warps, num_stages, backward=True),
        )
        dw, db, dwo = _weight_gradients(parts, path, h1, hp, nlp, w, b, wo)
        return (dat.transpose(-1, -2), dct.transpose(-1, -2), dv_t, dw, db,
                dwo, None, None)


def triton_neural_attention(
    a,
    c,
    v,
    hidden_layers,
    output_kernel,
    mask=None,
    causal=False,
    activation="relu",
    block_m=None,
    block_n=None,
    num_warps=4,
    num_stages=None,
    score_chunk=None,
):
    """Fused Neural Attention (forward and backward in Triton).

    Args:
        a: `(B, N, T, H1)` first-layer query term, including the first bias
            `b_1` (any float dtype; computed in float32).
        c: `(B, N, S, H1)` first-layer key term.
        v: `(B, N, S, Dv)` values: float32, float16 or bfloat16.
        hidden_layers: sequence of `(kernel, bias)` for hidden layers 2..L:
            kernel `(H_{l-1}, H_l)` shared by every head or
            `(N, H_{l-1}, H_l)` per head; bias `(H_l,)` or `(N, H_l)` (or
            None). Often empty, or one layer of width 1 (the paper's).
        output_kernel: `(H_L, 1)` or `(N, H_L, 1)`. The output bias is not
            needed: it cancels in the row softmax.
        mask: optional boolean tensor broadcastable to `(B, T, S)` (a 4D
            `(B, 1, T, S)` mask is accepted too); True keeps a pair. Rows
            with no kept key output exactly 0.
        causal: mask key `j > i` for query `i` (top-left aligned, also when
            `T != S`); fully masked key blocks are skipped.
        activation: `"relu"` or `"tanh"`; anything else raises `ValueError`.
        block_m: query block size (a power of two >= 16). Default 64 on a
            GPU (16 or 32 for the general path), 32 (16) in interpreter mode.
        block_n: key block size, defaults as `block_m`.
        num_warps: warps per program on a GPU.
        num_stages: software-pipelining stages of the key/query loops on a
            GPU (default: Triton's default in the forward kernel, 1 in the
            backward kernel).
        score_chunk: first-layer units evaluated together as a
            `(BM, BN, score_chunk)` block (single-hidden-layer and
            scalar-head paths; rounded to a power of two). Default 1: one
            `(BM, BN)` tile per unit. A tuning knob, same result.

    Returns:
        `(B, N, T, Dv)` in `v.dtype`, differentiable w.r.t. `a`, `c`, `v`,
        the hidden kernels and biases and `output_kernel`.
    """
    if not HAS_TRITON:
        raise ImportError("`triton_neural_attention` requires Triton.")
    act = _activation_code(activation)
    if a.dim() != 4 or c.dim() != 4 or v.dim() != 4:
        raise ValueError(
            "`a`, `c` and `v` must be 4D (batch, heads, length, features). "
            f"Received shapes {tuple(a.shape)}, {tuple(c.shape)}, "
            f"{tuple(v.shape)}"
        )
    batch, heads, t, h1 = a.shape
    s = c.shape[2]
    if tuple(c.shape) != (batch, heads, s, h1) or tuple(v.shape[:3]) != (
        batch, heads, s
    ):
        raise ValueError(
            "Inconsistent shapes: expected a (B, N, T, H1), c (B, N, S, H1), "
            f"v (B, N, S, Dv). Received {tuple(a.shape)}, {tuple(c.shape)}, "
            f"{tuple(v.shape)}"
        )
    if v.dtype not in SUPPORTED_VALUE_DTYPES:
        raise ValueError(
            "`v` must be float32, float16 or bfloat16. "
            f"Received dtype={v.dtype}"
        )
    if v.device.type == "cpu" and not _interpreting():
        raise RuntimeError(
            "CPU tensors need the Triton interpreter: set TRITON_INTERPRET=1 "
            "before importing this module."
        )
    hidden_layers = tuple(hidden_layers)
    widths = [h1] + [int(k.shape[-1]) for k, _ in hidden_layers]
    path = _path(tuple(widths[1:]))
    hp = max(2, _next_pow2(max(widths)))
    bm, bn = _default_blocks(path, hp, block_m, block_n)
    if path == PATH_GENERAL:
        w, b, wo = _pack_weights(hidden_layers, output_kernel, heads, h1,
                                 hp, v.device)
        weight_strides = (w.stride(0), b.stride(0), wo.stride(0), hp)
        nlw = w.shape[1]
    else:
        # No packing on the fast paths: the few per-unit scalars are read
        # from the caller's tensors (fewer ops per call; at small T the
        # call's host time, not the kernels, bounds the speed).
        w, b, wo, weight_strides = _direct_weights(
            hidden_layers, output_kernel, heads, h1, path, v.device)
        nlw = 1
    mask_t, mask_strides = _prepare_mask(mask, batch, t, s, v.device)
    if score_chunk is None:
        score_chunk = 1
    rc = min(_next_pow2(score_chunk), _next_pow2(h1))
    config = (mask_strides, mask is not None, bool(causal), path, act,
              len(hidden_layers), nlw, hp, bm, bn, rc, weight_strides,
              num_warps, num_stages)
    return _NeuralAttentionFunction.apply(
        a.float(), c.float(), v, w, b, wo, mask_t, config)


# ---------------------------------------------------------------------------
# Materializing reference (plain PyTorch autograd)
# ---------------------------------------------------------------------------


def _torch_activation(activation):
    _activation_code(activation)
    return {"relu": torch.relu, "tanh": torch.tanh}[activation]


def _dense_pairs(h, kernel, bias, dtype):
    kernel = kernel.to(dtype)
    if kernel.dim() == 3:
        y = torch.einsum("bntsi,nio->bntso", h, kernel)
    else:
        y = torch.einsum("bntsi,io->bntso", h, kernel)
    if bias is not None:
        bias = bias.to(dtype)
        if bias.dim() == 2:
            bias = bias[None, :, None, None, :]
        y = y + bias
    return y


def reference_neural_attention(
    a,
    c,
    v,
    hidden_layers,
    output_kernel,
    mask=None,
    causal=False,
    activation="relu",
    block_m=None,
    block_n=None,
    num_warps=None,
):
    """Plain PyTorch Neural Attention that materializes the `(B, N, T, S, H)`
    activations: the oracle for `triton_neural_attention` (same signature;
    block sizes are ignored).

    Computes in float64 when `a` is float64, else float32. Masked softmax as
    `keras_neural_attention.ops.softmax.masked_softmax` (fully masked rows
    give zeros); probabilities are rounded to `v.dtype` before `P @ V`, and
    the output is returned in `v.dtype`.
    """
    act = _torch_activation(activation)
    dtype = torch.float64 if a.dtype == torch.float64 else torch.float32
    batch, heads, t, _ = a.shape
    s = c.shape[2]
    h = act(a.to(dtype)[:, :, :, None, :] + c.to(dtype)[:, :, None, :, :])
    for kernel, bias in hidden_layers:
        h = act(_dense_pairs(h, kernel, bias, dtype))
    scores = _dense_pairs(h, output_kernel, None, dtype)[..., 0]
    keep = torch.ones((t, s), dtype=torch.bool, device=a.device)
    if causal:
        keep = torch.tril(keep)
    keep = keep[None, None]
    if mask is not None:
        if mask.dim() == 4:
            mask = mask[:, 0]
        keep = keep & (mask != 0).to(a.device)[:, None]
    keep = torch.broadcast_to(keep, scores.shape)
    lowest = torch.finfo(dtype).min
    masked = torch.where(keep, scores, torch.full_like(scores, lowest))
    row_max = masked.max(dim=-1, keepdim=True).values.detach()
    exps = torch.exp(masked - row_max) * keep.to(dtype)
    total = exps.sum(dim=-1, keepdim=True)
    probs = exps / torch.where(total > 0, total, torch.ones_like(total))
    probs = probs.to(v.dtype).to(dtype)
    out = torch.einsum("bnts,bnsd->bntd", probs, v.to(dtype))
    return out.to(v.dtype)
