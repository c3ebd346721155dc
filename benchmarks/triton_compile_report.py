#!/usr/bin/env python
"""Compiles the fused Triton kernels for a GPU architecture without a GPU,
and reports their registers, spills and shared memory.

The kernels are compiled exactly as a real call would launch them: the
script runs `triton_neural_attention` forward and backward on PyTorch
`meta` tensors (shapes only, no data), and each kernel launch is replaced by
Triton's own argument binding and specialization followed by an
ahead-of-time `triton.compile` for `--arch` (default sm_90, the H100) instead
of a launch. Triton's bundled `ptxas` assembles the cubin and `cuobjdump
--dump-resource-usage` reads its resources:

- `registers`: registers per thread (255 is the hardware limit);
- `spill_bytes`: the per-thread stack frame plus local memory; the kernels
  declare no local arrays and call no functions, so this is where ptxas
  puts the registers it spills (0 is the goal: spilled values are stored to
  and reloaded from L1 / L2 inside the innermost loops);
- `shared_bytes`: shared memory per block, as Triton allocates it.

Occupancy follows from these (65536 registers per SM on sm_90: at 4 warps
and 255 registers, 2 blocks per SM). This is the check a machine without a
GPU can make: that every configuration compiles for the target, and how
much register pressure each has. It measures no time.

Usage (from the repository root; needs `torch` and `triton`, not CUDA):

    python benchmarks/triton_compile_report.py --out results/ --label now
    python benchmarks/triton_compile_report.py --configs paper --length 4096

Writes `triton-compile-report-<label>.json` to --out.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import triton_kernel_check  # noqa: E402  (benchmarks/, loads the kernels)

CONFIGS = {
    # name: (H1, hidden widths, causal, mask, value dtype, activation)
    "paper": (2, (1,), False, False, "bfloat16", "relu"),
    "paper_causal_mask": (2, (1,), True, True, "bfloat16", "relu"),
    "single32": (32, (), False, False, "bfloat16", "relu"),
    "single32_float32": (32, (), False, False, "float32", "relu"),
    "single8_tanh_float16": (8, (), True, False, "float16", "tanh"),
    "general_4_2": (4, (4, 2), False, True, "bfloat16", "relu"),
}


def load_kernel_module():
    """The kernel module in compiled mode (its `@triton.jit` functions are
    `JITFunction`s), loaded by path so Keras is not imported."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise RuntimeError(
            "Unset TRITON_INTERPRET: compiling needs the compiled kernels.")
    return triton_kernel_check.load_kernel_module(
        "triton_neural_attention_aot")


