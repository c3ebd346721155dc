"""`VisionTransformerImageClassifierPreprocessor`: KerasHub's image-classifier
preprocessing for `VisionTransformerBackbone`."""

import sys

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.models.vision_transformer_image_converter import (
    VisionTransformerImageConverter,
)
from keras_neural_attention.models.vit import VisionTransformerBackbone


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class VisionTransformerImageClassifierPreprocessor(
    keras_hub.models.ViTImageClassifierPreprocessor
):
    """Image-classifier preprocessing for `VisionTransformerImageClassifier`.

    `keras_hub.models.ViTImageClassifierPreprocessor` with a
    `VisionTransformerImageConverter`: images go through the converter,
    labels and sample weights pass through unchanged. Its `backbone_cls` is
    `VisionTransformerBackbone`, so
    `keras_hub.models.ImageClassifierPreprocessor.from_preset(dir)` finds it.
    `vision_transformer_preprocessor()` builds one with the released code's
    scaling.

    Args:
        image_converter: a `VisionTransformerImageConverter` or None.
        **kwargs: arguments of `keras_hub.models.ImageClassifierPreprocessor`.

    Call arguments:
        - x: images.
        - y: optional labels.
        - sample_weight: optional sample weights.

    Returns:
        `(x, y, sample_weight)` with converted images.

    Example:

    ```python
    from keras_neural_attention.models import vision_transformer_preprocessor

    preprocessor = vision_transformer_preprocessor(image_size=(32, 32))
    ```
    """

    backbone_cls = VisionTransformerBackbone
    image_converter_cls = VisionTransformerImageConverter


# Register the classifier with its preprocessor (see the end of vit.py).
_IMPORTING = (
    "keras_neural_attention.models.vision_transformer_image_classifier",
)
if not any(name in sys.modules for name in _IMPORTING):
    import keras_neural_attention.models.vision_transformer_image_classifier  # noqa: E402,E501,F401,I001
