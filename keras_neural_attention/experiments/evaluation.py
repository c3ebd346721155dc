"""Metrics of the tables: perplexity under two protocols, accuracy summaries
and the cost of a model (step time, inference time, throughput, memory).

Perplexity protocols (`perplexity`):

- `"released_code"`: the released code's `compute_perplexity_huggingface`:
  windows of `context + 1` tokens at `stride` (1025 at 512 in the paper),
  windows shorter than that skipped, each window scored with the mean
  cross-entropy over all its `context` targets (overlapping tokens count
  about twice), perplexity `exp(mean of the window losses)`.
- `"standard"`: non-overlapping windows of `context + 1` tokens at stride
  `context`, so that every token after the first is predicted once, from at
  most `context` tokens before it within its window; the remainder shorter
  than one window is not scored (the count of scored tokens is returned).

Both use `keras_hub.metrics.Perplexity` on the logits (the model's compiled
one, through `model.evaluate`, when it has a metric named `"perplexity"`);
since every window holds the same number of targets, its token mean equals
the mean over windows.
"""

import time

import numpy as np

PROTOCOLS = ("released_code", "standard")


def perplexity_windows(stream, context, stride):
    """Windows of `context + 1` tokens starting every `stride` tokens;
    windows that would run past the end are skipped.

    Returns:
        int32 `(n, context + 1)`.
    """
    stream = np.asarray(stream, dtype="int32")
    length = context + 1
    starts = range(0, len(stream) - length + 1, stride)
    windows = [stream[s:s + length] for s in starts]
    if not windows:
        raise ValueError(
            f"The token stream ({len(stream)} tokens) is shorter than one "
            f"window of context + 1 = {length} tokens."
        )
    return np.stack(windows)


def perplexity(model, stream, context, protocol="released_code",
               stride=None, batch_size=8):
    """Perplexity of a causal LM on a token stream.

    Args:
        model: a `keras_hub.models.GPT2CausalLM` (or any model mapping
            `{"token_ids", "padding_mask"}` to logits `(B, T, V)`).
        stream: 1-D int array of token ids.
        context: int. Tokens the model sees per window.
        protocol: `"released_code"` or `"standard"` (module docstring).
        stride: window stride of `"released_code"` (default `context //
            2`, 512 for the paper's 1024); ignored by `"standard"`.
        batch_size: windows per forward pass.

    Returns:
        `{"perplexity": float, "protocol": str, "windows": int,
        "scored_tokens": int, "stride": int}`.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"Argument `protocol` must be one of {PROTOCOLS}. "
            f"Received: protocol={protocol!r}"
        )
    import keras_hub

    stride = context if protocol == "standard" else (stride or context // 2)
    windows = perplexity_windows(stream, context, stride)
    compiled = _compiled_perplexity(model)
    if compiled is not None:
        # The compiled test step (validation's, same batch shape): padded
        # rows weigh 0, so no new compilation and the exact token mean.
        x, y, weights = padded_lm_batches(windows, batch_size)
        model.evaluate(x, y, sample_weight=weights, batch_size=batch_size,
                       verbose=0)
        value = float(compiled.result())
    else:
        metric = keras_hub.metrics.Perplexity(from_logits=True)
        for start in range(0, len(windows), batch_size):
            batch = windows[start:start + batch_size]
            count = len(batch)
            if count < batch_size:  # one batch shape: no recompilation
                batch = np.concatenate(
                    [batch, np.repeat(batch[:1], batch_size - count, 0)])
            inputs = batch[:, :-1]
            logits = model.predict_on_batch(
                {"token_ids": inputs, "padding_mask": np.ones_like(inputs)}
            )
            metric.update_state(batch[:count, 1:], logits[:count])
        value = float(metric.result())
    return {
        "perplexity": value,
        "protocol": protocol,
        "windows": int(len(windows)),
        "scored_tokens": int(len(windows) * context),
        "stride": int(stride),
    }


def _compiled_perplexity(model):
    """The model's compiled `keras_hub.metrics.Perplexity` named
    `"perplexity"`, or None."""
    compiled = getattr(model, "_compile_metrics", None)
    if compiled is None:
        return None
    for metric in getattr(compiled, "metrics", []):
        for inner in [metric] + list(getattr(metric, "metrics", [])):
            if inner.name == "perplexity":
                return inner
    return None


def padded_lm_batches(windows, batch_size):
    """`(x, y, sample_weight)` of windows of `context + 1` tokens, padded
    with zero-weight rows to a multiple of `batch_size` (one batch shape
    for the compiled test step)."""
    windows = np.asarray(windows, dtype="int32")
    count = len(windows)
    padding = (-count) % batch_size
    if padding:
        windows = np.concatenate(
            [windows, np.repeat(windows[:1], padding, 0)])
    weights = np.ones(windows[:, 1:].shape, dtype="float32")
    weights[count:] = 0.0
    inputs = windows[:, :-1]
    return (
        {"token_ids": inputs, "padding_mask": np.ones_like(inputs)},
        windows[:, 1:],
        weights,
    )


def accuracy_summary(history, key="val_accuracy"):
    """Best and final-epoch accuracy from a Keras history dict (the released
    code reports the best over epochs, on the test set: both are kept)."""
    values = [float(v) for v in history.get(key, [])]
    if not values:
        raise ValueError(
            f"The history has no {key!r}. Received keys: {sorted(history)}"
        )
    best = int(np.argmax(values))
    return {
        "best_accuracy": values[best],
        "best_epoch": best + 1,
        "final_accuracy": values[-1],
        "epochs": len(values),
    }


def device_peak_memory():
    """Peak memory of the accelerator in MiB, `(allocated, reserved)`, or
    `(None, None)` on a CPU (then the process's peak RSS is what is
    measured)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return (torch.cuda.max_memory_allocated() / 2**20,
                        torch.cuda.max_memory_reserved() / 2**20)
        elif backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                return (stats["peak_bytes_in_use"] / 2**20,
                        stats.get("bytes_reserved",
                                  stats.get("bytes_limit", 0)) / 2**20)
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                info = tf.config.experimental.get_memory_info("GPU:0")
                return info["peak"] / 2**20, None
    except Exception:  # noqa: BLE001 (memory info is best effort)
        pass
    return None, None


