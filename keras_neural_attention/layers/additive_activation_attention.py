"""`AdditiveActivationAttention`: multiplexing, a context added to a unit's
activation."""

import keras
from keras import ops

from keras_neural_attention.layers.output_gating import _ContextGatedUnit
from keras_neural_attention.layers.output_gating import _is_positive_int


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class AdditiveActivationAttention(_ContextGatedUnit):
    """Dense units whose activations receive an additive signal from gating
    units on a context: multiplexing, one of the three "quarks of
    attention".

    ```
    y = f(x W + b + g(c V + e) U)
    ```

    `x` has `n` features, `c` has `m` (the context defaults to `x`); `W` is
    `(n, units)`, `V` is `(m, gate_units)` and `U` is `(gate_units, units)`.
    Baldi & Vershynin call this additive activation attention (multiplexing):
    it stays inside the standard model (it is a Dense layer over
    `[x, g(c V + e)]`), and its value is the structure. With `{0, 1}`
    threshold gates and a large weight `M`, a gate switches a threshold unit
    between its own function and a constant: `f(S - M + M g) = f(S) AND g`
    and `f(S + M g) = f(S) OR g`.

    Args:
        units: int. Number of units (output features).
        gate_units: int. Number of attending (gating) units shared by all
            units. Defaults to 1, one attending neuron as in the paper's
            building block.
        activation: activation `f` of the units: None (linear, default),
            the name of a Keras activation or a callable (for example a
            step function for exact Boolean computations).
        gate_activation: activation `g` of the gating units, as
            `activation`. Defaults to `"sigmoid"`.
        use_bias: bool. Whether the units and the gating units have biases
            `b` and `e`. Defaults to True.
        kernel_initializer: initializer of `W` and `U`. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of `b`. Defaults to `"zeros"`.
        gate_kernel_initializer: initializer of `V`. Defaults to
            `"glorot_uniform"`.
        gate_bias_initializer: initializer of `e`. Defaults to `"zeros"`.
        kernel_regularizer: regularizer of `W`, `U` and `V`.
        bias_regularizer: regularizer of `b` and `e`.
        activity_regularizer: regularizer of the output.
        kernel_constraint: constraint on `W`, `U` and `V`.
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
    from keras_neural_attention.layers import AdditiveActivationAttention

    x = np.random.normal(size=(4, 16)).astype("float32")
    c = np.random.normal(size=(4, 8)).astype("float32")
    layer = AdditiveActivationAttention(32, gate_units=4, activation="relu")
    y = layer(x, context=c)                                   # (4, 32)
    ```

    Reference:
        - [Baldi & Vershynin, "The Quarks of Attention", arXiv 2202.08371](
          https://arxiv.org/abs/2202.08371)
    """

    def __init__(
        self,
        units,
        gate_units=1,
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
        if not _is_positive_int(gate_units):
            raise ValueError(
                "Argument `gate_units` must be a positive integer. "
                f"Received: gate_units={gate_units!r}"
            )
        super().__init__(
            units,
            activation=activation,
            gate_activation=gate_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            gate_kernel_initializer=gate_kernel_initializer,
            gate_bias_initializer=gate_bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.gate_units = gate_units

    def _build_weights(self, input_dim, context_dim):
        self.kernel = self._kernel("kernel", (input_dim, self.units))
        self.bias = self._bias("bias", (self.units,))
        self.gate_kernel = self._kernel(
            "gate_kernel", (context_dim, self.gate_units), gate=True
        )
        self.gate_bias = self._bias("gate_bias", (self.gate_units,), gate=True)
        self.gate_output_kernel = self._kernel(
            "gate_output_kernel", (self.gate_units, self.units)
        )

    def _forward(self, inputs, context):
        gate = self.gate_activation(
            self._affine(context, self.gate_kernel, self.gate_bias)
        )
        activation = ops.add(
            self._affine(inputs, self.kernel, self.bias),
            ops.matmul(gate, self.gate_output_kernel),
        )
        return self.activation(activation)

    def get_config(self):
        config = super().get_config()
        config["gate_units"] = self.gate_units
        return config
