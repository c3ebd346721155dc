#!/usr/bin/env python
"""Cached decode step vs uncached forward pass of the paper's language model.

For each model variant the script builds `NeuralAttentionLMBackbone` inside
`keras_hub.models.GPT2CausalLM` (random weights, no download) and times, at a
prefix of `--prefix` tokens (1024 by default, the paper's context):

- `uncached forward`: what a decoder without a cache runs to produce the next
  token: the backbone over all `prefix + 1` tokens, then the output head on
  the last position;
- `cached step`: one `GPT2CausalLM.call_with_cache` step, the one
  `generate()` runs per new token: the new token at index `prefix`, with a
  cache of length `prefix + 1` (every layer attends to the whole cache; the
  key/value projections of the prefix are read from it).

Variants (`--variants`): `dot_product` (the paper's baseline), `neural`
(Neural Attention in the first block, the paper's model) and `neural_all`
(Neural Attention in every block, which shows the cost of the Neural
Attention cache most clearly).

How each backend runs the two functions: JAX `jax.jit` over a stateless
call (the cache index is a traced scalar, as in `generate()`); PyTorch eager
under `torch.no_grad()`; TensorFlow `tf.function` (graph, no XLA). Every
timed call is synchronized (outputs are copied to the host / blocked on).
The first `--warmup` calls (tracing and compilation included) are not timed;
the median and the minimum of `--repeats` calls are reported.

Only Keras, KerasHub and the chosen backend are needed (TensorFlow is not
needed on JAX or PyTorch). Usage:

    python benchmarks/decode_benchmark.py --backend jax
    python benchmarks/decode_benchmark.py --backend torch --num-layers 2 \
        --scale-note "reduced: 2 layers" --output-dir benchmarks/results/x

Writes `decode-<backend>-<device>.json` and `.md` into `--output-dir`.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("dot_product", "neural", "neural_all")
VARIANT_LABELS = {
    "dot_product": "dot-product (baseline)",
    "neural": "Neural Attention in block 0 (paper)",
    "neural_all": "Neural Attention in every block",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("jax", "torch", "tensorflow"),
                        help="Keras backend (default: $KERAS_BACKEND).")
    parser.add_argument("--prefix", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--vocabulary-size", type=int, default=28996)
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--num-heads", type=int, default=8)
    parser.add_argument("--hidden-dim", type=int, default=512)
    parser.add_argument("--intermediate-dim", type=int, default=1024)
    parser.add_argument("--projection-dim", type=int, default=None)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS,
                        default=list(VARIANTS))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--step-repeats", type=int, default=20,
                        help="Timed calls of the (fast) cached step.")
    parser.add_argument("--scale-note", default=None,
                        help="Says how the run's sizes relate to the paper's.")
    parser.add_argument("--notes", default=None,
                        help="Free text added to the report (machine load, "
                        "...).")
    parser.add_argument("--output-dir", default=None,
                        help="Where to write the JSON and markdown files "
                        "(default: print only).")
    return parser.parse_args(argv)


def paper_scale(args):
    return (
        args.prefix == 1024 and args.vocabulary_size == 28996
        and args.num_layers == 8 and args.num_heads == 8
        and args.hidden_dim == 512 and args.intermediate_dim == 1024
        and args.projection_dim in (None, 2)
    )


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(backend):
    """`(short device name, description)` of the device the backend uses."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return "cpu", f"CPU: {cpu_model()} ({os.cpu_count()} logical)"
        return device.platform, f"{device.platform}: {device.device_kind}"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return "cuda", f"cuda: {torch.cuda.get_device_name(0)}"
        return "cpu", (
            f"CPU: {cpu_model()} ({os.cpu_count()} logical, torch threads "
            f"{torch.get_num_threads()})"
        )
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "gpu", f"gpu: {gpus[0].name}"
    return "cpu", f"CPU: {cpu_model()} ({os.cpu_count()} logical)"


def versions(backend):
    import keras
    import keras_hub
    import numpy

    found = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "numpy": numpy.__version__,
    }
    if backend == "jax":
        import jax

        found["jax"] = jax.__version__
    elif backend == "torch":
        import torch

        found["torch"] = torch.__version__
    else:
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found


