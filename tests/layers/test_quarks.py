"""The three "quarks of attention" (Baldi & Vershynin, arXiv 2202.08371):
`AdditiveActivationAttention`, `OutputGating` and `SynapticGating`."""

import itertools
import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.experiments import quarks
from keras_neural_attention.layers.additive_activation_attention import (
    AdditiveActivationAttention,
)
from keras_neural_attention.layers.output_gating import OutputGating
from keras_neural_attention.layers.synaptic_gating import SynapticGating
from tests.backend_utils import to_numpy

# The four points of {0, 1}^2, first coordinate varying slowest; a Boolean
# function of two inputs is its column of four outputs on these points.
POINTS = np.array(list(itertools.product([0, 1], repeat=2)), "float32")
XOR = (0, 1, 1, 0)
XNOR = (1, 0, 0, 1)
GRID = np.arange(-3, 4)  # integer weights and biases


def step(z):
    """Heaviside step: 1 where z >= 0, else 0."""
    return ops.cast(ops.greater_equal(z, 0), z.dtype)


def sign(z):
    """+1 where z >= 0, else -1."""
    return ops.subtract(ops.multiply(step(z), 2.0), 1.0)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def grid_units():
    """Every `(w1, w2, b)` with entries in -3..3: `(2, 343)` kernel, biases."""
    triples = np.array(list(itertools.product(GRID, repeat=3)), "float32")
    return triples[:, :2].T, triples[:, 2]


def truth_tables(outputs):
    """Distinct columns of a `(4, units)` output as tuples of ints."""
    return {tuple(int(round(v)) for v in col) for col in to_numpy(outputs).T}


def build(layer, *inputs):
    layer(*inputs)
    return layer


def set_weights(layer, weights):
    layer.set_weights([np.asarray(w, "float32") for w in weights])


# -- exact Boolean functions ----------------------------------------------


def test_threshold_units_realize_14_of_the_16_functions_of_two_inputs():
    kernel, bias = grid_units()
    dense = build(keras.layers.Dense(kernel.shape[1], activation=step), POINTS)
    set_weights(dense, [kernel, bias])
    tables = truth_tables(dense(POINTS))
    assert len(tables) == 14
    assert XOR not in tables and XNOR not in tables
    # Same count from NumPy, independent of Keras.
    numpy_tables = {
        tuple((POINTS @ kernel[:, k] + bias[k] >= 0).astype(int))
        for k in range(kernel.shape[1])
    }
    assert numpy_tables == tables
    assert len(set(itertools.product([0, 1], repeat=4)) - tables) == 2


def test_one_output_gated_unit_computes_xor():
    # f = [x1 + x2 - 1 >= 0] (OR), g = [1 - x1 - x2 >= 0] (NAND): f AND g.
    layer = build(
        OutputGating(1, activation=step, gate_activation=step), POINTS
    )
    set_weights(
        layer,
        [np.ones((2, 1)), [-1.0], -np.ones((2, 1)), [1.0]]
    )
    np.testing.assert_array_equal(to_numpy(layer(POINTS))[:, 0], XOR)


def test_output_gated_units_realize_all_16_functions_of_two_inputs():
    kernel, bias = grid_units()
    units = kernel.shape[1]
    # Every pair of grid threshold units as one gated unit: 343^2 units.
    f_index, g_index = np.meshgrid(np.arange(units), np.arange(units))
    f_index, g_index = f_index.ravel(), g_index.ravel()
    weights = [kernel[:, f_index], bias[f_index], kernel[:, g_index],
               bias[g_index]]
    and_gated = build(
        OutputGating(units**2, activation=step, gate_activation=step), POINTS
    )
    set_weights(and_gated, weights)
    tables = truth_tables(and_gated(POINTS))
    assert len(tables) == 16
    assert XOR in tables and XNOR in tables
    # +-1 gates on +-1 inputs (the product form) also give all 16 (as +-1).
    product = build(
        OutputGating(units**2, activation=sign, gate_activation=sign), POINTS
    )
    set_weights(product, weights)
    assert len(truth_tables(product(2 * POINTS - 1))) == 16


