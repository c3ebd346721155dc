#!/usr/bin/env python
"""Renders the result files of the fused-kernel checks as markdown.

Reads the JSON files written by `triton_kernel_check.py` (bench section),
`pallas_kernel_check.py` and `layer_gpu_check.py` (on a GPU), and by
`triton_host_overhead.py` and `triton_compile_report.py` (no GPU needed;
each given as a before / after pair), and prints the tables quoted in
`docs/benchmarks.md` and in the issue notes, so that no number there is typed
by hand:

    python benchmarks/kernel_tables.py \
        --triton benchmarks/results/2026-11-23-h100-kernel-checks/triton_bench_T512-16384.json \
        --pallas benchmarks/results/2026-11-23-h100-kernel-checks/pallas_bench_T512-8192.json \
        --layer benchmarks/results/2026-11-23-h100-kernel-checks/layer_gpu_check-torch.json
    python benchmarks/kernel_tables.py \
        --host BEFORE.json AFTER.json --compile BEFORE.json AFTER.json

Standard library only.
"""

import argparse
import json
import sys

TRITON_CONFIGS = (("fused_paper", "paper (H1 = 2, then 1)"),
                  ("fused_single32", "one hidden layer of 32"))
PALLAS_CONFIGS = (("paper_h2w1", "paper (H1 = 2, then 1)"),
                  ("h32", "one hidden layer of 32"))


def _fmt(value, digits=2):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def _ratio(x, y):
    if x is None or y is None or y == 0:
        return None
    return x / y


