#!/usr/bin/env python
"""Host-side cost of one `triton_neural_attention` call: the PyTorch work
around the two Triton kernels, measured with the kernels left out.

At short sequences the fused kernels finish before the host has issued the
next call, so the call's PyTorch operations (weight packing, layout copies,
gradient buffers) and not the kernels bound the speed: on an H100 the paper's
network took 0.33 to 0.61 ms forward at T = 512 .. 2048 against 1.13 ms at
T = 4096 (`results/2026-11-23-h100-kernel-checks/`). This script counts what
the wrapper asks PyTorch to do, so that cost can be tracked without a GPU:

- `aten_ops`: every ATen operator the forward (and the backward) dispatches,
  views included (counted with a `TorchDispatchMode`);
- `device_ops`: those that do work on the device (not views, not
  allocations: copies, fills, reductions, pads, stacks); on CUDA each is at
  least one kernel launch besides the two Triton kernels;
- `host_us`: median wall time of a forward+backward call, kernels stubbed
  (microseconds, on the tensors' device; on CPU the device ops run on the
  host too, so this includes their small work).

The Triton kernels are replaced by no-op launchers (`_fwd_kernel`,
`_bwd_kernel`): outputs are garbage, and kernel time is not measured here (it
is `triton_kernel_check.py`'s job, on a GPU). Runs on CPU with the Triton
interpreter's import path (no kernel is ever executed) or on a CUDA GPU.

Usage (from the repository root):

    python benchmarks/triton_host_overhead.py --out results/dir --label now

Writes `triton-host-overhead-<label>.json` to --out.
"""

import argparse
import collections
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import triton_kernel_check  # noqa: E402  (benchmarks/, loads the kernels)

# Shape-only operators: no device work.
VIEW_OPS = {
    "alias", "as_strided", "detach", "expand", "permute", "reshape",
    "select", "slice", "squeeze", "t", "transpose", "unbind", "unsqueeze",
    "view", "_unsafe_view",
}
ALLOCATION_OPS = {"empty", "empty_like", "empty_strided", "new_empty"}

CONFIGS = {
    # name: (H1, hidden widths): the paper's network and a wide single layer
    "paper": (2, (1,)),
    "single32": (32, ()),
    "general_4_2": (4, (4, 2)),
}


def load_kernel_module():
    """The kernel module, loaded by path (the package `__init__` imports
    Keras). Without CUDA, `TRITON_INTERPRET=1` lets it accept CPU tensors."""
    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
    return triton_kernel_check.load_kernel_module(
        "triton_neural_attention_host")


class _NoLaunch:
    """Stands in for a `@triton.jit` kernel: `kernel[grid](...)` does
    nothing."""

    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


def stub_kernels(module):
    module._fwd_kernel = _NoLaunch()
    module._bwd_kernel = _NoLaunch()


def operator_name(func):
    """`aten.constant_pad_nd.default` -> `constant_pad_nd`."""
    return str(func).split(".")[1]


def count_ops(fn):
    """ATen operators `fn()` dispatches, as a Counter of names."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names[operator_name(func)] += 1
            return func(*args, **(kwargs or {}))

    with Recorder() as recorder:
        fn()
    return recorder.names


def device_op_count(names):
    return sum(n for name, n in names.items()
               if name not in VIEW_OPS and name not in ALLOCATION_OPS)


def make_inputs(h1, widths, batch, heads, length, value_dim, device,
                per_head):
    g = torch.Generator().manual_seed(0)

    def leaf(*shape):
        x = torch.randn(*shape, generator=g).to(device)
        return x.requires_grad_(True)

    lead = (heads,) if per_head else ()
    a = leaf(batch, heads, length, h1)
    c = leaf(batch, heads, length, h1)
    v = leaf(batch, heads, length, value_dim)
    layers, fan = [], h1
    for width in widths:
        layers.append((leaf(*lead, fan, width), leaf(*lead, width)))
        fan = width
    wo = leaf(*lead, fan, 1)
    return a, c, v, layers, wo


def measure(module, name, h1, widths, args):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a, c, v, layers, wo = make_inputs(
        h1, widths, args.batch, args.heads, args.length, args.value_dim,
        device, args.per_head)
    leaves = [a, c, v, wo] + [x for layer in layers for x in layer]
    upstream = torch.randn_like(v.detach())

    def forward():
        return module.triton_neural_attention(a, c, v, layers, wo)

    def forward_backward():
        out = forward()
        return torch.autograd.grad(out, leaves, upstream)

    forward_backward()  # first call: lazy initialisation
    fwd_names = count_ops(forward)
    all_names = count_ops(forward_backward)
    bwd_names = all_names - fwd_names
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.calls):
            forward_backward()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / args.calls * 1e6)
    return dict(
        config=name, H1=h1, widths=list(widths), per_head=args.per_head,
        forward_aten_ops=sum(fwd_names.values()),
        forward_device_ops=device_op_count(fwd_names),
        backward_aten_ops=sum(bwd_names.values()),
        backward_device_ops=device_op_count(bwd_names),
        forward_ops=dict(sorted(fwd_names.items())),
        backward_ops=dict(sorted(bwd_names.items())),
        host_us_median=statistics.median(times),
        host_us_min=min(times),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--label", default="current",
                        help="names the result file (letters, digits, -)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--value-dim", type=int, default=64)
    parser.add_argument("--per-head", action="store_true",
                        help="per-head scoring weights (default: shared)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50,
                        help="calls per timed repeat")
    args = parser.parse_args(argv)
    if not args.label.replace("-", "").isalnum():
        parser.error("--label must hold letters, digits and '-' only")

    module = load_kernel_module()
    stub_kernels(module)
    rows = []
    for name in args.configs:
        h1, widths = CONFIGS[name]
        row = measure(module, name, h1, widths, args)
        rows.append(row)
        print(f"{name:12s} forward {row['forward_aten_ops']:3d} aten ops "
              f"({row['forward_device_ops']:2d} device)  backward "
              f"{row['backward_aten_ops']:3d} ({row['backward_device_ops']:2d} "
              f"device)  host {row['host_us_median']:7.1f} us/call",
              flush=True)
    report = dict(
        label=args.label,
        device=(torch.cuda.get_device_name() if torch.cuda.is_available()
                else f"CPU ({platform.processor() or platform.machine()}, "
                     f"{os.cpu_count()} cores)"),
        torch=torch.__version__, python=sys.version.split()[0],
        time=time.strftime("%Y-%m-%d %H:%M:%S"),
        shape=dict(B=args.batch, N=args.heads, T=args.length,
                   Dv=args.value_dim),
        calls=args.calls, repeats=args.repeats, rows=rows,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"triton-host-overhead-{args.label}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
