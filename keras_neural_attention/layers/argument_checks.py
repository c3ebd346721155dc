"""Constructor argument checks shared by the package's layers (private).

Every check raises `ValueError` (a value of the right kind outside its range)
or `TypeError` (a value of the wrong kind) in the package's style: "Argument
`x` must be ... Received: x=...". They are stricter than Keras where Keras is
silent (`num_heads=True`, `dropout=1.5`, `output_shape=0`), and accept
everything Keras accepts correctly (`dropout=0`, NumPy scalars, `output_shape`
as an int or a tuple/list of positive ints).
"""

import numbers

import keras
import numpy as np


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(
        value, (bool, np.bool_)
    )


def check_positive_int(name, value, allow_none=False):
    """Returns `value` (an int > 0, or None where `allow_none`) as an int."""
    if value is None and allow_none:
        return None
    accepted = "a positive integer" + (" or None" if allow_none else "")
    if not _is_int(value):
        raise TypeError(
            f"Argument `{name}` must be {accepted}. "
            f"Received: {name}={value!r} (of type {type(value).__name__})"
        )
    if value <= 0:
        raise ValueError(
            f"Argument `{name}` must be {accepted}. Received: {name}={value!r}"
        )
    return int(value)


def check_rate(name, value):
    """Returns a dropout rate (a real number in [0, 1)) as a float."""
    accepted = "a number in [0, 1)"
    if not _is_real(value):
        raise TypeError(
            f"Argument `{name}` must be {accepted}. "
            f"Received: {name}={value!r} (of type {type(value).__name__})"
        )
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(
            f"Argument `{name}` must be {accepted}. Received: {name}={value!r}"
        )
    return float(value)


def check_positive_number(name, value):
    """Returns a finite real number > 0 (an epsilon, a scale) as a float."""
    accepted = "a finite positive number"
    if not _is_real(value):
        raise TypeError(
            f"Argument `{name}` must be {accepted}. "
            f"Received: {name}={value!r} (of type {type(value).__name__})"
        )
    if not (np.isfinite(float(value)) and float(value) > 0.0):
        raise ValueError(
            f"Argument `{name}` must be {accepted}. Received: {name}={value!r}"
        )
    return float(value)


def check_bool(name, value):
    """Returns `value` if it is True or False (a NumPy bool included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"Argument `{name}` must be True or False. "
            f"Received: {name}={value!r} (of type {type(value).__name__})"
        )
    return bool(value)


def check_seed(name, value):
    """Returns a seed: None or an integer."""
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(
            f"Argument `{name}` must be an integer or None. "
            f"Received: {name}={value!r} (of type {type(value).__name__})"
        )
    return int(value)


def check_output_shape(name, value):
    """Checks an `output_shape` of `MultiHeadAttention`: None, a positive
    int, or a non-empty tuple/list of positive ints."""
    if value is None:
        return None
    accepted = (
        "None, a positive integer, or a non-empty tuple or list of positive "
        "integers"
    )
    if _is_int(value):
        entries = (value,)
    elif isinstance(value, (tuple, list)) and len(value) > 0:
        entries = tuple(value)
    else:
        raise (ValueError if isinstance(value, (tuple, list)) else TypeError)(
            f"Argument `{name}` must be {accepted}. Received: {name}={value!r}"
        )
    if not all(_is_int(entry) and entry > 0 for entry in entries):
        raise ValueError(
            f"Argument `{name}` must be {accepted}. Received: {name}={value!r}"
        )
    return value


def _resolve(name, value, getter, kind):
    try:
        resolved = getter(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Argument `{name}` must be {kind}. Received: {name}={value!r}"
        ) from error
    return resolved


def check_initializer(name, value):
    """Returns the initializer Keras resolves `value` to."""
    resolved = _resolve(
        name, value, keras.initializers.get,
        "a Keras initializer (a name, a config dict, an instance or a "
        "callable)",
    )
    if resolved is None or not callable(resolved):
        raise ValueError(
            f"Argument `{name}` must be a Keras initializer (a name, a config "
            f"dict, an instance or a callable). Received: {name}={value!r}"
        )
    return resolved


def check_regularizer(name, value):
    """Returns the regularizer Keras resolves `value` to (or None)."""
    resolved = _resolve(
        name, value, keras.regularizers.get,
        "a Keras regularizer (a name, a config dict, an instance or a "
        "callable) or None",
    )
    if resolved is not None and not callable(resolved):
        raise ValueError(
            f"Argument `{name}` must be a Keras regularizer or None. "
            f"Received: {name}={value!r}"
        )
    return resolved


def check_constraint(name, value):
    """Returns the constraint Keras resolves `value` to (or None)."""
    resolved = _resolve(
        name, value, keras.constraints.get,
        "a Keras constraint (a name, a config dict, an instance or a "
        "callable) or None",
    )
    if resolved is not None and not callable(resolved):
        raise ValueError(
            f"Argument `{name}` must be a Keras constraint or None. "
            f"Received: {name}={value!r}"
        )
    return resolved


def check_activation(name, value, allow_none=True):
    """Returns the activation Keras resolves `value` to (None resolves to
    the identity when `allow_none`)."""
    kind = "the name of a Keras activation or a callable" + (
        " (or None)" if allow_none else ""
    )
    if value is None and not allow_none:
        raise ValueError(
            f"Argument `{name}` must be {kind}. Received: {name}={value!r}"
        )
    resolved = _resolve(name, value, keras.activations.get, kind)
    if resolved is None or not callable(resolved):
        raise ValueError(
            f"Argument `{name}` must be {kind}. Received: {name}={value!r}"
        )
    return resolved


_MHA_CHECKS = {
    "num_heads": check_positive_int,
    "key_dim": check_positive_int,
    "value_dim": lambda name, value: check_positive_int(
        name, value, allow_none=True
    ),
    "dropout": check_rate,
    "use_bias": check_bool,
    "output_shape": check_output_shape,
    "sliding_window": lambda name, value: check_positive_int(
        name, value, allow_none=True
    ),
    "use_gate": check_bool,
    "seed": check_seed,
    "kernel_initializer": check_initializer,
    "bias_initializer": check_initializer,
    "kernel_regularizer": check_regularizer,
    "bias_regularizer": check_regularizer,
    "activity_regularizer": check_regularizer,
    "kernel_constraint": check_constraint,
    "bias_constraint": check_constraint,
}


def check_multi_head_attention_arguments(**arguments):
    """Checks the `keras.layers.MultiHeadAttention` constructor arguments
    among `arguments` (others are left to their own checks)."""
    for name, value in arguments.items():
        check = _MHA_CHECKS.get(name)
        if check is not None:
            check(name, value)
