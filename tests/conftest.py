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
