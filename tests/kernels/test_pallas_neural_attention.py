"""The fused Pallas Neural Attention kernel vs its materializing reference.

The kernel is JAX-only: under any other Keras backend the module is skipped.
On a machine without a GPU the kernel runs in the Pallas interpreter
(`interpret=None` resolves to True), with small blocks (16) so that the
small shapes here still span several blocks, partial last blocks included.
"""

import numpy as np
import pytest

import keras

if keras.backend.backend() != "jax":
    pytest.skip(
        "the Pallas kernel is JAX-only (KERAS_BACKEND="
        f"{keras.backend.backend()!r})",
        allow_module_level=True,
    )

jax = pytest.importorskip("jax")
jnp = jax.numpy

from keras_neural_attention.kernels import (  # noqa: E402
    pallas_neural_attention as pna,
)

fused = pna.pallas_neural_attention
reference = pna.reference_neural_attention


def make_inputs(rng, B, N, T, S, H1, widths, Dv, per_head, dtype="float32",
                mask_kind=None):
    def normal(*shape, scale=1.0):
        return jnp.asarray(rng.normal(size=shape) * scale, jnp.float32)

    prefix = (N,) if per_head else ()
    layers, previous = [], H1
    for width in widths:
        layers.append((normal(*prefix, previous, width),
                       normal(*prefix, width, scale=0.5)))
        previous = width
    output_kernel = normal(*prefix, previous, 1)
    a = normal(B, N, T, H1)
    c = normal(B, N, S, H1)
    v = normal(B, N, S, Dv).astype(dtype)
    mask = None
    if mask_kind is not None:
        mask_batch = B if mask_kind == "batched" else 1
        mask = rng.random((mask_batch, T, S)) < 0.6
        # Fully masked rows (at least one whenever T > 1).
        mask[:, rng.integers(0, T)] = False
        if T > 2:
            mask[:, rng.integers(0, T)] = False
        mask = jnp.asarray(mask)
    return a, c, v, tuple(layers), output_kernel, mask


def outputs_and_grads(fn, a, c, v, layers, output_kernel, mask, causal,
                      cotangent, **kwargs):
    def loss(a, c, v, layers, output_kernel):
        out = fn(a, c, v, layers, output_kernel, mask=mask, causal=causal,
                 **kwargs)
        return jnp.sum(out.astype(jnp.float32) * cotangent), out

    (_, out), grads = jax.jit(
        jax.value_and_grad(loss, argnums=(0, 1, 2, 3, 4), has_aux=True)
    )(a, c, v, layers, output_kernel)
    return out, grads


def assert_close(x, y, tol, what):
    x = np.asarray(jnp.asarray(x, jnp.float32))
    y = np.asarray(jnp.asarray(y, jnp.float32))
    assert x.shape == y.shape, what
    assert np.all(np.isfinite(x)), what
    scale = max(1.0, float(np.max(np.abs(y)))) if y.size else 1.0
    err = float(np.max(np.abs(x - y))) if y.size else 0.0
    bound = tol * scale
    assert err <= bound, f"{what}: max error {err:.3g} > {bound:.3g}"


def check_case(rng, B, N, T, S, H1, widths, Dv, per_head, causal, mask_kind,
               dtype="float32", block_q=None, block_k=None):
    a, c, v, layers, wo, mask = make_inputs(
        rng, B, N, T, S, H1, widths, Dv, per_head, dtype, mask_kind
    )
    cotangent = jnp.asarray(rng.normal(size=(B, N, T, Dv)), jnp.float32)
    out_f, grads_f = outputs_and_grads(
        fused, a, c, v, layers, wo, mask, causal, cotangent,
        block_q=block_q, block_k=block_k,
    )
    out_r, grads_r = outputs_and_grads(
        reference, a, c, v, layers, wo, mask, causal, cotangent
    )
    assert out_f.dtype == v.dtype
    forward_tol, grad_tol = (1e-5, 1e-4) if dtype == "float32" else (2e-2, 5e-2)
    assert_close(out_f, out_r, forward_tol, "output")
    names = ["a", "c", "v", "hidden_layers", "output_kernel"]
    for name, g_f, g_r in zip(names, grads_f, grads_r):
        for leaf_f, leaf_r in zip(jax.tree.leaves(g_f), jax.tree.leaves(g_r)):
            assert leaf_f.shape == leaf_r.shape, name
            assert_close(leaf_f, leaf_r, grad_tol, f"d {name}")
    if mask is not None:
        keep = np.broadcast_to(np.asarray(mask)[:, None], (B, N, T, S))
        if causal:
            keep = keep & np.tril(np.ones((T, S), bool))
        empty = ~keep.any(axis=-1)
        assert np.all(np.asarray(out_f, np.float32)[empty] == 0.0)