def test_and_and_product_gates_reproduce_their_truth_tables():
    rng = np.random.default_rng(0)
    kernel, bias = grid_units()
    picks = rng.choice(kernel.shape[1], size=(2, 20))
    f = (kernel[:, picks[0]], bias[picks[0]])
    g = (kernel[:, picks[1]], bias[picks[1]])
    for activation, x, table in (
        (step, POINTS, lambda z: (z >= 0).astype(float)),
        (sign, 2 * POINTS - 1, lambda z: np.where(z >= 0, 1.0, -1.0)),
    ):
        layer = build(
            OutputGating(20, activation=activation, gate_activation=activation),
            x,
        )
        set_weights(layer, [f[0], f[1], g[0], g[1]])
        expected = table(x @ f[0] + f[1]) * table(x @ g[0] + g[1])
        np.testing.assert_array_equal(to_numpy(layer(x)), expected)
    # The textbook gates: x1 AND x2, and the +-1 product x1 * x2.
    layer = build(OutputGating(1, activation=step, gate_activation=step),
                  POINTS)
    set_weights(layer, [[[1.0], [0.0]], [-1.0], [[0.0], [1.0]], [-1.0]])
    np.testing.assert_array_equal(to_numpy(layer(POINTS))[:, 0], (0, 0, 0, 1))
    layer = build(OutputGating(1, activation=sign, gate_activation=sign),
                  POINTS)
    set_weights(layer, [[[1.0], [0.0]], [0.0], [[0.0], [1.0]], [0.0]])
    pm = 2 * POINTS - 1
    np.testing.assert_array_equal(
        to_numpy(layer(pm))[:, 0], pm[:, 0] * pm[:, 1]
    )


def test_multiplexing_switches_a_threshold_unit_and_computes_xor():
    big = 10.0
    layer = build(
        AdditiveActivationAttention(
            3, gate_units=1, activation=step, gate_activation=step
        ),
        POINTS,
    )
    # Attending unit: x1 AND x2. Target units: OR(x1, x2) vetoed by the
    # gate (XOR); x1 forced off unless the gate is on (x1 AND gate); x1
    # forced on by the gate (x1 OR gate).
    set_weights(
        layer,
        [
            np.array([[1, 1, 1], [1, 0, 0]], "float32"),  # W
            np.array([-1, -1 - big, -1], "float32"),  # b
            np.ones((2, 1), "float32"),  # V
            np.array([-2.0], "float32"),  # e
            np.array([[-big, big, big]], "float32"),  # U
        ]
    )
    out = to_numpy(layer(POINTS))
    x1, gate = POINTS[:, 0], POINTS[:, 0] * POINTS[:, 1]
    np.testing.assert_array_equal(out[:, 0], XOR)
    np.testing.assert_array_equal(out[:, 1], x1 * gate)
    np.testing.assert_array_equal(out[:, 2], np.maximum(x1, gate))


def test_synaptic_gating_computes_xor_with_a_quadratic_form():
    # Linear input gates: x1 (1 - 2 x2) + x2 * 1 = x1 + x2 - 2 x1 x2 = XOR.
    layer = build(
        SynapticGating(1, mode="input", activation=step,
                       gate_activation="linear"),
        POINTS,
    )
    set_weights(
        layer,
        [np.ones((2, 1)), [-0.5], [[0.0, 0.0], [-2.0, 0.0]], [1.0, 1.0]]
    )
    np.testing.assert_array_equal(to_numpy(layer(POINTS))[:, 0], XOR)


# -- formulas against NumPy ------------------------------------------------

LAYERS = [
    (AdditiveActivationAttention, dict(gate_units=3)),
    (OutputGating, dict()),
    (SynapticGating, dict(mode="input")),
    (SynapticGating, dict(mode="low_rank", rank=2)),
    (SynapticGating, dict(mode="full")),
]
IDS = ["multiplexing", "output", "synaptic_input", "synaptic_low_rank",
       "synaptic_full"]


def numpy_forward(layer, x, c):
    w = {v.path.split("/")[-1]: to_numpy(v).astype("float64")
         for v in layer.weights}
    f, g = np.tanh, np_sigmoid  # the activations used below
    n, u = x.shape[-1], layer.units
    if isinstance(layer, AdditiveActivationAttention):
        gate = g(c @ w["gate_kernel"] + w["gate_bias"])
        return f(x @ w["kernel"] + w["bias"] + gate @ w["gate_output_kernel"])
    if isinstance(layer, OutputGating):
        return f(x @ w["kernel"] + w["bias"]) * g(
            c @ w["gate_kernel"] + w["gate_bias"]
        )
    if layer.mode == "input":
        G = g(c @ w["gate_kernel"] + w["gate_bias"])[..., :, None]
        G = np.broadcast_to(G, x.shape + (u,))
    elif layer.mode == "full":
        G = g(c @ w["gate_kernel"] + w["gate_bias"]).reshape(
            x.shape[:-1] + (n, u))
    else:
        r = layer.rank
        a = g(c @ w["input_gate_kernel"] + w["input_gate_bias"]).reshape(
            x.shape[:-1] + (n, r))
        b = g(c @ w["output_gate_kernel"] + w["output_gate_bias"]).reshape(
            x.shape[:-1] + (u, r))
        G = np.einsum("...ir,...jr->...ij", a, b)
    return f(np.einsum("...i,...ij->...j", x, w["kernel"] * G) + w["bias"])


