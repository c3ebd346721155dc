"""Smoke test of `benchmarks/attention_benchmark.py` on the current backend.

Runs the benchmark with a tiny configuration (T = 16, one repeat, every
variant and mode) in this process, checks the JSON and markdown it writes,
then checks the isolated-child path (one configuration, T = 32, in a fresh
process), the memory-budget skip, re-rendering and the timeout. Speed is
never asserted.
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import keras
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCHMARK_PATH = REPO_ROOT / "benchmarks" / "attention_benchmark.py"

TINY = [
    "--batch", "1",
    "--heads", "2",
    "--key-dim", "8",
    "--model-dim", "16",
    "--repeats", "1",
    # Small enough that the chunked variant really splits T in blocks.
    "--chunk-size", "8",
]


@pytest.fixture(scope="module")
def bench():
    name = "attention_benchmark_under_test"
    spec = importlib.util.spec_from_file_location(name, BENCHMARK_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def _load(output_dir, tag):
    backend = keras.backend.backend()
    json_files = sorted(output_dir.glob(f"{backend}-*-{tag}.json"))
    md_files = sorted(output_dir.glob(f"{backend}-*-{tag}.md"))
    assert len(json_files) == 1 and len(md_files) == 1, list(
        output_dir.iterdir()
    )
    with open(json_files[0]) as f:
        report = json.load(f)
    return report, md_files[0].read_text()


def test_in_process_tiny_sweep(bench, tmp_path):
    code = bench.main(
        TINY
        + [
            "--seq-lengths", "16",
            "--in-process",
            "--output-dir", str(tmp_path),
            "--tag", "test",
        ]
    )
    assert code == 0
    report, markdown = _load(tmp_path, "test")
    meta = report["metadata"]
    assert meta["backend"] == keras.backend.backend()
    for key in (
        "device_kind", "device_name", "keras_version", "date_utc", "batch",
        "heads", "key_dim", "model_dim", "projection_dim", "hidden_units",
        "seq_lengths", "repeats", "peak_memory_definition", "execution",
    ):
        assert meta.get(key) is not None, key
    assert meta["seq_lengths"] == [16]
    assert meta["projection_dim"] == 1 and meta["hidden_units"] == [1, 1]
    assert meta["mha_path"]

    results = report["results"]
    expected = {
        (variant, t, mode)
        for variant in bench.VARIANTS
        for t in (16,)
        for mode in bench.MODES
    }
    assert {(r["variant"], r["seq_len"], r["mode"]) for r in results} == (
        expected
    )
    for record in results:
        assert record["status"] == "ok", record
        assert len(record["times_ms"]) == 1
        assert record["median_ms"] > 0 and math.isfinite(record["median_ms"])
        assert record["first_call_s"] > 0
        # Peak memory is an increase of RSS / allocator bytes: tiny
        # configurations may reuse already-resident memory, so >= 0.
        assert isinstance(record["peak_bytes"], int)
        assert record["peak_bytes"] >= 0
        assert record["estimated_bytes"] > 0
        if record["variant"] == "chunked":
            assert record["query_chunk_size_resolved"] == 8
        elif record["variant"] != "mha":
            assert record["query_chunk_size_resolved"] is None

    assert markdown.startswith("# Attention benchmark")
    for title in (
        "## Forward time (ms, median)",
        "## Forward+backward time (ms, median)",
        "## Forward peak memory (MiB)",
        "## Forward+backward peak memory (MiB)",
        "## Peak memory: reference vs factored vs chunked",
    ):
        assert title in markdown
    assert "| 16 |" in markdown
    for label, _ in bench.VARIANTS.values():
        assert label in markdown


def test_budget_skip_and_render(bench, tmp_path):
    code = bench.main(
        TINY
        + [
            "--seq-lengths", "16",
            "--in-process",
            "--memory-budget-gb", "1e-9",
            "--output-dir", str(tmp_path),
            "--tag", "skip",
        ]
    )
    assert code == 0
    report, markdown = _load(tmp_path, "skip")
    assert len(report["results"]) == len(bench.VARIANTS) * len(bench.MODES)
    for record in report["results"]:
        assert record["status"] == "skipped"
        assert record["reason"].startswith("skipped (estimated ")
        assert "> budget" in record["reason"]
    assert "| skipped (estimated " in markdown
    json_path = next(tmp_path.glob("*-skip.json"))
    json_path.with_suffix(".md").unlink()
    assert bench.main(["--render", str(json_path)]) == 0
    assert json_path.with_suffix(".md").read_text() == markdown


def test_isolated_child(bench):
    backend = keras.backend.backend()
    d, hidden = bench.resolve_scoring_dims(8)
    cfg = {
        "batch": 1, "heads": 2, "key_dim": 8, "model_dim": 16,
        "projection_dim": d, "hidden_units": list(hidden),
        "chunk_size": 8, "repeats": 1, "warmup": 1,
        "tf_jit_compile": False, "seed": 0,
    }
    record = bench.run_config(
        "chunked", 32, "fwdbwd", cfg, None, timeout_s=120,
        rss_limit_bytes=None,
    )
    assert record["status"] == "ok", record
    assert record["backend"] == backend
    assert record["returncode"] == 0
    assert record["median_ms"] > 0
    assert record["peak_bytes"] >= 0
    assert record["query_chunk_size_resolved"] == 8
    # The GPU machines have no TensorFlow: only its own backend imports it.
    assert record["tensorflow_imported"] == (backend == "tensorflow")


def test_timeout_is_recorded(bench):
    d, hidden = bench.resolve_scoring_dims(8)
    cfg = {
        "batch": 1, "heads": 2, "key_dim": 8, "model_dim": 16,
        "projection_dim": d, "hidden_units": list(hidden),
        "chunk_size": "auto", "repeats": 1, "warmup": 1,
        "tf_jit_compile": False, "seed": 0,
    }
    record = bench.run_config(
        "mha", 16, "fwd", cfg, None, timeout_s=0.2, rss_limit_bytes=None
    )
    assert record["status"] == "timeout"
    assert record["reason"].startswith("timeout after")
