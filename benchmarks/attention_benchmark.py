#!/usr/bin/env python
"""Speed and peak-memory benchmark of Neural Attention against dot-product
attention, on the current Keras backend (`KERAS_BACKEND`) and device.

Measured variants (self-attention, float32):

- `mha`:       `keras.layers.MultiHeadAttention` (dot product; whether Keras
               took a flash/fused kernel is recorded),
- `reference`: `NeuralAttention(implementation="reference",
               query_chunk_size=None)` (materializes the pair tensor),
- `factored`:  `NeuralAttention(implementation="factored",
               query_chunk_size=None)`,
- `chunked`:   `NeuralAttention(implementation="factored",
               query_chunk_size="auto")` (the layer's default path),
- `separable`: `NeuralAttention(hidden_units=(d',), activation="square",
               implementation="auto")`: a separable scoring network, which
               "auto" runs as `keras.ops.dot_product_attention` on expanded
               features (`keras_neural_attention.ops.separable`).

Each (variant, T, mode) runs in a fresh child process (this script, re-run
with a hidden `--_child` argument), so every peak-memory number belongs to one
configuration. Modes: `fwd` (forward only) and `fwdbwd` (forward, then the
gradient of `sum(output)` with respect to the layer's trainable weights and
the input). See `benchmarks/README.md` for what exactly is timed and what
"peak memory" means on each device.

Usage:

    KERAS_BACKEND=jax python benchmarks/attention_benchmark.py --quick
    KERAS_BACKEND=torch python benchmarks/attention_benchmark.py \
        --seq-lengths 512 1024 --repeats 10 --projection-dim 16

The parent process never imports Keras or a deep-learning framework (it only
launches children), so it cannot initialize or grab an accelerator. A child
imports TensorFlow only when `KERAS_BACKEND=tensorflow`.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT_PATH = Path(__file__).resolve()

DEFAULT_SEQ_LENGTHS = (128, 256, 512, 1024, 2048, 4096)
QUICK_SEQ_LENGTHS = (128, 256)
QUICK_REPEATS = 2
DEFAULT_REPEATS = 5
SUMMARY_SEQ_LENGTHS = (1024, 4096)
MODES = ("fwd", "fwdbwd")
MODE_LABELS = {"fwd": "forward", "fwdbwd": "forward+backward"}
GB = 1e9
MIB = 2**20

# variant -> (label, NeuralAttention keyword arguments or None for MHA).
VARIANTS = {
    "mha": ("MHA (dot product)", None),
    "reference": (
        "NA reference",
        {"implementation": "reference", "query_chunk_size": None},
    ),
    "factored": (
        "NA factored",
        {"implementation": "factored", "query_chunk_size": None},
    ),
    "chunked": (
        "NA factored+chunked",
        {"implementation": "factored", "query_chunk_size": "auto"},
    ),
    # One hidden layer of width d' with a separable activation: a different
    # scoring network (not the paper's), timed on the path "auto" gives it.
    "separable": (
        "NA separable (square, hidden (d',))",
        {"implementation": "auto", "query_chunk_size": "auto",
         "activation": "square", "single_hidden_layer": True},
    ),
}

# Copy of `keras_neural_attention.ops.attention.AUTO_CHUNK_ELEMENTS`, used by
# the parent (which must not import Keras) for its memory estimates only; the
# children report the chunk size the library really used.
AUTO_CHUNK_ELEMENTS = 2**24


# ---------------------------------------------------------------------------
# Configuration and memory estimates (parent side, no framework imports).
# ---------------------------------------------------------------------------


def resolve_scoring_dims(key_dim, projection_dim=None, hidden_units=None):
    """The layer's defaults: d' = max(1, key_dim // 32), hidden (d', d'//2)."""
    d = projection_dim if projection_dim else max(1, key_dim // 32)
    hidden = tuple(hidden_units) if hidden_units else (d, max(1, d // 2))
    return d, hidden


def auto_chunk_rows(batch, heads, key_length, widest_layer):
    """Mirror of the library's `auto_query_chunk_size` (ops/attention.py)."""
    per_row = max(1, batch * heads * key_length * widest_layer)
    rows = max(1, AUTO_CHUNK_ELEMENTS // per_row)
    if rows >= 8:
        rows -= rows % 8
    return rows


def chunk_rows(variant, seq_len, cfg):
    """Query rows scored at once by `variant` (None: whole sequence)."""
    kwargs = VARIANTS[variant][1]
    if kwargs is None or kwargs.get("single_hidden_layer"):
        return None
    chunk = kwargs["query_chunk_size"]
    if chunk is not None and cfg["chunk_size"] != "auto":
        chunk = cfg["chunk_size"]
    if chunk == "auto":
        widths = list(cfg["hidden_units"])
        if kwargs["implementation"] == "reference":
            widths.append(2 * cfg["projection_dim"])
        chunk = auto_chunk_rows(
            cfg["batch"], cfg["heads"], seq_len, max(widths)
        )
    if chunk is None or chunk >= seq_len:
        return None
    return chunk


def estimate_bytes(variant, seq_len, mode, cfg):
    """A deliberately generous estimate of a configuration's peak memory.

    Per (query, key) pair of the scored block, in float32 elements:
    dot product: scores, probabilities and a temporary (3); reference: the
    broadcast query and key halves and their concatenation (4 d'), every
    hidden layer before and after its activation (2 sum(h)), scores,
    probabilities and a temporary (3); factored: the same without the
    4 d'. The backward pass keeps the forward activations and builds
    gradients of the same size, so it doubles the pair term. Plus linear
    terms: projections, inputs, outputs and their gradients.
    """
    b, n, t, s = cfg["batch"], cfg["heads"], seq_len, seq_len
    d, hidden = cfg["projection_dim"], cfg["hidden_units"]
    if variant == "mha" or VARIANTS[variant][1].get("single_hidden_layer"):
        per_pair = 3
    elif VARIANTS[variant][1]["implementation"] == "reference":
        per_pair = 4 * d + 2 * sum(hidden) + 3
    else:
        per_pair = 2 * sum(hidden) + 3
    if mode == "fwdbwd":
        per_pair *= 2
    rows = chunk_rows(variant, seq_len, cfg) or t
    pair_elements = b * n * rows * s * per_pair
    dim, key_dim = cfg["model_dim"], cfg["key_dim"]
    linear = b * t * (16 * dim + 16 * n * key_dim)
    linear += b * n * t * 8 * (d + max(hidden))
    params = 4 * dim * n * key_dim + dim + 2 * key_dim * d + 4 * d * max(hidden)
    linear += 3 * params
    return 4 * (pair_elements + linear)


# ---------------------------------------------------------------------------
# Child side: one measurement in the current process.
# ---------------------------------------------------------------------------


def _read_proc_status():
    """VmRSS and VmHWM of this process in bytes (None where unavailable)."""
    values = {"VmRSS": None, "VmHWM": None}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key = line.split(":", 1)[0]
                if key in values:
                    values[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    if values["VmHWM"] is None:
        import resource

        # Linux reports ru_maxrss in KiB, macOS in bytes.
        scale = 1 if sys.platform == "darwin" else 1024
        usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        values["VmHWM"] = usage * scale
    return values["VmRSS"], values["VmHWM"]


def _reset_host_peak():
    """Resets VmHWM to the current RSS (Linux >= 4.0). Returns success."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _release_free_host_memory():
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _HostPeak:
    """Peak RSS increase over the RSS at `start()`."""

    kind = "host_rss_delta"

    def start(self):
        _release_free_host_memory()
        self.reset_ok = _reset_host_peak()
        self.rss_before, _ = _read_proc_status()
        if self.rss_before is None:
            _, self.rss_before = _read_proc_status()

    def stop(self):
        rss, hwm = _read_proc_status()
        return {
            "peak_bytes": hwm - self.rss_before,
            "rss_before_bytes": self.rss_before,
            "hwm_bytes": hwm,
            "rss_after_bytes": rss,
            "hwm_reset": self.reset_ok,
        }


class _TorchCudaPeak:
    kind = "torch.cuda.max_memory_allocated"

    def __init__(self, torch):
        self.torch = torch

    def start(self):
        gc.collect()
        self.torch.cuda.synchronize()
        self.torch.cuda.reset_peak_memory_stats()
        self.before = self.torch.cuda.memory_allocated()

    def stop(self):
        self.torch.cuda.synchronize()
        peak = self.torch.cuda.max_memory_allocated()
        return {
            "peak_bytes": peak - self.before,
            "allocated_before_bytes": self.before,
            "max_allocated_bytes": peak,
        }


class _JaxDevicePeak:
    """`peak_bytes_in_use` cannot be reset: it is the process-wide peak."""

    kind = "jax memory_stats peak_bytes_in_use - bytes_in_use before"

    def __init__(self, device):
        self.device = device

    def start(self):
        gc.collect()
        self.before = self.device.memory_stats()["bytes_in_use"]

    def stop(self):
        stats = self.device.memory_stats()
        return {
            "peak_bytes": stats["peak_bytes_in_use"] - self.before,
            "bytes_in_use_before": self.before,
            "peak_bytes_in_use": stats["peak_bytes_in_use"],
            "bytes_limit": stats.get("bytes_limit"),
        }


class _TfGpuPeak:
    kind = "tf.config.experimental.get_memory_info peak - current before"

    def __init__(self, tf):
        self.tf = tf

    def start(self):
        gc.collect()
        self.tf.config.experimental.reset_memory_stats("GPU:0")
        self.before = self.tf.config.experimental.get_memory_info("GPU:0")[
            "current"
        ]

    def stop(self):
        info = self.tf.config.experimental.get_memory_info("GPU:0")
        return {
            "peak_bytes": info["peak"] - self.before,
            "current_before_bytes": self.before,
            "peak_info_bytes": info["peak"],
        }


def _device_info(backend):
    """Backend-specific device description (imports only `backend`)."""
    info = {"backend": backend}
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        platform_name = device.platform
        info["device_platform"] = platform_name
        info["device_name"] = str(getattr(device, "device_kind", device))
        info["devices"] = [str(d) for d in jax.devices()]
        if platform_name == "gpu":
            info["device_kind"] = (
                "cuda" if "nvidia" in info["device_name"].lower() else "gpu"
            )
            stats = device.memory_stats() or {}
            info["device_memory_limit_bytes"] = stats.get("bytes_limit")
        else:
            info["device_kind"] = platform_name
        info["jax_version"] = jax.__version__
        try:
            import jaxlib

            info["jaxlib_version"] = jaxlib.__version__
        except (ImportError, AttributeError):
            pass
    elif backend == "torch":
        import torch

        info["torch_version"] = torch.__version__
        info["torch_num_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["device_kind"] = "cuda"
            info["device_name"] = torch.cuda.get_device_name(0)
            info["device_memory_total_bytes"] = (
                torch.cuda.get_device_properties(0).total_memory
            )
            info["torch_cuda_version"] = torch.version.cuda
        else:
            info["device_kind"] = "cpu"
    elif backend == "tensorflow":
        import tensorflow as tf

        info["tensorflow_version"] = tf.__version__
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            info["device_kind"] = "cuda"
            details = tf.config.experimental.get_device_details(gpus[0])
            info["device_name"] = details.get("device_name", gpus[0].name)
        else:
            info["device_kind"] = "cpu"
    else:
        raise ValueError(f"Unsupported KERAS_BACKEND: {backend!r}")
    return info


def _cpu_model():
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10
        ).stdout
        for line in out.splitlines():
            if line.strip().lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _nvidia_smi_total_bytes():
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        return int(float(out.strip().splitlines()[0])) * MIB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def probe():
    """Metadata of this machine, backend and device (runs in a child)."""
    backend = os.environ.get("KERAS_BACKEND")
    started = time.perf_counter()
    import keras
    import numpy as np

    info = _device_info(keras.backend.backend())
    info["keras_version"] = keras.__version__
    info["numpy_version"] = np.__version__
    info["python_version"] = platform.python_version()
    info["platform"] = platform.platform()
    info["processor"] = platform.processor()
    info["cpu_model"] = _cpu_model()
    info["cpu_count"] = os.cpu_count()
    info["requested_backend"] = backend
    if info["device_kind"] == "cpu" or not info.get("device_name"):
        info["device_name"] = info["cpu_model"] or "cpu"
    info["flash_attention_enabled_globally"] = bool(
        keras.config.is_flash_attention_enabled()
    )
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    kib = int(line.split()[1])
                    info["host_memory_total_bytes"] = kib * 1024
    except OSError:
        pass
    if info["device_kind"] not in ("cpu", "tpu"):
        total = (
            info.get("device_memory_total_bytes")
            or _nvidia_smi_total_bytes()
        )
        if total is None and info.get("device_memory_limit_bytes"):
            fraction = float(
                os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.75")
            )
            total = int(info["device_memory_limit_bytes"] / fraction)
        info["device_memory_total_bytes"] = total
    info["probe_s"] = time.perf_counter() - started
    return info


def _make_layer(variant, cfg):
    import keras

    kwargs = VARIANTS[variant][1]
    if kwargs is None:
        return keras.layers.MultiHeadAttention(
            num_heads=cfg["heads"], key_dim=cfg["key_dim"], dtype="float32"
        )
    from keras_neural_attention.layers import NeuralAttention

    chunk = kwargs["query_chunk_size"]
    if chunk is not None and cfg["chunk_size"] != "auto":
        chunk = cfg["chunk_size"]
    hidden_units = tuple(cfg["hidden_units"])
    if kwargs.get("single_hidden_layer"):
        hidden_units = (cfg["projection_dim"],)
    return NeuralAttention(
        num_heads=cfg["heads"],
        key_dim=cfg["key_dim"],
        projection_dim=cfg["projection_dim"],
        hidden_units=hidden_units,
        activation=kwargs.get("activation", "relu"),
        implementation=kwargs["implementation"],
        query_chunk_size=chunk,
        dtype="float32",
    )


def _resolved_chunk(layer, seq_len, batch):
    """The query block size the library uses for this layer (None: all)."""
    from keras_neural_attention.ops.attention import auto_query_chunk_size
    from keras_neural_attention.ops.attention import resolve_implementation

    from keras_neural_attention.ops.separable import separable_form

    if (
        len(layer.hidden_units) == 1
        and layer.implementation in ("auto", "separable")
        and separable_form(layer.activation) is not None
    ):
        return None  # the separable path scores no blocks
    chunk = layer.query_chunk_size
    if chunk == "auto":
        implementation = resolve_implementation(layer.implementation)
        widths = list(layer.hidden_units)
        if implementation == "reference":
            widths.append(2 * layer.projection_dim)
        chunk = auto_query_chunk_size(
            batch, layer.num_heads, seq_len, max(widths)
        )
    if chunk is None or chunk >= seq_len:
        return None
    return chunk


class _MhaPathRecorder:
    """Records which kernel `keras.layers.MultiHeadAttention` went through, by
    wrapping the backend's `dot_product_attention` and flash check."""

    def __init__(self, backend):
        import importlib

        self.backend = backend
        self.module = importlib.import_module(f"keras.src.backend.{backend}.nn")
        self.dot_product_attention_called = False
        self.flash = None
        self.torch_sdp_backend = None
        self._originals = {}

    def __enter__(self):
        module = self.module
        original_dpa = module.dot_product_attention
        self._originals["dot_product_attention"] = original_dpa

        def dot_product_attention(*args, **kwargs):
            self.dot_product_attention_called = True
            return original_dpa(*args, **kwargs)

        module.dot_product_attention = dot_product_attention
        original_check = getattr(module, "_can_use_flash_attention", None)
        if original_check is not None:
            self._originals["_can_use_flash_attention"] = original_check

            def can_use_flash_attention(*args, **kwargs):
                result = original_check(*args, **kwargs)
                if not kwargs.get("raise_error"):
                    self.flash = bool(result)
                if self.backend == "torch" and not result:
                    self._record_torch_choice(*args)
                return result

            module._can_use_flash_attention = can_use_flash_attention
        return self

    def _record_torch_choice(self, query, key, value, mask=None,
                             is_causal=False, *unused):
        try:
            import torch

            choice = torch._fused_sdp_choice(
                query, key, value, mask, 0.0, is_causal
            )
            self.torch_sdp_backend = torch.nn.attention.SDPBackend(choice).name
        except Exception as error:  # informational only
            self.torch_sdp_backend = f"unknown ({type(error).__name__})"

    def __exit__(self, *exc):
        for name, original in self._originals.items():
            setattr(self.module, name, original)
        return False

    def describe(self):
        if not self.dot_product_attention_called:
            return {
                "mha_fused_op": False,
                "mha_flash_attention": False,
                "mha_path": "explicit einsum + softmax (no "
                "ops.dot_product_attention)",
            }
        if self.backend == "jax":
            path = (
                "ops.dot_product_attention -> jax.nn.dot_product_attention("
                + ("implementation='cudnn') (flash)" if self.flash else
                   "implementation='xla') (XLA-fused einsum/softmax, not "
                   "flash)")
            )
        elif self.backend == "torch":
            if self.flash:
                path = ("ops.dot_product_attention -> F.scaled_dot_product_"
                        "attention [FLASH_ATTENTION]")
            else:
                path = ("ops.dot_product_attention -> F.scaled_dot_product_"
                        "attention, kernel chosen by torch: "
                        f"{self.torch_sdp_backend}")
        else:
            path = ("ops.dot_product_attention -> keras "
                    "_dot_product_attention_xla (einsum + softmax; Keras has "
                    "no flash attention on TensorFlow)")
        return {
            "mha_fused_op": True,
            "mha_flash_attention": bool(self.flash),
            "mha_torch_sdp_backend": self.torch_sdp_backend,
            "mha_path": path,
        }


def _build_callable(backend, layer, x_np, mode, cfg, device_kind):
    """Returns (call, sync, peak_tracker, extra) for this backend."""
    extra = {}
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        x = jnp.asarray(x_np)
        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def forward(trainable, x):
            return layer.stateless_call(trainable, non_trainable, x, x)[0]

        if mode == "fwd":
            jitted = jax.jit(forward)
        else:

            def loss(trainable, x):
                return jnp.sum(forward(trainable, x))

            jitted = jax.jit(jax.grad(loss, argnums=(0, 1)))
        started = time.perf_counter()
        compiled = jitted.lower(trainable, x).compile()
        extra["compile_s"] = time.perf_counter() - started
        try:
            analysis = compiled.memory_analysis()
            extra["xla_memory_analysis"] = {
                name: int(getattr(analysis, name))
                for name in (
                    "temp_size_in_bytes",
                    "argument_size_in_bytes",
                    "output_size_in_bytes",
                    "alias_size_in_bytes",
                    "generated_code_size_in_bytes",
                )
                if getattr(analysis, name, None) is not None
            }
        except Exception as error:  # informational only
            extra["xla_memory_analysis"] = f"unavailable: {error!r}"

        def call():
            return compiled(trainable, x)

        sync = jax.block_until_ready
        device = jax.devices()[0]
        if device_kind == "cpu" or not device.memory_stats():
            peak = _HostPeak()
        else:
            peak = _JaxDevicePeak(device)
        extra["execution"] = "jax.jit(layer.stateless_call) compiled AOT"
        return call, sync, peak, extra

    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x_np)
        variables = list(layer.trainable_variables)
        jit_compile = bool(cfg["tf_jit_compile"])
        if mode == "fwd":

            @tf.function(jit_compile=jit_compile)
            def step(x):
                return layer(x, x)

        else:

            @tf.function(jit_compile=jit_compile)
            def step(x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = tf.reduce_sum(layer(x, x))
                return tape.gradient(loss, variables + [x])

        started = time.perf_counter()
        step.get_concrete_function(x)
        extra["trace_s"] = time.perf_counter() - started

        def call():
            return step(x)

        gpu = device_kind != "cpu"

        def sync(out):
            if gpu:
                tf.test.experimental.sync_devices()
            return out

        peak = _TfGpuPeak(tf) if gpu else _HostPeak()
        extra["execution"] = f"tf.function(jit_compile={jit_compile})"
        return call, sync, peak, extra

    if backend == "torch":
        import keras
        import torch

        x = keras.ops.convert_to_tensor(x_np)
        params = [v.value for v in layer.trainable_variables]
        if mode == "fwd":

            def call():
                with torch.no_grad():
                    return layer(x, x)

        else:

            def call():
                xg = x.detach().requires_grad_(True)
                loss = layer(xg, xg).sum()
                return torch.autograd.grad(loss, params + [xg])

        cuda = x.is_cuda

        def sync(out):
            if cuda:
                torch.cuda.synchronize()
            return out

        peak = _TorchCudaPeak(torch) if cuda else _HostPeak()
        extra["execution"] = (
            "eager" + (" (forward under torch.no_grad())" if mode == "fwd"
                       else " (torch.autograd.grad)")
        )
        return call, sync, peak, extra

    raise ValueError(f"Unsupported backend {backend!r}")


def _apply_threads(backend, threads):
    """Best-effort limit of the framework's CPU threads (None: default)."""
    if not threads:
        return None
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
        return f"torch.set_num_threads({threads})"
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
            return f"tf.config.threading intra/inter op = {threads}"
        except RuntimeError as error:
            return f"could not set TensorFlow threads: {error}"
    return "OMP_NUM_THREADS" + (
        " and XLA_FLAGS (single-threaded Eigen)" if threads == 1 else ""
    )


def _seed_everything(backend, seed):
    """Seeds Python, NumPy (and torch): unseeded Keras initializers draw
    their seeds from Python's `random`. (`keras.utils.set_random_seed` is
    avoided on purpose: it imports TensorFlow whenever it is installed.)"""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)


def measure(spec):
    """Builds one layer and measures one (variant, T, mode) in this process.

    `spec`: {"variant", "seq_len", "mode", "cfg", "device_kind"}. Returns a
    JSON-serializable dict with `status == "ok"` and the raw numbers.
    """
    import keras
    import numpy as np

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    backend = keras.backend.backend()
    variant, seq_len, mode, cfg = (
        spec["variant"], spec["seq_len"], spec["mode"], spec["cfg"]
    )
    device_kind = spec.get("device_kind") or _device_info(backend)[
        "device_kind"
    ]
    threads_note = _apply_threads(backend, cfg.get("threads"))
    _seed_everything(backend, cfg["seed"])
    layer = _make_layer(variant, cfg)
    shape = (cfg["batch"], seq_len, cfg["model_dim"])
    layer.build(shape, shape)
    x_np = np.random.default_rng(cfg["seed"]).standard_normal(shape).astype(
        "float32"
    )
    result = {
        "variant": variant,
        "seq_len": seq_len,
        "mode": mode,
        "backend": backend,
        "device_kind": device_kind,
        "threads": threads_note,
        "num_trainable_weights": int(
            sum(int(np.prod(v.shape)) for v in layer.trainable_variables)
        ),
    }
    if variant != "mha":
        result["projection_dim"] = layer.projection_dim
        result["hidden_units"] = list(layer.hidden_units)
        result["query_chunk_size"] = layer.query_chunk_size
        result["query_chunk_size_resolved"] = _resolved_chunk(
            layer, seq_len, cfg["batch"]
        )
    recorder = _MhaPathRecorder(backend) if variant == "mha" else None
    if recorder is not None:
        recorder.__enter__()
    try:
        call, sync, peak, extra = _build_callable(
            backend, layer, x_np, mode, cfg, device_kind
        )
        result.update(extra)
        result["peak_kind"] = peak.kind
        host = _HostPeak()

        # Warm-up: the first call(s) (tracing / compilation included).
        host.start()
        if not isinstance(peak, _HostPeak):
            peak.start()
        first_times = []
        for _ in range(max(1, cfg["warmup"])):
            started = time.perf_counter()
            out = sync(call())
            first_times.append(time.perf_counter() - started)
            del out
        first_host = host.stop()
        result["first_call_s"] = first_times[0]
        result["warmup_times_s"] = first_times
        result["first_call_host_peak_bytes"] = first_host["peak_bytes"]
        if not isinstance(peak, _HostPeak):
            result["first_call_device_peak_bytes"] = peak.stop()["peak_bytes"]

        # Measured calls.
        host.start()
        if not isinstance(peak, _HostPeak):
            peak.start()
        times = []
        for _ in range(cfg["repeats"]):
            started = time.perf_counter()
            out = sync(call())
            times.append(time.perf_counter() - started)
            del out
        host_stats = host.stop()
        peak_stats = (
            host_stats if isinstance(peak, _HostPeak) else peak.stop()
        )
    finally:
        if recorder is not None:
            recorder.__exit__(None, None, None)
    result["times_ms"] = [t * 1e3 for t in times]
    result["median_ms"] = statistics.median(result["times_ms"])
    result["min_ms"] = min(result["times_ms"])
    result["mean_ms"] = statistics.fmean(result["times_ms"])
    result["peak_bytes"] = int(peak_stats["peak_bytes"])
    result["peak_details"] = peak_stats
    result["host_peak_bytes"] = int(host_stats["peak_bytes"])
    if recorder is not None:
        result.update(recorder.describe())
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    result["status"] = "ok"
    return result


def _child_main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        result = measure(spec)
        code = 0
    except Exception as error:
        result = {
            "status": "failed",
            "reason": f"{type(error).__name__}: {error}"[:2000],
            "traceback": traceback.format_exc()[-4000:],
        }
        code = 1
    with open(spec["result_path"], "w") as f:
        json.dump(result, f)
    return code


def _probe_main(out_path):
    with open(out_path, "w") as f:
        json.dump(probe(), f)
    return 0


# ---------------------------------------------------------------------------
# Parent side: launching children, collecting results, reports.
# ---------------------------------------------------------------------------


def _child_env(threads=None, mmap_threshold=None):
    env = dict(os.environ)
    if mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        env["MKL_NUM_THREADS"] = str(threads)
        if threads == 1:
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                " intra_op_parallelism_threads=1"
            ).strip()
    # JAX on a GPU: allocate on demand (so one child cannot starve the
    # device by preallocation) and allow up to 95% of device memory.
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    pythonpath = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (
        os.pathsep + pythonpath if pythonpath else ""
    )
    return env


def _proc_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _failure_line(stderr_text):
    """The most informative line of a crashed child's stderr."""
    lines = [line.strip() for line in stderr_text.splitlines() if line.strip()]
    pattern = re.compile(
        r"(error|exception|resource_exhausted|out of memory|killed|abort)",
        re.IGNORECASE,
    )
    for line in reversed(lines):
        if pattern.search(line):
            return line[:500]
    return lines[-1][:500] if lines else ""


def run_child(argv_tail, timeout_s, rss_limit_bytes=None, threads=None,
              mmap_threshold=None):
    """Runs this script with `argv_tail` in a fresh process.

    Returns (status, reason, info) where status is "ok", "failed" or
    "timeout" and info holds the return code, wall time, the highest RSS
    the parent saw and the tail of stderr.
    """
    with tempfile.TemporaryDirectory(prefix="na-bench-") as tmp:
        out_path = os.path.join(tmp, "stdout.txt")
        err_path = os.path.join(tmp, "stderr.txt")
        started = time.perf_counter()
        status, reason = "ok", None
        max_rss = 0
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(
                [sys.executable, str(SCRIPT_PATH)] + argv_tail,
                stdout=out,
                stderr=err,
                env=_child_env(threads, mmap_threshold),
                cwd=str(REPO_ROOT),
                start_new_session=True,
            )
            try:
                while proc.poll() is None:
                    rss = _proc_rss(proc.pid)
                    if rss:
                        max_rss = max(max_rss, rss)
                    if rss_limit_bytes and rss and rss > rss_limit_bytes:
                        status = "failed"
                        reason = (
                            "killed by the benchmark's RSS watchdog: child RSS "
                            f"{rss / GB:.1f} GB > --rss-limit-gb "
                            f"{rss_limit_bytes / GB:.1f}"
                        )
                        break
                    if time.perf_counter() - started > timeout_s:
                        status = "timeout"
                        reason = f"timeout after {timeout_s:g} s"
                        break
                    time.sleep(0.05)
            finally:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.wait()
        wall = time.perf_counter() - started
        with open(err_path, errors="replace") as f:
            stderr_text = f.read()
        with open(out_path, errors="replace") as f:
            stdout_text = f.read()
        info = {
            "returncode": proc.returncode,
            "child_wall_s": wall,
            "child_max_rss_bytes_seen_by_parent": max_rss,
        }
        if status == "ok" and proc.returncode != 0:
            status = "failed"
            if proc.returncode < 0:
                name = signal.Signals(-proc.returncode).name
                reason = f"killed by {name}"
                if name == "SIGKILL":
                    reason += " (likely out of memory)"
            else:
                reason = f"exit code {proc.returncode}"
            line = _failure_line(stderr_text)
            if line:
                reason += f": {line}"
        if status != "ok":
            info["stderr_tail"] = stderr_text[-3000:]
            info["stdout_tail"] = stdout_text[-1000:]
        return status, reason, info


def run_probe(timeout_s):
    with tempfile.TemporaryDirectory(prefix="na-bench-probe-") as tmp:
        path = os.path.join(tmp, "probe.json")
        status, reason, info = run_child(["--_probe", path], timeout_s)
        if status != "ok" or not os.path.exists(path):
            raise RuntimeError(
                f"Probing the backend failed ({reason}).\n"
                + info.get("stderr_tail", "")
            )
        with open(path) as f:
            return json.load(f)


def run_config(variant, seq_len, mode, cfg, device_kind, timeout_s,
               rss_limit_bytes):
    with tempfile.TemporaryDirectory(prefix="na-bench-cfg-") as tmp:
        spec_path = os.path.join(tmp, "spec.json")
        result_path = os.path.join(tmp, "result.json")
        spec = {
            "variant": variant,
            "seq_len": seq_len,
            "mode": mode,
            "cfg": cfg,
            "device_kind": device_kind,
            "result_path": result_path,
        }
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        status, reason, info = run_child(
            ["--_child", spec_path], timeout_s, rss_limit_bytes,
            cfg.get("threads"), cfg.get("malloc_mmap_threshold"),
        )
        result = {}
        if os.path.exists(result_path):
            try:
                with open(result_path) as f:
                    result = json.load(f)
            except ValueError:
                result = {}
        if status == "ok":
            if result.get("status") != "ok":
                status = "failed"
                reason = result.get("reason") or "child wrote no result"
        elif result.get("status") == "failed" and result.get("reason"):
            reason = f"{reason}; {result['reason']}"
        result.update(info)
        result["status"] = status
        if reason:
            result["reason"] = reason
        return result


def _fmt_gb(num_bytes):
    return f"{num_bytes / GB:.2f} GB"


def _fmt_ms(ms):
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def _fmt_mib(num_bytes):
    mib = num_bytes / MIB
    if mib >= 100:
        return f"{mib:.0f}"
    return f"{mib:.1f}"


def _lookup(results, variant, seq_len, mode):
    for r in results:
        if (r["variant"], r["seq_len"], r["mode"]) == (variant, seq_len, mode):
            return r
    return None


def _cell(record, value_fn, notes):
    if record is None:
        return "n/a"
    status = record["status"]
    if status == "ok":
        return value_fn(record)
    if status == "skipped":
        return record["reason"]
    key = (record["variant"], record["seq_len"], record["mode"])
    if key not in notes:
        notes[key] = f"F{len(notes) + 1}"
    return f"{status} [{notes[key]}]"


def render_markdown(report):
    meta = report["metadata"]
    results = report["results"]
    variants = meta["variants"]
    seq_lengths = meta["seq_lengths"]
    modes = meta["modes"]
    lines = []
    add = lines.append
    add(
        f"# Attention benchmark: {meta['backend']} on "
        f"{meta['device_kind']} ({meta['device_name']})"
    )
    add("")
    add(f"- date (UTC): {meta['date_utc']}")
    versions = ", ".join(
        f"{name} {meta[key]}"
        for name, key in (
            ("keras", "keras_version"),
            ("jax", "jax_version"),
            ("jaxlib", "jaxlib_version"),
            ("torch", "torch_version"),
            ("tensorflow", "tensorflow_version"),
            ("numpy", "numpy_version"),
            ("python", "python_version"),
        )
        if meta.get(key)
    )
    add(f"- versions: {versions}")
    add(
        f"- device: {meta['device_name']}; CPU: {meta.get('cpu_model')} "
        f"({meta.get('cpu_count')} logical cores); framework CPU threads: "
        f"{meta.get('threads') or 'framework default'}"
    )
    add(
        f"- self-attention, float32, batch {meta['batch']}, "
        f"{meta['heads']} heads, key_dim {meta['key_dim']}, model dim "
        f"{meta['model_dim']}; scoring network d' = "
        f"{meta['projection_dim']}, hidden units "
        f"{tuple(meta['hidden_units'])}; chunked variant query_chunk_size = "
        f"{meta['chunk_size']!r}"
    )
    add(
        f"- timing: {meta['execution']}; {meta['warmup']} warm-up call(s) "
        f"(tracing/compilation included), then the median of "
        f"{meta['repeats']} synchronized calls"
    )
    add(f"- peak memory: {meta['peak_memory_definition']}")
    add(
        f"- memory budget {meta['memory_budget_gb']:.1f} GB (configurations "
        f"whose estimate exceeds it are skipped), timeout "
        f"{meta['timeout_s']:g} s per configuration"
    )
    if meta.get("mha_path"):
        add(
            f"- MultiHeadAttention path: {meta['mha_path']} (flash attention: "
            f"{'yes' if meta.get('mha_flash_attention') else 'no'})"
        )
    if meta.get("load_average_start_end"):
        start, end = meta["load_average_start_end"]
        add(
            f"- machine load (1-minute load average, start / end of the "
            f"run): {start:.1f} / {end:.1f}"
        )
    if meta.get("note"):
        add(f"- note: {meta['note']}")
    add("")
    notes = {}
    labels = [VARIANTS[v][0] for v in variants]
    header = "| T | " + " | ".join(labels) + " |"
    rule = "|---:|" + "---:|" * len(labels)
    tables = []
    for mode in modes:
        tables.append(
            (f"{MODE_LABELS[mode]} time (ms, median)", mode,
             lambda r: _fmt_ms(r["median_ms"]))
        )
    for mode in modes:
        tables.append(
            (f"{MODE_LABELS[mode]} peak memory (MiB)", mode,
             lambda r: _fmt_mib(r["peak_bytes"]))
        )
    for title, mode, fn in tables:
        add(f"## {title[0].upper() + title[1:]}")
        add("")
        add(header)
        add(rule)
        for t in seq_lengths:
            cells = [
                _cell(_lookup(results, v, t, mode), fn, notes)
                for v in variants
            ]
            add(f"| {t} | " + " | ".join(cells) + " |")
        add("")
    if "mha" in variants:
        others = [v for v in variants if v != "mha"]
        for mode in modes:
            add(f"## {MODE_LABELS[mode][0].upper() + MODE_LABELS[mode][1:]}"
                " time / MultiHeadAttention (x)")
            add("")
            add("| T | " + " | ".join(VARIANTS[v][0] for v in others) + " |")
            add("|---:|" + "---:|" * len(others))
            for t in seq_lengths:
                base = _lookup(results, "mha", t, mode)
                cells = []
                for v in others:
                    record = _lookup(results, v, t, mode)
                    ok = (
                        base is not None and record is not None
                        and base.get("status") == "ok"
                        and record.get("status") == "ok"
                    )
                    cells.append(
                        f"{record['median_ms'] / base['median_ms']:.2f}"
                        if ok else "-"
                    )
                add(f"| {t} | " + " | ".join(cells) + " |")
            add("")
    add("## Peak memory: reference vs factored vs chunked")
    add("")
    na_variants = [v for v in ("reference", "factored", "chunked", "mha")
                   if v in variants]
    summary_lengths = [t for t in SUMMARY_SEQ_LENGTHS if t in seq_lengths]
    missing = [t for t in SUMMARY_SEQ_LENGTHS if t not in seq_lengths]
    if missing:
        add(
            "T = " + ", ".join(str(t) for t in missing) + " not part of this "
            "run" + ("; summary at the largest T measured instead."
                     if not summary_lengths else ".")
        )
        add("")
    if not summary_lengths:
        summary_lengths = [max(seq_lengths)]
    for t in summary_lengths:
        add(f"### T = S = {t}")
        add("")
        add(
            "| variant | query rows per block | "
            + " | ".join(
                f"peak {MODE_LABELS[m]} (MiB) | x reference" for m in modes
            )
            + " | "
            + " | ".join(f"{MODE_LABELS[m]} ms" for m in modes)
            + " |"
        )
        add("|---|---:|" + "---:|---:|" * len(modes) + "---:|" * len(modes))
        for v in na_variants:
            cells = []
            rows = None
            for m in modes:
                rec = _lookup(results, v, t, m)
                ref = _lookup(results, "reference", t, m)
                if rec is not None and rec.get("query_chunk_size_resolved"):
                    rows = rec["query_chunk_size_resolved"]
                cells.append(_cell(rec, lambda r: _fmt_mib(r["peak_bytes"]),
                                   notes))
                if (rec and ref and rec["status"] == "ok"
                        and ref["status"] == "ok" and ref["peak_bytes"] > 0):
                    cells.append(f"{rec['peak_bytes'] / ref['peak_bytes']:.3f}")
                else:
                    cells.append("-")
            for m in modes:
                cells.append(_cell(_lookup(results, v, t, m),
                                   lambda r: _fmt_ms(r["median_ms"]), notes))
            if v == "mha":
                rows_text = "-"
            else:
                rows_text = str(rows) if rows else f"{t} (unchunked)"
            add(f"| {VARIANTS[v][0]} | {rows_text} | " + " | ".join(cells)
                + " |")
        add("")
    if any(isinstance(r.get("xla_memory_analysis"), dict) for r in results):
        for mode in modes:
            add(
                f"## XLA temp buffer, {MODE_LABELS[mode]} (MiB, from "
                "compiled.memory_analysis())"
            )
            add("")
            add(header)
            add(rule)
            for t in seq_lengths:
                cells = [
                    _cell(
                        _lookup(results, v, t, mode),
                        lambda r: _fmt_mib(
                            r["xla_memory_analysis"]["temp_size_in_bytes"]
                        )
                        if isinstance(r.get("xla_memory_analysis"), dict)
                        else "-",
                        notes,
                    )
                    for v in variants
                ]
                add(f"| {t} | " + " | ".join(cells) + " |")
            add("")
    if notes:
        add("## Failures and timeouts")
        add("")
        for (variant, t, mode), label in notes.items():
            record = _lookup(results, variant, t, mode)
            add(
                f"- [{label}] {VARIANTS[variant][0]}, T={t}, "
                f"{MODE_LABELS[mode]}: {record['status']}: "
                f"{record.get('reason', '')}"
            )
        add("")
    add(
        "Cells that are not numbers: `skipped (...)` (not run: estimated "
        "memory over the budget, or an earlier failure), `failed [Fn]` / "
        "`timeout [Fn]` (ran and did not finish; see the list above and the "
        "JSON file's `reason`, `stderr_tail`)."
    )
    add("")
    return "\n".join(lines)


def _git_commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=str(REPO_ROOT),
            timeout=10,
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text}")
    return value


def _chunk_arg(text):
    if text == "auto":
        return "auto"
    return _positive_int(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Forward / forward+backward time and peak memory of "
            "MultiHeadAttention and NeuralAttention (reference, factored, "
            "factored+chunked) on the current KERAS_BACKEND and device. "
            "Every configuration runs in a fresh child process."
        )
    )
    parser.add_argument("--seq-lengths", type=_positive_int, nargs="+",
                        default=None,
                        help="T = S values (default: 128 256 512 1024 2048 "
                        "4096; --quick: 128 256)")
    parser.add_argument("--batch", type=_positive_int, default=1)
    parser.add_argument("--heads", type=_positive_int, default=8)
    parser.add_argument("--key-dim", type=_positive_int, default=64)
    parser.add_argument("--model-dim", type=_positive_int, default=512)
    parser.add_argument("--projection-dim", type=_positive_int, default=None,
                        help="d' of the scoring network (default: the "
                        "layer's, max(1, key_dim // 32))")
    parser.add_argument("--hidden-units", type=_positive_int, nargs="+",
                        default=None,
                        help="hidden widths of the scoring network (default: "
                        "the layer's, (d', max(1, d' // 2)))")
    parser.add_argument("--chunk-size", type=_chunk_arg, default="auto",
                        help="query_chunk_size of the 'chunked' variant "
                        "(default: auto)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                        default=list(VARIANTS))
    parser.add_argument("--modes", nargs="+", choices=list(MODES),
                        default=list(MODES))
    parser.add_argument("--repeats", type=_positive_int, default=None,
                        help=f"timed calls per configuration (default "
                        f"{DEFAULT_REPEATS}; --quick: {QUICK_REPEATS})")
    parser.add_argument("--warmup", type=_positive_int, default=1,
                        help="untimed calls before timing (the first one "
                        "traces/compiles)")
    parser.add_argument("--memory-budget-gb", type=float, default=None,
                        help="skip configurations whose estimated memory "
                        "exceeds this (default: 16 on CPU, 90%% of the "
                        "device memory on a GPU)")
    parser.add_argument("--rss-limit-gb", type=float, default=None,
                        help="kill a child whose RSS exceeds this (default on "
                        "CPU: min(1.25 x budget, 90%% of RAM); on a GPU: 90%% "
                        "of RAM; 0 disables)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds per configuration (default 300)")
    parser.add_argument("--no-skip-after-failure", action="store_true",
                        help="also run larger T of a variant/mode that "
                        "failed or timed out at a smaller T")
    parser.add_argument("--tf-jit-compile", action="store_true",
                        help="TensorFlow: tf.function(jit_compile=True)")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="CPU threads of the framework (torch."
                        "set_num_threads, TensorFlow intra/inter-op threads, "
                        "OMP_NUM_THREADS; JAX: honored for 1 only). Default: "
                        "the framework's own choice")
    parser.add_argument("--malloc-mmap-threshold", type=_positive_int,
                        default=None, metavar="BYTES",
                        help="set glibc's MALLOC_MMAP_THRESHOLD_ in the "
                        "children (e.g. 1048576): every larger allocation is "
                        "mmapped and returned on free, so CPU peak RSS tracks "
                        "live memory instead of what the heap retains (costs "
                        "page faults). Default: glibc's dynamic threshold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default=None,
                        help="free text recorded with the results (for "
                        "example other jobs sharing the machine)")
    parser.add_argument("--output-dir", type=Path,
                        default=REPO_ROOT / "results" / "benchmarks")
    parser.add_argument("--tag", default=None,
                        help="suffix of the output file names (--quick: "
                        "'quick')")
    parser.add_argument("--quick", action="store_true",
                        help="T in 128 256, 2 repeats: a fast check")
    parser.add_argument("--in-process", action="store_true",
                        help="measure everything in this process (no "
                        "isolation, no timeout; for tests and debugging: "
                        "peak memory is then not per configuration)")
    parser.add_argument("--render", type=Path, default=None,
                        metavar="JSON",
                        help="only re-render the markdown of an existing "
                        "result JSON (written next to it) and exit")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seq_lengths is None:
        args.seq_lengths = list(
            QUICK_SEQ_LENGTHS if args.quick else DEFAULT_SEQ_LENGTHS
        )
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    if args.tag is None and args.quick:
        args.tag = "quick"
    return args


def _peak_definition(device_kind, backend, mmap_threshold=None):
    if device_kind == "cpu":
        return (
            "increase of the child process's peak RSS (VmHWM, reset through "
            "/proc/self/clear_refs after the warm-up) over its RSS (VmRSS) "
            "right before the first timed call, after gc and malloc_trim"
            + (
                f"; MALLOC_MMAP_THRESHOLD_={mmap_threshold}"
                if mmap_threshold
                else "; glibc's default malloc (freed heap memory it keeps "
                "can hide reuse: small peaks are a floor-level reading)"
            )
        )
    return {
        "torch": "torch.cuda.max_memory_allocated() (after "
        "reset_peak_memory_stats) minus memory_allocated() before the first "
        "timed call",
        "jax": "jax device memory_stats()['peak_bytes_in_use'] (process-wide, "
        "not resettable) minus bytes_in_use before the first timed call",
        "tensorflow": "tf.config.experimental.get_memory_info('GPU:0')['peak'] "
        "(after reset_memory_stats) minus 'current' before the first timed "
        "call",
    }[backend]


def _execution_description(backend, tf_jit_compile):
    return {
        "jax": "jax.jit over layer.stateless_call (compiled ahead of time), "
        "jax.grad for the backward, jax.block_until_ready",
        "torch": "eager PyTorch (forward under torch.no_grad(); backward with "
        "torch.autograd.grad), torch.cuda.synchronize on a GPU",
        "tensorflow": f"tf.function(jit_compile={tf_jit_compile}), "
        "tf.GradientTape for the backward",
    }[backend]


def main(argv=None):
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    if args._probe:
        return _probe_main(args._probe)
    if args._child:
        return _child_main(args._child)
    if args.render:
        with open(args.render) as f:
            markdown = render_markdown(json.load(f))
        md_path = args.render.with_suffix(".md")
        with open(md_path, "w") as f:
            f.write(markdown)
        print(markdown)
        print(f"Wrote {md_path}", flush=True)
        return 0

    d, hidden = resolve_scoring_dims(
        args.key_dim, args.projection_dim, args.hidden_units
    )
    cfg = {
        "batch": args.batch,
        "heads": args.heads,
        "key_dim": args.key_dim,
        "model_dim": args.model_dim,
        "projection_dim": d,
        "hidden_units": list(hidden),
        "chunk_size": args.chunk_size,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "tf_jit_compile": args.tf_jit_compile,
        "seed": args.seed,
        "threads": args.threads,
        "malloc_mmap_threshold": args.malloc_mmap_threshold,
    }
    if not os.environ.get("KERAS_BACKEND"):
        print(
            "KERAS_BACKEND is not set: Keras picks its configured default "
            "(set it explicitly).",
            flush=True,
        )
    print("Probing backend and device ...", flush=True)
    if args.in_process:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        info = probe()
    else:
        info = run_probe(args.timeout)
    backend, device_kind = info["backend"], info["device_kind"]
    print(
        f"backend={backend} device={device_kind} "
        f"({info.get('device_name')}), keras {info['keras_version']}",
        flush=True,
    )
    if args.memory_budget_gb is not None:
        budget = args.memory_budget_gb * GB
    elif device_kind == "cpu":
        budget = 16 * GB
    elif info.get("device_memory_total_bytes"):
        budget = 0.9 * info["device_memory_total_bytes"]
    else:
        budget = 16 * GB
    host_total = info.get("host_memory_total_bytes")
    if args.rss_limit_gb is not None:
        rss_limit = args.rss_limit_gb * GB or None
    elif device_kind == "cpu":
        rss_limit = 1.25 * budget
        if host_total:
            rss_limit = min(rss_limit, 0.9 * host_total)
    else:
        rss_limit = 0.9 * host_total if host_total else None

    results = []
    failed_at = {}
    started = time.perf_counter()
    for seq_len in args.seq_lengths:
        for variant in args.variants:
            for mode in args.modes:
                estimate = estimate_bytes(variant, seq_len, mode, cfg)
                base = {
                    "variant": variant,
                    "seq_len": seq_len,
                    "mode": mode,
                    "estimated_bytes": estimate,
                }
                earlier = failed_at.get((variant, mode))
                if estimate > budget:
                    record = dict(
                        base,
                        status="skipped",
                        reason=(
                            f"skipped (estimated {_fmt_gb(estimate)} > "
                            f"budget {_fmt_gb(budget)})"
                        ),
                    )
                elif earlier and not args.no_skip_after_failure:
                    record = dict(
                        base,
                        status="skipped",
                        reason=(
                            f"skipped ({earlier[1]} at T={earlier[0]}; see "
                            "--no-skip-after-failure)"
                        ),
                    )
                elif args.in_process:
                    spec = dict(base, cfg=cfg, device_kind=device_kind)
                    try:
                        record = dict(base, **measure(spec))
                    except Exception as error:
                        record = dict(
                            base,
                            status="failed",
                            reason=f"{type(error).__name__}: {error}"[:2000],
                            traceback=traceback.format_exc()[-4000:],
                        )
                else:
                    record = dict(
                        base,
                        **run_config(
                            variant, seq_len, mode, cfg, device_kind,
                            args.timeout, rss_limit,
                        ),
                    )
                if record["status"] in ("failed", "timeout"):
                    failed_at.setdefault(
                        (variant, mode), (seq_len, record["status"])
                    )
                results.append(record)
                if record["status"] == "ok":
                    detail = (
                        f"{record['median_ms']:.2f} ms, peak "
                        f"{record['peak_bytes'] / MIB:.1f} MiB"
                    )
                elif str(record.get("reason")).startswith(record["status"]):
                    detail = record["reason"]
                else:
                    detail = f"{record['status']}: {record.get('reason')}"
                print(
                    f"[{time.perf_counter() - started:7.1f} s] T={seq_len:5d} "
                    f"{variant:9s} {mode:6s} {detail}",
                    flush=True,
                )

    mha_record = next(
        (r for r in results if r["variant"] == "mha" and r["status"] == "ok"
         and r.get("mha_path")),
        None,
    )
    metadata = dict(info)
    metadata.update(
        {
            "date_utc": datetime.datetime.now(datetime.timezone.utc)
            .replace(microsecond=0)
            .isoformat(),
            "command": [sys.executable] + sys.argv,
            "git_commit": _git_commit(),
            "seq_lengths": list(args.seq_lengths),
            "variants": list(args.variants),
            "variant_labels": {v: VARIANTS[v][0] for v in args.variants},
            "modes": list(args.modes),
            "repeats": args.repeats,
            "warmup": args.warmup,
            "memory_budget_gb": budget / GB,
            "rss_limit_gb": rss_limit / GB if rss_limit else None,
            "timeout_s": args.timeout,
            "in_process": args.in_process,
            "tf_jit_compile": args.tf_jit_compile,
            "peak_memory_definition": _peak_definition(
                device_kind, backend, args.malloc_mmap_threshold
            ),
            "execution": _execution_description(backend, args.tf_jit_compile),
            "total_wall_s": time.perf_counter() - started,
            "note": "; ".join(
                text for text in (
                    "in-process run: peak memory is not isolated per "
                    "configuration" if args.in_process else None,
                    args.note,
                ) if text
            ) or None,
            "load_average_start_end": [load_start, os.getloadavg()[0]],
        }
    )
    metadata.update(cfg)
    if mha_record is not None:
        metadata["mha_path"] = mha_record["mha_path"]
        metadata["mha_flash_attention"] = mha_record["mha_flash_attention"]
    report = {"metadata": metadata, "results": results}
    name = f"{backend}-{device_kind}" + (f"-{args.tag}" if args.tag else "")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.output_dir / f"{name}.json"
    md_path = args.output_dir / f"{name}.md"
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2, default=str)
        f.write("\n")
    markdown = render_markdown(report)
    with open(md_path, "w") as f:
        f.write(markdown)
    print()
    print(markdown)
    print(f"Wrote {json_path} and {md_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
