"""Build, train and evaluate the paper's models from a recipe.

`prepare_language_data` / `prepare_vision_data` read and tokenize the data
once per table; `train_language_model` / `train_vision_model` build the
dot-product or Neural model of a recipe (`models.paper_lm_causal_lm`,
`models.VisionTransformerBackbone` with
`models.vision_transformer_classifier`), train it with `model.fit` (Keras'
progress output, a `keras.callbacks.CSVLogger` history and a
`keras.callbacks.ModelCheckpoint` of the best epoch) and return one result
row with every number.
"""

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np

from keras_neural_attention.experiments import data as data_lib
from keras_neural_attention.experiments import evaluation
from keras_neural_attention.experiments import recipes as recipes_lib
from keras_neural_attention.experiments import tokenization

MECHANISMS = ("dot_product", "neural")


def _check_mechanism(attention):
    if attention not in MECHANISMS:
        raise ValueError(
            f"Argument `attention` must be one of {MECHANISMS}. "
            f"Received: attention={attention!r}"
        )


# --------------------------------------------------------------------------
# Language model


@dataclasses.dataclass
class LanguageData:
    """Tokenized language-model data of one recipe."""

    train_blocks: np.ndarray
    eval_stream: np.ndarray
    vocabulary: list
    vocabulary_source: str
    dropped_train_tokens: int
    notes: list


def prepare_language_data(recipe, data_dir=None, cache_dir=None,
                          download=False):
    """Reads, tokenizes and blocks the recipe's WikiText splits.

    The tokenizer is `WordPieceTokenizer` with `recipe.vocabulary_file`, or
    a vocabulary learned on the training lines (cached in `cache_dir`).
    Lines follow the released code (`tokenization.released_code_lines`).
    """
    train_lines = data_lib.load_wikitext(
        recipe.dataset, recipe.train_split, data_dir=data_dir,
        download=download, max_lines=recipe.max_train_lines)
    eval_lines = data_lib.load_wikitext(
        recipe.dataset, recipe.eval_split, data_dir=data_dir,
        download=download, max_lines=recipe.max_eval_lines)
    if recipe.vocabulary_file:
        vocabulary = tokenization.read_vocabulary(recipe.vocabulary_file)
        source = f"file {os.path.basename(recipe.vocabulary_file)}"
    else:
        if cache_dir is None:
            vocabulary = tokenization.train_vocabulary(
                train_lines, recipe.vocabulary_size)
        else:
            vocabulary = tokenization.cached_vocabulary(
                train_lines, recipe.vocabulary_size, cache_dir)
        source = (
            f"WordPiece learned on {recipe.dataset} {recipe.train_split} "
            f"(at most {recipe.vocabulary_size} tokens)"
        )
    tokenizer = tokenization.wordpiece_tokenizer(vocabulary)
    train_stream = tokenization.token_stream(
        tokenizer, tokenization.released_code_lines(train_lines))
    eval_stream = tokenization.token_stream(
        tokenizer, tokenization.released_code_lines(eval_lines))
    blocks, dropped = tokenization.stream_to_blocks(
        train_stream, recipe.context + 1)
    notes = []
    if recipe.train_split != "train":
        notes.append(
            f"Trained on {recipe.dataset} `{recipe.train_split}` and "
            f"evaluated on `{recipe.eval_split}`: the train split is not "
            "available on this machine. Not the paper's data."
        )
    if recipe.max_train_lines or recipe.max_eval_lines:
        notes.append(
            f"Only the first {recipe.max_train_lines or 'all'} training "
            f"and {recipe.max_eval_lines or 'all'} evaluation lines."
        )
    if not recipe.vocabulary_file:
        notes.append(
            f"Vocabulary: {source}, {len(vocabulary)} tokens (the paper: "
            "bert-base-cased, 28,996); perplexities are not comparable "
            "across vocabularies."
        )
    return LanguageData(blocks, eval_stream, vocabulary, source, dropped,
                        notes)


def build_language_model(recipe, attention, vocabulary_size):
    """The recipe's compiled `GPT2CausalLM` (`models.paper_lm_causal_lm`)."""
    import keras

    from keras_neural_attention.models import paper_lm_causal_lm

    _check_mechanism(attention)
    layers = recipes_lib.neural_layers(recipe.attention_layers,
                                       recipe.num_layers)
    model = paper_lm_causal_lm(
        attention=attention,
        attention_layers=layers,
        vocabulary_size=int(vocabulary_size),
        num_layers=recipe.num_layers,
        num_heads=recipe.num_heads,
        hidden_dim=recipe.hidden_dim,
        intermediate_dim=recipe.intermediate_dim,
        max_sequence_length=recipe.context,
        dropout=recipe.dropout,
        projection_dim=recipe.projection_dim,
    )
    return model, keras


