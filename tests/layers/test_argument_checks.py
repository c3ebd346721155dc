"""Wrong constructor arguments of every public layer raise a clear error.

Each case builds one layer with one argument replaced by a wrong value and
asserts a `ValueError` or `TypeError` whose message names that argument
(issue 10: "stricter than `MultiHeadAttention` where it is silent, never
looser"). The cases are generated from the kind of each argument, so every
kind of wrong value is tried on every argument of that kind. A second set
checks that every value `keras.layers.MultiHeadAttention` accepts correctly
is still accepted.
"""

import math

import keras
import numpy as np
import pytest

from keras_neural_attention import layers
from keras_neural_attention.layers import argument_checks

# Wrong values for each kind of argument. (`activation` of NeuralAttention:
# the names Keras resolves but the scoring network cannot use, "glu" and
# "threshold", are checked in tests/layers/test_neural_attention.py.)
WRONG = {
    "positive_int": [0, -1, True, False, 2.0, 1.5, "4", None, (2,), math.inf],
    "optional_positive_int": [0, -3, True, 2.0, "4", (2,)],
    "rate": [-0.1, 1.0, 1, 1.5, True, False, "0.1", None, math.nan, [0.1]],
    "bool": [1, 0, "yes", None, 1.0, "False"],
    "seed": [1.5, "7", True, [1]],
    "initializer": ["no_such_initializer", 3, [1.0]],
    "regularizer": ["no_such_regularizer", 3],
    "constraint": ["no_such_constraint", 3],
    "activation": ["no_such_activation", 3, [1]],
    "output_shape": [0, -1, (0,), (-2,), (4, 0), (2.0,), "4", (True,), True,
                     (), []],
    "positive_number": [0, -1e-5, True, "1e-5", None, math.inf, math.nan],
}

MHA_KINDS = {
    "num_heads": "positive_int",
    "key_dim": "positive_int",
    "value_dim": "optional_positive_int",
    "dropout": "rate",
    "use_bias": "bool",
    "output_shape": "output_shape",
    "seed": "seed",
    "kernel_initializer": "initializer",
    "bias_initializer": "initializer",
    "kernel_regularizer": "regularizer",
    "bias_regularizer": "regularizer",
    "activity_regularizer": "regularizer",
    "kernel_constraint": "constraint",
    "bias_constraint": "constraint",
}
QUARK_KINDS = {
    "units": "positive_int",
    "use_bias": "bool",
    "activation": "activation",
    "gate_activation": "activation",
    "kernel_initializer": "initializer",
    "bias_initializer": "initializer",
    "gate_kernel_initializer": "initializer",
    "gate_bias_initializer": "initializer",
    "kernel_regularizer": "regularizer",
    "bias_regularizer": "regularizer",
    "activity_regularizer": "regularizer",
    "kernel_constraint": "constraint",
    "bias_constraint": "constraint",
}

LAYERS = {
    "NeuralAttention": (
        {"num_heads": 2, "key_dim": 4},
        {**MHA_KINDS, "projection_dim": "optional_positive_int",
         "share_scoring_across_heads": "bool"},
    ),
    "ExpressiveAttention": ({"num_heads": 2, "key_dim": 4}, MHA_KINDS),
    "CachedNeuralAttention": ({"num_heads": 2, "key_dim": 4}, MHA_KINDS),
    "CachedExpressiveAttention": ({"num_heads": 2, "key_dim": 4}, MHA_KINDS),
    "OutputGating": ({"units": 3}, QUARK_KINDS),
    "AdditiveActivationAttention": (
        {"units": 3}, {**QUARK_KINDS, "gate_units": "positive_int"},
    ),
    "SynapticGating": (
        {"units": 3}, {**QUARK_KINDS, "rank": "positive_int"},
    ),
    "PatchEmbedding": (
        {"patch_size": 2, "hidden_dim": 8},
        {
            "patch_size": "positive_int",
            "hidden_dim": "positive_int",
            "use_class_token": "bool",
            "dropout": "rate",
            "use_patch_bias": "bool",
            "kernel_initializer": "initializer",
            "bias_initializer": "initializer",
        },
    ),
    "ScaledSinusoidalEncoding": (
        {"max_sequence_length": 16},
        {"max_sequence_length": "positive_int", "dropout": "rate"},
    ),
    "TransformerEncoderBlock": (
        {"num_heads": 2, "intermediate_dim": 8},
        {
            "num_heads": "positive_int",
            "intermediate_dim": "positive_int",
            "key_dim": "optional_positive_int",
            "normalize_first": "bool",
            "dropout": "rate",
            "attention_dropout": "rate",
            "activation": "activation",
            "layer_norm_epsilon": "positive_number",
            "use_attention_bias": "bool",
            "kernel_initializer": "initializer",
            "bias_initializer": "initializer",
        },
    ),
}

