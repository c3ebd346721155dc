"""`VisionTransformerImageConverter`: KerasHub's ViT image converter for
`VisionTransformerBackbone`."""

import sys

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.models.vit import VisionTransformerBackbone


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class VisionTransformerImageConverter(keras_hub.layers.ViTImageConverter):
    """Resizes and rescales images for `VisionTransformerBackbone`.

    `keras_hub.layers.ViTImageConverter` (resize to `image_size`, then
    `x * scale + offset`) whose `backbone_cls` is our backbone, so
    `keras_hub.layers.ImageConverter.from_preset(dir)` finds it in a preset
    of that backbone.

    Args:
        image_size: `(height, width)` or None (keep every size).
        scale: float or per-channel list. Multiplies the pixels.
        offset: float or per-channel list. Added after `scale`.
        **kwargs: other `keras_hub.layers.ImageConverter` arguments
            (`interpolation`, `crop_to_aspect_ratio`, ...).

    Call arguments:
        - inputs: images `(B, H, W, C)` or one image `(H, W, C)`.

    Returns:
        The converted float images.

    Example:

    ```python
    from keras_neural_attention.models import VisionTransformerImageConverter

    converter = VisionTransformerImageConverter(
        image_size=(32, 32), scale=1 / 127.5, offset=-1.0)
    ```
    """

    backbone_cls = VisionTransformerBackbone


# Register the classifier with its image converter (see the end of vit.py).
_IMPORTING = (
    "keras_neural_attention.models.vision_transformer_image_classifier_preprocessor",  # noqa: E501
    "keras_neural_attention.models.vision_transformer_image_classifier",
)
if not any(name in sys.modules for name in _IMPORTING):
    import keras_neural_attention.models.vision_transformer_image_classifier  # noqa: E402,E501,F401,I001
