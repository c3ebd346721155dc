"""The paper's language model backbone inside KerasHub's GPT-2 task."""

import os

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers import CachedNeuralAttention
from keras_neural_attention.models import RELEASED_CODE_PARAMETER_COUNTS
from keras_neural_attention.models import NeuralAttentionLMBackbone
from keras_neural_attention.models import neural_attention_parameter_count
from keras_neural_attention.models import paper_lm_backbone
from keras_neural_attention.models import paper_lm_parameter_count

VOCAB = 23
TINY = dict(
    vocabulary_size=VOCAB,
    num_layers=2,
    num_heads=2,
    hidden_dim=64,
    intermediate_dim=32,
    max_sequence_length=12,
    dropout=0.0,
)
# Right-padded prompts of lengths 3 and 5 in a length-8 buffer.
PROMPT_IDS = np.array(
    [[5, 6, 7, 0, 0, 0, 0, 0], [1, 2, 3, 4, 9, 0, 0, 0]], "int32"
)
PROMPT_MASK = (np.arange(8)[None] < np.array([[3], [5]])).astype("int32")


def to_numpy(x):
    return ops.convert_to_numpy(x)


def make_lm(**overrides):
    keras.utils.set_random_seed(0)
    config = dict(TINY)
    config.update(overrides)
    backbone = NeuralAttentionLMBackbone(**config)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


@pytest.fixture(scope="module")
def lm():
    return make_lm()


def test_paper_parameter_counts_match_released_code():
    for attention, released in RELEASED_CODE_PARAMETER_COUNTS.items():
        assert paper_lm_parameter_count(attention) == released
    assert neural_attention_parameter_count(64) == 275
    # The vision configuration's scoring network (head size 96, d' = 3).
    assert neural_attention_parameter_count(96) == 609


@pytest.mark.parametrize(
    "attention, overrides",
    [
        ("neural", {}),
        ("dot_product", {"use_attention_bias": True, "tie_weights": True}),
        ("neural", {"attention_layers": [0, -1], "projection_dim": 3,
                    "hidden_units": [4, 2], "use_output_bias": False}),
    ],
)
def test_parameter_count_formula_matches_built_model(attention, overrides):
    config = dict(TINY)
    config.update(overrides)
    backbone = NeuralAttentionLMBackbone(attention=attention, **config)
    sizes = {
        k: v for k, v in config.items()
        if k not in ("dropout", "max_sequence_length")
    }
    assert backbone.count_params() == paper_lm_parameter_count(
        attention, **sizes
    )


def test_attention_per_layer_and_paper_builder():
    backbone = paper_lm_backbone(
        "neural", vocabulary_size=VOCAB, num_layers=3, num_heads=1,
        hidden_dim=64, intermediate_dim=32, max_sequence_length=12,
    )
    attention_layers = [
        layer._self_attention_layer for layer in backbone.transformer_layers
    ]
    assert type(attention_layers[0]) is CachedNeuralAttention
    # Head size 64, as in the paper: d' = 64 // 32 = 2.
    assert attention_layers[0].projection_dim == 2
    for layer in attention_layers[1:]:
        assert type(layer) is keras_hub.layers.CachedMultiHeadAttention
    for layer in attention_layers:
        assert layer._use_bias is False
        assert layer._dropout == 0.0
    assert not backbone.transformer_layers[0].normalize_first
    assert backbone.num_layers == 3 and backbone.hidden_dim == 64
    assert backbone.intermediate_dim == 32
    assert backbone.transformer_layers[0].dropout == 0.1


def test_greedy_generate_follows_uncached_argmax(lm):
    logits = to_numpy(
        lm({"token_ids": PROMPT_IDS, "padding_mask": PROMPT_MASK})
    )
    assert np.isfinite(logits).all()
    lm.compile(sampler="greedy")
    out = lm.generate(
        {"token_ids": PROMPT_IDS, "padding_mask": PROMPT_MASK},
        stop_token_ids=None,
    )
    tokens = to_numpy(out["token_ids"])
    np.testing.assert_array_equal(tokens[PROMPT_MASK == 1],
                                  PROMPT_IDS[PROMPT_MASK == 1])
    # First generated token = argmax of the uncached forward pass.
    assert tokens[0, 3] == np.argmax(logits[0, 2])
    assert tokens[1, 5] == np.argmax(logits[1, 4])
    # Every generated token is the argmax of the uncached forward pass over
    # the generated sequence (cached and uncached decoding agree).
    full = to_numpy(lm({"token_ids": tokens,
                        "padding_mask": np.ones_like(tokens)}))
    for row, length in enumerate((3, 5)):
        np.testing.assert_array_equal(
            tokens[row, length:], np.argmax(full[row, length - 1:-1], -1)
        )


