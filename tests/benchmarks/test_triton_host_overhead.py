"""Tests of `benchmarks/triton_host_overhead.py` (PyTorch backend only).

Runs the script once with its kernels stubbed and checks the result file;
the operator counts it reports are exact, so the fast paths' promise (no
weight packing, no mask or weight placeholders allocated per call) is held
here: a regression that adds device work to the wrapper fails this test.
Speed is not asserted.
"""

import importlib.util
import json
from pathlib import Path

import keras
import pytest

if keras.backend.backend() != "torch":
    pytest.skip("The Triton wrapper runs on the PyTorch backend",
                allow_module_level=True)
pytest.importorskip("triton", reason="Triton is not installed")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / (
    "triton_host_overhead.py")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import os

    spec = importlib.util.spec_from_file_location("triton_host_overhead",
                                                  SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = os.environ.get("TRITON_INTERPRET")
    out = tmp_path_factory.mktemp("host")
    try:
        returned = module.main(["--out", str(out), "--label", "test",
                                "--repeats", "1", "--calls", "2",
                                "--length", "24"])
    finally:
        if saved is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = saved
    written = json.loads((out / "triton-host-overhead-test.json").read_text())
    assert written == json.loads(json.dumps(returned))
    return {row["config"]: row for row in written["rows"]}, written


def test_report_fields(report):
    rows, written = report
    assert set(rows) == {"paper", "single32", "general_4_2"}
    assert written["shape"] == dict(B=1, N=8, T=24, Dv=64)
    for row in rows.values():
        assert row["forward_aten_ops"] == sum(row["forward_ops"].values())
        assert row["backward_aten_ops"] == sum(row["backward_ops"].values())
        assert 0 < row["forward_device_ops"] <= row["forward_aten_ops"]
        assert row["host_us_median"] >= row["host_us_min"] > 0


@pytest.mark.parametrize("config", ["paper", "single32"])
def test_fast_paths_do_no_weight_packing(report, config):
    rows, _ = report
    row = rows[config]
    # Forward: the two layout copies of a and c, nothing else on the device.
    device = {name: n for name, n in row["forward_ops"].items()
              if name not in {"transpose", "empty", "empty_like", "detach",
                              "alias", "view", "select", "slice",
                              "unsqueeze", "expand"}}
    assert device == {"clone": 2}
    for name in ("constant_pad_nd", "stack", "zeros", "cat"):
        assert name not in row["forward_ops"]
        assert name not in row["backward_ops"]
    # Backward: delta (mul, sum), the two atomic-add buffers, one sum of the
    # weight-gradient partials.
    assert row["backward_device_ops"] == 5


def test_general_path_packs_weights(report):
    rows, _ = report
    assert rows["general_4_2"]["forward_ops"].get("constant_pad_nd", 0) > 0
