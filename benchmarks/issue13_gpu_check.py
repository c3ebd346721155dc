#!/usr/bin/env python
"""Issue 13, Part 2 in one call: times the fused Triton kernels' surviving
launch variants, the separable activations and the paper language model's
training step against dot-product attention on one CUDA GPU.

Sections, in the order they run (each item is skipped, and recorded as
skipped, once `--budget-s` seconds have passed, so one call stays within
the 8 minutes the issue allows; the kernels' baselines and reference
variants, the model steps and the separable layers come before the other
kernel variants, which run last):

1. `kernels` (PyTorch + Triton, no Keras): forward+backward of
   `triton_neural_attention` (the paper's network: d' = 2, hidden (2, 1),
   i.e. H1 = 2 then a width-1 layer; and one hidden layer of width 32) vs
   `torch.nn.functional.scaled_dot_product_attention` on the FlashAttention
   backend, B = 8, N = 8, head dim 64, causal, bf16 values, at T = 1024,
   4096, 16384. The launch variants are those that survive the compile
   report (`benchmarks/results/2026-12-02-triton-compile-report/`, rule in
   `triton_compile_report.surviving_variants`: no register spills in either
   kernel, one binary per variant). At the shortest length the default
   variant is also timed replayed from a CUDA graph (the host-overhead
   remedy the issue names). Writes `kernels.json`.
2. `lm` (Keras on `--backend`, default torch; imports keras_hub only here):
   one training step (`train_on_batch`, Adam, cross-entropy) of the paper's
   language model (8 layers, width 512, 8 heads, T = 1024, batch 8,
   `mixed_bfloat16`), dot-product attention everywhere vs Neural Attention
   in the first block vs in every block (`implementation="auto"`: the fused
   kernel). Writes `lm.json`.
3. `separable` (Keras): forward+backward of a causal self-attention layer
   (width 512, 8 heads, key_dim 64, bf16) with `NeuralAttention(hidden_units=
   (2,), activation=<separable>)` under `implementation="auto"` (dot-product
   attention on expanded features) vs `keras.layers.MultiHeadAttention`.
   Writes `separable.json`.

Every file holds the machine, versions, the settings and each item's
`ratio` to its dot-product baseline. `--cpu-smoke` (alias `--dry-run`) runs
the same code paths at tiny sizes on a CPU (Triton interpreter, 2 layers of
width 32, T = 16, 4 first-layer units for `single32`, one timed call, no
CUDA graph); the test suite runs it
(`tests/benchmarks/test_issue13_gpu_check.py`).

Nothing imports TensorFlow, and keras / keras_hub are imported only inside
the sections that need them (the GPU machine has JAX, PyTorch and Triton,
and gets keras, keras-hub, namex and optree as wheels).

Usage (on the GPU machine, from the repository root):

    python benchmarks/issue13_gpu_check.py --out $OUT
    python benchmarks/issue13_gpu_check.py --out /tmp/x --cpu-smoke
    python benchmarks/issue13_gpu_check.py --sections kernels --lengths 4096
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
REPORT_DIR = HERE / "results" / "2026-12-02-triton-compile-report"
SECTIONS = ("kernels", "lm", "separable")

# name: (H1, hidden widths 2..L) as the kernels take them.
KERNEL_CONFIGS = {"paper": (2, (1,)), "single32": (32, ())}
# The smoke run's widths: the same kernel paths (a scalar head; one hidden
# layer), with 4 units instead of 32 (the interpreter unrolls every unit).
SMOKE_KERNEL_CONFIGS = {"paper": (2, (1,)), "single32": (4, ())}
SEPARABLE_ACTIVATIONS = ("square", "cube", "exponential")

FULL = dict(batch=8, heads=8, head_dim=64, lengths=(1024, 4096, 16384),
            lm=dict(num_layers=8, hidden_dim=512, intermediate_dim=1024,
                    num_heads=8, length=1024, batch=8, vocabulary=28996),
            separable_lengths=(1024, 4096, 16384), separable_batch=8,
            width=512, repeats=None, lm_steps=10)
SMOKE = dict(batch=1, heads=2, head_dim=16, lengths=(16,),
             lm=dict(num_layers=2, hidden_dim=32, intermediate_dim=32,
                     num_heads=2, length=16, batch=2, vocabulary=97),
             separable_lengths=(16,), separable_batch=1, width=32,
             repeats=1, lm_steps=1)


class Budget:
    """Wall-clock budget of the whole call."""

    def __init__(self, seconds):
        self.start = time.perf_counter()
        self.seconds = seconds

    def elapsed(self):
        return time.perf_counter() - self.start

    def left(self):
        return self.seconds - self.elapsed()


def machine_info():
    info = dict(python=sys.version.split()[0], platform=platform.platform(),
                time=time.strftime("%Y-%m-%d %H:%M:%S"))
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["capability"] = list(torch.cuda.get_device_capability(0))
    except ImportError:
        pass
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_average"] = list(os.getloadavg())
    return info


def write(out, name, payload):
    path = Path(out) / name
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    print(f"wrote {path}", flush=True)


def record_failure(item, error):
    """Keeps a failed item's error (the run goes on to the next item)."""
    item["error"] = f"{type(error).__name__}: {error}"
    item["traceback"] = traceback.format_exc()[-2000:]