# Hand-picked cases: the paper's network, one wide layer, deeper networks,
# exact multiples of the block, sequences shorter than one block.
CASES = [
    # B, N, T, S, H1, widths, Dv, per_head, causal, mask
    (1, 1, 32, 32, 2, (1,), 8, False, False, None),
    (2, 2, 37, 29, 2, (1,), 8, False, True, None),
    (2, 1, 20, 45, 8, (), 16, True, False, "batched"),
    (1, 2, 45, 20, 3, (4, 2), 5, True, True, "shared"),
    (2, 2, 9, 7, 5, (4, 2), 4, False, False, "batched"),
    (1, 2, 33, 48, 1, (), 8, False, True, "shared"),
    (1, 1, 17, 17, 2, (3,), 8, True, True, "shared"),
]


@pytest.mark.parametrize(
    "index", range(len(CASES)),
    ids=["-".join(map(str, case)) for case in CASES],
)
def test_matches_reference(index):
    rng = np.random.default_rng(index)
    check_case(rng, *CASES[index])


# Random cases: up to three blocks of 16 per axis, partial last blocks
# included (each case runs in the Pallas interpreter on a CPU, where a
# larger grid costs tens of seconds per case).
@pytest.mark.parametrize("seed", range(10))
def test_matches_reference_random(seed):
    rng = np.random.default_rng(1000 + seed)
    B, N = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    T, S = int(rng.integers(1, 34)), int(rng.integers(1, 34))
    H1 = int(rng.choice([1, 2, 3, 5, 8]))
    widths = [(), (1,), (4, 2)][int(rng.integers(0, 3))]
    Dv = int(rng.choice([3, 8, 16]))
    per_head = bool(rng.integers(0, 2))
    causal = bool(rng.integers(0, 2))
    mask_kind = [None, "shared", "batched"][int(rng.integers(0, 3))]
    dtype = "bfloat16" if seed % 4 == 3 else "float32"
    check_case(rng, B, N, T, S, H1, widths, Dv, per_head, causal, mask_kind,
               dtype)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_paper_config(dtype):
    rng = np.random.default_rng(7)
    check_case(rng, 2, 2, 40, 24, 2, (1,), 8, False, True, "batched", dtype)


def test_block_sizes():
    rng = np.random.default_rng(3)
    check_case(rng, 1, 1, 40, 50, 2, (1,), 8, False, True, "shared",
               block_q=32, block_k=16)
    with pytest.raises(ValueError, match="power"):
        fused(*make_inputs(rng, 1, 1, 4, 4, 2, (), 4, False)[:5], block_q=24)


def test_fully_masked_rows_are_zero_with_finite_grads():
    rng = np.random.default_rng(5)
    a, c, v, layers, wo, _ = make_inputs(rng, 1, 2, 18, 20, 2, (1,), 4, False)
    mask = jnp.zeros((1, 18, 20), bool).at[:, 3:].set(True)
    cotangent = jnp.ones((1, 2, 18, 4), jnp.float32)
    out, grads = outputs_and_grads(
        fused, a, c, v, layers, wo, mask, False, cotangent
    )
    assert np.all(np.asarray(out)[:, :, :3] == 0.0)
    for leaf in jax.tree.leaves(grads):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert np.all(np.asarray(grads[0])[:, :, :3] == 0.0)


def test_jit_and_vmap():
    rng = np.random.default_rng(11)
    a, c, v, layers, wo, _ = make_inputs(rng, 3, 2, 19, 21, 3, (1,), 8, True)
    a, c, v = a[:, None], c[:, None], v[:, None]  # (3, 1, N, ., .)

    def one(a, c, v):
        return fused(a, c, v, layers, wo, causal=True)

    batched = jax.jit(jax.vmap(one))(a, c, v)
    expected = jnp.stack([
        reference(a[i], c[i], v[i], layers, wo, causal=True) for i in range(3)
    ])
    assert_close(batched, expected, 1e-5, "vmap output")

    def loss(a, c, v):
        return jnp.sum(jax.vmap(one)(a, c, v) ** 2)

    def loss_ref(a, c, v):
        return jnp.sum(jax.vmap(
            lambda a, c, v: reference(a, c, v, layers, wo, causal=True)
        )(a, c, v) ** 2)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(a, c, v)
    grads_ref = jax.grad(loss_ref, argnums=(0, 1, 2))(a, c, v)
    for g, g_ref in zip(grads, grads_ref):
        assert_close(g, g_ref, 1e-4, "vmap grad")


