"""`OutputGating`: a dense unit whose output is multiplied by a gate."""

import keras
from keras import ops

from keras_neural_attention.layers import argument_checks


def _is_positive_int(value):
    return (
        isinstance(value, int) and not isinstance(value, bool) and value > 0
    )


def _get_activation(name, value):
    """`keras.activations.get` with a `ValueError` that names the argument."""
    message = (
        f"Argument `{name}` must be None, the name of a Keras activation or "
        f"a callable. Received: {name}={value!r}"
    )
    try:
        activation = keras.activations.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(message) from error
    if activation is None or not callable(activation):
        raise ValueError(message)
    return activation


class _ContextGatedUnit(keras.layers.Layer):
    """Shared arguments, validation and shape checks of the quark layers.

    Subclasses implement `_build_weights(input_dim, context_dim)` and
    `_forward(inputs, context)`.
    """

    def __init__(
        self,
        units,
        activation=None,
        gate_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        gate_kernel_initializer="glorot_uniform",
        gate_bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        if not _is_positive_int(units):
            raise ValueError(
                "Argument `units` must be a positive integer. "
                f"Received: units={units!r}"
            )
        if not isinstance(use_bias, bool):
            raise ValueError(
                "Argument `use_bias` must be True or False. "
                f"Received: use_bias={use_bias!r}"
            )
        argument_checks.check_regularizer(
            "activity_regularizer", activity_regularizer
        )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = units
        self.activation = _get_activation("activation", activation)
        self.gate_activation = _get_activation(
            "gate_activation", gate_activation
        )
        self.use_bias = use_bias
        checks = argument_checks
        self.kernel_initializer = checks.check_initializer(
            "kernel_initializer", kernel_initializer
        )
        self.bias_initializer = checks.check_initializer(
            "bias_initializer", bias_initializer
        )
        self.gate_kernel_initializer = checks.check_initializer(
            "gate_kernel_initializer", gate_kernel_initializer
        )
        self.gate_bias_initializer = checks.check_initializer(
            "gate_bias_initializer", gate_bias_initializer
        )
        self.kernel_regularizer = checks.check_regularizer(
            "kernel_regularizer", kernel_regularizer
        )
        self.bias_regularizer = checks.check_regularizer(
            "bias_regularizer", bias_regularizer
        )
        self.kernel_constraint = checks.check_constraint(
            "kernel_constraint", kernel_constraint
        )
        self.bias_constraint = checks.check_constraint(
            "bias_constraint", bias_constraint
        )
        # Every position is computed independently: masks pass through.
        self.supports_masking = True

    # -- weights ---------------------------------------------------------

    def _kernel(self, name, shape, gate=False):
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=(
                self.gate_kernel_initializer
                if gate
                else self.kernel_initializer
            ),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def _bias(self, name, shape, gate=False):
        if not self.use_bias:
            return None
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=(
                self.gate_bias_initializer if gate else self.bias_initializer
            ),
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    @staticmethod
    def _affine(x, kernel, bias):
        y = ops.matmul(x, kernel)
        if bias is not None:
            y = ops.add(y, bias)
        return y

    # -- shapes ----------------------------------------------------------

    def _check_shapes(self, inputs_shape, context_shape):
        name = self.__class__.__name__
        inputs_shape = tuple(inputs_shape)
        if len(inputs_shape) < 2 or inputs_shape[-1] is None:
            raise ValueError(
                f"{name} expects `inputs` of shape `(batch, ..., features)` "
                "(rank >= 2) with a known feature size. Received: "
                f"inputs.shape={inputs_shape}"
            )
        if context_shape is None:
            return inputs_shape[-1], inputs_shape[-1]
        context_shape = tuple(context_shape)
        leading_match = len(context_shape) == len(inputs_shape) and all(
            a is None or b is None or a == b
            for a, b in zip(inputs_shape[:-1], context_shape[:-1])
        )
        if not leading_match or context_shape[-1] is None:
            raise ValueError(
                f"{name} expects `context` of shape `(batch, ..., "
                "context_features)` with the same rank and leading axes as "
                "`inputs` and a known feature size. Received: "
                f"inputs.shape={inputs_shape}, context.shape={context_shape}"
            )
        return inputs_shape[-1], context_shape[-1]

    def build(self, inputs_shape, context_shape=None):
        input_dim, context_dim = self._check_shapes(inputs_shape, context_shape)
        self.input_dim = input_dim
        self.context_dim = context_dim
        self._build_weights(input_dim, context_dim)

    def call(self, inputs, context=None):
        if context is None:
            context = inputs
        input_dim, context_dim = self._check_shapes(inputs.shape, context.shape)
        if input_dim != self.input_dim or context_dim != self.context_dim:
            raise ValueError(
                f"{self.__class__.__name__} was built for `inputs` with "
                f"{self.input_dim} features and `context` with "
                f"{self.context_dim} features (the context defaults to the "
                "inputs at the first call). Received: "
                f"inputs.shape={tuple(inputs.shape)}, "
                f"context.shape={tuple(context.shape)}"
            )
        return self._forward(inputs, context)

    def compute_output_shape(self, inputs_shape, context_shape=None):
        return tuple(inputs_shape)[:-1] + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "gate_activation": keras.activations.serialize(
                    self.gate_activation
                ),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "gate_kernel_initializer": keras.initializers.serialize(
                    self.gate_kernel_initializer
                ),
                "gate_bias_initializer": keras.initializers.serialize(
                    self.gate_bias_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "bias_regularizer": keras.regularizers.serialize(
                    self.bias_regularizer
                ),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint
                ),
                "bias_constraint": keras.constraints.serialize(
                    self.bias_constraint
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class OutputGating(_ContextGatedUnit):
    """Dense units whose outputs are multiplied by gates computed from a
    context: output gating, one of the three "quarks of attention".

    ```
    y = f(x W + b) * g(c V + e)          # elementwise, per unit
    ```

    `x` has `n` features, `c` has `m` (the context defaults to `x`), `W` is
    `(n, units)`, `V` is `(m, units)`: every unit has its own gating unit.
    Baldi & Vershynin call this multiplicative output attention and show it
    is a proper extension of the standard model of neurons: gating an
    `n`-input linear threshold gate by another one on the same inputs
    roughly doubles its capacity (`2 n^2` vs `n^2` bits). With `{0, 1}`
    threshold activations for `f` and `g` the unit computes the AND of two
    threshold functions (for example XOR of two inputs, which no single
    threshold unit can); with `+-1` (sign) activations it computes their
    product, the threshold of a rank-2 quadratic form; with linear `f` and
    `g` it is the bilinear form `(x w)(c v)`. `gate_activation="sigmoid"`
    (default) is the smooth version of the `{0, 1}` gate.

    Keras' `MultiHeadAttention(use_gate=True)` applies the same mechanism to
    whole attention heads.

    Args:
        units: int. Number of gated units (output features).
        activation: activation `f` of the units: None (linear, default),
            the name of a Keras activation or a callable (for example a
            step function for exact Boolean computations).
        gate_activation: activation `g` of the gates, as `activation`.
            Defaults to `"sigmoid"`.
        use_bias: bool. Whether the units and the gates have biases `b` and
            `e`. Defaults to True.
        kernel_initializer: initializer of `W`. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of `b`. Defaults to `"zeros"`.
        gate_kernel_initializer: initializer of `V`. Defaults to
            `"glorot_uniform"`.
        gate_bias_initializer: initializer of `e`. Defaults to `"zeros"`.
        kernel_regularizer: regularizer of `W` and `V`.
        bias_regularizer: regularizer of `b` and `e`.
        activity_regularizer: regularizer of the output.
        kernel_constraint: constraint on `W` and `V`.
        bias_constraint: constraint on `b` and `e`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        - inputs: `(batch, ..., n)` tensor `x`.
        - context: optional `(batch, ..., m)` tensor `c` with the same
          leading axes; defaults to `inputs`. Its feature size is fixed at
          the first call.

    Returns:
        A `(batch, ..., units)` tensor.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.layers import OutputGating

    x = np.random.normal(size=(4, 10, 16)).astype("float32")
    c = np.random.normal(size=(4, 10, 8)).astype("float32")
    y = OutputGating(32, activation="relu")(x)   # gates from x: (4, 10, 32)
    y = OutputGating(32)(x, context=c)           # gates from c: (4, 10, 32)
    ```

    Reference:
        - [Baldi & Vershynin, "The Quarks of Attention", arXiv 2202.08371](
          https://arxiv.org/abs/2202.08371)
    """

    def _build_weights(self, input_dim, context_dim):
        self.kernel = self._kernel("kernel", (input_dim, self.units))
        self.bias = self._bias("bias", (self.units,))
        self.gate_kernel = self._kernel(
            "gate_kernel", (context_dim, self.units), gate=True
        )
        self.gate_bias = self._bias("gate_bias", (self.units,), gate=True)

    def _forward(self, inputs, context):
        unit = self.activation(self._affine(inputs, self.kernel, self.bias))
        gate = self.gate_activation(
            self._affine(context, self.gate_kernel, self.gate_bias)
        )
        return ops.multiply(unit, gate)