def build_lm(variant, args):
    import keras
    import keras_hub

    from keras_neural_attention.models import NeuralAttentionLMBackbone

    keras.utils.set_random_seed(0)
    attention = "dot_product" if variant == "dot_product" else "neural"
    layers = (
        list(range(args.num_layers)) if variant == "neural_all" else [0]
    )
    backbone = NeuralAttentionLMBackbone(
        vocabulary_size=args.vocabulary_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=args.intermediate_dim,
        max_sequence_length=max(1024, args.prefix + 1),
        dropout=0.0,
        attention=attention,
        attention_layers=layers,
        projection_dim=(
            args.projection_dim if attention == "neural" else None
        ),
    )
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def compiled_functions(backend, lm):
    """`(uncached(ids, mask), cached(token, cache, index), sync(x))`."""
    import keras

    def uncached_fn(token_ids, padding_mask):
        hidden = lm.backbone(
            {"token_ids": token_ids, "padding_mask": padding_mask}
        )
        return lm.backbone.token_embedding(hidden[:, -1:, :], reverse=True)

    def cached_fn(token, cache, index):
        logits, _, cache = lm.call_with_cache(token, cache, index)
        return logits, cache

    if backend == "jax":
        import jax

        variables = lm.trainable_variables + lm.non_trainable_variables
        values = [v.value for v in variables]

        def stateless(fn):
            def run(state, *args):
                with keras.StatelessScope(
                    state_mapping=list(zip(variables, state))
                ):
                    return fn(*args)

            jitted = jax.jit(run)
            return lambda *args: jitted(values, *args)

        return (
            stateless(uncached_fn),
            stateless(cached_fn),
            jax.block_until_ready,
        )
    if backend == "torch":
        import torch

        def no_grad(fn):
            def run(*args):
                with torch.no_grad():
                    return fn(*args)

            return run

        def sync(outputs):
            # CPU kernels are synchronous in eager PyTorch.
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return outputs

        return no_grad(uncached_fn), no_grad(cached_fn), sync
    import tensorflow as tf

    def tf_sync(outputs):
        # The logits come from the same graph call as the new cache.
        logits = outputs[0] if isinstance(outputs, tuple) else outputs
        return logits.numpy()

    return tf.function(uncached_fn), tf.function(cached_fn), tf_sync


def time_calls(fn, args, sync, warmup, repeats):
    for _ in range(warmup):
        sync(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sync(fn(*args))
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "times_ms": times,
    }


def run_variant(variant, backend, args):
    import keras
    import numpy as np
    from keras import ops

    lm = build_lm(variant, args)
    uncached, cached, sync = compiled_functions(backend, lm)
    length = args.prefix + 1
    rng = np.random.default_rng(0)
    token_ids = rng.integers(
        1, args.vocabulary_size, size=(args.batch, length)
    ).astype("int32")
    padding_mask = np.ones_like(token_ids)
    ids_tensor = ops.convert_to_tensor(token_ids)
    mask_tensor = ops.convert_to_tensor(padding_mask)
    # A cache seeded by one pass over the whole buffer, as `generate()` does.
    _, cache = lm._build_cache(ids_tensor)
    token = ops.convert_to_tensor(token_ids[:, args.prefix:])
    index = ops.convert_to_tensor(args.prefix, dtype="int32")

    # The two paths must agree on the next-token logits.
    full_logits = ops.convert_to_numpy(uncached(ids_tensor, mask_tensor))
    step_logits, _ = cached(token, cache, index)
    step_logits = ops.convert_to_numpy(step_logits)
    max_abs_diff = float(np.max(np.abs(full_logits - step_logits)))

    full = time_calls(uncached, (ids_tensor, mask_tensor), sync, args.warmup,
                      args.repeats)
    step = time_calls(cached, (token, cache, index), sync, args.warmup,
                      args.step_repeats)
    itemsize = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}[
        keras.backend.standardize_dtype(cache.dtype)
    ]
    cache_bytes = int(np.prod(cache.shape)) * itemsize
    return {
        "variant": variant,
        "label": VARIANT_LABELS[variant],
        "parameters": int(lm.count_params()),
        "cache_shape": [int(d) for d in cache.shape],
        "cache_mib": cache_bytes / 2**20,
        "uncached_forward": full,
        "cached_step": step,
        "speedup": full["median_ms"] / step["median_ms"],
        "next_token_logits_max_abs_diff": max_abs_diff,
    }