@pytest.mark.parametrize("cls, kwargs", LAYERS, ids=IDS)
@pytest.mark.parametrize("shape", [(3,), (3, 4)], ids=["rank2", "rank3"])
def test_matches_numpy_formula_with_random_weights(cls, kwargs, shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape + (5,)).astype("float32")
    c = rng.normal(size=shape + (2,)).astype("float32")
    layer = build(
        cls(4, activation="tanh", gate_activation="sigmoid", **kwargs), x, c
    )
    for v in layer.weights:  # random biases too, to catch bias bugs
        v.assign(rng.normal(size=v.shape).astype("float32"))
    out = to_numpy(layer(x, context=c))
    expected = numpy_forward(layer, x.astype("float64"), c.astype("float64"))
    assert out.shape == shape + (4,)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


# -- shapes, context, serialization, training -----------------------------


@pytest.mark.parametrize("cls, kwargs", LAYERS, ids=IDS)
def test_shapes_and_context_defaults_to_input(cls, kwargs):
    rng = np.random.default_rng(2)
    x2 = rng.normal(size=(3, 6)).astype("float32")
    x3 = rng.normal(size=(3, 5, 6)).astype("float32")
    layer = cls(7, **kwargs)
    assert tuple(layer(x2).shape) == (3, 7)
    assert tuple(layer(x3).shape) == (3, 5, 7)
    np.testing.assert_array_equal(
        to_numpy(layer(x3)), to_numpy(layer(x3, context=x3))
    )
    assert layer.context_dim == 6
    # An explicit context with its own feature size.
    other = cls(7, **kwargs)
    c = rng.normal(size=(3, 5, 2)).astype("float32")
    assert tuple(other(x3, context=c).shape) == (3, 5, 7)
    symbolic = other(keras.Input((5, 6)), context=keras.Input((5, 2)))
    assert tuple(symbolic.shape) == (None, 5, 7)
    assert other.compute_output_shape((None, 5, 6), (None, 5, 2)) == (
        None, 5, 7)
    with pytest.raises(ValueError, match="context"):
        other(x3)  # built for a 2-feature context
    with pytest.raises(ValueError, match="context"):
        cls(7, **kwargs)(x3, context=c[:, :4])
    with pytest.raises(ValueError, match="context"):
        cls(7, **kwargs)(x3, context=c[:, 0])
    with pytest.raises(ValueError, match="rank >= 2"):
        cls(7, **kwargs)(x2[0])


@pytest.mark.parametrize("cls, kwargs", LAYERS, ids=IDS)
def test_keras_mask_passes_through(cls, kwargs):
    tokens = np.array([[3, 1, 0, 0], [2, 2, 2, 0]])
    embedding = keras.layers.Embedding(5, 6, mask_zero=True)
    x, mask = embedding(tokens), embedding.compute_mask(tokens)
    layer = cls(7, **kwargs)
    assert tuple(layer(x).shape) == (2, 4, 7)
    np.testing.assert_array_equal(
        to_numpy(layer.compute_mask(x, mask)), tokens != 0
    )


def full_configs():
    common = dict(
        activation="relu",
        gate_activation="tanh",
        use_bias=False,
        kernel_initializer="he_normal",
        gate_kernel_initializer="orthogonal",
        gate_bias_initializer="ones",
        kernel_regularizer="l2",
        bias_regularizer="l1",
        activity_regularizer="l2",
        kernel_constraint="max_norm",
        bias_constraint="non_neg",
        name="quark",
    )
    return [
        (AdditiveActivationAttention, dict(common, gate_units=3)),
        (OutputGating, dict(common)),
        (SynapticGating, dict(common, mode="low_rank", rank=3)),
    ]


@pytest.mark.parametrize("cls, kwargs", full_configs(),
                         ids=["multiplexing", "output", "synaptic"])
def test_config_round_trip(cls, kwargs):
    layer = cls(5, **kwargs)
    config = layer.get_config()
    for key, value in kwargs.items():
        assert key in config
    assert config["use_bias"] is False
    clone = cls.from_config(config)
    assert clone.get_config() == config
    revived = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(revived, cls)
    assert revived.get_config() == config


