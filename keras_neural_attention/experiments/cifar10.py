"""CIFAR-10 with a Vision Transformer at reduced scale: Neural Attention in
the first block vs a dot-product baseline, trained with the released code's
choices (post-LN, augmentation, AdamW with betas (0.9, 0.95), weight decay
0.1 on linear weights only, gradient clipping at norm 1).

Data: `load_cifar10_npz` reads a local `.npz` of JPEG-encoded images (the
format of `cifar10_jpeg.npz`: `train_jpeg`/`test_jpeg` bytes,
`train_offsets`/`test_offsets`, `train_labels`/`test_labels`,
`class_names`). It never downloads. The copy used on these machines is a
lossy JPEG re-encoding (quality 75, 4:2:0 chroma) of CIFAR-10 with exact
labels: accuracies can differ slightly from results on the original
pickles; say so next to any number.

Reference: Krizhevsky (2009), "Learning Multiple Layers of Features from
Tiny Images".
"""

import dataclasses
import time

import keras
import numpy as np

from keras_neural_attention.experiments.data import (  # noqa: F401
    CIFAR10_JPEG_NPZ_SHA256,
)
from keras_neural_attention.experiments.data import load_cifar10_npz
from keras_neural_attention.models.distribution import distribution_scope
from keras_neural_attention.models.distribution import train_image_classifier
from keras_neural_attention.models.vit import VisionTransformerBackbone
from keras_neural_attention.models.vit import vision_augmentation
from keras_neural_attention.models.vit import vision_transformer_classifier
from keras_neural_attention.models.vit import vision_transformer_preprocessor

CIFAR10_CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
ATTENTION_VARIANTS = ("neural", "dot_product")


@dataclasses.dataclass(frozen=True)
class Cifar10Recipe:
    """A reduced-scale version of the paper's CIFAR ViT setup.

    The paper's model (`paper_vision_transformer_config`) has 47.4 M
    parameters and 785 tokens per 224x224 image, trained with batch 1 for
    350 epochs. Here images stay 32x32 (patches of 4: 64 tokens + class
    token) and the model is smaller; the block structure (post-LN, ReLU
    feed-forward at 4/3 of the width as 1024/768 in the paper, class token,
    Neural Attention in block 0 with the paper's scoring network 6 -> 3 ->
    1 -> 1, d' = 3) and the optimizer are the released code's, with a
    larger batch and learning rate.

    Attributes:
        patch_size, num_layers, num_heads, hidden_dim, intermediate_dim:
            the backbone.
        projection_dim: d' of the Neural Attention block.
        dropout: dropout rate (released code: 0.1).
        position_embedding: see `PatchEmbedding`.
        epochs, batch_size: training length and global batch size.
        learning_rate: constant AdamW learning rate.
        weight_decay: AdamW weight decay (linear weights only).
        augment: use `vision_augmentation()` (released code's policy).
    """

    patch_size: int = 4
    num_layers: int = 6
    num_heads: int = 8
    hidden_dim: int = 192
    intermediate_dim: int = 256
    projection_dim: int = 3
    dropout: float = 0.1
    position_embedding: str = "learned"
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 5e-4
    weight_decay: float = 0.1
    augment: bool = True


