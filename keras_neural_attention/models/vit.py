"""Vision Transformer with selectable attention per block (dot-product,
Neural, Expressive), post-LN or pre-LN, for images of any size divisible by
the patch size.

`VisionTransformerBackbone` is our own `keras_hub.models.Backbone`; its task
is `VisionTransformerImageClassifier` (KerasHub's ViT classifier head), with
`VisionTransformerImageClassifierPreprocessor` and
`VisionTransformerImageConverter` (KerasHub's ViT image preprocessing), so
`save_to_preset(dir)` and `keras_hub.models.ImageClassifier.from_preset(dir)`
restore the whole classifier. `vision_transformer_classifier` and
`vision_transformer_preprocessor` build them with the released code's
settings. This module imports KerasHub (and so TensorFlow when installed).

Why not `keras_hub.models.ViTBackbone`: its encoder blocks
(`ViTEncoderBlock` in `keras_hub.src.models.vit.vit_layers`, with
`ViTEncoder`, `ViTPatchingAndEmbedding` and `MLP`) are private, not
exported, and create a `keras.layers.MultiHeadAttention` inside `build`
with no argument to choose another attention class; they are pre-LN only
(the released Neural Attention code is post-LN), and the backbone's
position embedding is a table fixed to the `image_shape` it was built for.
Replacing the attention after `build` would leave the discarded weights
tracked. (To put Neural Attention into a stock `ViTBackbone`, keeping its
weights, see `keras_neural_attention.models.replace_attention`.)
"""

import math

import sys

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.layers.patch_embedding import PatchEmbedding
from keras_neural_attention.layers.transformer_encoder_block import (
    ATTENTION_TYPES,
)
from keras_neural_attention.layers.transformer_encoder_block import (
    TransformerEncoderBlock,
)

# Parameter counts of the authors' released vision code
# (`vision_{standard,neural}_attention/`, `SimpleTransformer(dim=768,
# num_layers=12, heads=8, max_seq_len=785)`, 8x8 patches of 224x224 images,
# feed-forward width 1024, d' = 96 // 32 = 3 in block 0 of the Neural
# model), derived layer by layer from the code in
# ../shared/notes/neural-attention-paper.md, sec. 4 and 2.2.
RELEASED_CODE_VISION_PARAMETER_COUNTS = {
    "cifar10": {"baseline": 47_402_506, "neural": 47_402_506 + 609},
    "cifar100": {"baseline": 47_471_716, "neural": 47_471_716 + 609},
}

DATASET_CLASSES = {"cifar10": 10, "cifar100": 100}


def _is_positive_int(value):
    return (
        isinstance(value, int) and not isinstance(value, bool) and value > 0
    )


def _attention_types_per_layer(attention_types, num_layers):
    if isinstance(attention_types, str):
        per_layer = [attention_types] * num_layers
    elif isinstance(attention_types, (list, tuple)):
        per_layer = list(attention_types)
        if len(per_layer) != num_layers:
            raise ValueError(
                "Argument `attention_types` must be one string or a list "
                f"with one entry per layer ({num_layers}). "
                f"Received: attention_types={attention_types!r}"
            )
    else:
        raise ValueError(
            "Argument `attention_types` must be a string or a list of "
            f"strings from {ATTENTION_TYPES}. "
            f"Received: attention_types={attention_types!r}"
        )
    for value in per_layer:
        if value not in ATTENTION_TYPES:
            raise ValueError(
                "Every entry of `attention_types` must be one of "
                f"{ATTENTION_TYPES}. Received: attention_types="
                f"{attention_types!r}"
            )
    return per_layer