def finish_item(item, started, results, out, name):
    """Times, appends, prints and writes one finished item: each section's
    JSON is rewritten after every item, so a cut-off run keeps its part."""
    item["seconds"] = round(time.perf_counter() - started, 2)
    results["items"].append(item)
    print(json.dumps({k: v for k, v in item.items() if k != "traceback"}),
          flush=True)
    write(out, name, results)


def ratio(x, y):
    if x is None or y is None or y <= 0:
        return None
    return round(x / y, 4)


# ---------------------------------------------------------------------------
# Timing


def make_timer(torch, smoke, repeats=None):
    """`time_ms(fn)`: the median milliseconds of `fn()` (triton's do_bench
    on a GPU; a wall-clock loop on a CPU)."""
    if torch.cuda.is_available() and not smoke:
        import triton.testing

        def time_ms(fn):
            return float(triton.testing.do_bench(fn, warmup=25, rep=100))

        return time_ms

    def time_ms(fn):
        if smoke:  # one call: the smoke run checks code, not speed
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e3
        fn()  # warm-up (compilation)
        times = []
        for _ in range(repeats or 3):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    return time_ms


# ---------------------------------------------------------------------------
# 1. Kernels


def surviving_launches(report_dir, configs, smoke):
    """`{config: [(variant, launch kwargs), ...]}`: the compile report's
    survivors (default variant first); in smoke mode, with 16 x 16 blocks
    (the interpreter's cost is per tile step), two variants of the first
    configuration and one of the others: every loop still runs."""
    import triton_compile_report

    result = {}
    for config in configs:
        path = Path(report_dir) / f"triton-compile-report-{config}.json"
        report = json.loads(path.read_text())
        survivors = triton_compile_report.surviving_variants(report)[config]
        launches = [(name, dict(report["variants"][name]))
                    for name in survivors["survive"]]
        if smoke:
            keep = 2 if not result else 1
            launches = [(name, dict(launch, block_m=16, block_n=16))
                        for name, launch in launches[:keep]]
        result[config] = launches
    return result