def measure_cost(model, inputs, targets, batch_size, repeats=3):
    """Training-step time, inference time and memory of a compiled model.

    Two warm-up calls of each (compilation, then the first run on the
    compiled program) are not timed; then `repeats` training steps and
    `repeats` inference batches are timed one by one, and the median is
    reported (a shared machine's load spikes move the mean of a few calls
    by tens of percent).

    Args:
        model: a compiled Keras model.
        inputs, targets: one batch's worth (at least `batch_size` rows; a
            dict of arrays for a language model).
        batch_size: rows per step.
        repeats: timed calls of each.

    Returns:
        A dict: `train_step_s`, `inference_batch_s` (medians),
        `train_step_times_s`, `inference_batch_times_s` (every timed
        call), `inference_per_sample_s` (the batch time divided by the
        batch size, unlike the released code), `throughput_samples_per_s`
        (inference), `train_throughput_samples_per_s`,
        `device_peak_allocated_mib`, `device_peak_reserved_mib`,
        `batch_size`, `repeats`.
    """
    def take(x):
        if isinstance(x, dict):
            return {k: v[:batch_size] for k, v in x.items()}
        return x[:batch_size]

    def timed(call):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return float(np.median(times)), times

    x, y = take(inputs), take(targets)
    for _ in range(2):
        model.train_on_batch(x, y)
        np.asarray(model.predict_on_batch(x))
    train_step, train_times = timed(lambda: model.train_on_batch(x, y))
    inference, inference_times = timed(
        lambda: np.asarray(model.predict_on_batch(x)))
    allocated, reserved = device_peak_memory()
    return {
        "train_step_s": train_step,
        "inference_batch_s": inference,
        "train_step_times_s": train_times,
        "inference_batch_times_s": inference_times,
        "inference_per_sample_s": inference / batch_size,
        "throughput_samples_per_s": batch_size / inference,
        "train_throughput_samples_per_s": batch_size / train_step,
        "device_peak_allocated_mib": allocated,
        "device_peak_reserved_mib": reserved,
        "batch_size": int(batch_size),
        "repeats": int(repeats),
    }
