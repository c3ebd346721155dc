#!/usr/bin/env python
"""One forward + backward step of the fused Triton kernel, for a profiler.

Runs `--warmup` steps (compilation, caches), then `--steps` more, on the
inputs `triton_kernel_check.py` benchmarks (B = 8, 8 heads, Dv = 64, bf16
values), so that Nsight Compute can attach to the kernels of the last
steps, for example:

    ncu --kernel-name regex:_bwd_kernel --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section Occupancy --section LaunchStats \
        --section WarpStateStats --section MemoryWorkloadAnalysis \
        python benchmarks/triton_profile_step.py --config single32 --seq-len 1024

PyTorch + Triton only (no Keras). Prints the registers and spills that
Triton's compiler reports for the kernels it built.
"""

import argparse
import sys

import torch

from triton_kernel_check import CONFIGS
from triton_kernel_check import leaves_of
from triton_kernel_check import load_kernel_module
from triton_kernel_check import make_inputs


def _compiled_kernel_stats(kernel):
    """(name, registers, spills) of every compiled variant of `kernel`."""
    stats = []
    caches = getattr(kernel, "device_caches", None) or {}
    for cache in caches.values():
        compiled = cache[0] if isinstance(cache, tuple) else cache
        for binary in compiled.values():
            stats.append((binary.name, getattr(binary, "n_regs", None),
                          getattr(binary, "n_spills", None)))
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=list(CONFIGS), default="paper")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--causal", action="store_true")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    mod = load_kernel_module()
    h1, widths = CONFIGS[args.config]
    a, c, v, layers, wo = make_inputs(
        8, 8, args.seq_len, args.seq_len, h1, widths, 64, False,
        torch.float32, "cuda", seed=1, vdtype=torch.bfloat16)
    leaves = leaves_of(a, c, v, layers, wo)
    for x in leaves:
        x.requires_grad_(True)
    grad = torch.randn_like(v)
    for _ in range(args.warmup + args.steps):
        out = mod.triton_neural_attention(a, c, v, layers, wo,
                                          causal=args.causal)
        torch.autograd.grad(out, leaves, grad)
    torch.cuda.synchronize()
    for kernel in (mod._fwd_kernel, mod._bwd_kernel):
        for name, regs, spills in _compiled_kernel_stats(kernel):
            print(f"{name}: {regs} registers, {spills} spills")
    return 0


if __name__ == "__main__":
    sys.exit(main())