def kernel_section(args, sizes, budget, out):
    import torch

    sys.path.insert(0, str(HERE))
    import triton_kernel_check

    module = triton_kernel_check.load_kernel_module("issue13_triton")
    cuda = torch.cuda.is_available() and not args.cpu_smoke
    device = "cuda" if cuda else "cpu"
    time_ms = make_timer(torch, args.cpu_smoke, sizes["repeats"])
    dtype = torch.bfloat16
    B, N, D = sizes["batch"], sizes["heads"], sizes["head_dim"]
    launches = surviving_launches(args.report_dir, args.configs,
                                  args.cpu_smoke)
    kernel_configs = SMOKE_KERNEL_CONFIGS if args.cpu_smoke else (
        KERNEL_CONFIGS)
    results = dict(info=machine_info(), settings=dict(
        batch=B, heads=N, head_dim=D, dtype="bfloat16", causal=args.causal,
        lengths=list(sizes["lengths"]),
        networks={name: kernel_configs[name] for name in args.configs},
        launches={k: [list(x) for x in v] for k, v in launches.items()}),
        items=[])

    def sdpa_fn(q, k, v):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backends = [SDPBackend.FLASH_ATTENTION] if cuda else [
            SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]
        with sdpa_kernel(backends):
            return torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=args.causal)

    def fwd_bwd(fn, inputs):
        out = fn(*inputs)
        grads = torch.autograd.grad(out, inputs, torch.ones_like(out))
        return grads

    def na_inputs(t, h1, widths):
        gen = torch.Generator(device="cpu").manual_seed(0)

        def randn(*shape, dtype=torch.float32, grad=True):
            x = torch.randn(*shape, generator=gen).to(device=device,
                                                      dtype=dtype)
            return x.requires_grad_(grad)

        a, c = randn(B, N, t, h1), randn(B, N, t, h1)
        v = randn(B, N, t, D, dtype=dtype)
        layers, fan = [], h1
        for width in widths:
            layers.append((randn(fan, width, grad=False),
                           randn(width, grad=False)))
            fan = width
        wo = randn(fan, 1)
        return a, c, v, tuple(layers), wo

    # Work lists, by priority: the baselines and each configuration's
    # first (reference) variant at every length and the CUDA graph now; the
    # other variants after the Keras sections (`kernel_variants`).
    first, rest = [], []
    for t in sizes["lengths"]:
        first.append(("flash", None, None, t))
    for config in args.configs:
        for t in sizes["lengths"]:
            first.append(("neural", config, launches[config][0], t))
    first.append(("cuda_graph", args.configs[0],
                  launches[args.configs[0]][0], sizes["lengths"][0]))
    for config in args.configs:
        for launch in launches[config][1:]:
            for t in sizes["lengths"]:
                rest.append(("neural", config, launch, t))

    flash_ms = {}

    def run(work):
        for kind, config, launch, t in work:
            item = dict(kind=kind, config=config, T=t,
                        variant=None if launch is None else launch[0],
                        launch=None if launch is None else launch[1])
            if budget.left() <= 0:
                item["skipped"] = "time budget"
                results["items"].append(item)
                continue
            started = time.perf_counter()
            try:
                if kind == "flash":
                    q, k, v = (torch.randn(B, N, t, D, device=device,
                                           dtype=dtype, requires_grad=True)
                               for _ in range(3))
                    item["fwd_ms"] = time_ms(lambda: sdpa_fn(q, k, v))
                    item["fwdbwd_ms"] = time_ms(lambda: fwd_bwd(sdpa_fn,
                                                                (q, k, v)))
                    flash_ms[t] = item
                else:
                    h1, widths = kernel_configs[config]
                    a, c, v, layers, wo = na_inputs(t, h1, widths)

                    def na_fn(a, c, v, wo):
                        return module.triton_neural_attention(
                            a, c, v, layers, wo, causal=args.causal,
                            **launch[1])

                    inputs = (a, c, v, wo)
                    if kind == "cuda_graph":
                        item.update(cuda_graph_time(torch, na_fn, inputs,
                                                    cuda, time_ms))
                    else:
                        item["fwd_ms"] = time_ms(lambda: na_fn(*inputs))
                        item["fwdbwd_ms"] = time_ms(lambda: fwd_bwd(na_fn,
                                                                    inputs))
                    base = flash_ms.get(t, {})
                    for mode in ("fwd_ms", "fwdbwd_ms"):
                        item[f"ratio_{mode[:-3]}"] = ratio(item.get(mode),
                                                           base.get(mode))
            except Exception as error:  # recorded, the run goes on
                record_failure(item, error)
            finish_item(item, started, results, out, "kernels.json")

    run(first)
    return lambda: run(rest)


def cuda_graph_time(torch, fn, inputs, cuda, time_ms):
    """forward+backward of `fn(*inputs)` captured once in a CUDA graph and
    timed as `graph.replay()` (no host work per call)."""
    if not cuda:
        return dict(skipped="no CUDA device")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up: compile and autotune outside capture
            out = fn(*inputs)
            torch.autograd.grad(out, inputs, torch.ones_like(out))
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(*inputs)
        torch.autograd.grad(out, inputs, torch.ones_like(out))
    return dict(fwdbwd_ms=time_ms(graph.replay))


# ---------------------------------------------------------------------------
# 2. and 3. Keras sections


