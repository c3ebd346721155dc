"""Tests of the fused Triton Neural Attention kernel (PyTorch backend).

Without a CUDA device the kernels run in Triton's interpreter
(`TRITON_INTERPRET=1`, set below before Triton is imported). Every case
compares the fused forward and every gradient with the materializing
PyTorch reference evaluated in float64.

`test_random_cases` draws 30 random configurations (T, S in 1..70, B, N in
{1, 2}, H1 in {1, 2, 3, 5, 8}, hidden widths (), (1,), (3,), (2, 1), (4, 2),
shared or per-head weights, causal or not, no / dense / shared / key-padding
masks); set `NA_TRITON_SWEEP=<n>` for `n` of them instead (about 1.4 s each
on one CPU core in interpreter mode).
"""

import os

import keras
import pytest

if keras.backend.backend() != "torch":
    pytest.skip(
        "Triton kernels run on the PyTorch backend "
        f"(KERAS_BACKEND={keras.backend.backend()})",
        allow_module_level=True,
    )

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    # Triton picks interpreted vs compiled kernels when they are defined.
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton", reason="Triton is not installed")

from keras_neural_attention.kernels import (  # noqa: E402
    triton_neural_attention as tna,
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

if DEVICE == "cpu" and not tna._interpreting():
    pytest.skip(
        "No CUDA device and TRITON_INTERPRET is not 1 (the kernel module was "
        "imported before it was set)",
        allow_module_level=True,
    )

FWD_TOL = 1e-5
GRAD_TOL = 1e-4


def make_case(seed, batch, heads, t, s, h1, widths, per_head, causal,
              mask_kind, dv=8):
    """Random float64 inputs, weights and mask for one case."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    a = randn(batch, heads, t, h1)
    c = randn(batch, heads, s, h1)
    v = randn(batch, heads, s, dv)
    layers = []
    fan = h1
    lead = (heads,) if per_head else ()
    for width in widths:
        layers.append((randn(*lead, fan, width, scale=fan ** -0.5),
                       randn(*lead, width, scale=0.5)))
        fan = width
    wo = randn(*lead, fan, 1, scale=2.0 * fan ** -0.5)
    mask = None
    if mask_kind == "dense":
        mask = torch.rand(batch, t, s, generator=g) < 0.6
        mask[:, min(2, t - 1)] = False  # fully masked rows
        mask[:, t - 1] = False
    elif mask_kind == "shared":
        mask = torch.rand(1, t, s, generator=g) < 0.5
        mask[:, 0] = False
    elif mask_kind == "keys":  # padding mask, broadcast over queries
        mask = torch.ones(batch, 1, s, dtype=torch.bool)
        mask[:, :, s // 2:] = False
    return a, c, v, layers, wo, mask


def _leaves(a, c, v, layers, wo):
    return [a, c, v, wo] + [x for layer in layers for x in layer]


def _unpack(leaves, num_layers):
    layers = [(leaves[4 + 2 * i], leaves[5 + 2 * i])
              for i in range(num_layers)]
    return leaves[0], leaves[1], leaves[2], layers, leaves[3]


def run_and_compare(case, causal, vdtype=torch.float32, activation="relu",
                    block=16, fwd_tol=FWD_TOL, grad_tol=GRAD_TOL, **kwargs):
    a, c, v, layers, wo, mask = case
    num_layers = len(layers)
    if vdtype != torch.float32:
        v = v.to(vdtype).to(torch.float64)  # same rounded values for both
    ref_leaves = [x.clone().requires_grad_(True)
                  for x in _leaves(a, c, v, layers, wo)]
    ref = tna.reference_neural_attention(
        *_unpack(ref_leaves, num_layers), mask=mask, causal=causal,
        activation=activation)
    upstream = torch.randn(ref.shape, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(1))
    ref_grads = torch.autograd.grad((ref * upstream).sum(), ref_leaves)

    leaves = [x.detach().float().to(DEVICE) for x in ref_leaves]
    leaves[2] = leaves[2].to(vdtype)
    for x in leaves:
        x.requires_grad_(True)
    dev_mask = None if mask is None else mask.to(DEVICE)
    out = tna.triton_neural_attention(
        *_unpack(leaves, num_layers), mask=dev_mask, causal=causal,
        activation=activation, block_m=block, block_n=block, **kwargs)
    assert out.dtype == vdtype
    assert out.shape == ref.shape
    assert torch.isfinite(out).all()
    grads = torch.autograd.grad(
        (out.double() * upstream.to(DEVICE)).sum(), leaves)

    if vdtype != torch.float32:
        # The kernel rounds P to `v.dtype` like the reference does, but the
        # rounding of P happens on float32 vs float64 scores and the output
        # is rounded to `v.dtype`: compare at that precision.
        eps = torch.finfo(vdtype).eps
        fwd_tol, grad_tol = 4 * eps, 8 * eps
    torch.testing.assert_close(out.double().cpu(), ref.detach(),
                               atol=fwd_tol, rtol=fwd_tol)
    names = ["a", "c", "v", "output_kernel"] + [
        f"{kind}{i + 2}" for i in range(num_layers)
        for kind in ("kernel", "bias")]
    for name, got, want in zip(names, grads, ref_grads):
        assert got.shape == want.shape, name
        torch.testing.assert_close(
            got.double().cpu(), want, atol=grad_tol, rtol=grad_tol,
            msg=lambda m, name=name: f"gradient of {name}: {m}")
    # Fully masked rows give exactly zero.
    if mask is not None or causal:
        keep = torch.ones(a.shape[2], c.shape[2], dtype=torch.bool)
        if causal:
            keep = torch.tril(keep)
        keep = keep[None]
        if mask is not None:
            keep = keep & mask
        keep = torch.broadcast_to(keep, (a.shape[0],) + keep.shape[1:])
        empty = ~keep.any(-1)  # (B, T)
        if empty.any():
            rows = out.detach().cpu().permute(0, 2, 1, 3)[empty]
            assert (rows == 0).all()


# (seed, B, N, T, S, H1, widths, per_head, causal, mask_kind)
CASES = [
    # single hidden layer (PATH_SINGLE)
    (0, 1, 1, 20, 24, 1, (), False, False, None),
    (1, 2, 2, 37, 29, 2, (), True, True, "dense"),
    (2, 1, 2, 33, 47, 8, (), False, False, "keys"),
    (3, 2, 1, 16, 16, 3, (), False, True, None),
    # one further layer of width 1, the paper's network (PATH_SCALAR_HEAD)
    (4, 2, 2, 37, 29, 2, (1,), False, True, "dense"),
    (5, 1, 2, 40, 33, 3, (1,), True, False, "shared"),
    (6, 2, 1, 29, 45, 5, (1,), False, False, None),
    # general path: widths (4, 2), (3,), (2, 1)
    (7, 1, 2, 33, 40, 5, (4, 2), True, False, "dense"),
    (8, 2, 1, 40, 33, 8, (4, 2), False, True, None),
    (9, 1, 1, 17, 31, 2, (3,), False, True, "dense"),
    (10, 2, 2, 18, 20, 3, (2, 1), True, True, "keys"),
]


def _case_id(spec):
    widths = "x".join(map(str, spec[6])) or "none"
    return (f"seed{spec[0]}-B{spec[1]}N{spec[2]}-T{spec[3]}S{spec[4]}"
            f"-H{spec[5]}-w{widths}-{'head' if spec[7] else 'shared'}"
            f"-{'causal' if spec[8] else 'full'}-{spec[9]}")


@pytest.mark.parametrize("spec", CASES, ids=_case_id)
def test_matches_reference(spec):
    seed, b, n, t, s, h1, widths, per_head, causal, mask_kind = spec
    case = make_case(seed, b, n, t, s, h1, widths, per_head, causal,
                     mask_kind)
    run_and_compare(case, causal)


@pytest.mark.parametrize("widths", [(), (1,), (4, 2)])
def test_float16_values(widths):
    case = make_case(20, 2, 1, 33, 21, 3, widths, False, True, "dense")
    run_and_compare(case, True, vdtype=torch.float16)


def test_bfloat16_values():
    # bf16 arithmetic is wrong in the interpreter; the kernel upcasts after
    # loading there. The compiled bf16 tensor-core path needs a GPU check
    # (benchmarks/triton_kernel_check.py).
    case = make_case(21, 1, 2, 25, 30, 2, (1,), False, False, "dense")
    run_and_compare(case, False, vdtype=torch.bfloat16)


@pytest.mark.parametrize("widths", [(), (1,), (4, 2)])
def test_tanh(widths):
    case = make_case(22, 1, 2, 21, 26, 3, widths, True, False, "dense")
    run_and_compare(case, False, activation="tanh")


@pytest.mark.parametrize("h1,widths,chunk", [
    (8, (), 4), (5, (), 2), (3, (1,), 4), (8, (1,), 8)])
def test_chunked_first_layer(h1, widths, chunk):
    case = make_case(27, 2, 1, 35, 30, h1, widths, False, True, "dense")
    run_and_compare(case, True, score_chunk=chunk)


def test_larger_blocks_and_value_dim():
    case = make_case(23, 1, 1, 70, 45, 2, (1,), False, True, "dense", dv=20)
    run_and_compare(case, True, block=32)


def test_causal_with_more_queries_than_keys():
    # j > i masked (top-left aligned): queries past S see every key.
    case = make_case(24, 1, 1, 50, 20, 2, (), False, True, None)
    run_and_compare(case, True)


def _compare_weights(a, c, v, layers, wo, mask=None):
    """Fused vs float64 reference, with the weights exactly as `layers` and
    `wo` hold them (any layout, float32 or float64, biases may be None)."""

    def tensors(layers, wo):
        return [x for layer in layers for x in layer if x is not None] + [wo]

    def rebuild(xs):
        it = iter(xs)
        new_layers = [tuple(None if x is None else next(it) for x in layer)
                      for layer in layers]
        return new_layers, next(it)

    inputs = [a, c, v] + tensors(layers, wo)
    for x in inputs:
        x.requires_grad_(True)
    ref_inputs = [x.detach().double().requires_grad_(True) for x in inputs]
    ref = tna.reference_neural_attention(
        *ref_inputs[:3], *rebuild(ref_inputs[3:]), mask=mask)
    ref_grads = torch.autograd.grad(ref.sum(), ref_inputs)
    out = tna.triton_neural_attention(
        a, c, v, *rebuild(inputs[3:]), mask=mask, block_m=16, block_n=16)
    grads = torch.autograd.grad(out.double().sum(), inputs)
    torch.testing.assert_close(out.double(), ref.detach(), atol=FWD_TOL,
                               rtol=FWD_TOL)
    for got, want, x in zip(grads, ref_grads, inputs):
        assert got.shape == x.shape and got.dtype == x.dtype
        torch.testing.assert_close(got.double(), want, atol=GRAD_TOL,
                                   rtol=GRAD_TOL)


@pytest.mark.parametrize("layout", [
    "strided_kernel", "expanded_per_head", "mixed_per_head", "float64",
    "no_bias"])
def test_scalar_head_path_reads_caller_weights(layout):
    # The single-layer and scalar-head paths hand the caller's weight
    # tensors to the kernels with their strides (no packing copy): check
    # layouts other than contiguous float32 ones, and their gradients.
    heads, h1 = 2, 3
    a, c, v, layers, wo, mask = make_case(40, 2, heads, 21, 26, h1, (1,),
                                          False, False, "keys")
    (kernel, bias), = layers
    a, c, v = a.float(), c.float(), v.float()
    kernel, bias, wo = kernel.float(), bias.float(), wo.float()
    if layout == "strided_kernel":  # (H1, 1) view with row stride 2
        kernel = torch.stack([kernel[:, 0], -kernel[:, 0]], 1)[:, :1]
        assert kernel.stride(0) == 2
    elif layout == "expanded_per_head":  # per-head views with stride 0
        kernel = kernel.expand(heads, h1, 1)
        bias = bias.expand(heads, 1)
        wo = wo.expand(heads, 1, 1)
    elif layout == "mixed_per_head":  # per-head kernel, shared b and w_out
        kernel = kernel[None] * torch.tensor([1.0, -0.5])[:, None, None]
    elif layout == "float64":
        kernel, bias, wo = kernel.double(), bias.double(), wo.double()
    elif layout == "no_bias":
        bias = None
    _compare_weights(a, c, v, [(kernel, bias)], wo, mask)


@pytest.mark.parametrize("per_head", [False, True])
def test_single_layer_path_output_kernel_view(per_head):
    # Path 0 with an output kernel whose unit stride is not 1 (a copy is
    # made) or that is shared by the heads.
    a, c, v, _, _, mask = make_case(41, 1, 2, 18, 22, 4, (), False, True,
                                    "dense")
    lead = (2,) if per_head else ()
    wo = torch.randn(*lead, 4, 2)[..., :1]
    assert wo.stride(-2) == 2
    _compare_weights(a.float(), c.float(), v.float(), [], wo, mask)


def test_wrong_weight_shapes_raise():
    a, c, v, layers, wo, _ = make_case(42, 1, 2, 8, 8, 2, (1,), False,
                                       False, None)
    a, c, v = a.float(), c.float(), v.float()
    (kernel, bias), = layers
    with pytest.raises(ValueError, match="num_heads=2"):
        tna.triton_neural_attention(
            a, c, v, [(kernel.float()[None].repeat(3, 1, 1), bias.float())],
            wo.float())
    with pytest.raises(ValueError, match="does not follow a layer of width"):
        tna.triton_neural_attention(
            a, c, v, [(torch.zeros(3, 1), bias.float())], wo.float())
    with pytest.raises(ValueError, match="output_kernel"):
        tna.triton_neural_attention(
            a, c, v, [(kernel.float(), bias.float())], torch.zeros(2, 1))


def test_everything_masked_gives_zeros_and_zero_grads():
    a, c, v, layers, wo, _ = make_case(25, 1, 2, 19, 23, 2, (1,), False,
                                       False, None)
    mask = torch.zeros(1, 19, 23, dtype=torch.bool)
    leaves = [x.float().requires_grad_(True)
              for x in _leaves(a, c, v, layers, wo)]
    out = tna.triton_neural_attention(*_unpack(leaves, 1), mask=mask,
                                      block_m=16, block_n=16)
    assert (out == 0).all()
    grads = torch.autograd.grad(out.sum(), leaves)
    for grad in grads:
        assert torch.isfinite(grad).all()
        assert (grad == 0).all()


def test_invalid_activation_raises():
    a, c, v, layers, wo, _ = make_case(26, 1, 1, 8, 8, 2, (), False, False,
                                       None)
    with pytest.raises(ValueError, match="activation"):
        tna.triton_neural_attention(a.float(), c.float(), v.float(), layers,
                                    wo.float(), activation="gelu")
    with pytest.raises(ValueError, match="activation"):
        tna.reference_neural_attention(a, c, v, layers, wo,
                                       activation="gelu")


def test_supports():
    shapes = ((2, 4, 100, 2), (2, 4, 90, 2), (2, 4, 90, 64))
    device = DEVICE
    assert tna.supports(*shapes, (1,), "relu", torch.bfloat16, device)
    assert tna.supports(*shapes, (), "tanh", torch.float32, device)
    assert not tna.supports(*shapes, (), "gelu", torch.float32, device)
    assert not tna.supports(*shapes, (), "relu", torch.float64, device)
    assert not tna.supports((2, 4, 100, 2), (2, 4, 90, 3), shapes[2])
    assert not tna.supports(*shapes, (), "relu", torch.float32, "meta")


def _sweep_cases(count):
    import random

    rng = random.Random(1234)
    for i in range(count):
        widths = rng.choice([(), (1,), (4, 2), (3,), (2, 1)])
        yield (100 + i, rng.choice([1, 2]), rng.choice([1, 2]),
               rng.randint(1, 70), rng.randint(1, 70),
               rng.choice([1, 2, 3, 5, 8]), widths, rng.random() < 0.5,
               rng.random() < 0.5,
               rng.choice([None, "dense", "shared", "keys"]))


@pytest.mark.parametrize(
    "spec", list(_sweep_cases(int(os.environ.get("NA_TRITON_SWEEP", 30)))),
    ids=lambda s: f"case{s[0]}")
def test_random_cases(spec):
    seed, b, n, t, s, h1, widths, per_head, causal, mask_kind = spec
    case = make_case(seed, b, n, t, s, h1, widths, per_head, causal,
                     mask_kind)
    run_and_compare(case, causal)
