"""Training helpers: data parallelism over all local devices with
`keras.distribution` when there are several, plain training otherwise."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_neural_attention.models.distribution import (
    data_parallel_distribution,
)
from keras_neural_attention.models.distribution import distribution_scope
from keras_neural_attention.models.distribution import distribution_supported
from keras_neural_attention.models.distribution import train_image_classifier

BACKEND = keras.backend.backend()
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def tiny_dense_classifier():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_support_is_reported_for_the_current_backend():
    # Keras 3.15 applies `keras.distribution` in the JAX trainer only.
    assert distribution_supported() == (BACKEND == "jax")


def test_one_device_or_unsupported_backend_gives_no_distribution():
    if BACKEND == "jax" and len(keras.distribution.list_devices()) > 1:
        pytest.skip("this process sees several JAX devices")
    assert data_parallel_distribution() is None
    if BACKEND == "jax":
        device = keras.distribution.list_devices()[0]
        assert data_parallel_distribution(devices=[device]) is None
    with distribution_scope(None):
        pass  # a no-op context


def test_invalid_arguments_raise():
    x = np.zeros((4, 4, 4, 3), "float32")
    y = np.zeros((4,), "int32")
    with pytest.raises(ValueError, match="distribution"):
        train_image_classifier(tiny_dense_classifier, x, y,
                               distribution="all")
    with pytest.raises(TypeError, match="distribution"):
        train_image_classifier(tiny_dense_classifier, x, y, distribution=2)
    with pytest.raises(TypeError, match="build_model"):
        train_image_classifier("model", x, y)
    with pytest.raises(ValueError, match="batch_size"):
        train_image_classifier(tiny_dense_classifier, x, y, batch_size=0)
    with pytest.raises(TypeError, match="keras.Model"):
        train_image_classifier(lambda: "model", x, y, batch_size=2)


def test_plain_keras_model_trains_without_distribution():
    rng = np.random.default_rng(0)
    y = (np.arange(32) % 2).astype("int32")
    x = rng.normal(scale=0.3, size=(32, 4, 4, 3)).astype("float32")
    x[y == 0, ..., 0] += 1.0
    x[y == 1, ..., 2] += 1.0
    keras.utils.set_random_seed(1)
    result = train_image_classifier(
        tiny_dense_classifier, x, y, batch_size=8, epochs=3,
        optimizer=keras.optimizers.Adam(1e-2), distribution=None,
        validation_data=(x[:8], y[:8]),
    )
    losses = result.history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert "val_loss" in result.history.history
    assert result.distribution is None


TWO_DEVICE_SCRIPT = r"""
import json

import jax
import keras
import numpy as np

from keras_neural_attention.models.distribution import (
    data_parallel_distribution, train_image_classifier)
from keras_neural_attention.models.vit import (
    VisionTransformerBackbone, vision_transformer_classifier)

report = {"jax_devices": jax.device_count()}
distribution = data_parallel_distribution()
report["distribution"] = type(distribution).__name__
report["mesh_devices"] = int(distribution.device_mesh.devices.size)

rng = np.random.default_rng(0)
y = (np.arange(32) % 2).astype("int32")
x = rng.normal(scale=0.3, size=(32, 8, 8, 3)).astype("float32")
x[y == 0, ..., 0] += 1.0
x[y == 1, ..., 2] += 1.0

# A global batch of 8 is split into one shard of 4 per device.
layout = distribution.get_data_layout(x[:8].shape)
batch = keras.distribution.distribute_tensor(x[:8], layout)
report["batch_shards"] = sorted(
    [list(s.data.shape) for s in batch.addressable_shards])


def build_model():
    backbone = VisionTransformerBackbone(
        patch_size=4, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=24, attention_types="neural",
        position_grid_size=(2, 2))
    return vision_transformer_classifier(backbone, num_classes=2)


def train(distribution):
    keras.utils.set_random_seed(5)
    return train_image_classifier(
        build_model, x, y, batch_size=8, epochs=2, shuffle_seed=0,
        optimizer=keras.optimizers.Adam(3e-3), distribution=distribution)


result = train("auto")
report["auto_distribution"] = type(result.distribution).__name__
report["weight_devices"] = sorted(
    len(v.value.sharding.device_set) for v in result.model.trainable_variables
)[0]
report["parallel_losses"] = result.history.history["loss"]
report["single_losses"] = train(None).history.history["loss"]
try:
    train_image_classifier(build_model, x, y, batch_size=7, epochs=1)
    report["odd_batch"] = "accepted"
except ValueError as error:
    report["odd_batch"] = str(error)
print("REPORT " + json.dumps(report))
"""


def test_data_parallel_training_on_two_virtual_jax_devices():
    if BACKEND != "jax":
        pytest.skip(
            f"keras.distribution is JAX-only in Keras {keras.__version__}; "
            f"the {BACKEND} backend trains on one device. The two-device "
            "check runs in the KERAS_BACKEND=jax session."
        )
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "jax"
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    ).strip()
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p
    )
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    completed = subprocess.run(
        [sys.executable, "-c", TWO_DEVICE_SCRIPT],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    lines = [
        line for line in completed.stdout.splitlines()
        if line.startswith("REPORT ")
    ]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["jax_devices"] == 2
    assert report["distribution"] == "DataParallel"
    assert report["auto_distribution"] == "DataParallel"
    assert report["mesh_devices"] == 2
    assert report["batch_shards"] == [[4, 8, 8, 3], [4, 8, 8, 3]]
    # Every weight is replicated on both devices.
    assert report["weight_devices"] == 2
    parallel = report["parallel_losses"]
    assert parallel[-1] < parallel[0], parallel
    # Data parallelism computes the same mean gradient as one device.
    np.testing.assert_allclose(
        parallel, report["single_losses"], rtol=1e-4, atol=1e-5
    )
    assert "divisible by the number of devices (2)" in report["odd_batch"]
