"""CIFAR-10 recipe on a tiny `.npz` in the same format, made by the test."""

import dataclasses
import io
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_neural_attention.experiments.cifar10 import Cifar10Recipe
from keras_neural_attention.experiments.cifar10 import (
    build_cifar10_classifier,
)
from keras_neural_attention.experiments.cifar10 import load_cifar10_npz
from keras_neural_attention.experiments.cifar10 import train_cifar10_vit

# Trains small models through the experiment's own code (backend-
# independent plumbing; the layers are tested per backend): once per
# suite, see tests/conftest.py.
pytestmark = pytest.mark.one_backend


def jpeg_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return np.frombuffer(buffer.getvalue(), dtype="uint8")


def write_fake_cifar(path, counts=(("train", 20), ("test", 10))):
    """Flat-colour 32x32 images: class c has colour 25 * c (grey)."""
    arrays = {"class_names": np.array([f"class{c}" for c in range(10)])}
    for split, count in counts:
        labels = (np.arange(count) * 7) % 10  # not in class order
        encoded = [
            jpeg_bytes(np.full((32, 32, 3), 25 * label, dtype="uint8"))
            for label in labels
        ]
        offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])])
        arrays[f"{split}_jpeg"] = np.concatenate(encoded)
        arrays[f"{split}_offsets"] = offsets.astype("int64")
        arrays[f"{split}_labels"] = labels.astype("uint8")
    np.savez(path, **arrays)
    return path


def test_loader_decodes_images_and_interleaves_classes(tmp_path):
    path = write_fake_cifar(os.path.join(tmp_path, "cifar.npz"))
    images, labels = load_cifar10_npz(path, "train")
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.tile(np.arange(10), 2))
    # Flat colours survive JPEG almost exactly, and match their labels.
    np.testing.assert_allclose(
        images.reshape(20, -1).mean(1), 25.0 * labels, atol=2.0
    )
    small, small_labels = load_cifar10_npz(path, "test", limit=4)
    assert small.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(small_labels, [0, 1, 2, 3])


def test_loader_never_downloads_and_validates(tmp_path):
    missing = os.path.join(tmp_path, "absent.npz")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_cifar10_npz(missing)
    path = write_fake_cifar(os.path.join(tmp_path, "cifar.npz"))
    with pytest.raises(ValueError, match="split"):
        load_cifar10_npz(path, "validation")
    with pytest.raises(ValueError, match="SHA-256"):
        load_cifar10_npz(path, verify=True)


def test_weight_decay_only_on_linear_kernels():
    recipe = Cifar10Recipe(num_layers=1, num_heads=2, hidden_dim=8,
                           intermediate_dim=8, augment=False)
    classifier = build_cifar10_classifier(recipe, "neural")
    optimizer = classifier.optimizer
    decayed = {
        v.path for v in classifier.trainable_variables
        if optimizer._use_weight_decay(v)
    }
    assert decayed and all("kernel" in path for path in decayed)
    assert not any("patch_projection" in path for path in decayed)
    assert any("score_hidden_kernel" in path for path in decayed)
    assert not any(
        name in path
        for path in decayed
        for name in ("bias", "gamma", "beta", "class_token", "position")
    )
    with pytest.raises(ValueError, match="attention"):
        build_cifar10_classifier(recipe, "sparse")
    augmented = build_cifar10_classifier(
        dataclasses.replace(recipe, augment=True), "dot_product"
    )
    assert augmented.backbone.augmentation is not None
    assert classifier.backbone.augmentation is None


def test_recipe_trains_and_tests_on_local_data(tmp_path):
    path = write_fake_cifar(os.path.join(tmp_path, "cifar.npz"))
    recipe = Cifar10Recipe(
        patch_size=8, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=8, epochs=2, batch_size=10, augment=False,
    )  # augmentation inside `fit`: test_augmentation_is_trained_inside_fit
    result = train_cifar10_vit(path, "neural", recipe=recipe, num_test=10)
    assert result["num_train"] == 20 and result["num_test"] == 10
    assert len(result["history"]["loss"]) == 2
    assert np.isfinite(result["history"]["loss"]).all()
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert np.isfinite(result["test_loss"])
    assert result["backend"] == keras.backend.backend()
    assert result["parameters"] > 0
