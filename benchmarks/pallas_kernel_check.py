"""Checks and times the fused Pallas Neural Attention kernel on a CUDA GPU.

JAX only (no Keras, no TensorFlow): the kernel module is loaded from its file
so that the package `__init__` (which imports Keras) is not run.

    python benchmarks/pallas_kernel_check.py --out results/pallas_h100
    python benchmarks/pallas_kernel_check.py --check-only --out /tmp/x

1. Correctness: fused vs the materializing `jnp` reference (forward and the
   gradients of a random linear functional of the output) in float32 and
   bfloat16 for a few shapes (partial blocks, masks, causal, per-head and
   shared weights, deeper scoring networks).
2. Timing: forward and forward+backward of the fused kernel vs
   `jax.nn.dot_product_attention(..., implementation="cudnn")` (flash) at
   B=8, N=8, Dv=64 (bfloat16 values), T = S from 512 to 16384, for the
   paper's scoring network (H1 = 2, then a width-1 layer) and a single hidden
   layer of width 32. Shapes that fail (out of memory, ...) are reported and
   skipped.

Prints a table and writes `pallas_kernel_check.json` into `--out`.
"""

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_PATH = os.path.join(
    HERE, "..", "keras_neural_attention", "kernels",
    "pallas_neural_attention.py",
)


def load_kernel_module():
    spec = importlib.util.spec_from_file_location(
        "pallas_neural_attention", MODULE_PATH
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_case(rng, B, N, T, S, H1, widths, Dv, per_head, dtype):
    def normal(*shape):
        return jnp.asarray(rng.normal(size=shape), jnp.float32)

    prefix = (N,) if per_head else ()
    layers, previous = [], H1
    for width in widths:
        layers.append(
            (normal(*prefix, previous, width) / np.sqrt(previous),
             normal(*prefix, width) * 0.1)
        )
        previous = width
    output_kernel = normal(*prefix, previous, 1)
    a = normal(B, N, T, H1)
    c = normal(B, N, S, H1)
    v = normal(B, N, S, Dv).astype(dtype)
    return a, c, v, tuple(layers), output_kernel


def max_rel_err(x, y):
    x = np.asarray(jnp.asarray(x, jnp.float32))
    y = np.asarray(jnp.asarray(y, jnp.float32))
    scale = max(1.0, float(np.max(np.abs(y))) if y.size else 1.0)
    return float(np.max(np.abs(x - y))) / scale if y.size else 0.0


def check(module, rng):
    fused = module.pallas_neural_attention
    ref = module.reference_neural_attention
    cases = [
        # B, N, T, S, H1, widths, Dv, per_head, causal, mask
        (2, 2, 300, 200, 2, (1,), 64, False, False, False),
        (2, 2, 257, 257, 2, (1,), 64, False, True, False),
        (1, 2, 130, 190, 32, (), 64, True, False, True),
        (2, 1, 100, 100, 3, (4, 2), 40, True, True, True),
        (1, 1, 64, 64, 5, (), 8, False, False, True),
    ]
    rows = []
    for B, N, T, S, H1, widths, Dv, per_head, causal, use_mask in cases:
        for dtype, tol in (("float32", 1e-4), ("bfloat16", 3e-2)):
            a, c, v, layers, wo = make_case(
                rng, B, N, T, S, H1, widths, Dv, per_head, dtype
            )
            mask = None
            if use_mask:
                mask = jnp.asarray(rng.random((B, T, S)) > 0.3)
                mask = mask.at[:, 1].set(False)  # a fully masked row
            cot = jnp.asarray(rng.normal(size=(B, N, T, Dv)), jnp.float32)

            def loss(fn):
                def f(a, c, v, layers, wo):
                    out = fn(a, c, v, layers, wo, mask=mask, causal=causal)
                    return jnp.sum(out.astype(jnp.float32) * cot)
                return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2, 3, 4)))

            row = dict(B=B, N=N, T=T, S=S, H1=H1, widths=list(widths), Dv=Dv,
                       per_head=per_head, causal=causal, mask=use_mask,
                       dtype=dtype)
            try:
                out_f = jax.jit(
                    lambda *x: fused(*x, mask=mask, causal=causal)
                )(a, c, v, layers, wo)
                out_r = ref(a, c, v, layers, wo, mask=mask, causal=causal)
                row["forward_err"] = max_rel_err(out_f, out_r)
                _, g_f = loss(fused)(a, c, v, layers, wo)
                _, g_r = loss(ref)(a, c, v, layers, wo)
                row["grad_err"] = max(
                    max_rel_err(x, y)
                    for x, y in zip(jax.tree.leaves(g_f), jax.tree.leaves(g_r))
                )
                row["finite"] = bool(np.all(np.isfinite(np.asarray(
                    jnp.asarray(out_f, jnp.float32)))))
                row["ok"] = bool(
                    row["forward_err"] < tol and row["grad_err"] < 10 * tol
                    and row["finite"]
                )
            except Exception as e:  # noqa: BLE001
                row["ok"] = False
                row["error"] = f"{type(e).__name__}: {e}"[:2000]
                traceback.print_exc()
            print("check", json.dumps(row), flush=True)
            rows.append(row)
    return rows


def bench_fn(fn, args, reps, budget_s):
    out = fn(*args)
    jax.block_until_ready(out)  # compile + warm up
    times = []
    start = time.perf_counter()
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return float(np.median(times)) * 1e3