def build_cifar10_classifier(recipe, attention="neural"):
    """The recipe's compiled classifier (KerasHub `ViTImageClassifier` on a
    `VisionTransformerBackbone`, with KerasHub's ViT preprocessor mapping
    uint8 pixels to [-1, 1]).

    Args:
        recipe: a `Cifar10Recipe`.
        attention: `"neural"` (Neural Attention in block 0) or
            `"dot_product"` (baseline).

    Returns:
        A compiled `keras_hub.models.ViTImageClassifier`.
    """
    if attention not in ATTENTION_VARIANTS:
        raise ValueError(
            f"Argument `attention` must be one of {ATTENTION_VARIANTS}. "
            f"Received: attention={attention!r}"
        )
    attention_types = ["dot_product"] * recipe.num_layers
    if attention == "neural":
        attention_types[0] = "neural"
    backbone = VisionTransformerBackbone(
        patch_size=recipe.patch_size,
        num_layers=recipe.num_layers,
        num_heads=recipe.num_heads,
        hidden_dim=recipe.hidden_dim,
        intermediate_dim=recipe.intermediate_dim,
        image_shape=(32, 32, 3),
        attention_types=attention_types,
        normalize_first=False,
        position_embedding=recipe.position_embedding,
        dropout=recipe.dropout,
        attention_options={
            "neural": {"projection_dim": recipe.projection_dim}
        },
        augmentation=vision_augmentation() if recipe.augment else None,
    )
    classifier = vision_transformer_classifier(
        backbone,
        num_classes=len(CIFAR10_CLASS_NAMES),
        preprocessor=vision_transformer_preprocessor(),
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        beta_1=0.9,
        beta_2=0.95,
        global_clipnorm=1.0,
    )
    # Released code: decay on linear-layer weights only (not on the patch
    # convolution, class token, position embeddings, biases or LayerNorm).
    optimizer.exclude_from_weight_decay(
        var_list=[
            variable
            for variable in classifier.trainable_variables
            if "kernel" not in variable.name
            or "patch_projection" in variable.path
        ]
    )
    classifier.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return classifier


def train_cifar10_vit(
    data_path,
    attention="neural",
    recipe=None,
    num_train=None,
    num_test=None,
    seed=0,
    distribution="auto",
    verbose=0,
):
    """Trains and tests the recipe's ViT on local CIFAR-10 data.

    Data-parallel over all local devices when there are several (see
    `train_image_classifier`). The reported accuracy is the test accuracy
    after the last epoch (no model selection on the test set, unlike the
    released code's best-epoch test accuracy).

    Args:
        data_path: path of the local `.npz` (see `load_cifar10_npz`).
        attention: `"neural"` or `"dot_product"`.
        recipe: a `Cifar10Recipe`; defaults to `Cifar10Recipe()`.
        num_train: int or None. Training images (class-balanced prefix).
        num_test: int or None. Test images.
        seed: int. Seed of initialization, shuffling and augmentation.
        distribution: as in `train_image_classifier`.
        verbose: verbosity of `fit`.

    Returns:
        A dict: `attention`, `parameters`, `history` (per-epoch lists),
        `test_loss`, `test_accuracy`, `train_seconds`, `num_train`,
        `num_test`, `devices`, `backend`, `recipe`, `data_note`.

    Example:

    ```python
    from keras_neural_attention.experiments.cifar10 import (
        Cifar10Recipe, train_cifar10_vit)

    result = train_cifar10_vit("data/cifar10_jpeg.npz", attention="neural",
                               recipe=Cifar10Recipe(epochs=5),
                               num_train=10000)
    print(result["test_accuracy"])
    ```
    """
    recipe = recipe or Cifar10Recipe()
    x_train, y_train = load_cifar10_npz(data_path, "train", limit=num_train)
    x_test, y_test = load_cifar10_npz(data_path, "test", limit=num_test)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    result = train_image_classifier(
        lambda: build_cifar10_classifier(recipe, attention),
        x_train,
        y_train,
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        distribution=distribution,
        shuffle_seed=seed,
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    devices = (
        1
        if result.distribution is None
        else int(result.distribution.device_mesh.devices.size)
    )
    # Every batch must split evenly across devices: drop at most
    # `devices - 1` test images.
    kept = len(x_test) - len(x_test) % devices
    x_test, y_test = x_test[:kept], y_test[:kept]
    with distribution_scope(result.distribution):
        test_loss, test_accuracy = result.model.evaluate(
            x_test, y_test, batch_size=recipe.batch_size, verbose=0
        )
    return {
        "attention": attention,
        "parameters": int(result.model.count_params()),
        "history": {
            key: [float(v) for v in values]
            for key, values in result.history.history.items()
        },
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "train_seconds": train_seconds,
        "num_train": int(len(x_train)),
        "num_test": int(len(x_test)),
        "devices": devices,
        "backend": keras.backend.backend(),
        "recipe": dataclasses.asdict(recipe),
        "data_note": (
            "CIFAR-10 from a lossy JPEG copy (quality 75, 4:2:0); labels "
            "exact, pixels differ slightly from the original pickles."
        ),
    }
