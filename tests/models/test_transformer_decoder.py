"""`TransformerDecoder`: KerasHub's decoder with a choice of attention."""

import os

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers import CachedExpressiveAttention
from keras_neural_attention.layers import CachedNeuralAttention
from keras_neural_attention.models import TransformerDecoder

HIDDEN = 16
HEADS = 2


def to_numpy(x):
    return ops.convert_to_numpy(x)


def make_decoder(attention, rng=None, **kwargs):
    decoder = TransformerDecoder(
        intermediate_dim=24, num_heads=HEADS, attention=attention, **kwargs
    )
    decoder.build((2, 6, HIDDEN))
    if rng is not None:
        for w in decoder.weights:
            if "bias" in w.path:
                w.assign(rng.normal(size=w.shape).astype(w.dtype) * 0.3)
    return decoder


ATTENTION_CLASSES = {
    "dot_product": keras_hub.layers.CachedMultiHeadAttention,
    "neural": CachedNeuralAttention,
    "expressive": CachedExpressiveAttention,
}
# KerasHub's block has 16 trainable weights; Neural Attention with
# projection_dim=2 and the default hidden units (2, 1) adds 10.
EXTRA_WEIGHTS = {"dot_product": 0, "neural": 10, "expressive": 0}


@pytest.mark.parametrize("attention", ["dot_product", "neural", "expressive"])
@pytest.mark.parametrize("normalize_first", [False, True])
def test_cached_decoding_equals_full_forward(attention, normalize_first):
    rng = np.random.default_rng(0)
    kwargs = {"projection_dim": 2} if attention == "neural" else {}
    decoder = make_decoder(
        attention, rng, normalize_first=normalize_first, **kwargs
    )
    layer = decoder._self_attention_layer
    assert type(layer) is ATTENTION_CLASSES[attention]
    assert len(decoder.trainable_weights) == 16 + EXTRA_WEIGHTS[attention]
    assert len(decoder.weights) == len(
        {id(w) for w in decoder.weights}
    )

    x = rng.normal(size=(2, 6, HIDDEN)).astype("float32")
    full = to_numpy(decoder(x))
    cache = decoder.empty_self_attention_cache(2, 6)
    assert tuple(cache.shape) == (2, 2, 6, HEADS, HIDDEN // HEADS)
    y, cache = decoder(x[:, :2], self_attention_cache=cache,
                       self_attention_cache_update_index=0)
    steps = [to_numpy(y)]
    for i in range(2, 6):
        y, cache = decoder(x[:, i:i + 1], self_attention_cache=cache,
                           self_attention_cache_update_index=i)
        steps.append(to_numpy(y))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full,
                               rtol=1e-4, atol=1e-4)


def test_subclasses_keras_hub_and_keras_nlp_decoder():
    # `keras-nlp` 0.32 is a shim package re-exporting KerasHub.
    keras_nlp = pytest.importorskip("keras_nlp")

    assert keras_nlp.layers.TransformerDecoder is (
        keras_hub.layers.TransformerDecoder
    )
    assert keras_nlp.layers.CachedMultiHeadAttention is (
        keras_hub.layers.CachedMultiHeadAttention
    )
    assert keras_nlp.models.GPT2CausalLM is keras_hub.models.GPT2CausalLM
    assert issubclass(TransformerDecoder, keras_nlp.layers.TransformerDecoder)


def test_padding_mask_and_cross_attention_stay_finite():
    rng = np.random.default_rng(1)
    decoder = TransformerDecoder(
        intermediate_dim=24, num_heads=HEADS, attention="neural"
    )
    x = rng.normal(size=(2, 6, HIDDEN)).astype("float32")
    memory = rng.normal(size=(2, 4, HIDDEN)).astype("float32")
    # Left padding: the first query of row 0 sees only padded keys.
    padding = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], bool)
    memory_padding = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], bool)
    y = decoder(x, memory, decoder_padding_mask=padding,
                encoder_padding_mask=memory_padding)
    assert decoder._cross_attention_layer is not None
    assert len(decoder.trainable_weights) == 26 + 10
    assert tuple(y.shape) == (2, 6, HIDDEN)
    assert np.isfinite(to_numpy(y)).all()


def test_layer_instance_attention_and_config_round_trip():
    attention = CachedNeuralAttention(
        num_heads=HEADS, key_dim=HIDDEN // HEADS, projection_dim=3,
        hidden_units=(4,), name="my_attention",
    )
    decoder = TransformerDecoder(intermediate_dim=24, num_heads=HEADS,
                                 attention=attention)
    with pytest.raises(ValueError, match="Build the block"):
        decoder.empty_self_attention_cache(2, 6)
    x = np.random.default_rng(2).normal(size=(2, 6, HIDDEN)).astype(
        "float32"
    )
    y = to_numpy(decoder(x))
    assert decoder._self_attention_layer is attention
    config = decoder.get_config()
    assert config["attention"]["registered_name"] == (
        "keras_neural_attention>CachedNeuralAttention"
    )
    revived = TransformerDecoder.from_config(config)
    assert revived.built
    assert type(revived._self_attention_layer) is CachedNeuralAttention
    assert revived._self_attention_layer.hidden_units == (4,)
    revived.set_weights(decoder.get_weights())
    np.testing.assert_allclose(to_numpy(revived(x)), y, rtol=1e-5,
                               atol=1e-5)


def test_saved_model_gives_identical_outputs(tmp_path):
    inputs = keras.Input((6, HIDDEN))
    x = TransformerDecoder(
        intermediate_dim=24, num_heads=HEADS, attention="neural",
        hidden_units=[3, 2], attention_kwargs={"use_bias": False},
    )(inputs)
    x = TransformerDecoder(
        intermediate_dim=24, num_heads=HEADS, attention="expressive",
        normalize_first=True,
        attention_kwargs={"normalization": "softmax"},
    )(x)
    model = keras.Model(inputs, x)
    data = np.random.default_rng(3).normal(size=(2, 6, HIDDEN)).astype(
        "float32"
    )
    path = os.path.join(tmp_path, "decoder.keras")
    model.save(path)
    revived = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(revived(data)),
                               to_numpy(model(data)), rtol=1e-6, atol=1e-6)
    first = revived.layers[1]
    assert type(first) is TransformerDecoder
    assert first._self_attention_layer.hidden_units == (3, 2)
    assert first._self_attention_layer._use_bias is False


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"attention": "flash"}, "attention"),
        ({"attention": 3}, "attention"),
        ({"attention": "dot_product", "projection_dim": 2}, "projection_dim"),
        ({"attention": "expressive", "hidden_units": (2,)}, "hidden_units"),
        ({"attention": "neural", "projection_dim": -1}, "projection_dim"),
        ({"attention": "neural", "attention_kwargs": [1]},
         "attention_kwargs"),
        ({"attention": "dot_product", "attention_kwargs": {"bogus": 1}},
         "attention_kwargs"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        TransformerDecoder(intermediate_dim=8, num_heads=2, **kwargs)