# Values that are wrong for one argument only, beyond the kinds above.
EXTRA = [
    ("NeuralAttention", "hidden_units", value)
    for value in [0, (), (2, 0), (2.0,), "8", True, [None]]
] + [
    ("NeuralAttention", "activation", value)
    for value in ["no_such_activation", 3, [1]]
] + [
    ("NeuralAttention", "implementation", value)
    for value in ["fast", None, 1]
] + [
    ("NeuralAttention", "query_chunk_size", value)
    for value in [0, -4, True, 2.5, "big"]
] + [
    ("ExpressiveAttention", "normalization", value)
    for value in ["dot_product", None, 1]
] + [
    ("ExpressiveAttention", "epsilon", value)
    for value in [0, -1.0, "1e-6", None, math.nan]
] + [
    (name, "flash_attention", True)
    for name in ("NeuralAttention", "ExpressiveAttention")
] + [
    (name, "sliding_window", value)
    for name in ("NeuralAttention", "ExpressiveAttention")
    for value in [0, -2, True, 2.5]
] + [
    (name, "use_gate", value)
    for name in ("NeuralAttention", "ExpressiveAttention")
    for value in [1, "no"]
] + [
    ("SynapticGating", "mode", value) for value in ["all", None, 1]
] + [
    ("PatchEmbedding", "patch_size", value)
    for value in [(2,), (2, 0), (2, 2, 2), "2x2"]
] + [
    ("PatchEmbedding", "position_embedding", value)
    for value in ["rope", None]
] + [
    ("PatchEmbedding", "position_grid_size", value)
    for value in [0, (3,), (3, -1)]
] + [
    ("ScaledSinusoidalEncoding", "frequencies", value)
    for value in ["paper", None]
] + [
    ("ScaledSinusoidalEncoding", "input_scale", value)
    for value in ["2", True, math.nan, math.inf]
] + [
    ("TransformerEncoderBlock", "attention_type", value)
    for value in ["linear", None]
] + [
    ("TransformerEncoderBlock", "attention_options", value)
    for value in [
        "projection_dim=2",
        [("projection_dim", 2)],
        {"num_heads": 4},
        {"dropout": 0.1},
        {"no_such_argument": 1},
    ]
]


def _cases():
    cases = []
    for layer_name, (base, kinds) in LAYERS.items():
        for argument, kind in kinds.items():
            for value in WRONG[kind]:
                cases.append((layer_name, argument, value))
    cases.extend(EXTRA)
    return cases


CASES = _cases()


def test_there_are_about_250_cases():
    assert len(CASES) >= 250, len(CASES)


@pytest.mark.parametrize(
    "layer_name, argument, value",
    CASES,
    ids=[f"{n}-{a}-{v!r}" for n, a, v in CASES],
)
def test_wrong_argument_raises_an_error_that_names_it(
    layer_name, argument, value
):
    base, _ = LAYERS[layer_name]
    cls = getattr(layers, layer_name)
    with pytest.raises((ValueError, TypeError)) as info:
        cls(**{**base, argument: value})
    assert f"`{argument}`" in str(info.value) or f"{argument}=" in str(
        info.value
    ), str(info.value)


