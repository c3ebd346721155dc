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

Occupancy (`blocks_per_sm`, `occupancy` = resident warps / 64) is computed
from the three resources with the sm_90 limits (`SM_LIMITS`: 65536 registers
per SM allocated per warp in units of 256, 64 warps, 32 blocks, 228 KiB of
shared memory with 1 KiB reserved per block); `limited_by` names the
resource that binds.

Variants: `--variants` compiles each configuration under several named sets
of launch knobs (`VARIANTS`: block sizes, warps, pipelining stages, first-
layer units in chunks) and, with `--lengths`, at several sequence lengths.
The kernels take the lengths as runtime arguments, so a length changes the
grid but not the binary (`cubin_sha1` shows when two rows are the same
binary; Triton's cache then skips the second compile).

Usage (from the repository root; needs `torch` and `triton`, not CUDA):

    python benchmarks/triton_compile_report.py --out results/ --label now
    python benchmarks/triton_compile_report.py --configs paper --length 4096
    python benchmarks/triton_compile_report.py --configs paper single32 \
        --lengths 1024 4096 --variants all --markdown --label variants
    python benchmarks/triton_compile_report.py --render report.json

Writes `triton-compile-report-<label>.json` to --out (rewritten after every
compiled kernel, so an interrupted run keeps what it compiled), and with
--markdown a table `triton-compile-report-<label>.md` beside it.
"""

import argparse
import hashlib
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


# Named launch variants: keyword arguments of `triton_neural_attention`
# (None = the kernel's default: 64 x 64 blocks on the two fast paths, the
# forward at Triton's default stages, the backward at 1 stage).
VARIANTS = {
    "default": dict(),
    "bm64_bn32": dict(block_m=64, block_n=32),
    "bm32_bn32": dict(block_m=32, block_n=32),
    "bm128_bn64": dict(block_m=128, block_n=64),
    "warps8": dict(num_warps=8),
    "warps8_bm128_bn64": dict(num_warps=8, block_m=128, block_n=64),
    "stages1": dict(num_stages=1),
    "stages2": dict(num_stages=2),
    "chunk2": dict(score_chunk=2),
    "chunk4": dict(score_chunk=4),
}
LAUNCH_KEYS = ("block_m", "block_n", "num_warps", "num_stages",
               "score_chunk")

# Per-SM limits of sm_90 (H100) used for occupancy.
SM_LIMITS = dict(registers=65536, register_unit=256, warps=64, blocks=32,
                 shared_bytes=228 * 1024, shared_reserved_per_block=1024)


def occupancy(registers, shared_bytes, num_warps, limits=SM_LIMITS):
    """Resident blocks per SM, the fraction of the SM's warps they fill
    and the binding resource, from per-thread registers, per-block shared
    memory and warps per block."""
    unit = limits["register_unit"]
    per_warp = -(-registers * 32 // unit) * unit
    bounds = dict(
        registers=limits["registers"] // (per_warp * num_warps),
        warps=limits["warps"] // num_warps,
        blocks=limits["blocks"],
        shared=limits["shared_bytes"] // (
            shared_bytes + limits["shared_reserved_per_block"]),
    )
    blocks = min(bounds.values())
    limited_by = min(bounds, key=lambda key: (bounds[key], key != "registers"))
    return dict(blocks_per_sm=blocks,
                occupancy=round(blocks * num_warps / limits["warps"], 4),
                limited_by=limited_by)


def surviving_variants(report):
    """The variants of a `--variants` report worth timing on a GPU, per
    configuration: `{config: {"survive": [names], "pruned": {name:
    reason}}}`.

    A variant survives when both kernels compiled at every length with no
    register spills and its (forward, backward) binaries differ from those
    of every variant listed before it (a knob the kernel clamps, such as
    `score_chunk` above H1, gives the same binary). `default`, the current
    launch, is always kept first, spills or not: it is the reference the
    others are timed against.
    """
    result = {}
    names = list(report.get("variants") or {})
    for config in dict.fromkeys(row["config"] for row in report["rows"]):
        rows = [row for row in report["rows"] if row["config"] == config]
        survive, pruned, seen = [], {}, set()
        for name in names:
            mine = [row for row in rows if row.get("variant") == name]
            failed = [row["error"] for row in mine if "error" in row]
            spills = max((row.get("spill_bytes", 0) for row in mine),
                         default=0)
            binaries = tuple(sorted({(row["kernel"], row["cubin_sha1"])
                                     for row in mine if "error" not in row}))
            if not mine:
                continue
            if name == "default":
                survive.append(name)
            elif failed:
                pruned[name] = f"does not compile: {failed[0]}"
            elif spills:
                kernels = sorted({row["kernel"] for row in mine
                                  if row["spill_bytes"]})
                pruned[name] = (f"spills {spills} B per thread "
                                f"({', '.join(kernels)})")
            elif binaries in seen:
                pruned[name] = "same binaries as a variant before it"
            else:
                survive.append(name)
            seen.add(binaries)
        result[config] = dict(survive=survive, pruned=pruned)
    return result


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
    fields = dict(re.findall(r"\b([A-Z]+):(\d+)",
                             text.split("Function", 1)[1]))
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
    cubin = compiled.asm["cubin"]
    usage = resource_usage(cubin, tool_dir)
    usage.update(occupancy(usage["registers"], compiled.metadata.shared,
                           compiled.metadata.num_warps))
    return dict(
        usage, shared_bytes=compiled.metadata.shared,
        cubin_sha1=hashlib.sha1(cubin).hexdigest()[:12],
        num_warps=compiled.metadata.num_warps,
        num_stages=compiled.metadata.num_stages,
        constexprs={k: v for k, v in zip(kernel.arg_names, bound.values())
                    if k.isupper()},
        compile_seconds=round(seconds, 2))


def compile_config(module, target, name, h1, widths, causal, masked, dtype,
                   activation, args, launch=None, length=None):
    """Forward and backward of one configuration on meta tensors; returns
    the two kernels' records."""
    records = []
    module._fwd_kernel = AheadOfTimeLauncher(
        module._fwd_kernel, target, records, "forward")
    module._bwd_kernel = AheadOfTimeLauncher(
        module._bwd_kernel, target, records, "backward")
    try:
        meta = dict(device="meta")
        if launch is None:
            launch = {key: getattr(args, key) for key in LAUNCH_KEYS}
        b, n, dv = args.batch, args.heads, args.value_dim
        t = args.length if length is None else length
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
            activation=activation, **launch)
        torch.autograd.grad(out, (a, c, v, wo), torch.empty_like(out))
    finally:
        module._fwd_kernel = module._fwd_kernel.kernel
        module._bwd_kernel = module._bwd_kernel.kernel
    rows = []
    for record in records:
        rows.append(dict(config=name, H1=h1, widths=list(widths),
                         causal=causal, mask=masked, dtype=dtype,
                         activation=activation, T=t, **record))
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
    parser.add_argument("--variants", nargs="+", default=None,
                        help="names from VARIANTS (or 'all'): compile each "
                        "configuration under each (the --block-m ... flags "
                        "are then ignored); default: one launch from the "
                        "flags")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="sequence lengths (default: --length)")
    parser.add_argument("--markdown", action="store_true",
                        help="also write a markdown table")
    parser.add_argument("--render", nargs="+", default=None, metavar="JSON",
                        help="compile nothing: (re)write the markdown of "
                        "these report files beside them")
    args = parser.parse_args(argv)
    if args.render:
        for name in args.render:
            path = Path(name)
            path.with_suffix(".md").write_text(
                markdown(json.loads(path.read_text())))
            print(f"wrote {path.with_suffix('.md')}")
        return None
    if args.variants == ["all"]:
        args.variants = list(VARIANTS)
    for name in args.variants or ():
        if name not in VARIANTS:
            parser.error(f"--variants: unknown {name!r}; accepted: "
                         f"{sorted(VARIANTS)} or 'all'")
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
    if args.variants:
        launches = [(name, {"num_warps": 4, **VARIANTS[name]})
                    for name in args.variants]
    else:
        launches = [(None, {key: getattr(args, key) for key in LAUNCH_KEYS})]
    lengths = args.lengths or [args.length]
    report = dict(
        label=args.label, arch=f"sm_{args.arch}", triton=triton.__version__,
        torch=torch.__version__, python=sys.version.split()[0],
        time=time.strftime("%Y-%m-%d %H:%M:%S"),
        shape=dict(B=args.batch, N=args.heads, T=lengths[0],
                   lengths=lengths, Dv=args.value_dim),
        launch=launches[0][1] if len(launches) == 1 else None,
        variants={name: launch for name, launch in launches} if
        args.variants else None,
        sm_limits=SM_LIMITS, rows=[])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"triton-compile-report-{args.label}.json"
    for name in args.configs:
        h1, widths, causal, masked, dtype, activation = CONFIGS[name]
        for variant, launch in launches:
            for length in lengths:
                try:
                    rows = compile_config(module, target, name, h1, widths,
                                          causal, masked, dtype, activation,
                                          args, launch=launch, length=length)
                except Exception as error:  # a variant the kernel refuses
                    if variant is None:
                        raise
                    rows = [dict(config=name, T=length, kernel="-",
                                 error=f"{type(error).__name__}: {error}")]
                for row in rows:
                    if variant is not None:
                        row = dict(row, variant=variant, launch=launch)
                    report["rows"].append(row)
                    path.write_text(json.dumps(report, indent=1) + "\n")
                    print(format_row(row), flush=True)
    if args.markdown:
        md = path.with_suffix(".md")
        md.write_text(markdown(report))
        print(f"wrote {md}")
    print(f"wrote {path}")
    cache.cleanup()
    return report