def vision_augmentation(
    value_range=(-1.0, 1.0),
    crop_area_range=(0.05, 1.0),
    translation_factor=0.1,
    horizontal_flip=True,
    brightness=0.2,
    contrast=0.2,
    saturation=0.2,
    hue=0.1,
    rotation_degrees=10.0,
    seed=None,
    name="augmentation",
):
    """Image augmentation of the released Neural Attention vision code,
    from `keras.layers`, for images of any size.

    The released code trains with torchvision's
    `RandomResizedCrop(224, scale=(0.05, 1.0))`, `RandomHorizontalFlip()`,
    `ColorJitter(0.2, 0.2, 0.2, 0.1)` and `RandomRotation(10)`. Here:

    - random resized crop: Keras 3 has no such layer, and
      `keras.layers.RandomCrop` needs a fixed output size and resizes to a
      centre window at inference, so it cannot serve a model that accepts
      every image size. It is approximated by `RandomTranslation`
      (`translation_factor`, reflected borders) followed by a zoom-in
      `RandomZoom` whose visible area is a fraction in `crop_area_range`
      of the image (same aspect ratio; torchvision also varies it);
    - `RandomFlip("horizontal")`;
    - `RandomColorJitter`: contrast as in torchvision (factor in `[1 - c,
      1 + c]`); saturation mapped to Keras' parametrization so that the
      saturation multiplier lies in `[1 - s, 1 + s]` as in torchvision; hue
      shifted by at most `hue` of the colour circle as in torchvision;
      brightness is additive in Keras (up to `brightness` times the value
      range) where torchvision multiplies by `[1 - b, 1 + b]`;
    - `RandomRotation` by up to `rotation_degrees` either way.

    Every layer is active only when called with `training=True` and is the
    identity at inference. Put the result in
    `VisionTransformerBackbone(augmentation=...)` so that it runs inside
    the model (and on the accelerator), after the preprocessor.

    Args:
        value_range: `(low, high)` range of the pixel values the layers
            receive. Defaults to `(-1, 1)`, the output of
            `vision_transformer_preprocessor()`.
        crop_area_range: `(min, max)` fraction of the image area kept by the
            zoom, in `(0, 1]`; `None` disables zoom and translation.
        translation_factor: float. Largest shift, as a fraction of height
            and width.
        horizontal_flip: bool. Random left-right flips.
        brightness: float or None. Brightness jitter (None or 0: none).
        contrast: float or None. Contrast jitter.
        saturation: float in `[0, 1)` or None. Saturation jitter.
        hue: float in `[0, 0.5]` or None. Hue jitter.
        rotation_degrees: float or None. Largest rotation.
        seed: optional int seed of the random layers.
        name: name of the returned `keras.Sequential`.

    Returns:
        A `keras.Sequential` of `keras.layers` augmentation layers.

    Example:

    ```python
    from keras_neural_attention.models.vit import vision_augmentation

    augment = vision_augmentation(seed=0)
    # augment(images, training=True) jitters; training=False is identity.
    ```
    """
    layers = []

    def seeded(offset):
        return None if seed is None else seed + offset

    if crop_area_range is not None:
        low, high = crop_area_range
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(
                "Argument `crop_area_range` must be `(min, max)` with "
                f"0 < min <= max <= 1. Received: crop_area_range="
                f"{crop_area_range!r}"
            )
        if translation_factor:
            layers.append(
                keras.layers.RandomTranslation(
                    translation_factor,
                    translation_factor,
                    fill_mode="reflect",
                    seed=seeded(0),
                )
            )
        layers.append(
            keras.layers.RandomZoom(
                height_factor=(math.sqrt(low) - 1.0, math.sqrt(high) - 1.0),
                fill_mode="reflect",
                seed=seeded(1),
            )
        )
    if horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seeded(2)))
    jitter = {}
    if brightness:
        jitter["brightness_factor"] = float(brightness)
    if contrast:
        jitter["contrast_factor"] = float(contrast)
    if saturation:
        if not 0.0 < saturation < 1.0:
            raise ValueError(
                "Argument `saturation` must be in [0, 1) or None. "
                f"Received: saturation={saturation!r}"
            )
        # Keras multiplies saturation by f / (1 - f): f = m / (1 + m).
        jitter["saturation_factor"] = (
            (1.0 - saturation) / (2.0 - saturation),
            (1.0 + saturation) / (2.0 + saturation),
        )
    if hue:
        if not 0.0 < hue <= 0.5:
            raise ValueError(
                "Argument `hue` must be in [0, 0.5] or None. "
                f"Received: hue={hue!r}"
            )
        # Keras shifts hue by up to factor / 2 of the circle.
        jitter["hue_factor"] = 2.0 * float(hue)
    if jitter:
        layers.append(
            keras.layers.RandomColorJitter(
                value_range=tuple(value_range), seed=seeded(3), **jitter
            )
        )
    if rotation_degrees:
        layers.append(
            keras.layers.RandomRotation(
                float(rotation_degrees) / 360.0,
                fill_mode="reflect",
                seed=seeded(4),
            )
        )
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class VisionTransformerBackbone(keras_hub.models.Backbone):
    """Vision Transformer backbone with a selectable attention per block.

    Images `(B, H, W, C)` go through an optional augmentation model (active
    only in training), `PatchEmbedding` (patches, class token, position
    embeddings), `num_layers` `TransformerEncoderBlock`s and a final
    `LayerNormalization`; the output is the whole token sequence, class
    token first, so that KerasHub's ViT classifier head (pooling
    `"token"`) is its task: `VisionTransformerImageClassifier`, built by
    `vision_transformer_classifier`. As a `keras_hub.models.Backbone` it has
    `save_to_preset(dir)` and `from_preset(dir)`.
    Any `H` and `W` divisible by the patch size are accepted (learned
    position embeddings are resized bilinearly for other grids); other sizes
    raise `ValueError`.

    The paper's configuration (`paper_vision_transformer_config`): 8x8
    patches of 224x224 images, width 768, 12 post-LN blocks, 8 heads,
    feed-forward width 1024 with ReLU, dropout 0.1, a zero-initialized class
    token, the released code's position encoding, no attention biases, and
    Neural Attention (d' = 3) in the first block only:
    `attention_types=["neural"] + ["dot_product"] * 11`.

    Calling the backbone without `training` (or a model that calls it, as
    `ViTImageClassifier` does) is inference: augmentation and dropout are
    off, as in `predict`. A new functional model made from
    `backbone.input` and `backbone.output` reuses the inner graph instead,
    where Keras augmentation layers follow their own default (active unless
    `training=False` is passed); call the backbone on a new `keras.Input`
    instead.

    KerasHub's `ViTBackbone` cannot be reused for this: see the module
    docstring of `keras_neural_attention.models.vit`.

    Args:
        patch_size: int or `(int, int)`. Patch height and width.
        num_layers: int. Number of encoder blocks.
        num_heads: int. Attention heads per block.
        hidden_dim: int. Token width.
        intermediate_dim: int. Feed-forward hidden width.
        image_shape: `(H, W, C)` of the input; `None` height/width (default
            `(None, None, 3)`) accept any size.
        attention_types: one of `"dot_product"` (default), `"neural"`,
            `"expressive"` for every block, or a list with one entry per
            block.
        normalize_first: bool. `False` (default): post-LN blocks as in the
            released code; `True`: standard pre-LN ViT blocks.
        use_class_token: bool. Prepend a learned class token (default).
        position_embedding: `"learned"` (default), `"sinusoidal"` or
            `"released_code"`; see `PatchEmbedding`.
        position_grid_size: `(int, int)` or None. Patch grid of a learned
            position table; defaults to the grid of `image_shape`, so it is
            required when `image_shape` has `None` sizes.
        dropout: float. Dropout on the embedded tokens and in every block.
        attention_dropout: float. Dropout on attention probabilities.
        activation: feed-forward activation. Defaults to `"relu"`.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        use_attention_bias: bool. Biases in the attention projections.
        attention_options: dict or None. Extra arguments of the attention
            layers, by attention type, e.g. `{"neural": {"projection_dim":
            3}}` for the Neural Attention blocks.
        augmentation: a `keras.layers.Layer` (e.g. `vision_augmentation()`)
            applied to the images first, or None.
        dtype: dtype policy of the layers.
        **kwargs: arguments of `keras.Model` (`name`, ...).

    Call arguments:
        - images: `(B, H, W, C)` float images (already preprocessed, e.g.
          scaled to `[-1, 1]`).
        - training: bool. Whether augmentation and dropout are active.

    Returns:
        The token sequence `(B, T, hidden_dim)` with `T = 1 + (H / ph) *
        (W / pw)` (no `1 +` without class token).

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.models.vit import VisionTransformerBackbone

    backbone = VisionTransformerBackbone(
        patch_size=4, num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, attention_types=["neural", "dot_product"],
        position_grid_size=(8, 8),
    )
    backbone(np.zeros((2, 32, 32, 3), "float32")).shape   # (2, 65, 32)
    backbone(np.zeros((2, 48, 16, 3), "float32")).shape   # (2, 49, 32)
    ```

    Reference:
        - [Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021](
          https://arxiv.org/abs/2010.11929)
        - [DiGiugno & Mahmood, "Neural Attention", arXiv 2502.17206](
          https://arxiv.org/abs/2502.17206)
    """

    def __init__(
        self,
        patch_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        image_shape=(None, None, 3),
        attention_types="dot_product",
        normalize_first=False,
        use_class_token=True,
        position_embedding="learned",
        position_grid_size=None,
        dropout=0.0,
        attention_dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        use_attention_bias=True,
        attention_options=None,
        augmentation=None,
        dtype=None,
        **kwargs,
    ):
        if not _is_positive_int(num_layers):
            raise ValueError(
                "Argument `num_layers` must be a positive integer. "
                f"Received: num_layers={num_layers!r}"
            )
        if (
            not isinstance(image_shape, (list, tuple))
            or len(image_shape) != 3
        ):
            raise ValueError(
                "Argument `image_shape` must be `(height, width, channels)` "
                f"(height and width may be None). Received: image_shape="
                f"{image_shape!r}"
            )
        per_layer = _attention_types_per_layer(attention_types, num_layers)
        if attention_options is not None and (
            not isinstance(attention_options, dict)
            or not set(attention_options) <= set(ATTENTION_TYPES)
            or not all(
                isinstance(v, dict) for v in attention_options.values()
            )
        ):
            raise ValueError(
                "Argument `attention_options` must be None or a dict from "
                f"attention types {ATTENTION_TYPES} to dicts of attention "
                "layer arguments, e.g. {'neural': {'projection_dim': 3}}. "
                f"Received: attention_options={attention_options!r}"
            )
        if isinstance(augmentation, dict):
            augmentation = keras.saving.deserialize_keras_object(augmentation)
        if augmentation is not None and not isinstance(
            augmentation, keras.layers.Layer
        ):
            raise TypeError(
                "Argument `augmentation` must be a `keras.layers.Layer` (for "
                "example `vision_augmentation()`) or None. "
                f"Received: augmentation={augmentation!r}"
            )

        # === Layers ===
        patch_embedding = PatchEmbedding(
            patch_size=patch_size,
            hidden_dim=hidden_dim,
            use_class_token=use_class_token,
            position_embedding=position_embedding,
            position_grid_size=position_grid_size,
            dropout=dropout,
            dtype=dtype,
            name="patch_embedding",
        )
        patch_embedding.check_image_size(image_shape[0], image_shape[1])
        blocks = [
            TransformerEncoderBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                attention_type=attention_type,
                normalize_first=normalize_first,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                use_attention_bias=use_attention_bias,
                attention_options=(attention_options or {}).get(
                    attention_type
                ),
                dtype=dtype,
                name=f"transformer_block_{index}",
            )
            for index, attention_type in enumerate(per_layer)
        ]
        final_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="final_layer_norm"
        )

        # === Functional model ===
        images = keras.Input(shape=tuple(image_shape), name="images")
        x = images
        if augmentation is not None:
            x = augmentation(x)
        x = patch_embedding(x)
        for block in blocks:
            x = block(x)
        outputs = final_layer_norm(x)
        super().__init__(inputs=images, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.patch_embedding = patch_embedding
        self.transformer_blocks = blocks
        self.final_layer_norm = final_layer_norm
        self.augmentation = augmentation
        self.patch_size = patch_embedding.patch_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.image_shape = tuple(image_shape)
        self.attention_types = attention_types
        self.normalize_first = normalize_first
        self.use_class_token = use_class_token
        self.position_embedding = position_embedding
        self.position_grid_size = patch_embedding.position_grid_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.use_attention_bias = use_attention_bias
        self.attention_options = attention_options

    def call(self, inputs, training=None, mask=None):
        # Keras augmentation layers default to `training=True`; a direct
        # `backbone(images)` call must be inference, as with `predict`.
        return super().call(inputs, training=bool(training), mask=mask)

    def get_config(self):
        config = super().get_config()
        config.update({
            "patch_size": list(self.patch_size),
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "image_shape": list(self.image_shape),
            "attention_types": (
                self.attention_types
                if isinstance(self.attention_types, str)
                else list(self.attention_types)
            ),
            "normalize_first": self.normalize_first,
            "use_class_token": self.use_class_token,
            "position_embedding": self.position_embedding,
            "position_grid_size": (
                None
                if self.position_grid_size is None
                else list(self.position_grid_size)
            ),
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation": keras.activations.serialize(
                keras.activations.get(self.activation)
            ),
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "use_attention_bias": self.use_attention_bias,
            "attention_options": (
                None
                if self.attention_options is None
                else {
                    key: dict(value)
                    for key, value in self.attention_options.items()
                }
            ),
            "augmentation": (
                None
                if self.augmentation is None
                else keras.saving.serialize_keras_object(self.augmentation)
            ),
        })
        return config


