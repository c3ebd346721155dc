"""Training helpers that spread a batch over all local devices with
`keras.distribution` when there is more than one, so that the same script
runs on one GPU and on a multi-GPU host.

Backend support (Keras 3.15): only the JAX trainer applies
`keras.distribution` (variables laid out on a device mesh, each batch split
across devices). The TensorFlow backend has DTensor layout functions
(`keras.src.backend.tensorflow.distribution_lib`) that its trainer never
uses, and the torch backend has no distribution support. On those backends
the helpers train on one device and warn when several accelerators are
visible (use `tf.distribute` or torch DDP there).
"""

import collections
import contextlib
import warnings

import keras

TrainingResult = collections.namedtuple(
    "TrainingResult", ["model", "history", "distribution"]
)
TrainingResult.__doc__ = """What `train_image_classifier` returns.

- model: the trained `keras.Model`.
- history: the `keras.callbacks.History` of `fit`.
- distribution: the `keras.distribution.DataParallel` (or other
  distribution) used, or None. Run later `evaluate`/`predict` calls of a
  distributed model inside `distribution_scope(result.distribution)`.
"""


# The public distribution classes (their base class is not exported).
_DISTRIBUTIONS = (
    keras.distribution.DataParallel,
    keras.distribution.ModelParallel,
)


def distribution_supported():
    """Whether the current Keras backend's trainer applies
    `keras.distribution` (JAX only in Keras 3.15)."""
    return keras.backend.backend() == "jax"