def render_markdown(report):
    cfg = report["config"]
    lines = [
        f"# Decode benchmark: {report['backend']} on {report['device']}",
        "",
        f"- date (UTC): {report['date']}",
        f"- hardware: {report['hardware']}",
        "- versions: " + ", ".join(
            f"{k} {v}" for k, v in report["versions"].items()
        ),
        f"- scale: {report['scale']}",
        f"- model: vocabulary {cfg['vocabulary_size']}, {cfg['num_layers']} "
        f"layers, width {cfg['hidden_dim']}, {cfg['num_heads']} heads, "
        f"feed-forward {cfg['intermediate_dim']}, d' "
        f"{cfg['projection_dim'] or 'default (head_dim // 32)'}; batch "
        f"{cfg['batch']}, float32, random weights",
        f"- prefix: {cfg['prefix']} tokens (uncached forward over "
        f"{cfg['prefix'] + 1} tokens; cached step writes index "
        f"{cfg['prefix']} of a cache of length {cfg['prefix'] + 1})",
        f"- timing: {report['timing']}",
        "",
        "| variant | params | uncached forward (ms, median / min) | "
        "cached step (ms, median / min) | speedup | cache (MiB) | "
        "max abs logit diff |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        full, step = r["uncached_forward"], r["cached_step"]
        lines.append(
            f"| {r['label']} | {r['parameters']:,} | "
            f"{full['median_ms']:.1f} / {full['min_ms']:.1f} | "
            f"{step['median_ms']:.2f} / {step['min_ms']:.2f} | "
            f"{r['speedup']:.0f}x | {r['cache_mib']:.1f} | "
            f"{r['next_token_logits_max_abs_diff']:.1e} |"
        )
    lines += [
        "",
        "The speedup is the uncached forward's median over the cached "
        "step's median: the time saved per generated token at this prefix. "
        "The last column compares the next-token logits of the two paths.",
    ]
    if report.get("notes"):
        lines += ["", report["notes"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    backend = os.environ.get("KERAS_BACKEND")
    if backend not in ("jax", "torch", "tensorflow"):
        raise SystemExit(
            "Set --backend or KERAS_BACKEND to jax, torch or tensorflow."
        )
    sys.path.insert(0, str(REPO_ROOT))
    import keras

    assert keras.backend.backend() == backend
    device, hardware = device_info(backend)
    scale = (
        "paper LM configuration" if paper_scale(args) else "reduced"
    )
    if args.scale_note:
        scale = f"{scale}: {args.scale_note}"
    timing = {
        "jax": "jax.jit over a stateless call (cache index traced), "
               "jax.block_until_ready",
        "torch": "eager under torch.no_grad(), outputs copied to host "
                 "(cuda synchronized)",
        "tensorflow": "tf.function (no XLA), outputs copied to host",
    }[backend]
    timing += (
        f"; {args.warmup} untimed warm-up call(s) (compilation included), "
        f"then {args.repeats} uncached / {args.step_repeats} cached timed "
        "calls"
    )
    results = []
    for variant in args.variants:
        print(f"[{backend}] {variant} ...", flush=True)
        result = run_variant(variant, backend, args)
        print(
            f"  uncached {result['uncached_forward']['median_ms']:.1f} ms, "
            f"cached {result['cached_step']['median_ms']:.2f} ms, "
            f"speedup {result['speedup']:.0f}x, logits diff "
            f"{result['next_token_logits_max_abs_diff']:.1e}",
            flush=True,
        )
        results.append(result)
    report = {
        "benchmark": "decode_benchmark",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "backend": backend,
        "device": device,
        "hardware": hardware,
        "versions": versions(backend),
        "scale": scale,
        "config": {
            "prefix": args.prefix,
            "batch": args.batch,
            "vocabulary_size": args.vocabulary_size,
            "num_layers": args.num_layers,
            "num_heads": args.num_heads,
            "hidden_dim": args.hidden_dim,
            "intermediate_dim": args.intermediate_dim,
            "projection_dim": args.projection_dim,
        },
        "timing": timing,
        "notes": args.notes,
        "results": results,
    }
    if args.output_dir:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = out_dir / f"decode-{backend}-{device}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
        stem.with_suffix(".md").write_text(render_markdown(report))
        print(f"wrote {stem}.json and {stem}.md")
    else:
        print(render_markdown(report))


if __name__ == "__main__":
    main()
