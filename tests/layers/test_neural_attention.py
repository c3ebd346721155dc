"""Behaviour of `NeuralAttention` against independent references."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers import NeuralAttention
from tests import numpy_reference
from tests.backend_utils import to_numpy

BACKEND = keras.backend.backend()


def random_inputs(rng, batch=2, t=5, s=7, dim=12):
    query = rng.normal(size=(batch, t, dim)).astype("float32")
    value = rng.normal(size=(batch, s, dim)).astype("float32")
    return query, value


def weights_by_path(layer):
    return {w.path: to_numpy(w).astype("float64") for w in layer.weights}


def randomize_biases(layer, rng):
    """Zero-initialized biases would hide bias bugs: give them values."""
    for w in layer.weights:
        if "bias" in w.path:
            w.assign(rng.normal(size=w.shape).astype(w.dtype) * 0.5)


LAYER_CASES = [
    dict(),
    dict(projection_dim=3, hidden_units=(4,)),
    dict(projection_dim=2, hidden_units=(5, 3, 2)),
    dict(projection_dim=3, hidden_units=(4, 2), share_scoring_across_heads=False),
    dict(projection_dim=2, hidden_units=(3,), activation="tanh"),
]


@pytest.mark.parametrize("case", LAYER_CASES)
@pytest.mark.parametrize("implementation", ["reference", "factored"])
@pytest.mark.parametrize("chunk", [None, 2])
def test_matches_numpy_reference_of_released_code(case, implementation, chunk):
    rng = np.random.default_rng(0)
    query, value = random_inputs(rng)
    layer = NeuralAttention(
        num_heads=3,
        key_dim=8,
        implementation=implementation,
        query_chunk_size=chunk,
        **case,
    )
    layer(query, value)
    randomize_biases(layer, rng)
    mask = rng.random((2, 5, 7)) > 0.3
    out, scores = layer(
        query, value, attention_mask=mask, return_attention_scores=True
    )
    activation = np.tanh if case.get("activation") == "tanh" else None
    ref_out, ref_probs = numpy_reference.layer_forward(
        weights_by_path(layer),
        query.astype("float64"),
        value.astype("float64"),
        mask=mask,
        **({"activation": activation} if activation else {}),
    )
    np.testing.assert_allclose(to_numpy(out), ref_out, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        to_numpy(scores), ref_probs, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("case", LAYER_CASES)
def test_reference_and_factored_agree(case):
    rng = np.random.default_rng(1)
    query, value = random_inputs(rng, batch=3, t=9, s=6, dim=16)
    mask = rng.random((3, 9, 6)) > 0.25
    outputs = []
    for implementation in ("reference", "factored", "auto"):
        keras.utils.set_random_seed(7)
        layer = NeuralAttention(
            num_heads=2, key_dim=8, implementation=implementation, **case
        )
        out, scores = layer(
            query, value, attention_mask=mask, return_attention_scores=True
        )
        outputs.append((to_numpy(out), to_numpy(scores)))
    for out, scores in outputs[1:]:
        np.testing.assert_allclose(out, outputs[0][0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            scores, outputs[0][1], rtol=1e-5, atol=1e-5
        )


def test_default_sizes_follow_released_code():
    layer = NeuralAttention(num_heads=8, key_dim=64)
    assert layer.projection_dim == 2
    assert layer.hidden_units == (2, 1)
    layer = NeuralAttention(num_heads=8, key_dim=96)
    assert layer.projection_dim == 3
    assert layer.hidden_units == (3, 1)
    layer = NeuralAttention(num_heads=2, key_dim=16)
    assert layer.projection_dim == 1
    assert layer.hidden_units == (1, 1)
    # Extra parameters over MultiHeadAttention: 275 for the paper's NLP
    # configuration (dim 512, 8 heads, head 64, d' = 2), as in the notes.
    x = np.zeros((1, 4, 512), "float32")
    neural = NeuralAttention(num_heads=8, key_dim=64, use_bias=False)
    neural(x, x)
    base = keras.layers.MultiHeadAttention(
        num_heads=8, key_dim=64, use_bias=False
    )
    base(x, x)
    assert neural.count_params() - base.count_params() == 275


def test_default_scoring_network_is_alive_at_initialization():
    """A dead ReLU scoring network gives uniform attention forever."""
    rng = np.random.default_rng(20)
    x = rng.normal(size=(2, 16, 128)).astype("float32")
    for seed in range(10):
        keras.utils.set_random_seed(seed)
        layer = NeuralAttention(num_heads=4, key_dim=64)
        _, scores = layer(x, x, return_attention_scores=True)
        scores = to_numpy(scores)
        varying_rows = (scores.std(axis=-1) > 0).mean()
        assert varying_rows > 0.5, f"mostly uniform attention, seed {seed}"
        for kernel in layer.score_hidden_kernels[1:]:
            assert to_numpy(kernel).min() >= 0


def test_cross_attention_shapes_and_probabilities():
    rng = np.random.default_rng(2)
    query, value = random_inputs(rng, batch=2, t=4, s=9, dim=10)
    layer = NeuralAttention(num_heads=3, key_dim=6, value_dim=5)
    out, scores = layer(query, value, return_attention_scores=True)
    assert tuple(out.shape) == (2, 4, 10)
    assert tuple(scores.shape) == (2, 3, 4, 9)
    np.testing.assert_allclose(to_numpy(scores).sum(-1), 1.0, atol=1e-5)
    key = rng.normal(size=(2, 9, 3)).astype("float32")
    layer2 = NeuralAttention(num_heads=2, key_dim=4, output_shape=7)
    out = layer2(query, value, key=key)
    assert tuple(out.shape) == (2, 4, 7)


def test_symbolic_cross_attention_spec():
    q = keras.Input((4, 10))
    v = keras.Input((9, 10))
    out, scores = NeuralAttention(num_heads=3, key_dim=6)(
        q, v, return_attention_scores=True
    )
    assert tuple(out.shape) == (None, 4, 10)
    assert tuple(scores.shape) == (None, 3, 4, 9)


@pytest.mark.parametrize("implementation", ["reference", "factored"])
@pytest.mark.parametrize("chunk", [None, 3])
def test_causal_mask_leaks_nothing_from_the_future(implementation, chunk):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 8, 12)).astype("float32")
    layer = NeuralAttention(
        num_heads=2,
        key_dim=8,
        projection_dim=3,
        hidden_units=(4,),
        implementation=implementation,
        query_chunk_size=chunk,
    )
    base = to_numpy(layer(x, x, use_causal_mask=True))
    for t in range(8):
        changed = x.copy()
        changed[:, t + 1 :] = rng.normal(size=changed[:, t + 1 :].shape)
        out = to_numpy(layer(changed, changed, use_causal_mask=True))
        np.testing.assert_allclose(out[:, : t + 1], base[:, : t + 1],
                                   rtol=1e-5, atol=1e-5)
        if t < 7:
            assert not np.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_causal_mask_matches_explicit_lower_triangular_mask():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 6, 12)).astype("float32")
    layer = NeuralAttention(num_heads=2, key_dim=8)
    causal = to_numpy(layer(x, x, use_causal_mask=True))
    tril = np.tril(np.ones((6, 6), bool))[None]
    explicit = to_numpy(layer(x, x, attention_mask=np.repeat(tril, 2, 0)))
    np.testing.assert_allclose(causal, explicit, rtol=1e-6, atol=1e-6)


def test_padding_mask_from_embedding():
    rng = np.random.default_rng(5)
    tokens = rng.integers(1, 20, size=(2, 7))
    tokens[0, 5:] = 0
    tokens[1, 3:] = 0
    embedding = keras.layers.Embedding(20, 12, mask_zero=True)
    layer = NeuralAttention(num_heads=2, key_dim=8)
    x = embedding(tokens)
    out = to_numpy(layer(x, x))
    # Changing padded tokens changes nothing at real positions.
    other = tokens.copy()
    other[0, 5:] = 0
    other[1, 3:] = 0
    other_x = ops.convert_to_numpy(embedding(other))
    noise = rng.normal(size=other_x.shape).astype("float32")
    padded = (tokens == 0)[..., None]
    perturbed = np.where(padded, noise, to_numpy(x))
    keys_mask = tokens != 0
    out2 = to_numpy(
        layer(
            perturbed,
            perturbed,
            attention_mask=keys_mask[:, None, :] & keys_mask[:, :, None],
        )
    )
    real = ~(tokens == 0)
    np.testing.assert_allclose(out2[real], out[real], rtol=1e-5, atol=1e-5)
    # The explicit mask equals the one derived from the Keras mask.
    explicit = to_numpy(
        layer(
            to_numpy(x),
            to_numpy(x),
            attention_mask=keys_mask[:, None, :] & keys_mask[:, :, None],
        )
    )
    np.testing.assert_allclose(explicit[real], out[real], rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("implementation", ["reference", "factored"])
@pytest.mark.parametrize("chunk", [None, 2])
def test_fully_masked_rows_output_zeros_not_nan(implementation, chunk):
    rng = np.random.default_rng(6)
    query, value = random_inputs(rng, batch=2, t=5, s=4, dim=8)
    mask = rng.random((2, 5, 4)) > 0.3
    mask[0, 1] = False
    mask[1, :] = False
    layer = NeuralAttention(
        num_heads=2,
        key_dim=4,
        use_bias=False,
        implementation=implementation,
        query_chunk_size=chunk,
    )
    out, scores = layer(
        query, value, attention_mask=mask, return_attention_scores=True
    )
    out, scores = to_numpy(out), to_numpy(scores)
    assert np.isfinite(out).all() and np.isfinite(scores).all()
    # Without output bias, a row that attends to nothing is exactly zero.
    np.testing.assert_array_equal(out[0, 1], 0.0)
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(scores[1], 0.0)
    np.testing.assert_array_equal(scores[~np.repeat(mask[:, None], 2, 1)], 0.0)


def test_permutation_equivariance_without_mask():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 6, 12)).astype("float32")
    perm = rng.permutation(6)
    layer = NeuralAttention(num_heads=2, key_dim=8, projection_dim=3)
    out = to_numpy(layer(x, x))
    out_perm = to_numpy(layer(x[:, perm], x[:, perm]))
    np.testing.assert_allclose(out_perm, out[:, perm], rtol=1e-5, atol=1e-5)


def test_dropout_only_in_training():
    rng = np.random.default_rng(8)
    query, value = random_inputs(rng, t=6, s=6)
    layer = NeuralAttention(num_heads=2, key_dim=8, dropout=0.5, seed=1)
    a = to_numpy(layer(query, value, training=False))
    b = to_numpy(layer(query, value, training=False))
    np.testing.assert_array_equal(a, b)
    c, scores = layer(
        query, value, training=True, return_attention_scores=True
    )
    assert not np.allclose(to_numpy(c), a)
    # Returned scores are the probabilities before dropout.
    np.testing.assert_allclose(to_numpy(scores).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(projection_dim=0), "projection_dim"),
        (dict(projection_dim=2.5), "projection_dim"),
        (dict(projection_dim=True), "projection_dim"),
        (dict(hidden_units=()), "hidden_units"),
        (dict(hidden_units=(4, 0)), "hidden_units"),
        (dict(hidden_units="4"), "hidden_units"),
        (dict(activation="not_an_activation"), "activation"),
        (dict(activation=3), "activation"),
        # Keras resolves these names, but they are not elementwise
        # one-argument functions: refused at construction, not at the call.
        (dict(activation="glu"), "activation.*glu"),
        (dict(activation="threshold"), "activation.*threshold"),
        (dict(activation=lambda x: x[..., :1]), "activation.*shape"),
        (dict(implementation="separable", hidden_units=(3, 2),
              activation="square"), None),
        (dict(share_scoring_across_heads="yes"), "share_scoring_across_heads"),
        (dict(implementation="fast"), "implementation"),
        (dict(query_chunk_size=0), "query_chunk_size"),
        (dict(query_chunk_size=-4), "query_chunk_size"),
        (dict(query_chunk_size="big"), "query_chunk_size"),
        (dict(flash_attention=True), "flash_attention"),
        (dict(attention_axes=(1, 1)), "attention_axes"),
        (dict(attention_axes=()), "attention_axes"),
        (dict(num_heads=0), "num_heads"),
        (dict(key_dim=-1), "key_dim"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(num_heads=2, key_dim=8)
    args.update(kwargs)
    if name is None:
        # Accepted at construction; refused, naming the reason, at the call.
        layer = NeuralAttention(**args)
        x = np.zeros((1, 3, 8), "float32")
        with pytest.raises(ValueError, match="separable.*hidden layer"):
            layer(x, x)
        return
    with pytest.raises(ValueError, match=name):
        NeuralAttention(**args)


def test_glu_message_names_what_is_accepted():
    with pytest.raises(ValueError) as info:
        NeuralAttention(num_heads=2, key_dim=8, activation="glu")
    message = str(info.value)
    assert "Received: activation='glu'" in message
    assert "'square'" in message and "same shape" in message


@pytest.mark.parametrize("activation", ["square", "cube", "exponential",
                                        "linear"])
def test_separable_activations_match_the_factored_path(activation):
    rng = np.random.default_rng(21)
    query, value = random_inputs(rng)
    mask = rng.random((2, 5, 7)) > 0.3
    auto = NeuralAttention(num_heads=2, key_dim=8, projection_dim=2,
                           hidden_units=(3,), activation=activation)
    auto(query, value)
    randomize_biases(auto, rng)
    factored = NeuralAttention.from_config(
        dict(auto.get_config(), implementation="factored")
    )
    factored(query, value)
    factored.set_weights(auto.get_weights())
    for kwargs in (dict(attention_mask=mask), dict(use_causal_mask=True)):
        got = to_numpy(auto(query, value, **kwargs))
        expected = to_numpy(factored(query, value, **kwargs))
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_named_activation_saves_and_reloads(tmp_path):
    rng = np.random.default_rng(22)
    inputs = keras.Input((6, 12))
    layer = NeuralAttention(num_heads=2, key_dim=8, hidden_units=(3,),
                            activation="square")
    outputs = layer(inputs, inputs)
    model = keras.Model(inputs, outputs)
    x = rng.normal(size=(2, 6, 12)).astype("float32")
    before = to_numpy(model(x))
    path = os.path.join(tmp_path, "square.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(reloaded(x)), before)
    revived = [l for l in reloaded.layers if isinstance(l, NeuralAttention)]
    assert revived[0].activation is layer.activation
    clone = NeuralAttention.from_config(layer.get_config())
    assert clone.activation is layer.activation


def test_rejects_inputs_without_a_sequence_axis():
    layer = NeuralAttention(num_heads=2, key_dim=4)
    x = np.zeros((2, 8), "float32")
    with pytest.raises(ValueError, match="rank 3 or more"):
        layer(x, x)


def test_hidden_units_int_and_equivalent_attention_axes_are_accepted():
    layer = NeuralAttention(num_heads=2, key_dim=8, hidden_units=3,
                            attention_axes=1)
    assert layer.hidden_units == (3,)


def test_per_head_scoring_networks_start_different_even_when_seeded():
    layer = NeuralAttention(
        num_heads=3,
        key_dim=8,
        projection_dim=2,
        share_scoring_across_heads=False,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
    )
    x = np.zeros((1, 2, 8), "float32")
    layer(x, x)
    kernel = to_numpy(layer.score_hidden_kernels[0])
    assert kernel.shape == (3, 4, 2)
    assert not np.allclose(kernel[0], kernel[1])
    assert not np.allclose(kernel[1], kernel[2])
    # Each head's slice has the scale of a (4, 2) Glorot draw.
    limit = np.sqrt(6.0 / (4 + 2))
    assert np.abs(kernel).max() <= limit


def test_config_round_trip():
    layer = NeuralAttention(
        num_heads=3,
        key_dim=16,
        value_dim=8,
        dropout=0.1,
        projection_dim=4,
        hidden_units=[6, 2],
        activation="gelu",
        share_scoring_across_heads=False,
        implementation="reference",
        query_chunk_size=32,
        use_gate=True,
        name="na",
    )
    config = layer.get_config()
    for key in (
        "projection_dim",
        "hidden_units",
        "activation",
        "share_scoring_across_heads",
        "implementation",
        "query_chunk_size",
    ):
        assert key in config
    clone = NeuralAttention.from_config(config)
    assert clone.get_config() == config
    revived = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(revived, NeuralAttention)
    assert revived.get_config() == config


@pytest.mark.parametrize("share", [True, False])
def test_model_saves_and_reloads_to_identical_outputs(tmp_path, share):
    rng = np.random.default_rng(9)
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(30, 16, mask_zero=True)(tokens)
    x = NeuralAttention(
        num_heads=2,
        key_dim=8,
        projection_dim=3,
        hidden_units=(4, 2),
        share_scoring_across_heads=share,
        dropout=0.1,
    )(x, x, use_causal_mask=True)
    outputs = keras.layers.Dense(3)(x)
    model = keras.Model(tokens, outputs)
    data = rng.integers(0, 30, size=(3, 6))
    before = to_numpy(model(data))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    after = to_numpy(reloaded(data))
    np.testing.assert_array_equal(after, before)
    layer = [l for l in reloaded.layers if isinstance(l, NeuralAttention)]
    assert len(layer) == 1


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    rng = np.random.default_rng(10)
    query, value = random_inputs(rng, batch=2, t=6, s=5, dim=16)
    mask = rng.random((2, 6, 5)) > 0.3
    mask[0, 2] = False
    reference = NeuralAttention(num_heads=2, key_dim=8, projection_dim=3)
    ref_out = to_numpy(reference(query, value, attention_mask=mask))
    layer = NeuralAttention(
        num_heads=2, key_dim=8, projection_dim=3, dtype=policy
    )
    layer(query, value)
    layer.set_weights(reference.get_weights())
    out, scores = layer(
        query, value, attention_mask=mask, return_attention_scores=True
    )
    compute = policy.split("_")[1]
    assert keras.backend.standardize_dtype(out.dtype) == compute
    assert keras.backend.standardize_dtype(scores.dtype) == compute
    for w in layer.weights:
        assert keras.backend.standardize_dtype(w.dtype) == "float32"
    out = to_numpy(out).astype("float32")
    assert np.isfinite(out).all()
    tolerance = 5e-2 if compute == "bfloat16" else 1e-2
    np.testing.assert_allclose(out, ref_out, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(
        to_numpy(scores).astype("float32").sum(-1)[mask.any(-1)[:, None]
                                                   .repeat(2, 1)],
        1.0,
        atol=tolerance,
    )


def test_trains_inside_model_fit():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(64, 8, 6)).astype("float32")
    # Target: every position predicts the sequence mean of feature 0, a
    # permutation-equivariant function that attention can represent.
    y = np.repeat(x[:, :, :1].mean(1, keepdims=True), 8, axis=1) * 3.0
    inputs = keras.Input((8, 6))
    h = NeuralAttention(
        num_heads=2, key_dim=8, projection_dim=4, hidden_units=(8,),
        query_chunk_size=3, dropout=0.1,
    )(inputs, inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0]


def test_keras_layer_test_contract():
    from keras.src import testing

    class Case(testing.TestCase):
        def runTest(self):
            self.run_layer_test(
                NeuralAttention,
                init_kwargs=dict(
                    num_heads=2, key_dim=4, projection_dim=2,
                    hidden_units=(3,),
                ),
                input_shape={"query_shape": (2, 5, 8),
                             "value_shape": (2, 3, 8)},
                expected_output_shape=(2, 5, 8),
                expected_num_trainable_weights=16,
                expected_num_non_trainable_weights=0,
                expected_num_seed_generators=0,
                supports_masking=True,
                run_training_check=False,
            )

    result = Case().run()
    assert result.wasSuccessful(), result.errors + result.failures


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="only TensorFlow traces graphs with an unknown sequence length",
)
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("chunk", [3, 64, "auto", "auto-small"])
def test_unknown_sequence_length_in_tensorflow_graph(with_mask, chunk,
                                                     monkeypatch):
    import tensorflow as tf

    from keras_neural_attention.ops import attention as attention_ops

    if chunk == "auto-small":
        # Blocks of 2 rows at these sizes, sized while the graph runs.
        monkeypatch.setattr(attention_ops, "AUTO_CHUNK_ELEMENTS",
                            2 * 2 * 2 * 7 * 2)
        chunk = "auto"
    scores = attention_ops.pair_scores

    def no_longer_than_the_queries(q_block, *args):
        # A block size past the query length used to pad the queries to
        # it: "auto" with an unknown length padded 7 rows to millions.
        tf.debugging.assert_less_equal(tf.shape(q_block)[2], 7)
        return scores(q_block, *args)

    monkeypatch.setattr(attention_ops, "pair_scores",
                        no_longer_than_the_queries)
    rng = np.random.default_rng(12)
    layer = NeuralAttention(num_heads=2, key_dim=8, query_chunk_size=chunk)
    x = rng.normal(size=(2, 7, 12)).astype("float32")
    mask = rng.random((2, 7, 7)) > 0.3
    mask[1, 2] = False
    eager = to_numpy(
        layer(x, x, attention_mask=mask if with_mask else None)
    )

    if with_mask:
        fn = tf.function(
            lambda a, m: layer(a, a, attention_mask=m),
            input_signature=[
                tf.TensorSpec((None, None, 12), tf.float32),
                tf.TensorSpec((None, None, None), tf.bool),
            ],
        )
        graph = fn(x, mask).numpy()
    else:
        fn = tf.function(
            lambda a: layer(a, a),
            input_signature=[tf.TensorSpec((None, None, 12), tf.float32)],
        )
        graph = fn(x).numpy()
    np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-5)