def format_row(row):
    variant = row.get("variant") or ""
    head = f"{row['config']:18s} {variant:18s} T={row['T']:<6d}"
    if "error" in row:
        return f"{head} failed: {row['error']}"
    return (f"{head} {row['kernel']:8s} {row['registers']:3d} regs "
            f"{row['spill_bytes']:5d} B spilled  {row['shared_bytes']:6d} B "
            f"shared  {row['blocks_per_sm']} blocks/SM "
            f"({row['occupancy']:.3f}, {row['limited_by']})  "
            f"({row['compile_seconds']:.1f} s)")


def markdown(report):
    """The report's rows as a markdown table (one row per kernel)."""
    lines = [
        f"# Triton compile report `{report['label']}`",
        "",
        f"{report['arch']}, Triton {report['triton']}, torch "
        f"{report['torch']}, {report['time']}; shape B={report['shape']['B']}"
        f", N={report['shape']['N']}, Dv={report['shape']['Dv']}. Written by "
        "`benchmarks/triton_compile_report.py`; occupancy = resident warps / "
        "64 from registers, shared memory and warps (sm_90 limits).",
        "",
        "| config | variant | T | kernel | BM x BN | warps | stages | RC | "
        "registers | spill B | shared B | blocks/SM | occupancy | limited by "
        "| cubin |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        variant = row.get("variant") or "-"
        if "error" in row:
            lines.append(f"| {row['config']} | {variant} | {row['T']} | "
                         f"failed: {row['error']} |" + " |" * 11)
            continue
        cx = row["constexprs"]
        lines.append(
            f"| {row['config']} | {variant} | {row['T']} | {row['kernel']} | "
            f"{cx['BM']} x {cx['BN']} | {row['num_warps']} | "
            f"{row['num_stages']} | {cx['RC']} | {row['registers']} | "
            f"{row['spill_bytes']} | {row['shared_bytes']} | "
            f"{row['blocks_per_sm']} | {row['occupancy']:.3f} | "
            f"{row['limited_by']} | `{row['cubin_sha1']}` |")
    if report.get("variants"):
        lines += ["", "## Variants to time on a GPU", "",
                  "Rule (`surviving_variants`): no register spills in either "
                  "kernel at any length, and binaries unlike every variant "
                  "before it; `default` (the current launch) is kept as "
                  "the reference.", ""]
        for config, verdict in surviving_variants(report).items():
            lines.append(f"- `{config}`: survive "
                         + ", ".join(f"`{n}`" for n in verdict["survive"]))
            for name, reason in verdict["pruned"].items():
                lines.append(f"  - pruned `{name}`: {reason}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
