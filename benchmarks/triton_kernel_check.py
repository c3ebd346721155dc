#!/usr/bin/env python
"""Correctness check and timing of the fused Triton Neural Attention kernel
on a CUDA GPU (PyTorch + Triton only: no Keras, no TensorFlow).

1. Correctness: `triton_neural_attention` vs the materializing PyTorch
   reference (`reference_neural_attention`, float64) for a few shapes (T != S,
   partial blocks, causal, masks with fully masked rows, shared and per-head
   weights, all three code paths), forward and every gradient; float32
   (tight tolerance) and bfloat16/float16 values (loose tolerance).
2. Timing (`triton.testing.do_bench`, median ms): forward and
   forward+backward of the fused kernel vs
   `torch.nn.functional.scaled_dot_product_attention` restricted to the
   FlashAttention backend (bf16/fp16, head dim Dv), at B=8, N=8, Dv=64,
   T=S in --seq-lengths, for the paper's network (H1=2 then a width-1 layer)
   and a single hidden layer of width 32.

Usage (on the GPU machine, from the repository root):

    python benchmarks/triton_kernel_check.py                 # check + bench
    python benchmarks/triton_kernel_check.py --check-only
    python benchmarks/triton_kernel_check.py --sweep 2048    # launch options
    python benchmarks/triton_kernel_check.py --seq-lengths 512 1024 \
        --configs paper --causal 0 --out results/

Prints a table and writes `triton_kernel_check.json` to --out (default:
$OUT if set, else the current directory).
"""

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
KERNEL_FILE = ROOT / "keras_neural_attention" / "kernels" / (
    "triton_neural_attention.py"
)


