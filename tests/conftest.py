"""Test configuration shared by every test module.

The suite runs once per backend: `KERAS_BACKEND=<tensorflow|jax|torch> pytest
tests`. Keras fixes its backend at import time, so the variable must be set
before the first `import keras`; if it is missing we default to JAX (which,
unlike Keras' own default, does not import TensorFlow) and say so.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

if os.environ["KERAS_BACKEND"] == "torch":
    # Keras' torch backend imports Triton (through torch._dynamo) at
    # `import keras`; without a GPU the Triton kernels can only run in
    # Triton's interpreter, which must be chosen before that first import.
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

import keras  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


import contextlib  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same Python, NumPy and backend seeds, so
    that unseeded initializers give the same weights whatever ran before
    it (the order differs between the processes of a parallel run)."""
    keras.utils.set_random_seed(1337)
    yield


@pytest.fixture
def x64():
    """Lets float64 arrays stay float64 (JAX downcasts them by default)."""
    if keras.backend.backend() == "jax":
        import jax

        context = jax.enable_x64(True)
    else:
        context = contextlib.nullcontext()
    with context:
        yield


# Tests that need a package from an extra the environment lacks are skipped
# with the extra to install, instead of failing at collection
# (`pip install -e ".[jax,dev]"` then `pytest` runs what it can).
OPTIONAL_MODULES = {
    "keras_hub": "hub",
    "keras_nlp": "nlp",
    "tensorflow": "tensorflow",
    "tensorflow_text": "hub",
    "tensorflow_datasets": "datasets",
    "jax": "jax",
    "torch": "torch",
    "triton": "triton",
    "scipy": "experiments",
    "matplotlib": "experiments",
    "papermill": "dev",
    "nbformat": "dev",
    "ipykernel": "dev",
}


def _missing_optional_module(text):
    """The optional top-level module that `text` (a traceback) reports as
    absent, if that module is really not installed; else None."""
    import importlib.util
    import re

    for match in re.finditer(r"No module named '([\w.]+)'", text):
        top = match.group(1).split(".")[0]
        if top in OPTIONAL_MODULES and importlib.util.find_spec(top) is None:
            return top
    return None


def _skip_reason(module):
    extra = OPTIONAL_MODULES[module]
    return (
        f"needs `{module}` (extra `{extra}`): "
        f"pip install -e \".[{extra}]\""
    )


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.failed and isinstance(collector, pytest.Module):
        module = _missing_optional_module(str(report.longrepr))
        if module is not None:
            report.outcome = "skipped"
            report.longrepr = (
                str(collector.path), 0, f"Skipped: {_skip_reason(module)}"
            )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    # Also a failure whose message reports the absent module, as a test
    # that runs a child process shows it.
    try:
        return (yield)
    except Exception as error:
        module = _missing_optional_module(str(error))
        if module is None:
            raise
        pytest.skip(_skip_reason(module))


# End-to-end runs whose subject does not depend on the backend (experiment
# plumbing through model.fit, the documentation's examples) run in one
# backend's session only: the suite runs once per backend, and these are the
# slowest tests of each session. TensorFlow's session runs them.
ONE_BACKEND = "tensorflow"


def pytest_collection_modifyitems(config, items):
    if keras.backend.backend() == ONE_BACKEND:
        return
    skip = pytest.mark.skip(
        reason=f"backend-independent end-to-end run: executed once, in the "
        f"KERAS_BACKEND={ONE_BACKEND} session"
    )
    for item in items:
        if item.get_closest_marker("one_backend"):
            item.add_marker(skip)