def vision_transformer_preprocessor(image_size=None, scale=1.0 / 127.5,
                                    offset=-1.0):
    """KerasHub's ViT image preprocessing, set up as in the released code.

    A `VisionTransformerImageClassifierPreprocessor` (KerasHub's
    `ViTImageClassifierPreprocessor` for our backbone) with a
    `VisionTransformerImageConverter` that resizes to `image_size` (the
    released code's test transform `Resize((224, 224))`; `None`, the
    default, keeps every size) and maps `[0, 255]` pixels to `[-1, 1]`
    (torchvision's `ToTensor()` + `Normalize([0.5] * 3, [0.5] * 3)`).

    Args:
        image_size: `(height, width)` or None.
        scale: float or per-channel list. Multiplies the pixels.
        offset: float or per-channel list. Added after `scale`.

    Returns:
        A `VisionTransformerImageClassifierPreprocessor`.
    """
    from keras_neural_attention.models.vision_transformer_image_classifier_preprocessor import (  # noqa: E501
        VisionTransformerImageClassifierPreprocessor,
    )
    from keras_neural_attention.models.vision_transformer_image_converter import (  # noqa: E501
        VisionTransformerImageConverter,
    )

    converter = VisionTransformerImageConverter(
        image_size=None if image_size is None else tuple(image_size),
        scale=scale,
        offset=offset,
    )
    return VisionTransformerImageClassifierPreprocessor(
        image_converter=converter
    )


