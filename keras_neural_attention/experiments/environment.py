"""Where and with what a run happened: backend, versions, device, host,
date, and the peak memory of the running process.

Every experiment's result record carries `environment_info()`. This module
imports nothing of the package, so the records, the comparison and every
table can use it without import circles.
"""

import datetime
import os
import platform
import sys


def _ru_maxrss_mib():
    """`getrusage(RUSAGE_SELF).ru_maxrss` in MiB (None without `resource`,
    i.e. on Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    divisor = 2**20 if sys.platform == "darwin" else 2**10
    return peak / divisor


def _vm_hwm_mib():
    """The peak RSS of this process's own address space (`VmHWM` of
    `/proc/self/status`, Linux), in MiB; None where unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss():
    """This process's peak resident set size so far.

    Returns:
        `(mib, source)`. On Linux the source is `VmHWM`: `ru_maxrss` of a
        process started with "spawn" also counts the RSS of its parent at
        the time of the spawn (the kernel carries the high-water mark of the
        forked copy over the `exec`), which would charge a big parent (a
        notebook kernel, say) to the child. Elsewhere it is `ru_maxrss`.
    """
    hwm = _vm_hwm_mib()
    if hwm is not None:
        return hwm, "VmHWM (/proc/self/status)"
    maxrss = _ru_maxrss_mib()
    if maxrss is not None:
        return maxrss, "ru_maxrss (getrusage RUSAGE_SELF)"
    return None, "unavailable"


def _device_description():
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.device_kind == device.platform:
                return device.platform
            return f"{device.platform}: {device.device_kind}"
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return "cuda: " + torch.cuda.get_device_name(0)
            return f"cpu ({torch.get_num_threads()} threads)"
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"gpu: {gpus[0].name}" if gpus else "cpu"
    except Exception as error:  # noqa: BLE001 (device info is best effort)
        return f"unknown ({type(error).__name__})"
    return "unknown"


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info():
    """Backend, versions, device, host and date of a run (for the result
    files)."""
    import keras

    backend = keras.backend.backend()
    framework_version = None
    try:
        module = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}[
            backend
        ]
        framework_version = __import__(module).__version__
    except (KeyError, ImportError, AttributeError):
        pass
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cpus = os.cpu_count()
    return {
        "backend": backend,
        "backend_version": framework_version,
        "keras_version": keras.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


def device_description():
    """The device Keras computes on, in words (`"cpu"`, `"cuda: NVIDIA
    H200"`, ...)."""
    return _device_description()