def test_invalid_activation_raises():
    rng = np.random.default_rng(0)
    args = make_inputs(rng, 1, 1, 4, 4, 2, (), 4, False)[:5]
    with pytest.raises(ValueError, match="activation"):
        fused(*args, activation="tanh")
    with pytest.raises(ValueError, match="activation"):
        reference(*args, activation="gelu")
    assert not pna.supports("tanh")


def test_supports():
    assert pna.supports("relu", "float32", first_width=2, hidden_widths=(1,),
                        platform="cpu")
    assert pna.supports(jax.nn.relu, "bfloat16", platform="cpu")
    assert not pna.supports("relu", "float64", platform="cpu")
    assert not pna.supports("relu", "int32", platform="cpu")
    assert not pna.supports("relu", first_width=10_000, platform="cpu")


# --------------------------------------------------------------------------
# The last hidden bias against float64.
#
# d loss / d b_L[u] = sum_ij dS_ij w_out[u] 1[pre_L[u]_ij > 0]. For a unit
# that is active on every kept pair the gate is constant and the sum is
# sum_i (sum_j dS_ij) w_out[u] = 0 exactly (a bias on every score of a row
# cancels in the row softmax), so float32 returns rounding noise of the
# size eps * sum_ij |dS_ij w_out[u]|: comparing two float32 paths there by
# relative difference measures noise against noise. The error measure that
# means something is |g32 - g64| / sum of |terms| (see the kernel module's
# docstring for the numbers).


def _scores64(a, c, layers, output_kernel):
    """float64 scores `(B, N, T, S)` and the last hidden layer's
    pre-activations `(B, N, T, S, H_L)` (call under `jax.enable_x64`)."""
    f64 = jnp.float64
    h = jax.nn.relu(a.astype(f64)[:, :, :, None, :]
                    + c.astype(f64)[:, :, None, :, :])
    pre = None
    for kernel, bias in layers:
        kernel, bias = kernel.astype(f64), bias.astype(f64)
        if kernel.ndim == 3:  # per head
            pre = jnp.einsum("bntsi,nio->bntso", h, kernel) + bias[
                None, :, None, None, :]
        else:
            pre = jnp.einsum("bntsi,io->bntso", h, kernel) + bias
        h = jax.nn.relu(pre)
    wo = output_kernel.astype(f64)
    spec = "bntsi,nio->bntso" if wo.ndim == 3 else "bntsi,io->bntso"
    return jnp.einsum(spec, h, wo)[..., 0], pre


def _attention64(scores, v, causal):
    T, S = scores.shape[-2:]
    keep = jnp.tril(jnp.ones((T, S), bool)) if causal else jnp.ones(
        (T, S), bool)
    p = jax.nn.softmax(jnp.where(keep, scores, -jnp.inf), axis=-1)
    return jnp.einsum("bnts,bnsd->bntd", p, v.astype(jnp.float64))


def _float64_gradients(a, c, v, layers, wo, cotangent, causal):
    """float64 gradients of `sum(out * cotangent)` w.r.t. `(a, c, v,
    layers, wo)`, and for the last hidden bias and the output kernel the
    per-unit sums of |terms| (`scale_bias`, `scale_out`, shaped like the
    gradients): d b_L[u] sums dS_ij w_out[u] 1[pre_ij > 0], d w_out[u] sums
    dS_ij h_ij (call under `jax.enable_x64`)."""
    T, S = a.shape[2], c.shape[2]

    @jax.jit
    def run(a, c, v, layers, wo, cotangent):
        def loss(a, c, v, layers, wo, shift):
            scores = _scores64(a, c, layers, wo)[0] + shift
            return jnp.sum(_attention64(scores, v, causal) * cotangent)

        shift = jnp.zeros(a.shape[:2] + (T, S), jnp.float64)
        *grads, d_scores = jax.grad(loss, argnums=(0, 1, 2, 3, 4, 5))(
            a, c, v, layers, wo, shift)
        pre = _scores64(a, c, layers, wo)[1]
        ds = jnp.abs(d_scores)[..., None]
        w_out = jnp.abs(wo)[:, None, None, :, 0]  # (N, 1, 1, H_L)
        scale_bias = jnp.sum(ds * w_out * (pre > 0), axis=(0, 2, 3))
        scale_out = jnp.sum(ds * jax.nn.relu(pre), axis=(0, 2, 3))
        return grads, scale_bias, scale_out[..., None]

    args = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64),
                        (a, c, v, layers, wo, cotangent))
    grads, scale_bias, scale_out = run(*args)
    to_np = lambda x: np.asarray(x, np.float64)  # noqa: E731
    return (jax.tree.map(to_np, grads), to_np(scale_bias), to_np(scale_out))