def _shuffled_batches(x, y, batch_size, seed, repeat=False,
                      augmentation=None):
    """A `tf.data` pipeline of `(x, y)` reshuffled every epoch (KerasHub's
    task `fit` turns arrays into an unshuffled `tf.data.Dataset`), with
    `augmentation` (a Keras layer, called with `training=True`) applied to
    each batch of `x`."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
        len(y), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if augmentation is not None:
        # Layer by layer: Keras' preprocessing layers run on TensorFlow
        # inside tf.data under every backend, a `Sequential` of them not.
        layers = getattr(augmentation, "layers", [augmentation])

        def augment(images, labels):
            for layer in layers:
                images = layer(images, training=True)
            return images, labels

        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(2)


def _batches(x, y, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def _weighted_batches(x, y, weights, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(
        batch_size)


def _compile(model, optimizer, keras, **metrics):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **metrics,
    )


def _callbacks(keras, output_dir, run_name, monitor, mode):
    if output_dir is None:
        return [], None, None
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    history_path = output_dir / f"{run_name}-history.csv"
    checkpoint_path = output_dir / f"{run_name}-best.weights.h5"
    return (
        [
            keras.callbacks.CSVLogger(str(history_path)),
            keras.callbacks.ModelCheckpoint(
                str(checkpoint_path), monitor=monitor, mode=mode,
                save_best_only=True, save_weights_only=True,
            ),
        ],
        str(history_path),
        str(checkpoint_path),
    )


def _data_parallel(distribution, sizes, train, *arguments):
    """`train(*arguments)` -> `(row, model)` inside the scope of the
    resolved `distribution`, with `row["devices"]` its device count, after
    checking that every batch (`sizes`: argument name -> count) splits
    evenly across the devices: nothing is dropped or padded to make it
    fit."""
    from keras_neural_attention.models import distribution as distribution_lib

    resolved = distribution_lib.resolve_distribution(distribution)
    devices = distribution_lib.distribution_device_count(resolved)
    for name, size in sizes.items():
        if size % devices:
            raise ValueError(
                f"Argument `{name}` must be divisible by the number of "
                f"devices of the data-parallel distribution ({devices}): "
                f"each device gets 1/{devices} of every batch. "
                f"Received: {name}={size}"
            )
    with distribution_lib.distribution_scope(resolved):
        row, model = train(*arguments)
    row["devices"] = devices
    return row, model


def train_language_model(recipe, attention, seed, language_data,
                         output_dir=None, run_name=None, verbose=2,
                         distribution="auto"):
    """Trains one language model and scores it with both perplexity
    protocols.

    Args:
        recipe: a `LanguageModelRecipe`.
        attention: `"dot_product"` or `"neural"`.
        seed: int. Seed of initialization, shuffling and dropout.
        language_data: `prepare_language_data(recipe, ...)`.
        output_dir: folder of the CSV history and best checkpoint (None:
            neither is written).
        run_name: file-name prefix in `output_dir`.
        verbose: verbosity of `fit`.
        distribution: `"auto"` (data parallel over all local devices when
            there are several and the backend supports
            `keras.distribution`), None, or a `keras.distribution`
            distribution: the model is built, trained and scored inside its
            scope. `batch_size` and `eval_batch_size` must split evenly
            across its devices.

    Returns:
        A result row (dict): `attention`, `seed`, `parameters`,
        `perplexity_released_code`, `perplexity_standard`, their window
        counts, `best_val_loss`, `history`, `train_seconds`, `steps`,
        `devices`, `history_csv`, `best_checkpoint`; and the model.
    """
    return _data_parallel(
        distribution, {"batch_size": recipe.batch_size,
                       "eval_batch_size": recipe.eval_batch_size},
        _train_language_model, recipe, attention, seed, language_data,
        output_dir, run_name, verbose)


def _train_language_model(recipe, attention, seed, language_data,
                          output_dir, run_name, verbose):
    import keras

    keras.utils.set_random_seed(seed)
    model, keras = build_language_model(
        recipe, attention, len(language_data.vocabulary))
    if recipe.initialization == "pytorch":
        recipes_lib.apply_pytorch_initialization(model, seed)
    x, y = tokenization.blocks_to_lm_arrays(language_data.train_blocks)
    batches = len(y) // recipe.batch_size
    if batches < 1:
        raise ValueError(
            f"{len(y)} training blocks cannot fill one batch of "
            f"{recipe.batch_size}."
        )
    steps_per_epoch = min(recipe.validation_every, batches)
    epochs = max(1, math.ceil(recipe.steps / steps_per_epoch))
    import keras_hub

    _compile(model, recipes_lib.build_optimizer(recipe, model,
                                                steps_per_epoch), keras,
             weighted_metrics=[keras_hub.metrics.Perplexity(
                 from_logits=True, name="perplexity")])
    validation = evaluation.padded_lm_batches(
        evaluation.perplexity_windows(
            language_data.eval_stream, recipe.context, recipe.context),
        recipe.eval_batch_size)
    run_name = run_name or f"{attention}-seed{seed}"
    callbacks, history_csv, checkpoint = _callbacks(
        keras, output_dir, run_name, "val_loss", "min")
    start = time.perf_counter()
    history = model.fit(
        _shuffled_batches(x, y, recipe.batch_size, seed, repeat=True),
        epochs=epochs, steps_per_epoch=steps_per_epoch,
        validation_data=_weighted_batches(*validation,
                                          recipe.eval_batch_size),
        callbacks=callbacks, shuffle=False, verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    released = evaluation.perplexity(
        model, language_data.eval_stream, recipe.context, "released_code",
        stride=recipe.released_code_stride,
        batch_size=recipe.eval_batch_size)
    standard = evaluation.perplexity(
        model, language_data.eval_stream, recipe.context, "standard",
        batch_size=recipe.eval_batch_size)
    curves = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return {
        "attention": attention,
        "seed": int(seed),
        "neural_layers": (
            [] if attention == "dot_product" else list(
                recipes_lib.neural_layers(recipe.attention_layers,
                                          recipe.num_layers))),
        "projection_dim": recipe.projection_dim,
        "parameters": int(model.count_params()),
        "perplexity_released_code": released["perplexity"],
        "perplexity_standard": standard["perplexity"],
        "released_code_windows": released["windows"],
        "standard_windows": standard["windows"],
        "best_val_loss": min(curves["val_loss"]),
        "steps": int(epochs * steps_per_epoch),
        "train_seconds": train_seconds,
        "history": curves,
        "history_csv": history_csv,
        "best_checkpoint": checkpoint,
    }, model


# --------------------------------------------------------------------------
# Vision


@dataclasses.dataclass
class VisionData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    notes: list


def prepare_vision_data(recipe, data_dir=None, download=False):
    """The recipe's CIFAR train and test arrays (class-balanced prefixes)."""
    x_train, y_train = data_lib.load_cifar(
        recipe.dataset, "train", data_dir=data_dir, source=recipe.source,
        download=download, limit=recipe.num_train)
    x_test, y_test = data_lib.load_cifar(
        recipe.dataset, "test", data_dir=data_dir, source=recipe.source,
        download=download, limit=recipe.num_test)
    notes = [data_lib.data_note(recipe.dataset, recipe.source)]
    if recipe.num_train or recipe.num_test:
        notes.append(
            f"A class-balanced subset: {len(y_train)} training and "
            f"{len(y_test)} test images."
        )
    return VisionData(x_train, y_train, x_test, y_test,
                      data_lib.CIFAR_NUM_CLASSES[recipe.dataset], notes)


