"""`SynapticGating`: a dense unit whose weights are multiplied by gates."""

import keras
from keras import ops

from keras_neural_attention.layers.output_gating import _ContextGatedUnit
from keras_neural_attention.layers.output_gating import _is_positive_int

MODES = ("input", "low_rank", "full")


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class SynapticGating(_ContextGatedUnit):
    """Dense units whose synaptic weights are multiplied by gates computed
    from a context: synaptic gating, one of the three "quarks of
    attention".

    ```
    y = f(x (W * G(c)) + b)       # W * G(c): elementwise, (n, units)
    ```

    `x` has `n` features, `c` has `m` (the context defaults to `x`). Each
    example gets its own `(n, units)` gate matrix `G(c)`, by `mode`:

    - `"input"` (default): one gate per input synapse row,
      `G(c)_ij = g(c V + e)_i` with `V` of shape `(m, n)`, shared by all
      units. Equivalent to `Dense(units)(x * g(c V + e))`.
    - `"low_rank"`: `G(c) = sum_r a_r(c) b_r(c)^T` with
      `a(c) = g(c A + e_a)` reshaped to `(n, rank)` and
      `b(c) = g(c B + e_b)` reshaped to `(units, rank)`: `rank` outer
      products of gated factors, `(n + units) * rank` gates per example.
    - `"full"`: one gate per weight, `G(c) = g(c V + e)` reshaped to
      `(n, units)`, `V` of shape `(m, n * units)`; for small layers only
      (`m * n * units` parameters, `batch * n * units` activations).

    Baldi & Vershynin call this multiplicative synaptic attention and show it
    is a proper extension of the standard model of neurons. With linear
    gates and `c = x` the unit thresholds a quadratic form of `x`; the
    attention weights of a transformer gate the synapses from the values to
    an output in this way.

    Args:
        units: int. Number of units (output features).
        mode: `"input"` (default), `"low_rank"` or `"full"`: the gate
            parametrization described above.
        rank: int. Number of outer products in `"low_rank"` mode (ignored
            by the other modes). Defaults to 1.
        activation: activation `f` of the units: None (linear, default),
            the name of a Keras activation or a callable (for example a
            step function for exact Boolean computations).
        gate_activation: activation `g` of the gates (of each factor in
            `"low_rank"` mode), as `activation`. Defaults to `"sigmoid"`.
        use_bias: bool. Whether the units and the gates have biases.
            Defaults to True.
        kernel_initializer: initializer of `W`. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of `b`. Defaults to `"zeros"`.
        gate_kernel_initializer: initializer of the gate kernels (`V`, or
            `A` and `B`). Defaults to `"glorot_uniform"`.
        gate_bias_initializer: initializer of the gate biases. Defaults to
            `"zeros"`.
        kernel_regularizer: regularizer of all kernels.
        bias_regularizer: regularizer of all biases.
        activity_regularizer: regularizer of the output.
        kernel_constraint: constraint on all kernels.
        bias_constraint: constraint on all biases.
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
    from keras_neural_attention.layers import SynapticGating

    x = np.random.normal(size=(4, 10, 16)).astype("float32")
    c = np.random.normal(size=(4, 10, 8)).astype("float32")
    y = SynapticGating(32)(x)                                  # (4, 10, 32)
    y = SynapticGating(32, mode="low_rank", rank=2)(x, context=c)
    ```

    Reference:
        - [Baldi & Vershynin, "The Quarks of Attention", arXiv 2202.08371](
          https://arxiv.org/abs/2202.08371)
    """

    def __init__(
        self,
        units,
        mode="input",
        rank=1,
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
        if mode not in MODES:
            raise ValueError(
                "Argument `mode` must be one of "
                f"{', '.join(repr(m) for m in MODES)}. Received: mode={mode!r}"
            )
        if not _is_positive_int(rank):
            raise ValueError(
                "Argument `rank` must be a positive integer. "
                f"Received: rank={rank!r}"
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
        self.mode = mode
        self.rank = rank

    def _build_weights(self, input_dim, context_dim):
        n, u, r = input_dim, self.units, self.rank
        self.kernel = self._kernel("kernel", (n, u))
        self.bias = self._bias("bias", (u,))
        if self.mode == "input":
            self.gate_kernel = self._kernel(
                "gate_kernel", (context_dim, n), gate=True
            )
            self.gate_bias = self._bias("gate_bias", (n,), gate=True)
        elif self.mode == "full":
            self.gate_kernel = self._kernel(
                "gate_kernel", (context_dim, n * u), gate=True
            )
            self.gate_bias = self._bias("gate_bias", (n * u,), gate=True)
        else:
            self.input_gate_kernel = self._kernel(
                "input_gate_kernel", (context_dim, n * r), gate=True
            )
            self.input_gate_bias = self._bias(
                "input_gate_bias", (n * r,), gate=True
            )
            self.output_gate_kernel = self._kernel(
                "output_gate_kernel", (context_dim, u * r), gate=True
            )
            self.output_gate_bias = self._bias(
                "output_gate_bias", (u * r,), gate=True
            )

    def _gates(self, context, kernel, bias, shape):
        """`g(c K + e)` with the last axis reshaped to `shape`."""
        kernel = ops.reshape(kernel, (self.context_dim,) + shape)
        z = ops.tensordot(context, kernel, axes=1)
        if bias is not None:
            z = ops.add(z, ops.reshape(bias, shape))
        return self.gate_activation(z)

    def _forward(self, inputs, context):
        n, u, r = self.input_dim, self.units, self.rank
        if self.mode == "input":
            gates = self._gates(context, self.gate_kernel, self.gate_bias, (n,))
            y = ops.matmul(ops.multiply(inputs, gates), self.kernel)
        elif self.mode == "full":
            gates = self._gates(
                context, self.gate_kernel, self.gate_bias, (n, u)
            )
            weights = ops.multiply(gates, self.kernel)  # (..., n, u)
            y = ops.sum(ops.multiply(ops.expand_dims(inputs, -1), weights), -2)
        else:
            a = self._gates(
                context, self.input_gate_kernel, self.input_gate_bias, (n, r)
            )
            b = self._gates(
                context, self.output_gate_kernel, self.output_gate_bias, (u, r)
            )
            # y_j = sum_r b_jr sum_i (x_i a_ir) W_ij, never forming G(c).
            gated_inputs = ops.multiply(ops.expand_dims(inputs, -1), a)
            z = ops.matmul(ops.swapaxes(gated_inputs, -1, -2), self.kernel)
            y = ops.sum(ops.multiply(z, ops.swapaxes(b, -1, -2)), -2)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return self.activation(y)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "rank": self.rank})
        return config
