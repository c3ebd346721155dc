"""One entry point to the fused kernels, whatever the backend.

`keras_neural_attention.ops.neural_attention` calls `select_fused` to learn
whether a fused kernel can serve a call, and `fused_neural_attention` to run
it. The kernel modules are imported only here and only for their own backend:
the Triton kernel needs PyTorch (and Triton), the Pallas kernel JAX.

| name | backend | device | module |
| --- | --- | --- | --- |
| `"triton"` | torch | CUDA GPU (or the Triton interpreter, `TRITON_INTERPRET=1`) | `triton_neural_attention` |
| `"pallas"` | jax | GPU (or the Pallas interpreter on CPU) | `pallas_neural_attention` |

TensorFlow has no fused kernel: it keeps the blocked `keras.ops` path.
"""

import keras

FUSED_IMPLEMENTATIONS = {"triton": "torch", "pallas": "jax"}


def activation_name(activation):
    """The registered name of a Keras activation, or None for others."""
    if isinstance(activation, str):
        return activation
    try:
        name = keras.activations.serialize(activation)
    except (ValueError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _triton_module():
    from keras_neural_attention.kernels import triton_neural_attention

    return triton_neural_attention


def _pallas_module():
    from keras_neural_attention.kernels import pallas_neural_attention

    return pallas_neural_attention


def _on_gpu(backend):
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    return False


def fused_support(name, activation, value_dtype, first_width, hidden_widths,
                  shapes=None):
    """Whether kernel `name` can run a call, and if not, why.

    Args:
        name: `"triton"` or `"pallas"`.
        activation: the scoring network's activation (callable or name).
        value_dtype: dtype of the values.
        first_width: width of the first hidden layer.
        hidden_widths: widths of the hidden layers after the first.
        shapes: for Triton, `(a_shape, c_shape, v_shape)` in the kernel's
            `(B, N, length, width)` layout.

    Returns:
        `(True, "")` or `(False, reason)`.
    """
    backend = keras.backend.backend()
    if FUSED_IMPLEMENTATIONS[name] != backend:
        return False, (
            f"the {name!r} kernel runs on the "
            f"{FUSED_IMPLEMENTATIONS[name]!r} backend, not {backend!r}"
        )
    act = activation_name(activation)
    dtype = keras.backend.standardize_dtype(value_dtype)
    if name == "triton":
        module = _triton_module()
        if not module.triton_available():
            return False, (
                "Triton needs a CUDA GPU (or TRITON_INTERPRET=1 set before "
                "import, for the CPU interpreter) and the `triton` package"
            )
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        a_shape, c_shape, v_shape = shapes
        ok = module.supports(
            a_shape,
            c_shape,
            v_shape,
            hidden_widths=tuple(hidden_widths),
            activation=act,
            dtype=getattr(torch, dtype),
            device=device,
        )
    else:
        module = _pallas_module()
        ok = module.supports(
            activation=act,
            value_dtype=dtype,
            first_width=first_width,
            hidden_widths=tuple(hidden_widths),
        )
    if not ok:
        return False, (
            f"the {name!r} kernel does not support activation={act!r}, "
            f"value dtype {dtype}, hidden widths "
            f"{(first_width,) + tuple(hidden_widths)} on this device"
        )
    return True, ""


def select_fused(activation, value_dtype, first_width, hidden_widths,
                 shapes=None):
    """The fused kernel `implementation="auto"` should use, or None.

    Only a kernel compiled for a GPU is chosen automatically; interpreter
    modes are for tests and must be asked for by name.
    """
    backend = keras.backend.backend()
    for name, kernel_backend in FUSED_IMPLEMENTATIONS.items():
        if kernel_backend != backend or not _on_gpu(backend):
            continue
        try:
            ok, _ = fused_support(
                name, activation, value_dtype, first_width, hidden_widths,
                shapes,
            )
        except ImportError:
            ok = False
        if ok:
            return name
    return None


def fused_neural_attention(name, a, c, v, hidden_layers, output_kernel,
                           mask=None, causal=False, activation="relu"):
    """Runs fused kernel `name`; arguments as the kernels document them.

    `a`, `c`: `(B, N, T|S, H1)`; `v`: `(B, N, S, Dv)`; `mask`: optional
    boolean `(B or 1, T, S)`; `causal`: mask keys after each query (the
    kernels then skip the key blocks above the diagonal). Returns
    `(B, N, T, Dv)`.
    """
    act = activation_name(activation)
    if name == "triton":
        return _triton_module().triton_neural_attention(
            a, c, v, tuple(hidden_layers), output_kernel, mask=mask,
            causal=causal, activation=act,
        )
    if name == "pallas":
        return _pallas_module().pallas_neural_attention(
            a, c, v, tuple(hidden_layers), output_kernel, mask=mask,
            causal=causal, activation=act,
        )
    raise ValueError(
        "Argument `name` must be one of "
        f"{', '.join(repr(n) for n in FUSED_IMPLEMENTATIONS)}. "
        f"Received: name={name!r}"
    )
