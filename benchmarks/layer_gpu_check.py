#!/usr/bin/env python
"""End-to-end check of `NeuralAttention(implementation="auto")` on a GPU.

Runs under the backend that `KERAS_BACKEND` names (torch or jax) and needs
Keras and this package, not TensorFlow:

1. Dispatch and exactness: on a CUDA GPU, `implementation="auto"` must run
   the backend's fused kernel (counted by wrapping
   `kernels.dispatch.fused_neural_attention`) and give the outputs and the
   gradients (w.r.t. every trainable weight and the inputs) of
   `implementation="factored"` with the same weights, float32, with and
   without a causal + padding mask.
2. (torch only) Layer-level time and peak memory of a self-attention
   forward + backward (`torch.autograd.grad` of the output sum w.r.t. the
   weights and the input) at B = 8, model width 512, 8 heads, key_dim 64,
   the paper's scoring network (d' = 2, hidden (2, 1)), compute dtype
   bfloat16 (`dtype="mixed_bfloat16"`) for: `keras.layers.MultiHeadAttention`
   (Keras takes PyTorch's flash SDPA path when it can), `NeuralAttention`
   fused (`auto`) and `NeuralAttention(implementation="factored",
   query_chunk_size="auto")` (the keras.ops path TensorFlow uses).

    KERAS_BACKEND=torch python benchmarks/layer_gpu_check.py --out DIR
    KERAS_BACKEND=jax python benchmarks/layer_gpu_check.py --out DIR --check-only

Writes `layer_gpu_check-<backend>.json` into --out and prints a summary.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_neural_attention.kernels import dispatch  # noqa: E402
from keras_neural_attention.layers import NeuralAttention  # noqa: E402

BACKEND = keras.backend.backend()


class _CountFusedCalls:
    """Counts calls of `dispatch.fused_neural_attention` by kernel name."""

    def __init__(self):
        self.calls = {}
        self._original = dispatch.fused_neural_attention

    def __enter__(self):
        def counting(name, *args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return self._original(name, *args, **kwargs)

        dispatch.fused_neural_attention = counting
        return self

    def __exit__(self, *exc):
        dispatch.fused_neural_attention = self._original


def _grads(layer, x, mask, causal):
    """Output and gradients of sum(output * probe) w.r.t. the trainable
    weights and `x`, as NumPy arrays."""
    weights = layer.trainable_variables
    probe = np.random.default_rng(5).standard_normal(x.shape).astype(
        "float32")
    if BACKEND == "torch":
        import torch

        xt = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        out = layer(xt, xt, attention_mask=mask, use_causal_mask=causal)
        loss = (out * keras.ops.convert_to_tensor(probe)).sum()
        grads = torch.autograd.grad(loss, [w.value for w in weights] + [xt])
        return (keras.ops.convert_to_numpy(out),
                [keras.ops.convert_to_numpy(g) for g in grads])
    import jax

    values = [w.value for w in weights]
    non_trainable = [w.value for w in layer.non_trainable_variables]

    def loss_fn(values, x):
        out, _ = layer.stateless_call(values, non_trainable, x, x,
                                      attention_mask=mask,
                                      use_causal_mask=causal)
        return (out * probe).sum(), out

    (_, out), grads = jax.value_and_grad(loss_fn, argnums=(0, 1),
                                         has_aux=True)(values, x)
    flat = list(grads[0]) + [grads[1]]
    return np.asarray(out), [np.asarray(g) for g in flat]


def check(seed=0):
    rows = []
    rng = np.random.default_rng(seed)
    for case, (t, causal, padded) in enumerate(
        [(300, False, False), (257, True, True)]
    ):
        x = rng.standard_normal((2, t, 64)).astype("float32")
        mask = None
        if padded:
            keep = np.ones((2, t, t), dtype=bool)
            keep[1, :, t - 40:] = False  # padded keys of the second sequence
            keep[0, 5, :] = False  # one fully masked query row
            mask = keep
        layers = {}
        for name in ("auto", "factored"):
            layer = NeuralAttention(
                num_heads=4, key_dim=16, projection_dim=2,
                hidden_units=(2, 1), implementation=name,
                query_chunk_size=None, seed=seed, dtype="float32",
            )
            layer(x[:, :8], x[:, :8])
            layers[name] = layer
        layers["auto"].set_weights(layers["factored"].get_weights())
        with _CountFusedCalls() as counter:
            out_a, grads_a = _grads(layers["auto"], x, mask, causal)
        out_f, grads_f = _grads(layers["factored"], x, mask, causal)
        fwd_err = float(np.abs(out_a - out_f).max())
        grad_err = max(
            float(np.abs(ga - gf).max() / max(1.0, np.abs(gf).max()))
            for ga, gf in zip(grads_a, grads_f)
        )
        finite = bool(np.isfinite(out_a).all())
        ok = (bool(counter.calls) and fwd_err <= 1e-5 and grad_err <= 1e-4
              and finite)
        row = dict(case=case, T=t, causal=causal, padded=padded,
                   fused_calls=counter.calls, forward_max_abs_err=fwd_err,
                   grad_max_rel_err=grad_err, finite=finite, ok=ok)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _torch_layer_bench(seq_lengths, repeats, batch=8, width=512):
    import torch

    results = []
    variants = {
        "mha": lambda: keras.layers.MultiHeadAttention(
            num_heads=8, key_dim=64, dtype="mixed_bfloat16"),
        "neural_fused": lambda: NeuralAttention(
            num_heads=8, key_dim=64, projection_dim=2, hidden_units=(2, 1),
            implementation="auto", dtype="mixed_bfloat16"),
        "neural_chunked": lambda: NeuralAttention(
            num_heads=8, key_dim=64, projection_dim=2, hidden_units=(2, 1),
            implementation="factored", query_chunk_size="auto",
            dtype="mixed_bfloat16"),
    }
    for t in seq_lengths:
        x_np = np.random.default_rng(t).standard_normal(
            (batch, t, width)).astype("float32")
        for name, make in variants.items():
            layer = make()
            x = keras.ops.convert_to_tensor(x_np)
            layer(x[:, :8], x[:, :8])
            params = [w.value for w in layer.trainable_variables]

            def step():
                xg = x.detach().requires_grad_(True)
                out = layer(xg, xg)
                return torch.autograd.grad(out.float().sum(), params + [xg])

            row = dict(variant=name, T=t, B=batch, width=width)
            try:
                with _CountFusedCalls() as counter:
                    step()
                torch.cuda.synchronize()
                row["fused_calls_per_step"] = counter.calls
                times = []
                for _ in range(repeats):
                    start = torch.cuda.Event(enable_timing=True)
                    stop = torch.cuda.Event(enable_timing=True)
                    start.record()
                    step()
                    stop.record()
                    torch.cuda.synchronize()
                    times.append(start.elapsed_time(stop))
                row["fwdbwd_ms_median"] = statistics.median(times)
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
                grads = step()
                torch.cuda.synchronize()
                row["fwdbwd_peak_mib"] = (
                    torch.cuda.max_memory_allocated() - before) / 2**20
                del grads
            except Exception as error:  # noqa: BLE001 - e.g. out of memory
                row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
            del layer
            torch.cuda.empty_cache()
            results.append(row)
            print(json.dumps(row), flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--check-only", action="store_true")
    parser.add_argument("--seq-lengths", type=int, nargs="+",
                        default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    report = dict(backend=BACKEND, keras=keras.__version__,
                  python=platform.python_version(),
                  time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if BACKEND == "torch":
        import torch

        report["torch"] = torch.__version__
        report["device"] = (torch.cuda.get_device_name(0)
                            if torch.cuda.is_available() else "cpu")
    elif BACKEND == "jax":
        import jax

        report["jax"] = jax.__version__
        # float32 matmuls on NVIDIA GPUs default to TF32 in JAX, in the
        # keras.ops reference path too: record the setting.
        report["jax_default_matmul_precision"] = os.environ.get(
            "JAX_DEFAULT_MATMUL_PRECISION")
        report["device"] = str(jax.devices()[0])
    else:
        print("layer_gpu_check.py runs on the torch or jax backend",
              file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"layer_gpu_check-{BACKEND}.json"
    report["check"] = check()
    report["check_ok"] = all(r["ok"] for r in report["check"])
    path.write_text(json.dumps(report, indent=1))
    if BACKEND == "torch" and not args.check_only:
        report["layer_bench"] = _torch_layer_bench(args.seq_lengths,
                                                   args.repeats)
        path.write_text(json.dumps(report, indent=1))
    print(f"check_ok {report['check_ok']}; wrote {path}")
    return 0 if report["check_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