# Augmentations the input pipeline applies instead of the model. They move
# whole pixels (shifts with reflected borders and nearest sampling, flips),
# so applied to the uint8 images before the task's preprocessor they give
# the same images as inside the backbone after it; inside a JAX-compiled
# train step they took 0.6 s of a 0.8 s step (batch 8, the cpu ViT, this
# 2-core machine), in tf.data a few milliseconds.
PIPELINE_AUGMENTATIONS = ("crop_flip",)


def model_recipe(recipe):
    """The recipe the ViT itself is built from: without the augmentation
    when the input pipeline applies it (`PIPELINE_AUGMENTATIONS`)."""
    if recipe.augmentation in PIPELINE_AUGMENTATIONS:
        return dataclasses.replace(recipe, augmentation=None)
    return recipe


def build_vision_model(recipe, attention, num_classes, seed=None):
    """The recipe's `ViTImageClassifier` on a `VisionTransformerBackbone`
    (uint8 pixels mapped to [-1, 1] by KerasHub's ViT preprocessor)."""
    from keras_neural_attention.models.vit import VisionTransformerBackbone
    from keras_neural_attention.models.vit import (
        vision_transformer_classifier,
    )
    from keras_neural_attention.models.vit import (
        vision_transformer_preprocessor,
    )

    _check_mechanism(attention)
    types = ["dot_product"] * recipe.num_layers
    if attention == "neural":
        for index in recipes_lib.neural_layers(recipe.attention_layers,
                                               recipe.num_layers):
            types[index] = "neural"
    options = None
    if recipe.projection_dim is not None:
        options = {"neural": {"projection_dim": recipe.projection_dim}}
    size = recipe.image_size
    backbone = VisionTransformerBackbone(
        patch_size=recipe.patch_size,
        num_layers=recipe.num_layers,
        num_heads=recipe.num_heads,
        hidden_dim=recipe.hidden_dim,
        intermediate_dim=recipe.intermediate_dim,
        image_shape=(size, size, 3),
        attention_types=types,
        normalize_first=recipe.normalize_first,
        position_embedding=recipe.position_embedding,
        dropout=recipe.dropout,
        use_attention_bias=False,
        attention_options=options,
        augmentation=recipes_lib.augmentation_layers(recipe.augmentation,
                                                     seed=seed),
    )
    return vision_transformer_classifier(
        backbone, num_classes=num_classes,
        preprocessor=vision_transformer_preprocessor(
            image_size=None if size == 32 else (size, size)),
    )