def resource_usage(cubin, tool_dir):
    """`cuobjdump --dump-resource-usage` of one cubin, as a dict."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as handle:
        handle.write(cubin)
        handle.flush()
        text = subprocess.run(
            [str(Path(tool_dir) / "cuobjdump"), "--dump-resource-usage",
             handle.name],
            check=True, capture_output=True, text=True).stdout
    fields = dict(re.findall(r"\b([A-Z]+):(\d+)", text.split("Function", 1)[1]))
    return dict(registers=int(fields["REG"]),
                spill_bytes=int(fields["STACK"]) + int(fields["LOCAL"]))


class AheadOfTimeLauncher:
    """Stands in for a `@triton.jit` kernel: `kernel[grid](*args, **kw)`
    compiles it for `target` with the specialization a launch with these
    arguments would get, and records the result."""

    def __init__(self, kernel, target, records, role):
        self.kernel = kernel
        self.target = target
        self.records = records
        self.role = role

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.records.append(
                dict(kernel=self.role, grid=list(grid),
                     **compile_kernel(self.kernel, self.target, args,
                                      kwargs)))

        return launch


def compile_kernel(kernel, target, args, kwargs):
    import triton
    from triton import knobs
    from triton.backends.nvidia import compiler as nvidia_compiler
    from triton.compiler import ASTSource
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    backend = make_backend(target)
    kwargs = dict(kwargs)
    kwargs.setdefault("debug", False)
    for name in ("instrumentation_mode", "fpsan_homomorphic_casts"):
        if hasattr(knobs.compilation, name):
            kwargs.setdefault(name, getattr(knobs.compilation, name))
    binder = create_function_from_signature(kernel.signature, kernel.params,
                                            backend)
    bound, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(
        backend, kwargs, bound, specialization, options)
    start = time.perf_counter()
    compiled = triton.compile(ASTSource(kernel, signature, constexprs, attrs),
                              target=target, options=options.__dict__)
    seconds = time.perf_counter() - start
    tool_dir = Path(nvidia_compiler.__file__).parent / "bin"
    usage = resource_usage(compiled.asm["cubin"], tool_dir)
    return dict(
        usage, shared_bytes=compiled.metadata.shared,
        num_warps=compiled.metadata.num_warps,
        num_stages=compiled.metadata.num_stages,
        constexprs={k: v for k, v in zip(kernel.arg_names, bound.values())
                    if k.isupper()},
        compile_seconds=round(seconds, 2))


def compile_config(module, target, name, h1, widths, causal, masked, dtype,
                   activation, args):
    """Forward and backward of one configuration on meta tensors; returns
    the two kernels' records."""
    records = []
    module._fwd_kernel = AheadOfTimeLauncher(
        module._fwd_kernel, target, records, "forward")
    module._bwd_kernel = AheadOfTimeLauncher(
        module._bwd_kernel, target, records, "backward")
    try:
        meta = dict(device="meta")
        b, n, t, dv = args.batch, args.heads, args.length, args.value_dim
        a = torch.empty(b, n, t, h1, **meta, requires_grad=True)
        c = torch.empty(b, n, t, h1, **meta, requires_grad=True)
        v = torch.empty(b, n, t, dv, dtype=getattr(torch, dtype), **meta,
                        requires_grad=True)
        layers, fan = [], h1
        for width in widths:
            layers.append((torch.empty(fan, width, **meta),
                           torch.empty(width, **meta)))
            fan = width
        wo = torch.empty(fan, 1, **meta, requires_grad=True)
        mask = torch.empty(b, t, t, dtype=torch.bool, **meta) if masked \
            else None
        out = module.triton_neural_attention(
            a, c, v, layers, wo, mask=mask, causal=causal,
            activation=activation, block_m=args.block_m, block_n=args.block_n,
            num_warps=args.num_warps, num_stages=args.num_stages,
            score_chunk=args.score_chunk)
        torch.autograd.grad(out, (a, c, v, wo), torch.empty_like(out))
    finally:
        module._fwd_kernel = module._fwd_kernel.kernel
        module._bwd_kernel = module._bwd_kernel.kernel
    rows = []
    for record in records:
        rows.append(dict(config=name, H1=h1, widths=list(widths),
                         causal=causal, mask=masked, dtype=dtype,
                         activation=activation, **record))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--label", default="current",
                        help="names the result file (letters, digits, -)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument("--arch", type=int, default=90,
                        help="CUDA compute capability x 10 (90: H100)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--value-dim", type=int, default=64)
    parser.add_argument("--block-m", type=int, default=None)
    parser.add_argument("--block-n", type=int, default=None)
    parser.add_argument("--num-warps", type=int, default=4)
    parser.add_argument("--num-stages", type=int, default=None)
    parser.add_argument("--score-chunk", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.label.replace("-", "").isalnum():
        parser.error("--label must hold letters, digits and '-' only")

    # A fresh compilation cache: every kernel is really compiled (and its
    # compile time measured), and nothing is left in ~/.triton.
    cache = tempfile.TemporaryDirectory(prefix="triton-aot-")
    os.environ["TRITON_CACHE_DIR"] = cache.name
    import triton
    from triton.backends.compiler import GPUTarget

    target = GPUTarget("cuda", args.arch, 32)
    module = load_kernel_module()
    rows = []
    for name in args.configs:
        h1, widths, causal, masked, dtype, activation = CONFIGS[name]
        for row in compile_config(module, target, name, h1, widths, causal,
                                  masked, dtype, activation, args):
            rows.append(row)
            print(f"{name:22s} {row['kernel']:8s} {row['registers']:3d} regs "
                  f"{row['spill_bytes']:5d} B spilled  {row['shared_bytes']:6d} "
                  f"B shared  ({row['compile_seconds']:.1f} s)", flush=True)
    report = dict(
        label=args.label, arch=f"sm_{args.arch}", triton=triton.__version__,
        torch=torch.__version__, python=sys.version.split()[0],
        time=time.strftime("%Y-%m-%d %H:%M:%S"),
        shape=dict(B=args.batch, N=args.heads, T=args.length,
                   Dv=args.value_dim),
        launch=dict(block_m=args.block_m, block_n=args.block_n,
                    num_warps=args.num_warps, num_stages=args.num_stages,
                    score_chunk=args.score_chunk),
        rows=rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"triton-compile-report-{args.label}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")
    cache.cleanup()
    return report


if __name__ == "__main__":
    main()