def vision_transformer_classifier(backbone, num_classes, preprocessor=None,
                                  dropout=0.0, **kwargs):
    """Image classifier: KerasHub's ViT task head on our backbone.

    Returns `VisionTransformerImageClassifier(backbone=backbone,
    num_classes=num_classes, pooling=...)` (KerasHub's
    `ViTImageClassifier` for our backbone): logits from the class token
    (`pooling="token"`) or, without class token, from the mean of the
    tokens (`"gap"`), through `Dropout(dropout)` and `Dense(num_classes)`.
    With the backbone's final `LayerNormalization` this is the released
    code's head `LayerNorm -> Linear`. The task serializes the backbone and
    is compiled with KerasHub's defaults (sparse categorical cross-entropy
    on logits, accuracy); call `compile` again to change them.

    Args:
        backbone: a `VisionTransformerBackbone`.
        num_classes: int. Number of classes.
        preprocessor: None (inputs are used as given), or a preprocessor
            such as `vision_transformer_preprocessor()` (used by `fit`,
            `evaluate` and `predict`).
        dropout: float. Dropout before the output layer.
        **kwargs: other arguments of `VisionTransformerImageClassifier`
            (`name`, `head_dtype`, ...).

    Returns:
        A `VisionTransformerImageClassifier`.

    Example:

    ```python
    from keras_neural_attention.models.vit import (
        VisionTransformerBackbone, vision_transformer_classifier)

    backbone = VisionTransformerBackbone(
        patch_size=4, num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, position_grid_size=(8, 8))
    classifier = vision_transformer_classifier(backbone, num_classes=10)
    ```
    """
    from keras_neural_attention.models.vision_transformer_image_classifier import (  # noqa: E501
        VisionTransformerImageClassifier,
    )

    if not isinstance(backbone, VisionTransformerBackbone):
        raise TypeError(
            "Argument `backbone` must be a `VisionTransformerBackbone`. "
            f"Received: backbone={backbone!r}"
        )
    if not _is_positive_int(num_classes):
        raise ValueError(
            "Argument `num_classes` must be a positive integer. "
            f"Received: num_classes={num_classes!r}"
        )
    return VisionTransformerImageClassifier(
        backbone=backbone,
        num_classes=num_classes,
        preprocessor=preprocessor,
        pooling="token" if backbone.use_class_token else "gap",
        activation=None,
        dropout=dropout,
        **kwargs,
    )


