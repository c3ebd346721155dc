"""Attention surgery on stock KerasHub backbones: GPT-2, OPT and ViT built
from configs, saved as local presets, loaded and converted."""

import importlib

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers import CachedExpressiveAttention
from keras_neural_attention.layers import CachedNeuralAttention
from keras_neural_attention.layers import NeuralAttention
from keras_neural_attention.models import SURGERY_TABLE
from keras_neural_attention.models import TransformerDecoder
from keras_neural_attention.models import paper_lm_backbone
from keras_neural_attention.models import replace_attention
from keras_neural_attention.models import replaced_attention_class
from keras_neural_attention.models import supported_backbones

DECODER = dict(vocabulary_size=23, num_layers=2, num_heads=2, hidden_dim=8,
               intermediate_dim=16, max_sequence_length=10, dropout=0.0)
VIT = dict(image_shape=(8, 8, 3), patch_size=4, num_layers=2, num_heads=2,
           hidden_dim=8, mlp_dim=16)
PROMPT = {
    "token_ids": np.array([[5, 6, 7, 0, 0, 0, 0, 0],
                           [1, 2, 3, 4, 9, 0, 0, 0]], "int32"),
    "padding_mask": (np.arange(8)[None] < np.array([[3], [5]])).astype(
        "int32"
    ),
}


def numpy(x):
    return ops.convert_to_numpy(x)


def weights_by_path(model):
    return {w.path: numpy(w.value) for w in model.weights}


def stock_from_preset(cls_name, config, tmp_path):
    """A stock backbone built from a config, saved and reloaded as a local
    preset (the "pretrained" model)."""
    keras.utils.set_random_seed(0)
    getattr(keras_hub.models, cls_name)(**config).save_to_preset(
        str(tmp_path / "stock")
    )
    return keras_hub.models.Backbone.from_preset(str(tmp_path / "stock"))


def assert_weights_kept(stock, converted, replaced_prefixes):
    """Every stock weight is in the converted model, unchanged; the only new
    weights are scoring weights of the replaced attention layers."""
    old, new = weights_by_path(stock), weights_by_path(converted)
    for path, value in old.items():
        np.testing.assert_array_equal(new[path], value, err_msg=path)
    for prefix in replaced_prefixes:
        for projection in ("query", "key", "value", "attention_output"):
            assert f"{prefix}/{projection}/kernel" in old
    added = set(new) - set(old)
    assert added and all(
        any(path.startswith(prefix + "/") for prefix in replaced_prefixes)
        for path in added
    ), added


def uncached_greedy(lm, prompt, lengths):
    tokens = prompt["token_ids"].copy()
    for row, length in enumerate(lengths):
        for position in range(length, tokens.shape[1]):
            logits = numpy(lm({"token_ids": tokens[row:row + 1],
                               "padding_mask": np.ones_like(tokens[:1])}))
            tokens[row, position] = np.argmax(logits[0, position - 1])
    return tokens


def test_table_matches_the_installed_keras_hub():
    assert supported_backbones() == ("GPT2Backbone", "OPTBackbone",
                                     "ViTBackbone")
    stock_blocks = {
        "decoder": keras_hub.layers.TransformerDecoder,
        "vit_encoder": importlib.import_module(
            "keras_hub.src.models.vit.vit_layers"
        ).ViTEncoderBlock,
    }
    for spec in SURGERY_TABLE:
        module = importlib.import_module(spec.block_module)
        assert getattr(module, spec.block_name) is (
            stock_blocks[spec.block_kind]
        ), spec
        stock = getattr(keras_hub.models, spec.backbone)
        converted = replaced_attention_class(stock)
        assert issubclass(converted, stock)
        assert keras.saving.get_registered_object(
            f"keras_neural_attention>{converted.__name__}"
        ) is converted
        for name in spec.tasks + spec.preprocessors:
            task = replaced_attention_class(getattr(keras_hub.models, name))
            assert task.backbone_cls is converted


@pytest.mark.parametrize("attention", ["neural", "expressive"])
def test_gpt2_surgery_keeps_weights_generates_and_round_trips(
    attention, tmp_path
):
    stock = stock_from_preset("GPT2Backbone", DECODER, tmp_path)
    kwargs = {"projection_dim": 1} if attention == "neural" else {}
    converted = replace_attention(stock, layers=[0], attention=attention,
                                  **kwargs)
    layers = converted.transformer_layers
    assert type(layers[0]) is TransformerDecoder
    assert type(layers[0]._self_attention_layer) is {
        "neural": CachedNeuralAttention,
        "expressive": CachedExpressiveAttention,
    }[attention]
    assert type(layers[1]) is keras_hub.layers.TransformerDecoder
    config = converted.get_config()
    assert (config["attention"], config["attention_layers"],
            config["attention_kwargs"]) == (attention, [0], kwargs)
    if attention == "neural":
        assert_weights_kept(stock, converted, ["transformer_layer_0/"
                                               "self_attention"])
    else:  # Expressive Attention adds no weights: all are the stock ones.
        assert sorted(weights_by_path(converted)) == sorted(
            weights_by_path(stock)
        )
        for path, value in weights_by_path(stock).items():
            np.testing.assert_array_equal(
                weights_by_path(converted)[path], value
            )

    lm_cls = replaced_attention_class(keras_hub.models.GPT2CausalLM)
    lm = lm_cls(backbone=converted, preprocessor=None)
    lm.compile(sampler="greedy")
    cached = numpy(lm.generate(PROMPT, stop_token_ids=None)["token_ids"])
    np.testing.assert_array_equal(cached, uncached_greedy(lm, PROMPT, (3, 5)))

    expected = numpy(lm(PROMPT))
    preset = str(tmp_path / "converted")
    lm.save_to_preset(preset)
    revived = keras_hub.models.CausalLM.from_preset(preset)
    assert type(revived) is lm_cls
    assert revived.backbone.get_config() == config
    np.testing.assert_allclose(numpy(revived(PROMPT)), expected, atol=1e-6)
    assert type(keras_hub.models.GPT2CausalLM.from_preset(preset)) is lm_cls

    path = str(tmp_path / "converted.keras")
    converted.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is type(converted)
    assert type(reloaded.transformer_layers[0]._self_attention_layer) is (
        type(layers[0]._self_attention_layer)
    )
    np.testing.assert_allclose(numpy(reloaded(PROMPT)),
                               numpy(converted(PROMPT)), atol=1e-6)


