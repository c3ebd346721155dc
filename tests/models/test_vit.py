"""Vision Transformer: shapes for any divisible image size, post-LN and
pre-LN blocks, training, saving, augmentation, configs, parameter counts."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_neural_attention.layers import NeuralAttention
from keras_neural_attention.layers import PatchEmbedding
from keras_neural_attention.layers import TransformerEncoderBlock
from keras_neural_attention.models.distribution import train_image_classifier
from keras_neural_attention.models.vit import (
    RELEASED_CODE_VISION_PARAMETER_COUNTS,
)
from keras_neural_attention.models.vit import VisionTransformerBackbone
from keras_neural_attention.models.vit import paper_vision_transformer_config
from keras_neural_attention.models.vit import vision_augmentation
from keras_neural_attention.models.vit import vision_transformer_classifier
from keras_neural_attention.models.vit import (
    vision_transformer_parameter_count,
)
from keras_neural_attention.models.vit import vision_transformer_preprocessor
from tests.backend_utils import to_numpy

# Few distinct shapes: JAX compiles every op again for every new shape.
SIZES = [(8, 8), (8, 16), (12, 4)]
TINY = dict(
    patch_size=4,
    num_layers=2,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=24,
    attention_types=["neural", "dot_product"],
    position_grid_size=(2, 2),
)


def as_json(config):
    """Configs compared as saved (tuples and lists are the same in JSON)."""
    return json.dumps(config, sort_keys=True)


def images(rng, batch, height, width):
    return rng.uniform(-1.0, 1.0, size=(batch, height, width, 3)).astype(
        "float32"
    )


@pytest.mark.parametrize(
    "position_embedding", ["learned", "sinusoidal", "released_code"]
)
def test_output_shapes_for_image_sizes_divisible_by_patch_size(
    position_embedding,
):
    rng = np.random.default_rng(0)
    backbone = VisionTransformerBackbone(
        **{**TINY, "position_embedding": position_embedding}
    )
    # Every size for one scheme; one non-square size for the others.
    sizes = SIZES if position_embedding == "learned" else [(8, 16)]
    for height, width in sizes:
        out = to_numpy(backbone(images(rng, 2, height, width)))
        tokens = 1 + (height // 4) * (width // 4)
        assert out.shape == (2, tokens, 16), (height, width)
        assert np.isfinite(out).all()


def test_learned_positions_are_interpolated_for_other_grids():
    layer = PatchEmbedding(
        patch_size=2, hidden_dim=4, position_grid_size=(2, 2)
    )
    layer(np.zeros((1, 4, 4, 3), "float32"))
    table = np.arange(16, dtype="float32").reshape(2, 2, 4)
    layer.patch_position_embedding.assign(table)
    layer.class_position_embedding.assign(np.zeros(4, "float32"))
    layer.patch_projection.kernel.assign(
        np.zeros(layer.patch_projection.kernel.shape, "float32")
    )
    # The reference grid itself: the table, unchanged.
    same = to_numpy(layer(np.zeros((1, 4, 4, 3), "float32")))[0, 1:]
    np.testing.assert_allclose(same, table.reshape(4, 4), atol=1e-6)
    # A 1 x 2 grid: bilinear (half-pixel) resizing averages the two rows.
    wide = to_numpy(layer(np.zeros((1, 2, 4, 3), "float32")))[0, 1:]
    np.testing.assert_allclose(wide, table.mean(axis=0), atol=1e-5)


def test_image_size_not_divisible_by_patch_size_raises():
    backbone = VisionTransformerBackbone(**TINY)
    with pytest.raises(ValueError, match="divisible by the patch size"):
        backbone(np.zeros((1, 10, 8, 3), "float32"))
    with pytest.raises(ValueError, match="divisible by the patch size"):
        backbone(np.zeros((1, 8, 6, 3), "float32"))
    with pytest.raises(ValueError, match="divisible by the patch size"):
        VisionTransformerBackbone(**{**TINY, "image_shape": (10, 8, 3)})


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="attention_types"):
        VisionTransformerBackbone(**{**TINY, "attention_types": ["neural"]})
    with pytest.raises(ValueError, match="attention_types"):
        VisionTransformerBackbone(**{**TINY, "attention_types": "sparse"})
    with pytest.raises(TypeError, match="augmentation"):
        VisionTransformerBackbone(**{**TINY, "augmentation": "flip"})
    with pytest.raises(ValueError, match="position_embedding"):
        VisionTransformerBackbone(**{**TINY, "position_embedding": "rope"})
    with pytest.raises(ValueError, match="position_grid_size"):
        VisionTransformerBackbone(
            **{**TINY, "position_grid_size": None}
        )
    with pytest.raises(ValueError, match="attention_options"):
        VisionTransformerBackbone(
            **{**TINY, "attention_options": {"projection_dim": 3}}
        )
    with pytest.raises(ValueError, match="attention_type"):
        TransformerEncoderBlock(2, 8, attention_type="linear")


@pytest.mark.parametrize("normalize_first", [False, True])
def test_block_is_post_ln_or_pre_ln(normalize_first):
    """Recomposes the block from its own sublayers in the documented order."""
    rng = np.random.default_rng(1)
    x = keras.ops.convert_to_tensor(
        rng.normal(size=(2, 5, 16)).astype("float32")
    )
    block = TransformerEncoderBlock(
        num_heads=2,
        intermediate_dim=24,
        attention_type="neural",
        normalize_first=normalize_first,
    )
    out = to_numpy(block(x))
    # Non-trivial LayerNorm parameters, so a misplaced norm shows.
    for norm in (block.self_attention_layer_norm, block.feedforward_layer_norm):
        norm.gamma.assign(rng.uniform(0.5, 1.5, size=16).astype("float32"))
        norm.beta.assign(rng.normal(size=16).astype("float32"))
    out = to_numpy(block(x))

    attention = block.self_attention_layer
    norm1 = block.self_attention_layer_norm
    norm2 = block.feedforward_layer_norm

    def feedforward(h):
        return block.feedforward_output_dense(
            block.feedforward_intermediate_dense(h)
        )

    if normalize_first:
        h = norm1(x)
        y = x + attention(h, h)
        expected = y + feedforward(norm2(y))
    else:
        y = norm1(x + attention(x, x))
        expected = norm2(y + feedforward(y))
    np.testing.assert_allclose(out, to_numpy(expected), rtol=1e-5, atol=1e-5)
    assert isinstance(attention, NeuralAttention)


def test_post_ln_and_pre_ln_backbones_differ_and_both_work():
    rng = np.random.default_rng(2)
    x = images(rng, 2, 8, 8)
    outputs = {}
    for normalize_first in (False, True):
        keras.utils.set_random_seed(3)
        backbone = VisionTransformerBackbone(
            **{**TINY, "normalize_first": normalize_first}
        )
        outputs[normalize_first] = to_numpy(backbone(x))
    assert outputs[False].shape == outputs[True].shape == (2, 5, 16)
    assert not np.allclose(outputs[False], outputs[True], atol=1e-3)


def separable_image_set(rng, count=32, size=8):
    """Noise images, with a red cast for class 0 and a blue one for 1."""
    labels = np.arange(count) % 2
    x = rng.normal(scale=0.3, size=(count, size, size, 3)).astype("float32")
    x[labels == 0, ..., 0] += 1.0
    x[labels == 1, ..., 2] += 1.0
    return x, labels.astype("int32")


def test_training_steps_lower_the_loss():
    rng = np.random.default_rng(4)
    x, y = separable_image_set(rng)
    keras.utils.set_random_seed(5)

    def build_model():
        backbone = VisionTransformerBackbone(**TINY)
        return vision_transformer_classifier(backbone, num_classes=2)

    result = train_image_classifier(
        build_model,
        x,
        y,
        batch_size=8,
        epochs=3,
        optimizer=keras.optimizers.Adam(3e-3),
        shuffle_seed=0,
    )
    losses = result.history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.distribution is None  # one device in the test process


def test_save_and_load_give_identical_outputs(tmp_path):
    rng = np.random.default_rng(6)
    backbone = VisionTransformerBackbone(
        **{**TINY, "augmentation": vision_augmentation(seed=1), "dropout": 0.1}
    )
    classifier = vision_transformer_classifier(backbone, num_classes=3)
    x = images(rng, 2, 8, 16)
    expected = to_numpy(classifier(x))
    path = os.path.join(tmp_path, "vit.keras")
    classifier.save(path)
    restored = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(to_numpy(restored(x)), expected, atol=1e-6)
    assert isinstance(restored.backbone, VisionTransformerBackbone)
    assert as_json(restored.backbone.get_config()) == as_json(
        backbone.get_config()
    )
    attention = restored.backbone.get_layer(
        "transformer_block_0"
    ).self_attention_layer
    assert isinstance(attention, NeuralAttention)


def test_augmentation_is_active_only_in_training():
    rng = np.random.default_rng(7)
    x = images(rng, 2, 8, 8)
    augment = vision_augmentation(seed=2)
    np.testing.assert_array_equal(to_numpy(augment(x, training=False)), x)
    assert not np.allclose(to_numpy(augment(x, training=True)), x, atol=1e-3)

    backbone = VisionTransformerBackbone(
        **{**TINY, "augmentation": vision_augmentation(seed=2)}
    )  # dropout 0: augmentation is the only randomness
    inference = to_numpy(backbone(x))
    np.testing.assert_array_equal(to_numpy(backbone(x)), inference)
    np.testing.assert_array_equal(
        to_numpy(backbone(x, training=False)), inference
    )
    assert not np.allclose(
        to_numpy(backbone(x, training=True)), inference, atol=1e-3
    )


def test_augmentation_is_trained_inside_fit():
    """`fit` runs the augmentation (training=True, compiled where the
    backend compiles) and `predict` does not."""
    rng = np.random.default_rng(10)
    x, y = separable_image_set(rng, count=8)
    keras.utils.set_random_seed(11)
    backbone = VisionTransformerBackbone(
        **{**TINY, "num_layers": 1, "attention_types": "neural",
           "augmentation": vision_augmentation(seed=3)}
    )
    inputs = keras.Input((8, 8, 3))
    features = keras.Model(inputs, backbone(inputs)[:, 0])
    features.compile(optimizer="sgd", loss="mse")
    before = to_numpy(features(x))
    history = features.fit(x, before, batch_size=8, epochs=1, verbose=0)
    # Targets are the un-augmented outputs: augmented inputs move them.
    assert history.history["loss"][0] > 1e-6
    after = to_numpy(features(x))
    np.testing.assert_allclose(to_numpy(features(x)), after, atol=1e-6)
    np.testing.assert_allclose(
        features.predict(x, verbose=0), after, atol=1e-5
    )


def test_get_config_round_trip():
    backbone = VisionTransformerBackbone(
        **{
            **TINY,
            "normalize_first": True,
            "attention_types": ["expressive", "neural"],
            "attention_options": {
                "neural": {"projection_dim": 3, "hidden_units": [4]}
            },
            "augmentation": vision_augmentation(seed=0),
        }
    )
    config = backbone.get_config()
    revived = VisionTransformerBackbone.from_config(config)
    assert as_json(revived.get_config()) == as_json(config)
    assert revived.count_params() == backbone.count_params()
    neural = revived.get_layer("transformer_block_1").self_attention_layer
    assert neural.projection_dim == 3 and neural.hidden_units == (4,)
    for layer in (
        revived.get_layer("patch_embedding"),
        revived.get_layer("transformer_block_0"),
    ):
        clone = type(layer).from_config(layer.get_config())
        assert as_json(clone.get_config()) == as_json(layer.get_config())


def hand_count(patch, channels, hidden, heads, ffn, layers, grid, classes,
               neural_blocks, projection_dim, hidden_units):
    """Parameters of the tiny ViT, derived layer by layer."""
    key_dim = hidden // heads
    total = patch * patch * channels * hidden + hidden  # patch conv
    total += hidden  # class token
    total += grid[0] * grid[1] * hidden + hidden  # position tables
    per_block = 3 * (hidden * heads * key_dim + heads * key_dim)  # q, k, v
    per_block += heads * key_dim * hidden + hidden  # attention output
    per_block += 2 * 2 * hidden  # two LayerNorms
    per_block += hidden * ffn + ffn + ffn * hidden + hidden  # feed-forward
    total += layers * per_block
    scoring = 2 * (key_dim * projection_dim + projection_dim)  # q/k down
    width = 2 * projection_dim
    for units in hidden_units:
        scoring += width * units + units
        width = units
    scoring += width + 1  # scalar score
    total += neural_blocks * scoring
    total += 2 * hidden  # final LayerNorm
    total += hidden * classes + classes  # head
    return total


def test_parameter_count_matches_hand_derived_formula():
    config = {
        **TINY,
        "attention_options": {
            "neural": {"projection_dim": 3, "hidden_units": [5, 2]}
        },
    }
    expected = hand_count(
        patch=4, channels=3, hidden=16, heads=2, ffn=24, layers=2,
        grid=(2, 2), classes=7, neural_blocks=1, projection_dim=3,
        hidden_units=(5, 2),
    )
    assert vision_transformer_parameter_count(7, **config) == expected
    classifier = vision_transformer_classifier(
        VisionTransformerBackbone(**config), num_classes=7
    )
    assert classifier.count_params() == expected


def released_code_vision_count(classes, neural, layers=12):
    """The released vision code's parameters (`SimpleTransformer`, dim 768,
    8 heads, FFN 1024, 8x8 patches, CLS, sinusoid positions), derived from
    its modules."""
    dim, heads, ffn, patch = 768, 8, 1024, 8
    total = 3 * patch * patch * dim + dim + dim  # Conv2d + CLS token
    block = dim * 3 * dim + dim * dim  # to_qkv, W_out: no biases
    block += 2 * 2 * dim + dim * ffn + ffn + ffn * dim + dim
    total += layers * block + 2 * dim + dim * classes + classes  # LN, head
    if neural:
        head_dim = dim // heads
        d = head_dim // 32
        total += 2 * (head_dim * d + d)  # q_proj, k_proj
        total += 2 * d * d + d + d * (d // 2) + d // 2 + d // 2 + 1
    return total


def test_released_code_counts_match_the_notes():
    for dataset, classes in (("cifar10", 10), ("cifar100", 100)):
        for variant in ("baseline", "neural"):
            assert RELEASED_CODE_VISION_PARAMETER_COUNTS[dataset][
                variant
            ] == released_code_vision_count(classes, variant == "neural")


def test_paper_config_has_the_released_code_parameter_count():
    # A few of the twelve blocks (same per-block structure) keep the test
    # fast; the full counts are `paper_vision_parameter_counts()`.
    for neural, layers in ((True, 2), (False, 1)):
        config = paper_vision_transformer_config(neural=neural)
        config["num_layers"] = layers
        config["attention_types"] = config["attention_types"][:layers]
        assert vision_transformer_parameter_count(
            100, **config
        ) == released_code_vision_count(100, neural, layers=layers)


def test_keras_hub_preprocessor_scales_uint8_images():
    rng = np.random.default_rng(8)
    backbone = VisionTransformerBackbone(**TINY)
    classifier = vision_transformer_classifier(
        backbone, num_classes=2, preprocessor=vision_transformer_preprocessor()
    )
    raw = rng.integers(0, 256, size=(2, 8, 8, 3)).astype("uint8")
    predicted = classifier.predict(raw, batch_size=2, verbose=0)
    direct = to_numpy(classifier(raw.astype("float32") / 127.5 - 1.0))
    np.testing.assert_allclose(predicted, direct, atol=1e-5)


def test_distribution_module_imports_neither_keras_hub_nor_tensorflow():
    """Importing the distribution module pulls neither KerasHub nor (on JAX)
    TensorFlow (the ViT module, a KerasHub backbone, does)."""
    if keras.backend.backend() != "jax":
        pytest.skip("import check runs once, in the KERAS_BACKEND=jax session")
    code = (
        "import sys\n"
        "import keras_neural_attention.models.distribution\n"
        "print(','.join(m for m in ('tensorflow', 'keras_hub') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, KERAS_BACKEND="jax"),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", result.stdout


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="only TensorFlow traces graphs with an unknown image size",
)
@pytest.mark.parametrize(
    "position_embedding", ["learned", "sinusoidal", "released_code"]
)
def test_unknown_image_size_in_tensorflow_graph(position_embedding):
    import tensorflow as tf

    # One dot-product block: the point is the patch grid of unknown size
    # (Neural Attention's unknown-length graphs are tested with the layer).
    backbone = VisionTransformerBackbone(
        **{
            **TINY,
            "num_layers": 1,
            "attention_types": "dot_product",
            "position_embedding": position_embedding,
        }
    )
    graph = tf.function(
        backbone,
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
    )
    x = images(np.random.default_rng(9), 2, 8, 16)
    np.testing.assert_allclose(
        graph(x).numpy(), to_numpy(backbone(x)), rtol=1e-5, atol=1e-5
    )