def paper_vision_transformer_config(neural=True, image_size=224,
                                    augmentation=None):
    """Backbone arguments of the paper's CIFAR ViT (released code).

    8x8 patches, width 768, 12 post-LN blocks, 8 heads (head width 96),
    feed-forward 1024 with ReLU, dropout 0.1, class token, the released
    code's position encoding, no attention biases (the code's `to_qkv` and
    `W_out` have none), LayerNorm epsilon 1e-5. `neural=True` puts Neural
    Attention with the released defaults (d' = 96 // 32 = 3, scoring
    network 6 -> 3 -> 1 -> 1 shared by all heads) in block 0; the other
    blocks use dot-product attention.

    Args:
        neural: bool. Neural Attention in the first block (else a
            dot-product baseline).
        image_size: int. Image height and width (224 in the code).
        augmentation: passed to the backbone (e.g. `vision_augmentation()`).

    Returns:
        A dict of `VisionTransformerBackbone` arguments.
    """
    num_layers = 12
    attention_types = ["dot_product"] * num_layers
    if neural:
        attention_types[0] = "neural"
    return {
        "patch_size": 8,
        "num_layers": num_layers,
        "num_heads": 8,
        "hidden_dim": 768,
        "intermediate_dim": 1024,
        "image_shape": (image_size, image_size, 3),
        "attention_types": attention_types,
        "normalize_first": False,
        "use_class_token": True,
        "position_embedding": "released_code",
        "dropout": 0.1,
        "attention_dropout": 0.0,
        "activation": "relu",
        "layer_norm_epsilon": 1e-5,
        "use_attention_bias": False,
        "attention_options": None,
        "augmentation": augmentation,
    }


