"""`VisionTransformerImageClassifier`, its preprocessor and image converter:
KerasHub presets restore the whole classifier."""

import json
import os

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.models import VisionTransformerBackbone
from keras_neural_attention.models import VisionTransformerImageClassifier
from keras_neural_attention.models import (
    VisionTransformerImageClassifierPreprocessor,
)
from keras_neural_attention.models import VisionTransformerImageConverter
from keras_neural_attention.models import vision_transformer_classifier
from keras_neural_attention.models import vision_transformer_preprocessor

TINY = dict(
    patch_size=4, num_layers=2, num_heads=2, hidden_dim=16,
    intermediate_dim=32, image_shape=(8, 8, 3),
    attention_types=["neural", "expressive"],
)


def make_classifier(**overrides):
    keras.utils.set_random_seed(0)
    backbone = VisionTransformerBackbone(**{**TINY, **overrides})
    return vision_transformer_classifier(
        backbone, num_classes=3,
        preprocessor=vision_transformer_preprocessor(image_size=(8, 8)),
    )


def test_backbone_is_a_keras_hub_backbone_and_builders_return_our_task():
    classifier = make_classifier()
    assert isinstance(classifier.backbone, keras_hub.models.Backbone)
    assert type(classifier) is VisionTransformerImageClassifier
    assert isinstance(classifier, keras_hub.models.ImageClassifier)
    assert type(classifier.preprocessor) is (
        VisionTransformerImageClassifierPreprocessor
    )
    assert type(classifier.preprocessor.image_converter) is (
        VisionTransformerImageConverter
    )
    with pytest.raises(ValueError, match="pooling"):
        VisionTransformerImageClassifier(
            VisionTransformerBackbone(**{**TINY, "use_class_token": False}),
            num_classes=2, pooling="token",
        )


@pytest.mark.parametrize("task_cls", ["ImageClassifier", "ours"])
def test_preset_round_trip_restores_the_whole_classifier(task_cls, tmp_path):
    classifier = make_classifier()
    preset = str(tmp_path / "preset")
    classifier.save_to_preset(preset)
    # KerasHub lists the direct base of each task naming the backbone.
    with open(os.path.join(preset, "metadata.json")) as file:
        assert json.load(file)["tasks"] == ["ViTImageClassifier"]
    cls = (keras_hub.models.ImageClassifier if task_cls == "ImageClassifier"
           else VisionTransformerImageClassifier)
    revived = cls.from_preset(preset)
    assert type(revived) is VisionTransformerImageClassifier
    assert type(revived.preprocessor) is (
        VisionTransformerImageClassifierPreprocessor
    )
    assert revived.backbone.get_config() == classifier.backbone.get_config()
    raw = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3)).astype(
        "float32"
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(revived(raw / 127.5 - 1.0)),
        ops.convert_to_numpy(classifier(raw / 127.5 - 1.0)), atol=1e-6,
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(revived.preprocessor.image_converter(raw)),
        raw / 127.5 - 1.0, atol=1e-6,
    )
    assert type(keras_hub.models.Backbone.from_preset(preset)) is (
        VisionTransformerBackbone
    )
    assert type(keras_hub.layers.ImageConverter.from_preset(preset)) is (
        VisionTransformerImageConverter
    )
