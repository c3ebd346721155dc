"""Compiles the Triton kernels for the H100 (sm_90) without a GPU.

Runs `benchmarks/triton_compile_report.py` in a fresh process (compiled
mode: `TRITON_INTERPRET` unset) on four configurations that together take
every kernel path (single layer, scalar head, general), a causal and a
padding mask, relu and tanh, and bfloat16 and float16 values. The
interpreter tests check what the kernels compute; this checks that the same
source, launched with the arguments a CUDA call would pass, compiles to a
cubin for the GPU the package targets. Register counts are recorded, not
asserted (they depend on the Triton version). PyTorch session only: the
check needs no Keras backend and runs once.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

if keras.backend.backend() != "torch":
    pytest.skip("Runs once, in the KERAS_BACKEND=torch session",
                allow_module_level=True)
triton = pytest.importorskip("triton", reason="Triton is not installed")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / (
    "triton_compile_report.py")
CONFIGS = ["paper", "paper_causal_mask", "single8_tanh_float16",
           "general_4_2"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("aot")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--label", "test",
         "--length", "1000", "--configs", *CONFIGS],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "triton-compile-report-test.json").read_text())


def test_every_configuration_compiles_forward_and_backward(report):
    assert report["arch"] == "sm_90"
    kernels = [(row["config"], row["kernel"]) for row in report["rows"]]
    assert kernels == [(name, kernel) for name in CONFIGS
                       for kernel in ("forward", "backward")]
    for row in report["rows"]:
        assert 0 < row["registers"] <= 255
        assert row["spill_bytes"] >= 0
        assert row["num_warps"] == 4


def test_launch_arguments_are_the_gpu_ones(report):
    rows = {(row["config"], row["kernel"]): row for row in report["rows"]}
    # Paths chosen from the widths; GPU block sizes (not the interpreter's).
    expected_path = {"paper": 1, "paper_causal_mask": 1,
                     "single8_tanh_float16": 0, "general_4_2": 2}
    for (name, kernel), row in rows.items():
        assert row["constexprs"]["PATH"] == expected_path[name]
        assert row["constexprs"]["LOWP_DOT"] is True  # half-precision values
        block = row["constexprs"]["BM"]
        assert block == (64 if expected_path[name] != 2 else 32)
        # forward: (query blocks, B * N); backward: (key blocks, B * N)
        assert row["grid"] == [-(-1000 // block), 8 * 8]
    assert rows[("paper_causal_mask", "forward")]["constexprs"]["CAUSAL"]
    assert rows[("paper_causal_mask", "forward")]["constexprs"]["HAS_MASK"]
    assert rows[("single8_tanh_float16", "backward")]["constexprs"]["ACT"] == 1
    # The backward is compiled with one pipelining stage (see
    # `_launch_options`), the forward with Triton's default.
    assert rows[("paper", "backward")]["num_stages"] == 1
    assert rows[("paper", "forward")]["num_stages"] > 1