def triton_tables(report):
    """Markdown for the Triton bench rows: one table per scoring network."""
    rows = report.get("bench") or []
    if not rows:
        raise ValueError("The Triton report has no `bench` section.")
    first = rows[0]
    lines = [
        f"Triton kernel, {report['device']} (torch {report['torch']}, "
        f"triton {report['triton']}, run {report['time']}). B = "
        f"{first['B']}, {first['N']} heads, value head dim {first['Dv']}, "
        f"{first['dtype']} values (scores in float32), non-causal, T = S. "
        "Median ms of `triton.testing.do_bench`; peak = "
        "`torch.cuda.max_memory_allocated` above the inputs during forward + "
        "backward. SDPA = PyTorch `scaled_dot_product_attention` restricted "
        "to its FlashAttention backend (bf16 q, k, v of head dim Dv). "
        "Materialized = the same network evaluated on the whole "
        "`(B, N, T, S, H1)` pair tensor with PyTorch autograd (skipped where "
        "its estimate exceeds 40 GB). Issue fraction = the notes' "
        "instruction floor of the forward over its time.",
        "",
    ]
    sdpa = {(r["T"], r["causal"]): r for r in rows
            if r["variant"] == "sdpa_flash"}
    for variant, label in TRITON_CONFIGS:
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        lines += [
            f"**{label}**",
            "",
            "| T | SDPA fwd | SDPA fwd+bwd | fused fwd | fused fwd+bwd | "
            "fwd+bwd vs SDPA | issue fraction | peak MiB fused / SDPA | "
            "materialized fwd+bwd | materialized peak MiB |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in mine:
            base = sdpa.get((r["T"], r["causal"]), {})
            lines.append(
                f"| {r['T']} | {_fmt(base.get('fwd_ms'), 3)} | "
                f"{_fmt(base.get('fwdbwd_ms'), 3)} | {_fmt(r['fwd_ms'], 3)} | "
                f"{_fmt(r['fwdbwd_ms'], 3)} | {_fmt(r['fwdbwd_vs_sdpa'])}x | "
                f"{_fmt(r.get('fwd_fraction_of_issue_limit'))} | "
                f"{_fmt(r.get('fwdbwd_peak_mib'), 1)} / "
                f"{_fmt(base.get('fwdbwd_peak_mib'), 1)} | "
                f"{_fmt(r.get('materialized_fwdbwd_ms'), 3)} | "
                f"{_fmt(r.get('materialized_fwdbwd_peak_mib'), 0)} |"
            )
        lines.append("")
    return "\n".join(lines)


def pallas_table(report):
    """Markdown for the Pallas bench entries."""
    rows = report.get("bench") or []
    if not rows:
        raise ValueError("The Pallas report has no `bench` section.")
    first = rows[0]
    lines = [
        f"Pallas kernel, JAX {report['jax']} on {', '.join(report['devices'])}"
        f". B = {first['B']}, {first['N']} heads, value head dim "
        f"{first['Dv']}, bfloat16 values, "
        f"{'causal' if first['causal'] else 'non-causal'}, T = S. Median ms. "
        "cuDNN = `jax.nn.dot_product_attention(implementation=\"cudnn\")` "
        "(flash).",
        "",
        "| T | cuDNN fwd | cuDNN fwd+bwd | "
        + " | ".join(f"{label} fwd | {label} fwd+bwd | vs cuDNN"
                     for _, label in PALLAS_CONFIGS)
        + " |",
        "|---|---|---|" + "---|---|---|" * len(PALLAS_CONFIGS),
    ]
    for r in rows:
        cells = [str(r["T"]), _fmt(r.get("cudnn_fwd_ms"), 3),
                 _fmt(r.get("cudnn_fwd_bwd_ms"), 3)]
        for key, _ in PALLAS_CONFIGS:
            fwd = r.get(f"{key}_fwd_ms")
            fwdbwd = r.get(f"{key}_fwd_bwd_ms")
            cells += [_fmt(fwd, 3), _fmt(fwdbwd, 3),
                      _fmt(_ratio(fwdbwd, r.get("cudnn_fwd_bwd_ms"))) + "x"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


LAYER_LABELS = {
    "mha": "MultiHeadAttention (dot product)",
    "neural_fused": "NeuralAttention, auto (fused kernel)",
    "neural_chunked": "NeuralAttention, factored + chunked (keras.ops)",
}


def layer_table(report):
    """Markdown for `layer_gpu_check.py`'s dispatch check and layer bench."""
    checks = report.get("check") or []
    lines = [
        f"Layer level, Keras {report['keras']} on {report['backend']} "
        f"({report['device']}, run {report['time']}).",
        "",
    ]
    for row in checks:
        lines.append(
            f"- dispatch check, T = {row['T']}, causal {row['causal']}, "
            f"padding mask {row['padded']}: fused calls {row['fused_calls']}"
            f", max |auto - factored| {row['forward_max_abs_err']:.1e}, "
            f"max relative gradient difference {row['grad_max_rel_err']:.1e}"
            f" ({'ok' if row['ok'] else 'FAILED'})"
        )
    bench = report.get("layer_bench") or []
    if bench:
        first = bench[0]
        lines += [
            "",
            f"Self-attention forward + backward, B = {first['B']}, model "
            f"width {first['width']}, 8 heads, key_dim 64, "
            "`dtype=\"mixed_bfloat16\"`, d' = 2, hidden (2, 1); median of "
            "CUDA-event times; peak = `torch.cuda.max_memory_allocated` "
            "above what was allocated before the step.",
            "",
            "| T | layer | fwd+bwd ms | vs MHA | peak MiB | vs MHA |",
            "|---|---|---|---|---|---|",
        ]
        mha = {r["T"]: r for r in bench if r["variant"] == "mha"}
        for r in bench:
            base = mha.get(r["T"], {})
            lines.append(
                f"| {r['T']} | {LAYER_LABELS.get(r['variant'], r['variant'])}"
                f" | {_fmt(r.get('fwdbwd_ms_median'), 2)} | "
                f"{_fmt(_ratio(r.get('fwdbwd_ms_median'), base.get('fwdbwd_ms_median')))}x"
                f" | {_fmt(r.get('fwdbwd_peak_mib'), 0)} | "
                f"{_fmt(_ratio(r.get('fwdbwd_peak_mib'), base.get('fwdbwd_peak_mib')))}x |"
            )
    lines.append("")
    return "\n".join(lines)


def _rows_by(report, *keys):
    return {tuple(row[k] for k in keys): row for row in report["rows"]}


def host_overhead_table(before, after):
    """Markdown comparing two `triton_host_overhead.py` reports."""
    old = _rows_by(before, "config")
    shape = after["shape"]
    lines = [
        f"PyTorch work around the Triton kernels per call (kernels stubbed; "
        f"{after['device']}, torch {after['torch']}, B = {shape['B']}, "
        f"{shape['N']} heads, T = S = {shape['T']}, Dv = {shape['Dv']}, "
        "shared weights). Device ops = ATen operators that are not views or "
        "allocations (on CUDA, each launches at least one kernel); host "
        f"time = median of {after['repeats']} x {after['calls']} forward + "
        f"backward calls. Before = `{before['label']}`, after = "
        f"`{after['label']}`.",
        "",
        "| network | forward device ops | backward device ops | all ATen ops "
        "(fwd + bwd) | host us per fwd+bwd |",
        "|---|---|---|---|---|",
    ]
    for row in after["rows"]:
        prev = old.get((row["config"],))
        if prev is None:
            continue

        def pair(key, prev=prev, row=row):
            return f"{prev[key]} -> {row[key]}"

        total_old = prev["forward_aten_ops"] + prev["backward_aten_ops"]
        total_new = row["forward_aten_ops"] + row["backward_aten_ops"]
        lines.append(
            f"| {row['config']} | {pair('forward_device_ops')} | "
            f"{pair('backward_device_ops')} | {total_old} -> {total_new} | "
            f"{prev['host_us_median']:.0f} -> {row['host_us_median']:.0f} |")
    lines.append("")
    return "\n".join(lines)


def compile_table(before, after):
    """Markdown comparing two `triton_compile_report.py` reports."""
    old = _rows_by(before, "config", "kernel")
    shape = after["shape"]
    lines = [
        f"Triton {after['triton']} compiled for {after['arch']} without a "
        f"GPU (`triton_compile_report.py`; T = S = {shape['T']}, Dv = "
        f"{shape['Dv']}, default launch options). Registers per thread "
        "(limit 255) and spilled bytes per thread. Before = "
        f"`{before['label']}`, after = `{after['label']}`.",
        "",
        "| network | activation | dtype | causal | mask | kernel | registers "
        "| spilled bytes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in after["rows"]:
        prev = old.get((row["config"], row["kernel"]))
        regs = str(row["registers"])
        spill = str(row["spill_bytes"])
        if prev is not None:
            regs = f"{prev['registers']} -> {regs}"
            spill = f"{prev['spill_bytes']} -> {spill}"
        widths = "x".join(str(w) for w in [row["H1"]] + row["widths"])
        lines.append(
            f"| {row['config']} ({widths}) | {row['activation']} | "
            f"{row['dtype']} | {'yes' if row['causal'] else 'no'} | "
            f"{'yes' if row['mask'] else 'no'} | {row['kernel']} | {regs} | "
            f"{spill} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triton", help="triton_kernel_check.py JSON")
    parser.add_argument("--pallas", help="pallas_kernel_check.py JSON")
    parser.add_argument("--layer", nargs="+", default=[],
                        help="layer_gpu_check.py JSON file(s)")
    parser.add_argument("--host", nargs=2, metavar=("BEFORE", "AFTER"),
                        help="two triton_host_overhead.py JSON files")
    parser.add_argument("--compile", nargs=2, metavar=("BEFORE", "AFTER"),
                        help="two triton_compile_report.py JSON files")
    args = parser.parse_args(argv)
    if not (args.triton or args.pallas or args.layer or args.host
            or args.compile):
        parser.error("give --triton, --pallas, --layer, --host and/or "
                     "--compile")
    parts = []
    if args.triton:
        with open(args.triton) as f:
            parts.append(triton_tables(json.load(f)))
    if args.pallas:
        with open(args.pallas) as f:
            parts.append(pallas_table(json.load(f)))
    for path in args.layer:
        with open(path) as f:
            parts.append(layer_table(json.load(f)))
    for pair, render in ((args.host, host_overhead_table),
                         (args.compile, compile_table)):
        if pair:
            reports = []
            for path in pair:
                with open(path) as f:
                    reports.append(json.load(f))
            parts.append(render(*reports))
    print("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