def test_fine_tuning_the_converted_gpt2_lowers_the_loss(tmp_path):
    stock = stock_from_preset("GPT2Backbone", DECODER, tmp_path)
    converted = replace_attention(stock, layers=[-1])
    assert converted.attention_layers == (1,)
    lm = replaced_attention_class(keras_hub.models.GPT2CausalLM)(
        backbone=converted, preprocessor=None
    )
    lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(0)
    sequences = rng.integers(1, 23, size=(4, 9)).astype("int32")
    x = {"token_ids": sequences[:, :-1],
         "padding_mask": np.ones((4, 8), "int32")}
    losses = [
        float(lm.train_on_batch(x, sequences[:, 1:], return_dict=True)["loss"])
        for _ in range(12)
    ]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.9 * losses[0], losses


def test_opt_surgery_generates_with_the_cache(tmp_path):
    stock = stock_from_preset("OPTBackbone", DECODER, tmp_path)
    converted = replace_attention(stock, layers=[1], projection_dim=1)
    assert_weights_kept(stock, converted, ["transformer_layer_1/"
                                           "self_attention"])
    lm = replaced_attention_class(keras_hub.models.OPTCausalLM)(
        backbone=converted, preprocessor=None
    )
    lm.compile(sampler="greedy")
    cached = numpy(lm.generate(PROMPT, stop_token_ids=None)["token_ids"])
    np.testing.assert_array_equal(cached, uncached_greedy(lm, PROMPT, (3, 5)))


def test_vit_surgery_keeps_weights_and_round_trips(tmp_path):
    stock = stock_from_preset("ViTBackbone", VIT, tmp_path)
    converted = replace_attention(stock, layers=[0], projection_dim=1)
    block = converted.get_layer("vit_encoder").encoder_layers[0]
    assert type(block.mha) is NeuralAttention
    assert_weights_kept(stock, converted, ["vit_encoder/transformer_block_1/"
                                           "mha"])
    images = np.random.default_rng(1).uniform(size=(2, 8, 8, 3)).astype(
        "float32"
    )
    classifier_cls = replaced_attention_class(
        keras_hub.models.ViTImageClassifier
    )
    classifier = classifier_cls(backbone=converted, num_classes=3)
    expected = numpy(classifier(images))
    preset = str(tmp_path / "converted")
    classifier.save_to_preset(preset)
    revived = keras_hub.models.ImageClassifier.from_preset(preset)
    assert type(revived) is classifier_cls
    np.testing.assert_allclose(numpy(revived(images)), expected, atol=1e-6)

    path = str(tmp_path / "converted.keras")
    converted.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(
        reloaded.get_layer("vit_encoder").encoder_layers[0].mha
    ) is NeuralAttention
    np.testing.assert_allclose(numpy(reloaded(images)),
                               numpy(converted(images)), atol=1e-6)


def test_attention_layer_instance_and_weights_that_do_not_fit(tmp_path):
    stock = stock_from_preset("GPT2Backbone", DECODER, tmp_path)
    layer = CachedNeuralAttention(num_heads=2, key_dim=4, projection_dim=1,
                                  name="anything")
    converted = replace_attention(stock, layers=[1], attention=layer)
    assert converted.get_config()["attention"]["class_name"] == (
        "CachedNeuralAttention"
    )
    assert_weights_kept(stock, converted, ["transformer_layer_1/"
                                           "self_attention"])
    reloaded = type(converted).from_config(converted.get_config())
    assert type(reloaded.transformer_layers[1]._self_attention_layer) is (
        CachedNeuralAttention
    )
    without_bias = CachedNeuralAttention(num_heads=2, key_dim=4,
                                         use_bias=False)
    with pytest.raises(ValueError, match="query/bias"):
        replace_attention(stock, attention=without_bias)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"layers": [2]}, ValueError, "layers"),
        ({"layers": []}, ValueError, "layers"),
        ({"attention": "flash"}, ValueError, "attention"),
        ({"attention": "expressive", "projection_dim": 2}, ValueError,
         "projection_dim"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    keras.utils.set_random_seed(0)
    stock = keras_hub.models.GPT2Backbone(**DECODER)
    with pytest.raises(error, match=match):
        replace_attention(stock, **kwargs)


def test_unsupported_or_converted_backbones_are_refused():
    with pytest.raises(TypeError, match="backbone"):
        replace_attention(paper_lm_backbone(**{**DECODER, "hidden_dim": 64}))
    converted = replace_attention(keras_hub.models.GPT2Backbone(**DECODER))
    with pytest.raises(ValueError, match="already"):
        replace_attention(converted)