def import_keras(backend):
    os.environ.setdefault("KERAS_BACKEND", backend)
    sys.path.insert(0, str(ROOT))
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(
            f"Keras runs on {keras.backend.backend()!r}, not --backend="
            f"{backend!r}: set KERAS_BACKEND or pass --backend to match.")
    return keras


def lm_section(args, sizes, budget, out):
    keras = import_keras(args.backend)
    import numpy as np

    from keras_neural_attention.models import causal_lm

    lm = sizes["lm"]
    cases = [("dot_product", "dot_product", (0,)),
             ("neural_first", "neural", (0,)),
             ("neural_every", "neural", tuple(range(lm["num_layers"])))]
    results = dict(info=machine_info(), settings=dict(
        backend=args.backend, dtype="mixed_bfloat16", steps=sizes["lm_steps"],
        **lm), items=[])
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, lm["vocabulary"],
                          (lm["batch"], lm["length"] + 1))
    x = {"token_ids": tokens[:, :-1],
         "padding_mask": np.ones((lm["batch"], lm["length"]), "int32")}
    y = tokens[:, 1:]
    base = None
    for name, attention, layers in cases:
        item = dict(model=name, attention=attention,
                    attention_layers=list(layers))
        if budget.left() <= 0:
            item["skipped"] = "time budget"
            results["items"].append(item)
            continue
        started = time.perf_counter()
        try:
            keras.utils.set_random_seed(0)
            model = causal_lm.paper_lm_causal_lm(
                attention=attention, attention_layers=layers,
                vocabulary_size=lm["vocabulary"],
                num_layers=lm["num_layers"], num_heads=lm["num_heads"],
                hidden_dim=lm["hidden_dim"],
                intermediate_dim=lm["intermediate_dim"],
                max_sequence_length=lm["length"], dtype="mixed_bfloat16")
            model.compile(
                optimizer=keras.optimizers.Adam(1e-4),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
            for _ in range(1 if args.cpu_smoke else 2):  # build, warm up
                model.train_on_batch(x, y)
            times = []
            for _ in range(sizes["lm_steps"]):
                start = time.perf_counter()
                loss = model.train_on_batch(x, y)  # returns host floats
                times.append((time.perf_counter() - start) * 1e3)
            item.update(step_ms=statistics.median(times),
                        step_ms_all=[round(t, 3) for t in times],
                        loss=float(np.asarray(loss).ravel()[0]),
                        parameters=int(model.count_params()))
            if name == "dot_product":
                base = item["step_ms"]
            item["ratio"] = ratio(item["step_ms"], base)
            del model
        except Exception as error:  # recorded, the run goes on
            record_failure(item, error)
        finish_item(item, started, results, out, "lm.json")
    return results


def separable_section(args, sizes, budget, out):
    keras = import_keras(args.backend)
    import numpy as np

    from keras_neural_attention.layers import NeuralAttention

    width, heads, key_dim = sizes["width"], sizes["heads"], sizes["head_dim"]
    batch = sizes["separable_batch"]
    results = dict(info=machine_info(), settings=dict(
        backend=args.backend, width=width, heads=heads, key_dim=key_dim,
        batch=batch, dtype="mixed_bfloat16", causal=True,
        lengths=list(sizes["separable_lengths"]), hidden_units=[2]),
        items=[])
    time_fn = layer_timer(args.backend, args.cpu_smoke, sizes["repeats"])
    base = {}
    for t in sizes["separable_lengths"]:
        for activation in ("mha",) + SEPARABLE_ACTIVATIONS:
            item = dict(activation=activation, T=t)
            if budget.left() <= 0:
                item["skipped"] = "time budget"
                results["items"].append(item)
                continue
            started = time.perf_counter()
            try:
                keras.utils.set_random_seed(0)
                if activation == "mha":
                    layer = keras.layers.MultiHeadAttention(
                        num_heads=heads, key_dim=key_dim,
                        dtype="mixed_bfloat16")
                else:
                    layer = NeuralAttention(
                        num_heads=heads, key_dim=key_dim, projection_dim=2,
                        hidden_units=(2,), activation=activation,
                        implementation="auto", dtype="mixed_bfloat16")
                x = np.random.default_rng(0).normal(
                    size=(batch, t, width)).astype("float32")
                layer(x[:, :8], x[:, :8], use_causal_mask=True)  # build
                item["fwdbwd_ms"] = time_fn(layer, x)
                if activation == "mha":
                    base[t] = item["fwdbwd_ms"]
                item["ratio"] = ratio(item["fwdbwd_ms"], base.get(t))
            except Exception as error:  # recorded, the run goes on
                record_failure(item, error)
            finish_item(item, started, results, out, "separable.json")
    return results


def layer_timer(backend, smoke, repeats):
    """`time(layer, x)`: median ms of the gradient of `sum(layer(x, x))`
    w.r.t. the layer's weights and `x` (causal self-attention)."""
    if backend == "torch":
        import torch

        time_ms = make_timer(torch, smoke, repeats)
        device = "cuda" if torch.cuda.is_available() and not smoke else "cpu"

        def measure(layer, x_np):
            x = torch.tensor(x_np, device=device, requires_grad=True)
            weights = [v.value for v in layer.trainable_variables]

            def step():
                out = layer(x, x, use_causal_mask=True)
                return torch.autograd.grad(out.float().sum(), weights + [x])

            return time_ms(step)

        return measure
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def measure(layer, x_np):
            x = jnp.asarray(x_np)
            trainable = [v.value for v in layer.trainable_variables]
            non_trainable = [v.value for v in layer.non_trainable_variables]

            def loss(trainable, x):
                out = layer.stateless_call(trainable, non_trainable, x, x,
                                           use_causal_mask=True)[0]
                return jnp.sum(out.astype("float32"))

            step = jax.jit(jax.grad(loss, argnums=(0, 1)))
            jax.block_until_ready(step(trainable, x))
            times = []
            for _ in range(repeats or 20):
                start = time.perf_counter()
                jax.block_until_ready(step(trainable, x))
                times.append((time.perf_counter() - start) * 1e3)
            return statistics.median(times)

        return measure
    raise ValueError(
        "Argument `backend` must be one of ('torch', 'jax'). "
        f"Received: backend={backend!r}")


# ---------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--cpu-smoke", "--dry-run", action="store_true",
                        help="tiny sizes on a CPU: the same code paths")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS),
                        choices=SECTIONS)
    parser.add_argument("--configs", nargs="+", default=list(KERNEL_CONFIGS),
                        choices=list(KERNEL_CONFIGS))
    parser.add_argument("--lengths", type=int, nargs="+", default=None)
    parser.add_argument("--causal", type=int, default=1, choices=(0, 1))
    parser.add_argument("--backend", default="torch",
                        choices=("torch", "jax"),
                        help="Keras backend of the lm and separable sections")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="items left when this many seconds have "
                        "passed are skipped (recorded as such)")
    parser.add_argument("--report-dir", default=str(REPORT_DIR))
    args = parser.parse_args(argv)
    args.causal = bool(args.causal)
    if args.cpu_smoke:
        # Chosen before the kernel module's `@triton.jit` decorators run.
        os.environ["TRITON_INTERPRET"] = "1"
    sizes = dict(SMOKE if args.cpu_smoke else FULL)
    if args.lengths:
        sizes["lengths"] = tuple(args.lengths)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.budget_s)
    sections = {"kernels": kernel_section, "lm": lm_section,
                "separable": separable_section}
    summary = dict(info=machine_info(), cpu_smoke=args.cpu_smoke,
                   sections=args.sections, seconds={})
    # The kernel section returns its remaining variants, run last.
    steps = [(name, sections[name]) for name in SECTIONS
             if name in args.sections]
    while steps:
        name, step = steps.pop(0)
        started = time.perf_counter()
        try:
            if name == "kernel_variants":
                step()
            else:
                rest = step(args, sizes, budget, out)
                if name == "kernels":
                    steps.append(("kernel_variants", rest))
        except Exception as error:  # a section that cannot start
            summary.setdefault("errors", {})[name] = (
                f"{type(error).__name__}: {error}\n"
                + traceback.format_exc()[-2000:])
            print(summary["errors"][name], flush=True)
        summary["seconds"][name] = round(time.perf_counter() - started, 2)
    summary["total_seconds"] = round(budget.elapsed(), 2)
    write(out, "summary.json", summary)
    return 1 if summary.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