def train_vision_model(recipe, attention, seed, vision_data,
                       output_dir=None, run_name=None, verbose=2,
                       distribution="auto"):
    """Trains one ViT, testing after every epoch.

    Args:
        recipe: a `VisionRecipe`.
        attention: `"dot_product"` or `"neural"`.
        seed: int. Seed of initialization, shuffling, augmentation and
            dropout.
        vision_data: `prepare_vision_data(recipe, ...)`.
        output_dir: folder of the CSV history and best checkpoint (None:
            neither is written).
        run_name: file-name prefix in `output_dir`.
        verbose: verbosity of `fit`.
        distribution: `"auto"` (data parallel over all local devices when
            there are several and the backend supports
            `keras.distribution`), None, or a `keras.distribution`
            distribution: the model is built and trained inside its scope.
            `batch_size` and the number of test images must split evenly
            across its devices (no image is dropped or padded).

    Returns:
        A result row (dict): `attention`, `seed`, `parameters`,
        `best_accuracy`, `best_epoch`, `final_accuracy`, `history`,
        `train_seconds`, `devices`, `history_csv`, `best_checkpoint`; and
        the model.

    Example:

    ```python
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import numpy as np
    from keras_neural_attention.experiments import recipes, training

    recipe = recipes.VisionRecipe(
        image_size=32, patch_size=8, num_layers=1, num_heads=2,
        hidden_dim=16, intermediate_dim=16, epochs=1, batch_size=8,
        augmentation="crop_flip")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype="uint8")
    labels = np.arange(16, dtype="int32") % 10
    data = training.VisionData(images, labels, images, labels,
                               num_classes=10, notes=[])
    row, model = training.train_vision_model(recipe, "neural", 0, data,
                                             verbose=0)
    print(row["final_accuracy"] >= 0.0, row["devices"])  # True 1
    ```
    """
    return _data_parallel(
        distribution, {"batch_size": recipe.batch_size,
                       "num_test": len(vision_data.y_test)},
        _train_vision_model, recipe, attention, seed, vision_data,
        output_dir, run_name, verbose)


def _train_vision_model(recipe, attention, seed, vision_data, output_dir,
                        run_name, verbose):
    import keras

    keras.utils.set_random_seed(seed)
    model = build_vision_model(model_recipe(recipe), attention,
                               vision_data.num_classes, seed=seed)
    pipeline_augmentation = None
    if recipe.augmentation in PIPELINE_AUGMENTATIONS:
        pipeline_augmentation = recipes_lib.augmentation_layers(
            recipe.augmentation, seed=seed)
    if recipe.initialization == "pytorch":
        recipes_lib.apply_pytorch_initialization(model, seed)
    steps_per_epoch = len(vision_data.y_train) // recipe.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"{len(vision_data.y_train)} training images cannot fill one "
            f"batch of {recipe.batch_size}."
        )
    _compile(model, recipes_lib.build_optimizer(recipe, model,
                                                steps_per_epoch), keras,
             metrics=["accuracy"])
    run_name = run_name or f"{attention}-seed{seed}"
    callbacks, history_csv, checkpoint = _callbacks(
        keras, output_dir, run_name, "val_accuracy", "max")
    start = time.perf_counter()
    history = model.fit(
        _shuffled_batches(vision_data.x_train, vision_data.y_train,
                          recipe.batch_size, seed,
                          augmentation=pipeline_augmentation),
        epochs=recipe.epochs,
        validation_data=_batches(vision_data.x_test, vision_data.y_test,
                                 recipe.batch_size),
        callbacks=callbacks, shuffle=False, verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    curves = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    summary = evaluation.accuracy_summary(curves)
    row = {
        "attention": attention,
        "seed": int(seed),
        "neural_layers": (
            [] if attention == "dot_product" else list(
                recipes_lib.neural_layers(recipe.attention_layers,
                                          recipe.num_layers))),
        "projection_dim": recipe.projection_dim,
        "parameters": int(model.count_params()),
        "train_seconds": train_seconds,
        "history": curves,
        "history_csv": history_csv,
        "best_checkpoint": checkpoint,
    }
    row.update(summary)
    return row, model