@pytest.mark.parametrize("cls, kwargs", LAYERS, ids=IDS)
def test_model_saves_and_reloads_to_identical_outputs(tmp_path, cls, kwargs):
    rng = np.random.default_rng(3)
    x_in, c_in = keras.Input((4, 6)), keras.Input((4, 3))
    hidden = cls(5, activation="gelu", **kwargs)(x_in, context=c_in)
    outputs = cls(2, **kwargs)(hidden)
    model = keras.Model([x_in, c_in], outputs)
    for v in model.weights:
        v.assign(rng.normal(size=v.shape).astype("float32"))
    data = [rng.normal(size=(3, 4, 6)).astype("float32"),
            rng.normal(size=(3, 4, 3)).astype("float32")]
    before = to_numpy(model(data))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(reloaded(data)), before)
    assert sum(isinstance(l, cls) for l in reloaded.layers) == 2


@pytest.mark.parametrize("cls, kwargs", LAYERS, ids=IDS)
def test_trains_inside_model_fit(cls, kwargs):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x[:, :1] * x[:, 1:2] + x[:, 2:3]).astype("float32")  # gated target
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(
        inputs,
        keras.layers.Dense(1)(cls(8, activation="tanh", **kwargs)(inputs)),
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-2), loss="mse")
    losses = model.fit(x, y, epochs=8, batch_size=32, verbose=0).history[
        "loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize(
    "cls, kwargs, name",
    [
        (OutputGating, dict(units=0), "units"),
        (OutputGating, dict(units=2.5), "units"),
        (OutputGating, dict(units=True), "units"),
        (OutputGating, dict(units=2, activation="nope"), "activation"),
        (OutputGating, dict(units=2, activation=3), "activation"),
        (OutputGating, dict(units=2, gate_activation="nope"),
         "gate_activation"),
        (OutputGating, dict(units=2, use_bias="yes"), "use_bias"),
        (AdditiveActivationAttention, dict(units=-1), "units"),
        (AdditiveActivationAttention, dict(units=2, gate_units=0),
         "gate_units"),
        (AdditiveActivationAttention, dict(units=2, gate_units="2"),
         "gate_units"),
        (AdditiveActivationAttention, dict(units=2, gate_activation=[1]),
         "gate_activation"),
        (SynapticGating, dict(units=0), "units"),
        (SynapticGating, dict(units=2, mode="diagonal"), "mode"),
        (SynapticGating, dict(units=2, mode=None), "mode"),
        (SynapticGating, dict(units=2, mode="low_rank", rank=0), "rank"),
        (SynapticGating, dict(units=2, mode="low_rank", rank=1.5), "rank"),
        (SynapticGating, dict(units=2, activation="nope"), "activation"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(cls, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        cls(**kwargs)


# -- the counting experiment ----------------------------------------------


def test_experiment_counts_functions_of_two_and_three_inputs():
    rows = [quarks.count_functions(n) for n in (2, 3)]
    expected = [
        dict(n=2, all=16, threshold=14, output_gating=16, product_gating=16,
             multiplexing=16, exact=True),
        dict(n=3, all=256, threshold=104, output_gating=246,
             product_gating=254, multiplexing=256, exact=True),
    ]
    for row, want in zip(rows, expected):
        for key, value in want.items():
            assert row[key] == value, (row, key)
    # Product gating misses exactly 3-input parity and its complement.
    parity = sum(1 << p for p, x in enumerate(quarks.boolean_points(3))
                 if x.sum() % 2)
    missing = set(range(256)) - set(
        quarks.gated_tables(3, "product_gating").tolist())
    assert missing == {parity, 255 - parity}
    table = quarks.format_counts(rows)
    assert "| 3 | 256 | 104 | 246 | 254 | 256 | yes |" in table


def test_experiment_agrees_with_the_layers_and_flags_lower_bounds():
    # The n = 2 tables equal those the Keras layers computed above.
    bits = 1 << np.arange(4)
    kernel, bias = grid_units()
    dense = build(keras.layers.Dense(kernel.shape[1], activation=step), POINTS)
    set_weights(dense, [kernel, bias])
    from_layer = {int(np.dot(t, bits)) for t in truth_tables(dense(POINTS))}
    assert from_layer == set(quarks.threshold_tables(2).tolist())
    # A grid too small to reach every threshold function is a lower bound.
    small = quarks.count_functions(2, weight_bound=1)
    assert small["exact"] is False and small["multiplexing"] == 14
    for kwargs, name in (
        (dict(n=0), "n"), (dict(n=4), "n"), (dict(n=2, weight_bound=0),
                                              "weight_bound"),
    ):
        with pytest.raises(ValueError, match=f"`{name}`"):
            quarks.count_functions(**kwargs)
    with pytest.raises(ValueError, match="`architecture`"):
        quarks.gated_tables(2, "attention")
