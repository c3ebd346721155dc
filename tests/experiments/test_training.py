"""The training core's input pipeline (every backend: the augmentation
layers run inside `tf.data` whatever `KERAS_BACKEND` is)."""

import numpy as np

from keras_neural_attention.experiments import recipes
from keras_neural_attention.experiments import scales
from keras_neural_attention.experiments import training


def test_crop_flip_runs_in_the_input_pipeline_on_whole_pixels():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 32, 32, 3)).astype("uint8")
    y = np.arange(8)
    augmentation = recipes.augmentation_layers("crop_flip", seed=1)
    batches = training._shuffled_batches(x, y, 8, seed=0,
                                         augmentation=augmentation)
    images, labels = next(iter(batches.as_numpy_iterator()))
    assert images.shape == x.shape
    changed = 0
    for image, label in zip(images, labels):
        # Shifts with reflected borders, nearest sampling and flips only
        # move pixels: every value is one of the original image's, so the
        # task's later rescaling to [-1, 1] commutes with them.
        assert set(np.unique(image)) <= set(np.unique(x[label]))
        changed += not np.array_equal(image, x[label])
    assert changed >= 6
    # Without augmentation the pipeline returns the images as they are.
    plain = training._shuffled_batches(x, y, 8, seed=0)
    images, labels = next(iter(plain.as_numpy_iterator()))
    np.testing.assert_array_equal(images, x[labels])


def test_the_model_is_built_without_the_pipeline_augmentation():
    crop_flip = scales.vision_recipe("tiny", augmentation="crop_flip")
    assert training.model_recipe(crop_flip).augmentation is None
    released = scales.vision_recipe("tiny", augmentation="released_code")
    assert training.model_recipe(released) == released


TWO_DEVICE_SCRIPT = r"""
import dataclasses, json
import numpy as np
import jax
from keras_neural_attention.experiments import scales, training

report = {"jax_devices": len(jax.devices())}
rng = np.random.default_rng(0)

vision = scales.vision_recipe("tiny", dropout=0.0, epochs=2, batch_size=8,
                              num_train=16, num_test=8)
images = rng.integers(0, 256, (16, 32, 32, 3), dtype="uint8")
labels = (np.arange(16) % 10).astype("int32")
vision_data = training.VisionData(images, labels, images[:8], labels[:8],
                                  num_classes=10, notes=[])
losses = {}
for name, distribution in (("parallel", "auto"), ("single", None)):
    row, _ = training.train_vision_model(vision, "neural", 0, vision_data,
                                         verbose=0,
                                         distribution=distribution)
    losses[name] = row["history"]["loss"] + row["history"]["val_loss"]
    report[f"vision_{name}_devices"] = row["devices"]
report["vision_losses"] = losses

language = scales.language_recipe("tiny", dropout=0.0, steps=4,
                                  validation_every=2)
blocks = rng.integers(0, 40, (12, language.context + 1)).astype("int32")
language_data = training.LanguageData(
    blocks, rng.integers(0, 40, 60).astype("int32"),
    [f"t{i}" for i in range(40)], "test", 0, [])
perplexities = {}
for name, distribution in (("parallel", "auto"), ("single", None)):
    row, _ = training.train_language_model(language, "neural", 0,
                                           language_data, verbose=0,
                                           distribution=distribution)
    perplexities[name] = [row["perplexity_released_code"],
                          row["perplexity_standard"]]
    report[f"language_{name}_devices"] = row["devices"]
report["perplexities"] = perplexities

errors = []
for changes, data in (({"batch_size": 7}, vision_data),
                      ({}, dataclasses.replace(
                          vision_data, x_test=images[:7],
                          y_test=labels[:7]))):
    try:
        training.train_vision_model(dataclasses.replace(vision, **changes),
                                    "neural", 0, data, verbose=0)
        errors.append("accepted")
    except ValueError as error:
        errors.append(str(error))
report["errors"] = errors
print("REPORT " + json.dumps(report))
"""


def test_data_parallel_training_on_two_virtual_jax_devices():
    """`train_vision_model` / `train_language_model` run data parallel over
    every local device (the `paper` scale's several accelerators), with the
    same losses and perplexities as one device, and refuse a batch or test
    set that does not split evenly."""
    import json
    import os
    import subprocess
    import sys

    import keras
    import pytest

    if keras.backend.backend() != "jax":
        pytest.skip(
            "keras.distribution is JAX-only in Keras "
            f"{keras.__version__}; the two-device check runs in the "
            "KERAS_BACKEND=jax session.")
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_force_host_platform_device_count=2").strip()
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, env.get("PYTHONPATH")) if p)
    completed = subprocess.run(
        [sys.executable, "-c", TWO_DEVICE_SCRIPT], env=env, cwd=root,
        capture_output=True, text=True, timeout=540)
    lines = [line for line in completed.stdout.splitlines()
             if line.startswith("REPORT ")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["jax_devices"] == 2
    assert report["vision_parallel_devices"] == 2
    assert report["vision_single_devices"] == 1
    assert report["language_parallel_devices"] == 2
    np.testing.assert_allclose(report["vision_losses"]["parallel"],
                               report["vision_losses"]["single"],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(report["perplexities"]["parallel"],
                               report["perplexities"]["single"],
                               rtol=1e-4)
    batch_error, test_error = report["errors"]
    assert "`batch_size`" in batch_error and "(2)" in batch_error
    assert "batch_size=7" in batch_error
    assert "`num_test`" in test_error and "num_test=7" in test_error
