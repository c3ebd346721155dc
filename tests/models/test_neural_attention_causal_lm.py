"""`NeuralAttentionCausalLM`, its preprocessor and tokenizer: KerasHub
presets restore the whole task."""

import json
import os

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.models import NeuralAttentionCausalLM
from keras_neural_attention.models import NeuralAttentionCausalLMPreprocessor
from keras_neural_attention.models import NeuralAttentionLMBackbone
from keras_neural_attention.models import NeuralAttentionLMTokenizer
from keras_neural_attention.models import paper_lm_causal_lm

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on",
              "a", "mat", "dog", "ran"]
TINY = dict(
    vocabulary_size=len(VOCABULARY), num_layers=2, num_heads=2,
    hidden_dim=64, intermediate_dim=32, max_sequence_length=12, dropout=0.0,
)
INPUTS = {
    "token_ids": np.array([[2, 4, 5, 6, 0, 0], [2, 10, 11, 7, 8, 9]],
                          "int32"),
    "padding_mask": np.array([[1, 1, 1, 1, 0, 0], [1] * 6], "int32"),
}


def make_lm(with_preprocessor=True, **overrides):
    keras.utils.set_random_seed(0)
    preprocessor = None
    if with_preprocessor:
        preprocessor = NeuralAttentionCausalLMPreprocessor(
            NeuralAttentionLMTokenizer(VOCABULARY), sequence_length=8
        )
    backbone = NeuralAttentionLMBackbone(**{**TINY, **overrides})
    return NeuralAttentionCausalLM(backbone, preprocessor=preprocessor)


def logits(lm, inputs=INPUTS):
    return ops.convert_to_numpy(lm(inputs))


def test_tokenizer_and_preprocessor_pack_with_bert_special_tokens():
    tokenizer = NeuralAttentionLMTokenizer(VOCABULARY)
    assert (tokenizer.start_token_id, tokenizer.end_token_id,
            tokenizer.pad_token_id) == (2, 3, 0)
    preprocessor = NeuralAttentionCausalLMPreprocessor(
        tokenizer, sequence_length=6
    )
    x, y, sample_weight = preprocessor(["the cat sat"])
    np.testing.assert_array_equal(
        ops.convert_to_numpy(x["token_ids"]), [[2, 4, 5, 6, 3, 0]]
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(y), [[4, 5, 6, 3, 0, 0]])
    np.testing.assert_array_equal(
        ops.convert_to_numpy(sample_weight), [[1, 1, 1, 1, 0, 0]]
    )


def test_paper_builder_returns_our_task():
    lm = paper_lm_causal_lm(**TINY)
    assert type(lm) is NeuralAttentionCausalLM
    assert isinstance(lm, keras_hub.models.CausalLM)
    with pytest.raises(TypeError, match="backbone"):
        NeuralAttentionCausalLM(keras_hub.models.GPT2Backbone(
            vocabulary_size=12, num_layers=1, num_heads=2, hidden_dim=8,
            intermediate_dim=8, max_sequence_length=8))


def test_cached_greedy_generate_equals_uncached_argmax():
    lm = make_lm(with_preprocessor=False)
    lm.compile(sampler="greedy")
    prompt = {
        "token_ids": np.array([[2, 4, 5, 0, 0, 0, 0, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 0, 0, 0, 0, 0]], "int32"),
    }
    tokens = ops.convert_to_numpy(
        lm.generate(prompt, stop_token_ids=None)["token_ids"]
    )
    # Uncached greedy decoding, one full forward pass per new token.
    expected = prompt["token_ids"].copy()
    for position in range(3, 8):
        step = logits(lm, {"token_ids": expected,
                           "padding_mask": np.ones_like(expected)})
        expected[0, position] = np.argmax(step[0, position - 1])
    np.testing.assert_array_equal(tokens, expected)


@pytest.mark.parametrize("task_cls", ["CausalLM", "NeuralAttentionCausalLM"])
def test_preset_round_trip_restores_the_whole_task(task_cls, tmp_path):
    lm = make_lm(attention="expressive", attention_layers=[1])
    preset = str(tmp_path / "preset")
    lm.save_to_preset(preset)
    with open(os.path.join(preset, "metadata.json")) as file:
        assert json.load(file)["tasks"] == ["CausalLM"]
    cls = (keras_hub.models.CausalLM if task_cls == "CausalLM"
           else NeuralAttentionCausalLM)
    revived = cls.from_preset(preset)
    assert type(revived) is NeuralAttentionCausalLM
    assert type(revived.preprocessor) is NeuralAttentionCausalLMPreprocessor
    assert type(revived.preprocessor.tokenizer) is NeuralAttentionLMTokenizer
    assert revived.preprocessor.sequence_length == 8
    assert revived.backbone.get_config() == lm.backbone.get_config()
    np.testing.assert_allclose(logits(revived), logits(lm), atol=1e-6)
    lm.compile(sampler="greedy")
    revived.compile(sampler="greedy")
    assert revived.generate(["the cat"], max_length=7) == lm.generate(
        ["the cat"], max_length=7
    )
    # The other KerasHub entry points find our classes in the preset too.
    assert type(keras_hub.tokenizers.Tokenizer.from_preset(preset)) is (
        NeuralAttentionLMTokenizer
    )
    assert type(keras_hub.models.CausalLMPreprocessor.from_preset(preset)) is (
        NeuralAttentionCausalLMPreprocessor
    )
    assert type(keras_hub.models.Backbone.from_preset(preset)) is (
        NeuralAttentionLMBackbone
    )


def test_keras_file_round_trip(tmp_path):
    lm = make_lm(attention_layers=[0, 1], hidden_units=[3])
    path = str(tmp_path / "lm.keras")
    lm.save(path)
    revived = keras.saving.load_model(path)
    assert type(revived) is NeuralAttentionCausalLM
    assert type(revived.preprocessor) is NeuralAttentionCausalLMPreprocessor
    np.testing.assert_allclose(logits(revived), logits(lm), atol=1e-6)


def test_fit_on_strings_lowers_the_loss():
    pytest.importorskip(
        "tensorflow", reason="KerasHub preprocesses fit() inputs with "
        "tf.data (or grain, not installed)"
    )
    lm = make_lm(num_layers=1)
    lm.compile(optimizer=keras.optimizers.Adam(1e-2), sampler="greedy")
    text = ["the cat sat on a mat", "the dog ran on a mat"] * 2
    history = lm.fit(text, batch_size=4, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0], losses
