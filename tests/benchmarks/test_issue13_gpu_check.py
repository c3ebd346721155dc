"""`benchmarks/issue13_gpu_check.py --cpu-smoke`: the prepared GPU script's
code paths, at tiny sizes on the CPU, so the script cannot rot before the
one call it gets on a GPU.

The script runs in a fresh process with `KERAS_BACKEND=torch` (its Keras
sections' backend) and with a stand-in `tensorflow` package first on the
path that fails to import, as TensorFlow is absent on the GPU machine: a
run that needed TensorFlow fails here. Backend-independent (a child
process), so it runs once (`one_backend`). Speed is never asserted.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "issue13_gpu_check.py"

pytestmark = pytest.mark.one_backend

for _module in ("torch", "triton", "keras_hub"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"needs {_module}", allow_module_level=True)


def _env(tmp_path):
    blocked = tmp_path / "no_tensorflow" / "tensorflow"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text(
        "raise ModuleNotFoundError('tensorflow is blocked in this test',"
        " name='tensorflow')\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["KERAS_BACKEND"] = "torch"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(blocked.parent), str(REPO_ROOT)]
        + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return env


def test_module_import_loads_no_framework(tmp_path):
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('g', {str(SCRIPT)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "loaded = [m for m in ('keras', 'keras_hub', 'tensorflow', 'torch',"
        " 'jax') if m in sys.modules]\n"
        "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_cpu_smoke_runs_every_section(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(out)],
        env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout[-2000:]
                                    + result.stderr[-3000:])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cpu_smoke"] and not summary.get("errors")

    kernels = json.loads((out / "kernels.json").read_text())
    launches = kernels["settings"]["launches"]
    assert set(launches) == {"paper", "single32"}
    timed = [(i["config"], i["variant"]) for i in kernels["items"]
             if i["kind"] == "neural"]
    # Two variants of the first configuration, one of the second: the
    # compile report's survivors, the default (reference) first.
    assert [v for c, v in timed if c == "paper"][0] == "default"
    assert len({v for c, v in timed if c == "paper"}) == 2
    assert {v for c, v in timed if c == "single32"} == {"default"}
    for item in kernels["items"]:
        assert "error" not in item, item
        if item["kind"] == "cuda_graph":
            assert item["skipped"] == "no CUDA device"
        else:
            assert item["fwdbwd_ms"] > 0 and item["fwd_ms"] > 0
        if item["kind"] == "neural":
            assert item["ratio_fwdbwd"] > 0

    lm = json.loads((out / "lm.json").read_text())
    assert [i["model"] for i in lm["items"]] == [
        "dot_product", "neural_first", "neural_every"]
    for item in lm["items"]:
        assert "error" not in item, item
        assert item["step_ms"] > 0 and item["ratio"] > 0
    # Neural Attention adds scoring weights: the models differ as asked.
    params = [i["parameters"] for i in lm["items"]]
    assert params[0] < params[1] < params[2]

    separable = json.loads((out / "separable.json").read_text())
    assert [i["activation"] for i in separable["items"]] == [
        "mha", "square", "cube", "exponential"]
    for item in separable["items"]:
        assert "error" not in item, item
        assert item["fwdbwd_ms"] > 0 and item["ratio"] > 0
