"""Activations of the scoring network: the package's named ones, resolution
and validation.

The scoring network applies its activation elementwise to every hidden
pre-activation. Besides Keras' activations, the package names two
polynomial ones, `"square"` (`x**2`) and `"cube"` (`x**3`). With one hidden
layer they, Keras' `"exponential"` and `"linear"` make the score of a pair an
exact dot product of expanded query and key features (see
`keras_neural_attention.ops.separable`), so that attention runs at
dot-product speed.
"""

import keras
import numpy as np
from keras import ops

PACKAGE = "keras_neural_attention"


@keras.saving.register_keras_serializable(package=PACKAGE)
def square(x):
    """Square activation, `x**2`.

    As the scoring network's activation with one hidden layer, the score is
    `sum_r w_r (a_r + c_r)**2`, which expands into a dot product of
    `h + 1` query and key features (a bilinear score plus a per-key bias).
    """
    return ops.square(x)


@keras.saving.register_keras_serializable(package=PACKAGE)
def cube(x):
    """Cube activation, `x**3`.

    As the scoring network's activation with one hidden layer, the score is
    `sum_r w_r (a_r + c_r)**3`, which expands by the binomial theorem into a
    dot product of `2 h + 1` query and key features.
    """
    return x * x * x


NAMED_ACTIVATIONS = {"square": square, "cube": cube}

# Degree of each polynomial activation `x**p` (Keras' `linear` is p = 1).
POLYNOMIAL_DEGREES = {square: 2, cube: 3, keras.activations.linear: 1}


def get_scoring_activation(identifier):
    """Resolves an activation of the scoring network.

    Accepts the package's names (`"square"`, `"cube"`, also in their
    serialized form `"keras_neural_attention>square"`), every identifier
    `keras.activations.get` accepts, and callables.

    Raises:
        ValueError: the identifier names no activation.
    """
    if isinstance(identifier, str):
        name = identifier
        if name.startswith(PACKAGE + ">"):
            name = name[len(PACKAGE) + 1:]
        if name in NAMED_ACTIVATIONS:
            return NAMED_ACTIVATIONS[name]
    return keras.activations.get(identifier)


def _accepted():
    return (
        "the name of an elementwise Keras activation (for example 'relu', "
        "'gelu', 'tanh', 'exponential', 'linear'), one of this package's "
        f"({', '.join(repr(n) for n in NAMED_ACTIVATIONS)}), or a callable "
        "that maps a tensor to a tensor of the same shape"
    )


def validate_scoring_activation(identifier):
    """Resolves `identifier` and checks that the scoring network can use it.

    The network applies the activation to `(..., hidden)` tensors and feeds
    the result to the next layer, so the activation must be a callable of
    one tensor that returns a tensor of the same shape. Keras resolves names
    that fail this, for example `"glu"` (halves the last axis) and
    `"threshold"` (needs two more arguments): they are refused here, with
    the reason, instead of failing inside the backend at the first call.

    Returns:
        The activation callable.

    Raises:
        ValueError: naming `activation`, the value and what is accepted.
    """
    try:
        activation = get_scoring_activation(identifier)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Argument `activation` must be {_accepted()}. "
            f"Received: activation={identifier!r}"
        ) from error
    if activation is None or not callable(activation):
        raise ValueError(
            f"Argument `activation` must be {_accepted()}. "
            f"Received: activation={identifier!r}"
        )
    probe = np.linspace(-1.5, 1.5, 8, dtype="float32").reshape(2, 4)
    try:
        result = activation(ops.convert_to_tensor(probe))
        shape = tuple(ops.shape(result))
    except Exception as error:  # noqa: BLE001 (any failure means unusable)
        raise ValueError(
            f"Argument `activation` must be {_accepted()}; calling it on a "
            f"(2, 4) tensor failed with {type(error).__name__}: {error}. "
            f"Received: activation={identifier!r}"
        ) from error
    if shape != probe.shape:
        raise ValueError(
            f"Argument `activation` must be {_accepted()}; it maps a (2, 4) "
            f"tensor to shape {shape}. Received: activation={identifier!r}"
        )
    return activation
