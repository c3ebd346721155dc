"""Recipes: which variables decay, the schedule, PyTorch initialization."""

import math

import keras
import numpy as np
import pytest

from keras_neural_attention.experiments import recipes
from keras_neural_attention.experiments import training
from keras_neural_attention.experiments.scales import LANGUAGE
from keras_neural_attention.experiments.scales import VISION


@pytest.fixture(scope="module")
def language_model():
    model, _ = training.build_language_model(LANGUAGE["tiny"], "neural", 30)
    return model


@pytest.fixture(scope="module")
def vision_model():
    return training.build_vision_model(VISION["tiny"], "neural", 10)


def _names(variables):
    return {v.path for v in variables}


def test_weight_decay_on_dense_kernels_only(language_model, vision_model):
    decayed = _names(recipes.weight_decay_variables(language_model))
    assert "token_embedding/reverse_embeddings" in decayed  # untied head
    assert "token_embedding/embeddings" not in decayed
    assert "transformer_layer_0/self_attention/query/kernel" in decayed
    assert "transformer_layer_0/self_attention/score_output_kernel" in decayed
    assert not any("bias" in p or "gamma" in p or "beta" in p
                   for p in decayed)
    decayed = _names(recipes.weight_decay_variables(vision_model))
    assert "patch_embedding/class_token" not in decayed
    assert "patch_embedding/patch_projection/kernel" not in decayed
    assert "predictions/kernel" in decayed
    assert all("kernel" in p for p in decayed)
    everything = _names(vision_model.trainable_variables)
    kept = everything - decayed
    assert all(("kernel" not in p) or "patch_projection" in p for p in kept)


def test_optimizer_excludes_the_rest(vision_model):
    recipe = VISION["tiny"]
    optimizer = recipes.build_optimizer(recipe, vision_model, 2)
    assert optimizer.beta_1 == 0.9 and optimizer.beta_2 == 0.95
    assert optimizer.global_clipnorm == 1.0
    assert math.isclose(optimizer.weight_decay, 0.1)
    decayed = {id(v) for v in recipes.weight_decay_variables(vision_model)}
    for variable in vision_model.trainable_variables:
        assert optimizer._use_weight_decay(variable) == (
            id(variable) in decayed), variable.path


def test_warmup_cosine_schedule():
    schedule = recipes.learning_rate_schedule(1e-3, "warmup_cosine", 10, 2)
    values = [float(schedule(step)) for step in (0, 1, 2, 6, 10)]
    np.testing.assert_allclose(
        values, [0.0, 5e-4, 1e-3, 1e-3 * 0.5 * (1 + math.cos(math.pi / 2)),
                 0.0], atol=1e-9)
    assert recipes.learning_rate_schedule(3e-4) == 3e-4
    with pytest.raises(ValueError, match="`schedule` must be one of"):
        recipes.learning_rate_schedule(1e-3, "linear")


def test_pytorch_initialization_bounds(language_model):
    count = recipes.apply_pytorch_initialization(language_model, seed=1)
    assert count > 0
    weights = {v.path: keras.ops.convert_to_numpy(v)
               for v in language_model.weights}
    embeddings = weights["token_embedding/embeddings"]
    assert 0.8 < embeddings.std() < 1.2  # N(0, 1)
    query = weights["transformer_layer_0/self_attention/query/kernel"]
    bound = 1 / math.sqrt(query.shape[0])
    assert np.abs(query).max() <= bound and np.abs(query).max() > bound / 2
    out = weights["transformer_layer_0/self_attention/attention_output/"
                  "kernel"]
    assert np.abs(out).max() <= 1 / math.sqrt(out.shape[0] * out.shape[1])
    bias = weights["transformer_layer_0/feedforward_intermediate_dense/bias"]
    kernel = weights[
        "transformer_layer_0/feedforward_intermediate_dense/kernel"]
    assert np.abs(bias).max() <= 1 / math.sqrt(kernel.shape[0])
    assert np.abs(bias).max() > 0


def test_neural_layers():
    assert recipes.neural_layers("all", 3) == (0, 1, 2)
    assert recipes.neural_layers((0, -1), 3) == (0, 2)
    with pytest.raises(ValueError, match="attention_layers"):
        recipes.neural_layers((5,), 3)


def test_gpu_recipe_is_the_issue_recipe():
    gpu = VISION["gpu"]
    assert (gpu.image_size, gpu.patch_size, gpu.hidden_dim, gpu.num_heads,
            gpu.num_layers, gpu.intermediate_dim) == (32, 4, 384, 6, 6, 1024)
    assert gpu.hidden_dim // gpu.num_heads == 64
    assert (gpu.batch_size, gpu.learning_rate, gpu.warmup_epochs,
            gpu.weight_decay, gpu.epochs) == (128, 5e-4, 2, 0.05, 10)
    assert gpu.schedule == "warmup_cosine" and gpu.augmentation == \
        "crop_flip" and gpu.attention_layers == (0,)
    assert gpu.position_embedding == "released_code"
    assert not gpu.normalize_first and gpu.source == "npz"


def test_crop_flip_moves_pixels_and_is_identity_at_inference():
    augment = recipes.augmentation_layers("crop_flip", seed=3)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(augment(images, training=True))
    assert out.shape == images.shape
    assert not np.allclose(out, images)
    # Nearest-pixel shifts with reflected borders only move pixels.
    for a, b in zip(out, images):
        assert set(np.round(a.ravel(), 5)) <= set(np.round(b.ravel(), 5))
    same = keras.ops.convert_to_numpy(augment(images, training=False))
    np.testing.assert_array_equal(same, images)
    assert recipes.augmentation_layers(None) is None
    with pytest.raises(ValueError, match="`augmentation` must be one of"):
        recipes.augmentation_layers("mixup")