def test_last_hidden_bias_gradient_against_float64():
    """Three hidden layers, causal: the kernel's gradients against float64.

    The last hidden bias and the output kernel are checked against
    eps32 * (sum of |terms|), the bound float32 summation can meet (the
    kernel measured about 0.1-0.3 eps32 of it here); the other gradients at
    1e-5 of their largest entry. Unit 0 of the last layer is made active on
    every pair, so its exact bias gradient is 0 and its float32 value is
    pure rounding noise (also for the float32 reference): the case where a
    relative comparison of two float32 paths reports differences of order 1.
    """
    rng = np.random.default_rng(13)
    B, N, T, S, H1, widths, Dv = 1, 1, 24, 24, 2, (2, 2), 8
    a, c, v, layers, wo, _ = make_inputs(rng, B, N, T, S, H1, widths, Dv,
                                         per_head=True)
    (k2, b2), (k3, b3) = layers
    layers = ((k2, b2), (k3, b3.at[0, 0].set(50.0)))
    cotangent = jnp.asarray(rng.normal(size=(B, N, T, Dv)), jnp.float32)
    _, grads_f = outputs_and_grads(
        fused, a, c, v, layers, wo, None, True, cotangent)
    _, grads_r = outputs_and_grads(
        reference, a, c, v, layers, wo, None, True, cotangent)
    with jax.enable_x64(True):
        grads64, scale_bias, scale_out = _float64_gradients(
            a, c, v, layers, wo, cotangent, causal=True)

    eps32 = float(np.finfo(np.float32).eps)
    bias64, out64 = grads64[3][-1][1], grads64[4]
    # The cancelling unit: 0 up to float64 rounding, float32 noise beside.
    assert abs(bias64[0, 0]) <= 1e-12 * scale_bias[0, 0]
    assert abs(float(grads_f[3][-1][1][0, 0])) <= 4 * eps32 * scale_bias[0, 0]
    for name, grads in (("kernel", grads_f), ("float32 reference", grads_r)):
        for what, g32, g64, scale in (
            ("last hidden bias", grads[3][-1][1], bias64, scale_bias),
            ("output kernel", grads[4], out64, scale_out),
        ):
            err = np.abs(np.asarray(g32, np.float64) - g64)
            assert np.all(err <= 4 * eps32 * scale), (
                f"{name}, {what}: |g32 - g64| / (eps32 sum |terms|) = "
                f"{err / scale / eps32}")

    names = ["a", "c", "v", "hidden_layers", "output_kernel"]
    for name, g_f, g_64 in zip(names[:4], grads_f[:4], grads64[:4]):
        leaves_f, leaves_64 = jax.tree.leaves(g_f), jax.tree.leaves(g_64)
        if name == "hidden_layers":  # the last bias is checked above
            leaves_f, leaves_64 = leaves_f[:-1], leaves_64[:-1]
        for leaf_f, leaf_64 in zip(leaves_f, leaves_64):
            err = float(np.max(np.abs(np.asarray(leaf_f, np.float64)
                                      - leaf_64)))
            bound = 1e-5 * float(np.max(np.abs(leaf_64)))
            assert err <= bound, f"d {name}: {err:.3g} > {bound:.3g}"


def test_causal_kernel_runs_with_x64_enabled():
    # `jax_enable_x64` turns Python ints into int64; the causal block
    # bounds divide the int32 program id by static block sizes.
    rng = np.random.default_rng(14)
    a, c, v, layers, wo, _ = make_inputs(rng, 1, 1, 20, 20, 2, (1,), 4,
                                         False)
    with jax.enable_x64(True):
        out = fused(a, c, v, layers, wo, causal=True)
        expected = reference(a, c, v, layers, wo, causal=True)
    assert_close(out, expected, 1e-5, "output under x64")
