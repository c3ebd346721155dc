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