def _visible_accelerator_count():
    """Accelerators the backend sees (for the warning on non-JAX backends)."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU")) + len(
            tf.config.list_physical_devices("TPU")
        )
    return 0


def data_parallel_distribution(devices=None):
    """Data parallelism over all local devices, when there are several.

    Returns `keras.distribution.DataParallel(devices=devices)` when the
    backend supports `keras.distribution` (JAX) and more than one device is
    available: the model's variables are replicated on every device and
    each batch is split across them (the global batch size must be
    divisible by the number of devices). Returns None with a single device
    (no distribution needed) and on backends without support, warning there
    if several accelerators are visible.

    Args:
        devices: list of device names such as `["gpu:0", "gpu:1"]`, or None
            for `keras.distribution.list_devices()` (all accelerators, or
            all CPU devices when there are none).

    Returns:
        A `keras.distribution.DataParallel`, or None.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_neural_attention.layers import NeuralAttention
    from keras_neural_attention.models.distribution import (
        data_parallel_distribution, distribution_scope)

    distribution = data_parallel_distribution()   # None on one device
    with distribution_scope(distribution):
        inputs = keras.Input((6, 8))
        attended = NeuralAttention(num_heads=2, key_dim=8)(inputs, inputs)
        outputs = keras.layers.Dense(1)(
            keras.layers.GlobalAveragePooling1D()(attended))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss="mse")
        model.fit(np.zeros((8, 6, 8), "float32"), np.zeros((8, 1)),
                  batch_size=4, epochs=1, verbose=0)
    ```
    """
    if not distribution_supported():
        count = _visible_accelerator_count()
        if count > 1:
            warnings.warn(
                f"{count} accelerators are visible, but the "
                f"{keras.backend.backend()} backend of Keras "
                f"{keras.__version__} does not apply `keras.distribution`: "
                "training uses one device. Use the JAX backend for data "
                "parallelism.",
                UserWarning,
                stacklevel=2,
            )
        return None
    if devices is None:
        devices = keras.distribution.list_devices()
    devices = list(devices)
    if len(devices) < 2:
        return None
    return keras.distribution.DataParallel(devices=devices)


def distribution_scope(distribution):
    """`distribution.scope()`, or a no-op context for `distribution=None`."""
    if distribution is None:
        return contextlib.nullcontext()
    return distribution.scope()


def resolve_distribution(distribution):
    """The distribution that `distribution` names.

    Args:
        distribution: `"auto"` (`data_parallel_distribution()`: None on one
            device or a backend without `keras.distribution`), None, or a
            `keras.distribution.DataParallel` / `ModelParallel`.

    Returns:
        A `keras.distribution` distribution, or None.

    Raises:
        ValueError: another string, or a distribution on a backend that
            cannot apply it.
        TypeError: anything else.
    """
    if isinstance(distribution, str):
        if distribution != "auto":
            raise ValueError(
                "Argument `distribution` must be 'auto', None or a "
                "`keras.distribution.DataParallel` / `ModelParallel`. "
                f"Received: distribution={distribution!r}"
            )
        return data_parallel_distribution()
    if distribution is None or isinstance(distribution, _DISTRIBUTIONS):
        if distribution is not None and not distribution_supported():
            raise ValueError(
                "A `keras.distribution` distribution was given, but the "
                f"{keras.backend.backend()} backend does not support "
                "`keras.distribution` (JAX only). Pass distribution=None "
                "or 'auto'."
            )
        return distribution
    raise TypeError(
        "Argument `distribution` must be 'auto', None or a "
        "`keras.distribution.DataParallel` / `ModelParallel`. "
        f"Received: distribution={distribution!r}"
    )


def _array_dataset(x, y, batch_size, shuffle, drop_remainder, seed):
    """`tf.data` batches of arrays (reshuffled every epoch), or None when
    TensorFlow is not installed."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    dataset = tf.data.Dataset.from_tensor_slices(
        (keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y))
    )
    if shuffle:
        dataset = dataset.shuffle(
            len(x), seed=seed, reshuffle_each_iteration=True
        )
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(
        tf.data.AUTOTUNE
    )


def _in_scope(obj, distribution):
    """A fresh copy of an optimizer or metric instance, made inside the
    distribution's scope: one created outside holds variables (an
    optimizer's iteration counter) without the distribution's layout."""
    if distribution is None or not isinstance(
        obj, (keras.optimizers.Optimizer, keras.metrics.Metric)
    ):
        return obj
    return obj.__class__.from_config(obj.get_config())


def distribution_device_count(distribution):
    """The number of devices a batch is split across (1 for None)."""
    if distribution is None:
        return 1
    return int(distribution.device_mesh.devices.size)


def train_image_classifier(
    build_model,
    x,
    y=None,
    *,
    batch_size=None,
    epochs=1,
    validation_data=None,
    optimizer=None,
    loss=None,
    metrics=("accuracy",),
    distribution="auto",
    callbacks=None,
    steps_per_epoch=None,
    shuffle_seed=None,
    verbose=0,
):
    """Builds, compiles and trains an image classifier, data-parallel over
    all local devices when there are several.

    `build_model` is called inside the distribution's scope, so that the
    variables (and the optimizer's) are created with the distribution's
    layouts; `compile` and `fit` run in the same scope. With one device
    (or on a backend without `keras.distribution`) it is plain
    `build_model()` / `compile` / `fit`.

    Args:
        build_model: callable with no arguments returning a `keras.Model`
            (for example a `vision_transformer_classifier(...)`), which may
            already be compiled.
        x: images (array), or a dataset of `(images, labels)` batches
            (`tf.data.Dataset`, `keras.utils.PyDataset`, ...).
        y: integer labels when `x` is an array.
        batch_size: int. Global batch size for array inputs (split across
            devices: must be divisible by their number). Defaults to 32
            for array inputs.
        epochs: int. Training epochs.
        validation_data: as in `keras.Model.fit`.
        optimizer: None to keep the optimizer of an already-compiled model
            (a model that is not compiled gets `"adamw"`), or any optimizer
            `keras.Model.compile` accepts, which recompiles the model. With
            a distribution, an optimizer instance is recreated from its
            config inside the distribution's scope (its variables must get
            the distribution's layout); so are metric instances.
        loss: loss for `compile`; defaults to sparse categorical
            cross-entropy on logits. Used only when compiling.
        metrics: metrics for `compile`. Used only when compiling.
        distribution: `"auto"` (default: `data_parallel_distribution()`),
            None (no distribution), or a `keras.distribution.DataParallel`
            (or `ModelParallel`).
        callbacks: list of `keras.callbacks.Callback`.
        steps_per_epoch: int or None, as in `keras.Model.fit`.
        shuffle_seed: optional int seed of the per-epoch shuffling of
            array inputs.
        verbose: verbosity of `fit`. Defaults to 0.

    Returns:
        A `TrainingResult(model, history, distribution)`.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.models.distribution import (
        train_image_classifier)
    from keras_neural_attention.models.vit import (
        VisionTransformerBackbone, vision_transformer_classifier)

    def build_model():
        backbone = VisionTransformerBackbone(
            patch_size=4, num_layers=2, num_heads=2, hidden_dim=32,
            intermediate_dim=64, position_grid_size=(8, 8))
        return vision_transformer_classifier(backbone, num_classes=10)

    images = np.random.uniform(-1, 1, (64, 32, 32, 3)).astype("float32")
    labels = np.random.randint(0, 10, (64,))
    result = train_image_classifier(build_model, images, labels,
                                    batch_size=16, epochs=1)
    ```
    """
    if not callable(build_model):
        raise TypeError(
            "Argument `build_model` must be a callable returning a "
            f"`keras.Model`. Received: build_model={build_model!r}"
        )
    distribution = resolve_distribution(distribution)
    devices = distribution_device_count(distribution)
    is_array = y is not None
    if is_array and batch_size is None:
        batch_size = 32
    if batch_size is not None and (
        not isinstance(batch_size, int) or batch_size <= 0
    ):
        raise ValueError(
            "Argument `batch_size` must be a positive integer or None. "
            f"Received: batch_size={batch_size!r}"
        )
    if batch_size is not None and batch_size % devices:
        raise ValueError(
            f"Argument `batch_size` must be divisible by the number of "
            f"devices ({devices}): each device gets batch_size / {devices} "
            f"examples. Received: batch_size={batch_size}"
        )
    with distribution_scope(distribution):
        model = build_model()
        if not isinstance(model, keras.Model):
            raise TypeError(
                "`build_model()` must return a `keras.Model`. "
                f"Received: {model!r}"
            )
        if optimizer is not None or getattr(model, "optimizer", None) is None:
            model.compile(
                optimizer=_in_scope(optimizer, distribution)
                if optimizer is not None
                else "adamw",
                loss=loss
                if loss is not None
                else keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True
                ),
                metrics=[_in_scope(m, distribution) for m in metrics]
                if metrics
                else None,
            )
        fit_batch_size = None
        if is_array:
            x_train = _array_dataset(
                x, y, batch_size, True, devices > 1, shuffle_seed
            )
            if x_train is None:  # no TensorFlow: let `fit` batch the arrays
                x_train, fit_batch_size = x, batch_size
            else:
                y = None
            if (
                x_train is not x
                and isinstance(validation_data, (tuple, list))
                and len(validation_data) == 2
            ):
                validation_data = _array_dataset(
                    *validation_data, batch_size, False, devices > 1, None
                )
        else:
            x_train = x
        history = model.fit(
            x_train,
            y,
            batch_size=fit_batch_size,
            epochs=epochs,
            shuffle=fit_batch_size is not None,
            validation_data=validation_data,
            callbacks=callbacks,
            steps_per_epoch=steps_per_epoch,
            verbose=verbose,
        )
    return TrainingResult(model, history, distribution)