def bench(module, rng, lengths, configs, causal, reps, budget_s, rows,
          save):
    fused = module.pallas_neural_attention
    B, N, Dv = 8, 8, 64
    for T in lengths:
        q = jnp.asarray(rng.normal(size=(B, T, N, Dv)), jnp.bfloat16)
        k = jnp.asarray(rng.normal(size=(B, T, N, Dv)), jnp.bfloat16)
        vv = jnp.asarray(rng.normal(size=(B, T, N, Dv)), jnp.bfloat16)
        row = dict(B=B, N=N, Dv=Dv, T=T, S=T, causal=causal)
        try:
            f = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(
                q, k, v, is_causal=causal, implementation="cudnn"))
            g = jax.jit(jax.grad(
                lambda q, k, v: jnp.sum(jax.nn.dot_product_attention(
                    q, k, v, is_causal=causal,
                    implementation="cudnn").astype(jnp.float32)),
                argnums=(0, 1, 2)))
            row["cudnn_fwd_ms"] = bench_fn(f, (q, k, vv), reps, budget_s)
            row["cudnn_fwd_bwd_ms"] = bench_fn(g, (q, k, vv), reps, budget_s)
        except Exception as e:  # noqa: BLE001
            row["cudnn_error"] = f"{type(e).__name__}: {e}"[:500]
        del q, k
        for name, H1, widths in configs:
            try:
                a, c, v, layers, wo = make_case(
                    rng, B, N, T, T, H1, widths, Dv, False, "bfloat16"
                )
                f = jax.jit(lambda a, c, v, layers, wo: fused(
                    a, c, v, layers, wo, causal=causal))
                g = jax.jit(jax.grad(
                    lambda a, c, v, layers, wo: jnp.sum(fused(
                        a, c, v, layers, wo, causal=causal
                    ).astype(jnp.float32)), argnums=(0, 1, 2, 3, 4)))
                args = (a, c, v, layers, wo)
                row[f"{name}_fwd_ms"] = bench_fn(f, args, reps, budget_s)
                row[f"{name}_fwd_bwd_ms"] = bench_fn(g, args, reps, budget_s)
            except Exception as e:  # noqa: BLE001
                row[f"{name}_error"] = f"{type(e).__name__}: {e}"[:500]
        print("bench", json.dumps(row), flush=True)
        rows.append(row)
        save()
    return rows


def sweep(module, rng, T, reps, budget_s):
    """Times block sizes / warps for both benchmark configs at one length."""
    fused = module.pallas_neural_attention
    B, N, Dv = 8, 8, 64
    rows = []
    for name, H1, widths in (("paper_h2w1", 2, (1,)), ("h32", 32, ())):
        a, c, v, layers, wo = make_case(
            rng, B, N, T, T, H1, widths, Dv, False, "bfloat16"
        )
        args = (a, c, v, layers, wo)
        for bq, bk in ((32, 32), (64, 32), (64, 64), (128, 64)):
            for warps in (4, 8):
                kw = dict(block_q=bq, block_k=bk, num_warps=warps)
                row = dict(config=name, T=T, block_q=bq, block_k=bk,
                           num_warps=warps)
                try:
                    f = jax.jit(lambda *x, kw=kw: fused(*x, **kw))
                    g = jax.jit(jax.grad(
                        lambda *x, kw=kw: jnp.sum(
                            fused(*x, **kw).astype(jnp.float32)),
                        argnums=(0, 1, 2, 3, 4)))
                    row["fwd_ms"] = bench_fn(f, args, reps, budget_s)
                    row["fwd_bwd_ms"] = bench_fn(g, args, reps, budget_s)
                except Exception as e:  # noqa: BLE001
                    row["error"] = f"{type(e).__name__}: {e}"[:300]
                print("sweep", json.dumps(row), flush=True)
                rows.append(row)
    return rows


def print_table(rows, configs):
    cols = ["cudnn_fwd_ms", "cudnn_fwd_bwd_ms"]
    for name, _, _ in configs:
        cols += [f"{name}_fwd_ms", f"{name}_fwd_bwd_ms"]
    print("\n" + "T".rjust(6) + "".join(c.rjust(22) for c in cols))
    for row in rows:
        line = str(row["T"]).rjust(6)
        for col in cols:
            value = row.get(col)
            line += ("-" if value is None else f"{value:.3f}").rjust(22)
        print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--check-only", action="store_true")
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--causal", action="store_true")
    parser.add_argument(
        "--lengths", default="512,1024,2048,4096,8192,16384",
        help="comma-separated T = S values",
    )
    parser.add_argument("--sweep", type=int, default=0, metavar="T",
                        help="also sweep block sizes / warps at T = S")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--budget-s", type=float, default=3.0,
                        help="max seconds of timed repetitions per entry")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    module = load_kernel_module()
    rng = np.random.default_rng(0)
    result = dict(
        jax=jax.__version__,
        devices=[str(d) for d in jax.devices()],
        python=platform.python_version(),
    )
    print(json.dumps(result), flush=True)
    path = os.path.join(args.out, "pallas_kernel_check.json")

    def save():  # after every section: a timed-out run keeps what it did
        with open(path, "w") as f:
            json.dump(result, f, indent=1)

    if jax.default_backend() != "gpu":
        print("warning: no GPU; the kernel runs in the Pallas interpreter",
              file=sys.stderr)
    if not args.skip_check:
        result["check"] = check(module, rng)
        result["check_ok"] = all(r["ok"] for r in result["check"])
        print("check_ok", result["check_ok"], flush=True)
        save()
    configs = [("paper_h2w1", 2, (1,)), ("h32", 32, ())]
    if args.sweep:
        result["sweep"] = sweep(module, rng, args.sweep, args.reps,
                                args.budget_s)
        save()
    if not args.check_only:
        lengths = [int(x) for x in args.lengths.split(",") if x]
        result["bench"] = []
        bench(module, rng, lengths, configs, args.causal, args.reps,
              args.budget_s, result["bench"], save)
        print_table(result["bench"], configs)
    save()
    print("wrote", path)


if __name__ == "__main__":
    main()