def vision_transformer_parameter_count(num_classes, **backbone_kwargs):
    """Number of parameters of a ViT classifier with this configuration.

    Builds the `VisionTransformerBackbone` and counts its weights, plus the
    `Dense(num_classes)` head of `vision_transformer_classifier` (whose
    weights are `hidden_dim * num_classes + num_classes`; KerasHub is not
    imported).

    Args:
        num_classes: int. Number of classes.
        **backbone_kwargs: `VisionTransformerBackbone` arguments.

    Returns:
        int.
    """
    backbone = VisionTransformerBackbone(**backbone_kwargs)
    head = keras.layers.Dense(num_classes)
    head.build((None, backbone.hidden_dim))
    return backbone.count_params() + head.count_params()


def paper_vision_parameter_counts(datasets=("cifar10", "cifar100")):
    """Our parameter counts of the paper's vision models next to the
    released code's.

    Args:
        datasets: names among `"cifar10"`, `"cifar100"`.

    Returns:
        `{dataset: {"baseline" | "neural": {"ours": int, "released_code":
        int}}}`.
    """
    counts = {}
    for dataset in datasets:
        if dataset not in DATASET_CLASSES:
            raise ValueError(
                f"Unknown dataset. Expected one of {tuple(DATASET_CLASSES)}. "
                f"Received: {dataset!r}"
            )
        counts[dataset] = {}
        for variant in ("baseline", "neural"):
            ours = vision_transformer_parameter_count(
                DATASET_CLASSES[dataset],
                **paper_vision_transformer_config(neural=variant == "neural"),
            )
            counts[dataset][variant] = {
                "ours": ours,
                "released_code": RELEASED_CODE_VISION_PARAMETER_COUNTS[
                    dataset
                ][variant],
            }
    return counts


# KerasHub finds the classifier, preprocessor and image converter of a
# preset by their `backbone_cls` among registered classes: register them
# whenever the backbone is. (Skipped while one of them is being imported: it
# imports the classifier module itself once its class exists.)
_IMPORTING = (
    "keras_neural_attention.models.vision_transformer_image_converter",
    "keras_neural_attention.models.vision_transformer_image_classifier_preprocessor",  # noqa: E501
    "keras_neural_attention.models.vision_transformer_image_classifier",
)
if not any(name in sys.modules for name in _IMPORTING):
    import keras_neural_attention.models.vision_transformer_image_classifier  # noqa: E402,E501,F401,I001