def load_kernel_module(module_name="triton_neural_attention"):
    """Loads the kernel module by path, so the package `__init__` (which
    imports Keras) is not executed. Each `module_name` gives a separate
    module object (the other Triton scripts replace its kernels)."""
    spec = importlib.util.spec_from_file_location(module_name, KERNEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONFIGS = {
    # name: (H1, hidden widths)
    "paper": (2, (1,)),
    "single32": (32, ()),
}


def make_inputs(batch, heads, t, s, h1, widths, dv, per_head, dtype, device,
                seed, vdtype):
    g = torch.Generator(device="cpu").manual_seed(seed)

    def randn(*shape, scale=1.0):
        x = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
        return x.to(device=device, dtype=dtype)

    a = randn(batch, heads, t, h1)
    c = randn(batch, heads, s, h1)
    v = randn(batch, heads, s, dv).to(vdtype)
    layers = []
    fan = h1
    for width in widths:
        lead = (heads,) if per_head else ()
        layers.append((randn(*lead, fan, width, scale=fan ** -0.5),
                       randn(*lead, width, scale=0.3)))
        fan = width
    wo = randn(*(((heads,) if per_head else ()) + (fan, 1)),
               scale=fan ** -0.5)
    return a, c, v, layers, wo


def leaves_of(a, c, v, layers, wo):
    return [a, c, v, wo] + [t for layer in layers for t in layer]


def check(mod, device, verbose=True, only=None):
    """Returns a list of result dicts; raises nothing. `only`: indices of
    the cases to run (each new shape/network compiles new kernels)."""
    cases = [
        # B, N, T, S, H1, widths, per_head, causal, mask, vdtype
        (2, 3, 300, 257, 2, (1,), False, False, False, torch.float32),
        (2, 3, 257, 300, 2, (1,), True, True, True, torch.float32),
        (1, 2, 200, 200, 32, (), False, True, False, torch.float32),
        (2, 2, 130, 190, 5, (), True, False, True, torch.float32),
        (1, 2, 100, 77, 4, (4, 2), True, True, True, torch.float32),
        (1, 2, 96, 96, 3, (8,), False, False, False, torch.float32),
        (2, 3, 300, 257, 2, (1,), False, True, True, torch.bfloat16),
        (1, 2, 200, 200, 32, (), False, False, False, torch.bfloat16),
        (1, 2, 200, 150, 32, (), True, True, True, torch.float16),
        # tuning knobs (same results expected)
        (1, 2, 200, 200, 32, (), False, True, True, torch.float32,
         dict(score_chunk=4)),
        (2, 2, 300, 257, 2, (1,), False, True, False, torch.bfloat16,
         dict(score_chunk=2, block_m=128, block_n=64, num_warps=8,
              num_stages=1)),
    ]
    results = []
    for i, (b, n, t, s, h1, widths, per_head, causal, use_mask,
            vdtype, *options) in enumerate(cases):
        if only is not None and i not in only:
            continue
        options = options[0] if options else {}
        a, c, v, layers, wo = make_inputs(
            b, n, t, s, h1, widths, 64, per_head, torch.float64, device,
            seed=i, vdtype=torch.float64)
        mask = None
        if use_mask:
            gen = torch.Generator(device="cpu").manual_seed(100 + i)
            mask = torch.rand(b, t, s, generator=gen) < 0.6
            mask[:, 3] = False  # a fully masked row
            mask = mask.to(device)
        ref_leaves = [x.clone().requires_grad_(True)
                      for x in leaves_of(a, c, v, layers, wo)]
        fused_leaves = [x.detach().float().clone() for x in ref_leaves]
        fused_leaves[2] = fused_leaves[2].to(vdtype)
        for x in fused_leaves:
            x.requires_grad_(True)

        def unpack(leaves):
            layers_ = [(leaves[4 + 2 * j], leaves[5 + 2 * j])
                       for j in range(len(layers))]
            return leaves[0], leaves[1], leaves[2], layers_, leaves[3]

        ra, rc, rv, rl, rwo = unpack(ref_leaves)
        if vdtype != torch.float32:
            # Reference sees the same rounded values as the kernel.
            rv = rv.to(vdtype).to(torch.float64)
        ref = mod.reference_neural_attention(ra, rc, rv, rl, rwo, mask=mask,
                                             causal=causal)
        if vdtype != torch.float32:
            # Round P like the kernel: reference in float32 with v in vdtype.
            ref32 = mod.reference_neural_attention(
                ra.float(), rc.float(), rv.to(vdtype),
                [(k.float(), bb.float()) for k, bb in rl], rwo.float(),
                mask=mask, causal=causal).double()
        grad = torch.randn(ref.shape, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(7)).to(
            device)
        ref_grads = torch.autograd.grad((ref * grad).sum(), ref_leaves)
        fa, fc, fv, fl, fwo = unpack(fused_leaves)
        out = mod.triton_neural_attention(fa, fc, fv, fl, fwo, mask=mask,
                                          causal=causal, **options)
        fused_grads = torch.autograd.grad(
            (out.double() * grad).sum(), fused_leaves)
        fwd_err = (out.double() - ref).abs().max().item()
        if vdtype != torch.float32:
            fwd_err_rounded = (out.double() - ref32).abs().max().item()
        else:
            fwd_err_rounded = fwd_err
        grad_errs = []
        for fg, rg in zip(fused_grads, ref_grads):
            scale = max(1.0, rg.abs().max().item())
            grad_errs.append((fg.double() - rg).abs().max().item() / scale)
        tol_f, tol_g = (1e-5, 1e-4) if vdtype == torch.float32 else (
            3e-2, 5e-2)
        ok = (fwd_err_rounded <= tol_f and max(grad_errs) <= tol_g
              and torch.isfinite(out).all().item())
        row = dict(case=i, B=b, N=n, T=t, S=s, H1=h1, widths=list(widths),
                   per_head=per_head, causal=causal, mask=use_mask,
                   vdtype=str(vdtype).replace("torch.", ""),
                   options=options,
                   fwd_err=fwd_err, fwd_err_vs_rounded=fwd_err_rounded,
                   max_rel_grad_err=max(grad_errs), ok=ok)
        results.append(row)
        if verbose:
            print(f"check {i}: {row['vdtype']:8s} T={t} S={s} H1={h1} "
                  f"widths={widths} per_head={per_head} causal={causal} "
                  f"mask={use_mask} {options}: fwd {fwd_err:.2e} (vs rounded "
                  f"{fwd_err_rounded:.2e}) grad {max(grad_errs):.2e} "
                  f"{'OK' if ok else 'FAIL'}", flush=True)
    return results


# Cost model (../shared/notes/fused-kernels.md, section 6): an H100 SXM
# issues 4 schedulers x 32 lanes x 132 SMs x 1.98 GHz = 33.4e12 thread
# instructions per second on its CUDA cores. The floor counts the float32
# instructions per (query, key) pair of the cheapest exact formulation the
# notes give (c = 2, max-plus form), not of what the kernel executes:
# 2 per first-layer unit (max, fused multiply-add) + 1 (key-side bias), + 3
# and the layer's width per further layer of the scalar head (add bias, max,
# multiply), + SOFTMAX_INSTRUCTIONS for the online softmax (mask select,
# scale, subtract max, row max, row sum, P rounding; the exponential runs on
# the special-function unit). "Fraction of the issue limit" = floor / time.
INSTRUCTION_RATE = 33.4e12
SOFTMAX_INSTRUCTIONS = 6


def forward_instructions_per_pair(h1, widths):
    score = 2 * h1 + 1
    if widths:
        score += 3 * len(widths) + sum(widths)
    return score + SOFTMAX_INSTRUCTIONS


def peak_mib(fn):
    """Peak CUDA memory allocated by `fn()` above what was allocated before
    (MiB), from `torch.cuda.max_memory_allocated`."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    result = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    del result
    return peak / 2**20


def bench(mod, device, seq_lengths, configs, causal_flags, dtype, batch,
          heads, dv, rep_ms, max_pairs_bwd, max_materialized_gb=40.0):
    import triton
    from torch.nn.attention import SDPBackend
    from torch.nn.attention import sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    def timed(fn):
        try:
            return triton.testing.do_bench(fn, rep=rep_ms)
        except Exception as error:  # noqa: BLE001
            print(f"  failed: {type(error).__name__}: {str(error)[:200]}")
            torch.cuda.empty_cache()
            return None

    def measured_peak(fn):
        try:
            return peak_mib(fn)
        except Exception as error:  # noqa: BLE001
            print(f"  failed: {type(error).__name__}: {str(error)[:200]}")
            torch.cuda.empty_cache()
            return None

    rows = []
    for causal in causal_flags:
        for t in seq_lengths:
            pairs = batch * heads * t * t * (0.5 if causal else 1.0)
            # Flash SDPA baseline (q, k, v all (B, N, T, Dv)).
            g = torch.Generator(device="cpu").manual_seed(0)
            q = torch.randn(batch, heads, t, dv, generator=g).to(device, dtype)
            k = torch.randn(batch, heads, t, dv, generator=g).to(device, dtype)
            v = torch.randn(batch, heads, t, dv, generator=g).to(device, dtype)
            for x in (q, k, v):
                x.requires_grad_(True)
            do = torch.randn_like(q)

            def sdpa_fwd():
                with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                    return sdpa(q, k, v, is_causal=causal)

            def sdpa_fwdbwd():
                out = sdpa_fwd()
                return torch.autograd.grad(out, (q, k, v), do)

            base = dict(T=t, causal=causal, B=batch, N=heads, Dv=dv,
                        dtype=str(dtype).replace("torch.", ""))
            sd_f = timed(sdpa_fwd)
            sd_fb = timed(sdpa_fwdbwd)
            sd_mem = measured_peak(sdpa_fwdbwd)
            rows.append(dict(base, variant="sdpa_flash", fwd_ms=sd_f,
                             fwdbwd_ms=sd_fb, fwdbwd_peak_mib=sd_mem))
            print(f"{'sdpa_flash':16s} causal={int(causal)} T={t:6d}: fwd "
                  f"{fmt(sd_f)} ms  fwd+bwd {fmt(sd_fb)} ms  peak "
                  f"{fmt(sd_mem)} MiB", flush=True)
            del q, k, v
            for name in configs:
                h1, widths = CONFIGS[name]
                a, c, vv, layers, wo = make_inputs(
                    batch, heads, t, t, h1, widths, dv, False,
                    torch.float32, device, seed=1, vdtype=dtype)
                leaves = leaves_of(a, c, vv, layers, wo)
                for x in leaves:
                    x.requires_grad_(True)

                def fused_fwd():
                    return mod.triton_neural_attention(
                        a, c, vv, layers, wo, causal=causal)

                def fused_fwdbwd():
                    out = fused_fwd()
                    return torch.autograd.grad(out, leaves, do)

                def materialized_fwd():
                    return mod.reference_neural_attention(
                        a, c, vv, layers, wo, causal=causal)

                def materialized_fwdbwd():
                    out = materialized_fwd()
                    return torch.autograd.grad(out, leaves, do)

                f_ms = timed(fused_fwd)
                fb_ms = timed(fused_fwdbwd) if pairs <= max_pairs_bwd else None
                f_mem = (measured_peak(fused_fwdbwd)
                         if pairs <= max_pairs_bwd else None)
                limit = (pairs * h1 * 4 * 3) / 1e9 < max_materialized_gb
                m_ms = timed(materialized_fwd) if limit else None
                mb_ms = timed(materialized_fwdbwd) if limit else None
                m_mem = measured_peak(materialized_fwdbwd) if limit else None
                instr = forward_instructions_per_pair(h1, widths)
                floor_ms = pairs * instr / INSTRUCTION_RATE * 1e3
                row = dict(base, variant=f"fused_{name}", H1=h1,
                           widths=list(widths), fwd_ms=f_ms, fwdbwd_ms=fb_ms,
                           fwdbwd_peak_mib=f_mem,
                           fwd_vs_sdpa=ratio(f_ms, sd_f),
                           fwdbwd_vs_sdpa=ratio(fb_ms, sd_fb),
                           peak_vs_sdpa=ratio(f_mem, sd_mem),
                           fwd_ps_per_pair=(None if f_ms is None else
                                            f_ms * 1e9 / pairs),
                           model_fwd_instructions_per_pair=instr,
                           fwd_issue_floor_ms=floor_ms,
                           fwd_fraction_of_issue_limit=ratio(floor_ms, f_ms),
                           materialized_fwd_ms=m_ms,
                           materialized_fwdbwd_ms=mb_ms,
                           materialized_fwdbwd_peak_mib=m_mem,
                           materialized_vs_fused_fwdbwd=ratio(mb_ms, fb_ms))
                rows.append(row)
                print(f"{'fused_' + name:16s} causal={int(causal)} T={t:6d}:"
                      f" fwd {fmt(f_ms)} ms ({fmt(row['fwd_vs_sdpa'])}x "
                      f"sdpa, {fmt(row['fwd_ps_per_pair'])} ps/pair, "
                      f"{fmt(row['fwd_fraction_of_issue_limit'])} of issue "
                      f"limit)  fwd+bwd {fmt(fb_ms)} ms "
                      f"({fmt(row['fwdbwd_vs_sdpa'])}x sdpa)  peak "
                      f"{fmt(f_mem)} MiB ({fmt(row['peak_vs_sdpa'])}x)",
                      flush=True)
                print(f"{'materialized_' + name:16s} causal={int(causal)} "
                      f"T={t:6d}: fwd {fmt(m_ms)} ms  fwd+bwd {fmt(mb_ms)} "
                      f"ms ({fmt(row['materialized_vs_fused_fwdbwd'])}x "
                      f"fused)  peak {fmt(m_mem)} MiB", flush=True)
                del a, c, vv, layers, wo, leaves
                torch.cuda.empty_cache()
    return rows


def sweep(mod, device, t, dtype, batch, heads, dv, rep_ms):
    """Times forward and forward+backward of both benchmark networks for a
    grid of launch options (block sizes, warps, stages, score_chunk)."""
    import triton

    grid = [
        dict(block_m=64, block_n=64, num_warps=4),
        dict(block_m=64, block_n=64, num_warps=4, num_stages=1),
        dict(block_m=64, block_n=64, num_warps=4, num_stages=1,
             score_chunk=4),
        dict(block_m=64, block_n=64, num_warps=4, num_stages=1,
             score_chunk=8),
        dict(block_m=128, block_n=64, num_warps=8, num_stages=1),
        dict(block_m=128, block_n=64, num_warps=8, num_stages=1,
             score_chunk=4),
        dict(block_m=64, block_n=32, num_warps=4, num_stages=1),
        dict(block_m=128, block_n=128, num_warps=8, num_stages=1),
    ]
    rows = []
    pairs = batch * heads * t * t
    for name, (h1, widths) in CONFIGS.items():
        a, c, v, layers, wo = make_inputs(batch, heads, t, t, h1, widths,
                                          dv, False, torch.float32, device,
                                          seed=1, vdtype=dtype)
        leaves = leaves_of(a, c, v, layers, wo)
        for x in leaves:
            x.requires_grad_(True)
        do = torch.randn_like(v)
        for options in grid:
            def fwd():
                return mod.triton_neural_attention(a, c, v, layers, wo,
                                                   **options)

            def fwdbwd():
                torch.autograd.grad(fwd(), leaves, do)

            try:
                f_ms = triton.testing.do_bench(fwd, rep=rep_ms)
                fb_ms = triton.testing.do_bench(fwdbwd, rep=rep_ms)
            except Exception as error:  # noqa: BLE001
                print(f"{name} {options}: failed: {error}"[:300])
                continue
            rows.append(dict(config=name, T=t, options=options, fwd_ms=f_ms,
                             fwdbwd_ms=fb_ms,
                             fwd_ps_per_pair=f_ms * 1e9 / pairs))
            print(f"{name:9s} {options}: fwd {f_ms:.3f} ms "
                  f"({f_ms * 1e9 / pairs:.2f} ps/pair)  fwd+bwd "
                  f"{fb_ms:.3f} ms", flush=True)
    return rows


def ratio(x, y):
    if x is None or y is None or y == 0:
        return None
    return x / y


def fmt(x):
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 100 else f"{x:.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-only", action="store_true")
    parser.add_argument("--sweep", type=int, default=None, metavar="T",
                        help="only time a grid of launch options at T=S")
    parser.add_argument("--bench-only", action="store_true")
    parser.add_argument("--checks", type=int, nargs="+", default=None,
                        help="indices of the correctness cases to run "
                             "(default: all)")
    parser.add_argument("--seq-lengths", type=int, nargs="+",
                        default=[512, 1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument("--causal", type=int, nargs="+", default=[0, 1],
                        choices=[0, 1])
    parser.add_argument("--dtype", default="bfloat16",
                        choices=["bfloat16", "float16"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--value-dim", type=int, default=64)
    parser.add_argument("--rep-ms", type=int, default=200)
    parser.add_argument("--max-pairs-bwd", type=float, default=2e10,
                        help="skip fwd+bwd timing above this many pairs")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        print("No CUDA device: this script checks and times the compiled "
              "kernel (the CPU interpreter path is covered by "
              "tests/kernels).")
        return 2
    import triton

    mod = load_kernel_module()
    device = torch.device("cuda")
    report = dict(
        torch=torch.__version__, triton=triton.__version__,
        device=torch.cuda.get_device_name(0), python=platform.python_version(),
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    status = 0
    if args.sweep:
        args.bench_only = True
        args.check_only = True
        report["sweep"] = sweep(mod, device, args.sweep,
                                getattr(torch, args.dtype), args.batch,
                                args.heads, args.value_dim, args.rep_ms)
    if not args.bench_only:
        report["check"] = check(mod, device, only=args.checks)
        if not all(r["ok"] for r in report["check"]):
            status = 1
    if not args.check_only:
        report["bench"] = bench(
            mod, device, args.seq_lengths, args.configs,
            [bool(x) for x in args.causal], getattr(torch, args.dtype),
            args.batch, args.heads, args.value_dim, args.rep_ms,
            args.max_pairs_bwd)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "triton_kernel_check.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