# Values `keras.layers.MultiHeadAttention` accepts and handles correctly:
# each of our attention layers accepts them too.
ACCEPTED = [
    ("dropout", 0),
    ("dropout", 0.5),
    ("dropout", np.float32(0.25)),
    ("output_shape", 6),
    ("output_shape", (6,)),
    ("output_shape", [6]),
    ("output_shape", (2, 3)),
    ("output_shape", None),
    ("value_dim", 3),
    ("value_dim", None),
    ("use_bias", False),
    ("seed", 3),
    ("seed", np.int64(3)),
    ("seed", None),
    ("kernel_initializer", keras.initializers.HeNormal(seed=1)),
    ("kernel_initializer", {"class_name": "Zeros", "config": {}}),
    ("kernel_regularizer", "l2"),
    ("bias_constraint", "non_neg"),
    ("sliding_window", 2),
    ("use_gate", True),
]


@pytest.mark.parametrize(
    "layer_name",
    [
        "NeuralAttention",
        "ExpressiveAttention",
        "CachedNeuralAttention",
        "CachedExpressiveAttention",
    ],
)
@pytest.mark.parametrize(
    "argument, value", ACCEPTED,
    # Objects by class name: a repr with a memory address differs between
    # the processes of a parallel (pytest-xdist) run.
    ids=[f"{a}-{type(v).__name__ if ' at 0x' in repr(v) else repr(v)}"
         for a, v in ACCEPTED]
)
def test_what_multi_head_attention_accepts_is_accepted(
    layer_name, argument, value
):
    kwargs = {"num_heads": 2, "key_dim": 4, argument: value}
    keras.layers.MultiHeadAttention(**kwargs)
    getattr(layers, layer_name)(**kwargs)


def test_attention_layer_with_accepted_arguments_computes():
    layer = layers.NeuralAttention(
        num_heads=2, key_dim=4, dropout=0, output_shape=[2, 3], seed=1,
        use_bias=False,
    )
    x = np.ones((1, 5, 3), "float32")
    assert tuple(layer(x, x).shape) == (1, 5, 2, 3)


def test_multi_head_attention_is_silent_where_we_are_not():
    # The values issue 10 found accepted by MultiHeadAttention itself.
    for kwargs in (
        {"num_heads": True, "key_dim": 4},
        {"num_heads": 2, "key_dim": True},
        {"num_heads": 2, "key_dim": 4, "output_shape": 0},
        {"num_heads": 2, "key_dim": 4, "dropout": 1.5},
    ):
        keras.layers.MultiHeadAttention(**kwargs)
        with pytest.raises((ValueError, TypeError)):
            layers.NeuralAttention(**kwargs)


def test_messages_name_argument_value_and_accepted_values():
    with pytest.raises(ValueError) as info:
        layers.NeuralAttention(num_heads=2, key_dim=4, dropout=1.5)
    message = str(info.value)
    assert "`dropout`" in message and "[0, 1)" in message
    assert "dropout=1.5" in message
    with pytest.raises(TypeError) as info:
        layers.ExpressiveAttention(num_heads=True, key_dim=4)
    assert "positive integer" in str(info.value)
    assert "num_heads=True" in str(info.value)
    with pytest.raises(ValueError) as info:
        layers.CachedNeuralAttention(num_heads=2, key_dim=4, output_shape=(0,))
    assert "output_shape=(0,)" in str(info.value)


def test_checks_return_the_normalized_values():
    assert argument_checks.check_rate("dropout", 0) == 0.0
    assert argument_checks.check_positive_int("units", np.int64(3)) == 3
    assert argument_checks.check_seed("seed", None) is None
    assert argument_checks.check_bool("use_bias", np.bool_(True)) is True
    assert argument_checks.check_activation("activation", None)(2.0) == 2.0
