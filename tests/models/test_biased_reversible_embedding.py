"""`BiasedReversibleEmbedding`: an untied output head with a bias."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.models import BiasedReversibleEmbedding


@pytest.mark.parametrize("tie_weights", [False, True])
def test_reverse_projection_adds_bias_and_saves(tie_weights, tmp_path):
    rng = np.random.default_rng(0)
    layer = BiasedReversibleEmbedding(11, 4, tie_weights=tie_weights)
    ids = np.array([[1, 2, 3]], "int32")
    hidden = layer(ids)
    assert len(layer.trainable_weights) == (2 if tie_weights else 3)
    layer.reverse_bias.assign(rng.normal(size=(11,)).astype("float32"))
    kernel = ops.convert_to_numpy(
        layer.embeddings if tie_weights else layer.reverse_embeddings
    )
    if tie_weights:
        kernel = kernel.T
    expected = ops.convert_to_numpy(hidden) @ kernel + ops.convert_to_numpy(
        layer.reverse_bias
    )
    logits = layer(hidden, reverse=True)
    np.testing.assert_allclose(ops.convert_to_numpy(logits), expected,
                               rtol=1e-5, atol=1e-5)

    inputs = keras.Input((3,), dtype="int32")
    model = keras.Model(inputs, layer(layer(inputs), reverse=True))
    path = os.path.join(tmp_path, "embedding.keras")
    model.save(path)
    revived = keras.saving.load_model(path)
    np.testing.assert_allclose(ops.convert_to_numpy(revived(ids)),
                               ops.convert_to_numpy(model(ids)), rtol=1e-6)


def test_without_bias_and_bad_argument():
    layer = BiasedReversibleEmbedding(11, 4, tie_weights=False,
                                      use_reverse_bias=False)
    layer.build()
    assert len(layer.trainable_weights) == 2
    assert layer.get_config()["use_reverse_bias"] is False
    with pytest.raises(ValueError, match="use_reverse_bias"):
        BiasedReversibleEmbedding(11, 4, use_reverse_bias="yes")
