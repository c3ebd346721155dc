"""Tests of `benchmarks/kernel_tables.py` (markdown from GPU result files).

The reports are built here, so the ratios the tables print can be checked
against numbers the test chose; the recorded H100 files are rendered too, to
keep the script and the files it documents in step.
"""

import importlib.util
import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "kernel_tables.py"
RESULTS = REPO_ROOT / "benchmarks" / "results" / (
    "2026-11-23-h100-kernel-checks"
)


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("kernel_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _triton_report():
    base = dict(T=1024, causal=False, B=2, N=4, Dv=64, dtype="bfloat16")
    return dict(
        device="Test GPU", torch="0", triton="0", time="now",
        bench=[
            dict(base, variant="sdpa_flash", fwd_ms=0.5, fwdbwd_ms=2.0,
                 fwdbwd_peak_mib=40.0),
            dict(base, variant="fused_paper", H1=2, widths=[1], fwd_ms=1.5,
                 fwdbwd_ms=7.0, fwdbwd_peak_mib=30.0, fwdbwd_vs_sdpa=3.5,
                 fwd_fraction_of_issue_limit=0.25,
                 materialized_fwdbwd_ms=None,
                 materialized_fwdbwd_peak_mib=None),
        ],
    )


def _table_row(markdown, first_cell):
    for line in markdown.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"no row starting with {first_cell!r}")


def test_triton_table_rows(tables):
    markdown = tables.triton_tables(_triton_report())
    row = _table_row(markdown, "1024")
    assert row[1:6] == ["0.500", "2.000", "1.500", "7.000", "3.50x"]
    assert row[6] == "0.25"
    assert row[7] == "30.0 / 40.0"
    assert row[8:] == ["-", "-"]  # materializing run skipped
    assert "Test GPU" in markdown


def test_pallas_table_computes_ratio(tables):
    report = dict(jax="0", devices=["gpu:0"], bench=[dict(
        B=1, N=2, Dv=32, T=512, S=512, causal=True, cudnn_fwd_ms=0.1,
        cudnn_fwd_bwd_ms=0.4, paper_h2w1_fwd_ms=0.2,
        paper_h2w1_fwd_bwd_ms=1.0, h32_fwd_ms=None, h32_fwd_bwd_ms=None)])
    markdown = tables.pallas_table(report)
    row = _table_row(markdown, "512")
    assert row[3:6] == ["0.200", "1.000", "2.50x"]
    assert row[6:] == ["-", "-", "-x"]
    assert "causal" in markdown


def test_layer_table_ratios_to_mha(tables):
    report = dict(
        keras="3", backend="torch", device="Test GPU", time="now",
        check=[dict(T=8, causal=True, padded=False, fused_calls={"triton": 1},
                    forward_max_abs_err=1e-7, grad_max_rel_err=2e-6,
                    ok=True)],
        layer_bench=[
            dict(variant="mha", T=64, B=2, width=32, fwdbwd_ms_median=2.0,
                 fwdbwd_peak_mib=10.0),
            dict(variant="neural_fused", T=64, B=2, width=32,
                 fwdbwd_ms_median=5.0, fwdbwd_peak_mib=13.0),
        ],
    )
    markdown = tables.layer_table(report)
    fused = [line for line in markdown.splitlines() if "fused kernel" in line]
    assert fused and "| 2.50x |" in fused[0] and "| 1.30x |" in fused[0]
    assert "(ok)" in markdown


def test_empty_reports_are_refused(tables):
    with pytest.raises(ValueError, match="bench"):
        tables.triton_tables(dict(device="x", torch="0", triton="0",
                                  time="now", bench=[]))
    with pytest.raises(ValueError, match="bench"):
        tables.pallas_table(dict(jax="0", devices=[], bench=[]))


def test_recorded_results_render(tables, capsys):
    files = dict(
        triton=RESULTS / "triton_bench_T512-16384.json",
        pallas=RESULTS / "pallas_bench_T512-8192.json",
        layer=RESULTS / "layer_gpu_check-torch.json",
    )
    assert tables.main([
        "--triton", str(files["triton"]), "--pallas", str(files["pallas"]),
        "--layer", str(files["layer"]),
    ]) == 0
    out = capsys.readouterr().out
    recorded = json.loads(files["triton"].read_text())
    lengths = sorted({row["T"] for row in recorded["bench"]})
    for t in lengths:
        assert f"| {t} |" in out
    # The tables in the docs are this script's output.
    docs = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    paper_row = next(line for line in out.splitlines()
                     if line.startswith("| 4096 |"))
    assert paper_row in docs


def test_main_requires_an_input(tables):
    with pytest.raises(SystemExit):
        tables.main([])


HOST_RESULTS = REPO_ROOT / "benchmarks" / "results" / (
    "2026-11-23-cpu-triton-host")


def _host_report(label, fwd, bwd, us):
    row = dict(config="paper", forward_device_ops=fwd,
               backward_device_ops=bwd, forward_aten_ops=fwd + 5,
               backward_aten_ops=bwd + 7, host_us_median=us)
    return dict(label=label, device="CPU", torch="0", repeats=3, calls=2,
                shape=dict(B=1, N=8, T=128, Dv=64), rows=[row])


def test_host_overhead_table_pairs_rows(tables):
    text = tables.host_overhead_table(_host_report("old", 8, 13, 180.4),
                                      _host_report("new", 2, 5, 109.6))
    assert "| paper | 8 -> 2 | 13 -> 5 | 33 -> 19 | 180 -> 110 |" in text
    assert "Before = `old`, after = `new`" in text


def test_compile_table_marks_changes(tables):
    def report(label, regs, spill):
        row = dict(config="paper", kernel="backward", H1=2, widths=[1],
                   activation="relu", dtype="bfloat16", causal=False,
                   mask=True, registers=regs, spill_bytes=spill)
        return dict(label=label, triton="3.9.0", arch="sm_90",
                    shape=dict(T=1024, Dv=64), rows=[row])

    text = tables.compile_table(report("a", 255, 8), report("b", 249, 0))
    assert ("| paper (2x1) | relu | bfloat16 | no | yes | backward | "
            "255 -> 249 | 8 -> 0 |") in text


def test_recorded_host_results_are_the_docs_tables(tables, capsys):
    def pair(kind):
        return [str(HOST_RESULTS / f"triton-{kind}-{label}.json")
                for label in ("79e0b33", "direct-weights")]

    assert tables.main(["--host", *pair("host-overhead"),
                        "--compile", *pair("compile-report")]) == 0
    out = capsys.readouterr().out
    docs = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(rows) >= 2 + 3 + 12  # headers, 3 networks, 12 kernels
    for line in rows:
        assert line in docs
