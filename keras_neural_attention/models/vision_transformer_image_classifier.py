"""`VisionTransformerImageClassifier`: the KerasHub image-classifier task of
`VisionTransformerBackbone`."""

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.models.vision_transformer_image_classifier_preprocessor import (  # noqa: E501
    VisionTransformerImageClassifierPreprocessor,
)
from keras_neural_attention.models.vit import VisionTransformerBackbone


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class VisionTransformerImageClassifier(keras_hub.models.ViTImageClassifier):
    """Image classifier on a `VisionTransformerBackbone`.

    KerasHub's ViT classifier head (`keras_hub.models.ViTImageClassifier`):
    the class token (`pooling="token"`) or the mean of the tokens
    (`"gap"`), optional `Dense(intermediate_dim, "tanh")`,
    `Dropout(dropout)` and `Dense(num_classes)`, compiled by default with
    KerasHub's loss (sparse categorical cross-entropy on logits) and
    accuracy. Its `backbone_cls` is `VisionTransformerBackbone`, so
    `save_to_preset(dir)` then `keras_hub.models.ImageClassifier
    .from_preset(dir)` (or this class's `from_preset`) restores the whole
    classifier with its preprocessor. `vision_transformer_classifier()`
    builds one with the released code's head.

    Args:
        backbone: a `VisionTransformerBackbone`.
        num_classes: int. Number of classes.
        preprocessor: a `VisionTransformerImageClassifierPreprocessor` or
            None (inputs are used as given).
        pooling: `"token"` (default; needs a class token) or `"gap"`.
        intermediate_dim: optional int, a hidden layer before the logits.
        activation: optional activation of the logits (None: logits).
        dropout: float. Dropout before the output layer.
        head_dtype: optional dtype policy of the head.
        **kwargs: arguments of `keras_hub.models.ImageClassifier`.

    Call arguments:
        - images: `(B, H, W, C)` float images.

    Returns:
        Logits `(B, num_classes)`.

    Example:

    ```python
    import keras_hub
    from keras_neural_attention.models import (
        VisionTransformerBackbone, VisionTransformerImageClassifier)

    backbone = VisionTransformerBackbone(
        patch_size=4, num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, position_grid_size=(8, 8))
    classifier = VisionTransformerImageClassifier(backbone, num_classes=10)
    classifier.save_to_preset("my_vit")
    restored = keras_hub.models.ImageClassifier.from_preset("my_vit")
    ```
    """

    backbone_cls = VisionTransformerBackbone
    preprocessor_cls = VisionTransformerImageClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None,
                 pooling="token", **kwargs):
        if not isinstance(backbone, VisionTransformerBackbone):
            raise TypeError(
                "Argument `backbone` must be a `VisionTransformerBackbone`. "
                f"Received: backbone={backbone!r}"
            )
        if pooling not in ("token", "gap"):
            raise ValueError(
                "Argument `pooling` must be 'token' or 'gap'. "
                f"Received: pooling={pooling!r}"
            )
        if pooling == "token" and not backbone.use_class_token:
            raise ValueError(
                "Argument `pooling` is 'token' but the backbone has no class "
                "token (use_class_token=False); use pooling='gap'. "
                f"Received: pooling={pooling!r}"
            )
        super().__init__(
            backbone=backbone,
            num_classes=num_classes,
            preprocessor=preprocessor,
            pooling=pooling,
            **kwargs,
        )