def test_top_k_and_random_sampling_generate(lm):
    inputs = {"token_ids": PROMPT_IDS, "padding_mask": PROMPT_MASK}
    lm.compile(sampler=keras_hub.samplers.TopKSampler(k=2, seed=3))
    tokens = to_numpy(lm.generate(inputs, stop_token_ids=None)["token_ids"])
    full = to_numpy(lm({"token_ids": tokens,
                        "padding_mask": np.ones_like(tokens)}))
    for row, length in enumerate((3, 5)):
        for position in range(length, tokens.shape[1]):
            top2 = np.argsort(full[row, position - 1])[-2:]
            assert tokens[row, position] in top2
    lm.compile(sampler=keras_hub.samplers.RandomSampler(seed=4))
    tokens = to_numpy(lm.generate(inputs, stop_token_ids=None)["token_ids"])
    np.testing.assert_array_equal(tokens[PROMPT_MASK == 1],
                                  PROMPT_IDS[PROMPT_MASK == 1])
    assert ((tokens >= 0) & (tokens < VOCAB)).all()


def test_training_steps_lower_the_loss():
    lm = make_lm(num_layers=1)
    lm.compile(optimizer=keras.optimizers.Adam(1e-2), sampler="greedy")
    rng = np.random.default_rng(0)
    sequences = rng.integers(1, VOCAB, size=(4, 9)).astype("int32")
    x = {"token_ids": sequences[:, :-1],
         "padding_mask": np.ones((4, 8), "int32")}
    y = sequences[:, 1:]
    losses = [
        float(lm.train_on_batch(x, y, return_dict=True)["loss"])
        for _ in range(10)
    ]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0], losses


def test_saved_causal_lm_gives_identical_outputs(tmp_path):
    lm = make_lm(attention_layers=[1], hidden_units=[3])
    inputs = {"token_ids": PROMPT_IDS, "padding_mask": PROMPT_MASK}
    path = os.path.join(tmp_path, "lm.keras")
    lm.save(path)
    revived = keras.saving.load_model(path)
    assert type(revived.backbone) is NeuralAttentionLMBackbone
    assert revived.backbone.get_config() == lm.backbone.get_config()
    np.testing.assert_allclose(to_numpy(revived(inputs)),
                               to_numpy(lm(inputs)), rtol=1e-6, atol=1e-6)


def test_left_padding_never_produces_nan(lm):
    ids = np.array([[0, 0, 0, 4, 5, 6], [0, 0, 0, 0, 0, 0]], "int32")
    mask = (ids > 0).astype("int32")
    logits = to_numpy(lm({"token_ids": ids, "padding_mask": mask}))
    assert np.isfinite(logits).all()


@pytest.mark.parametrize(
    "overrides, argument",
    [
        ({"attention": "softmax"}, "attention"),
        ({"attention_layers": [2]}, "attention_layers"),
        ({"attention_layers": 0}, "attention_layers"),
        ({"hidden_dim": 63}, "hidden_dim"),
        ({"num_layers": 0}, "num_layers"),
        ({"positional_encoding": "rope"}, "positional_encoding"),
        ({"attention": "dot_product", "projection_dim": 2}, "projection_dim"),
    ],
)
def test_bad_arguments_raise_value_error(overrides, argument):
    config = dict(TINY)
    config.update(overrides)
    with pytest.raises(ValueError, match=argument):
        NeuralAttentionLMBackbone(**config)


def test_parameter_count_rejects_unknown_arguments():
    with pytest.raises(ValueError, match="attention"):
        paper_lm_parameter_count("flash")
    with pytest.raises(ValueError, match="num_expert"):
        paper_lm_parameter_count("neural", num_experts=2)
