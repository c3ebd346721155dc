"""Backend-native gradients for tests (Keras has no portable `grad`)."""

import keras
import numpy as np


def value_and_grad(fn, args):
    """Returns `(fn(*args), [d fn / d arg for arg in args])` as NumPy.

    `fn` maps backend tensors to a scalar tensor; `args` are NumPy arrays.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        tensors = [jax.numpy.asarray(a) for a in args]
        value, grads = jax.jit(
            jax.value_and_grad(
                lambda *xs: fn(*xs), argnums=tuple(range(len(args)))
            )
        )(*tensors)
        return np.asarray(value), [np.asarray(g) for g in grads]
    if backend == "torch":
        import torch

        tensors = [
            torch.tensor(a, requires_grad=True) for a in args
        ]
        value = fn(*tensors)
        grads = torch.autograd.grad(value, tensors, allow_unused=True)
        return value.detach().numpy(), [
            np.zeros_like(a) if g is None else g.detach().numpy()
            for a, g in zip(args, grads)
        ]
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
        return value.numpy(), [
            np.zeros_like(a) if g is None else g.numpy()
            for a, g in zip(args, grads)
        ]
    raise RuntimeError(f"No gradient helper for backend {backend}")


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def jit(fn):
    """Compiles `fn` where the backend can (repeated calls get faster)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    return fn
