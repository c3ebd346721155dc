"""Cost measurements shared by Tables 5 and 6: training-step time,
inference time per sample, throughput and peak memory of the paper's
models, in this process or in fresh child processes.

On an accelerator, peak memory is the device's (allocated / reserved). On
a CPU it is the peak resident set size of a fresh child process
(`isolate=True`), reported as the growth over the process's RSS before the
first model was built (the framework's own memory excluded); one child
measures one model at increasing sizes, so its peak after each size is the
largest so far (sizes are measured smallest first). In the calling process
(`isolate=False`) CPU memory is not measured.
"""

import concurrent.futures
import dataclasses
import multiprocessing
import os

import numpy as np

from keras_neural_attention.experiments import environment
from keras_neural_attention.experiments import evaluation
from keras_neural_attention.experiments import recipes as recipes_lib


def _language_batch(recipe, batch_size, rng):
    tokens = rng.integers(0, recipe.vocabulary_size,
                          (batch_size, recipe.context + 1), dtype="int32")
    inputs = tokens[:, :-1]
    return ({"token_ids": inputs, "padding_mask": np.ones_like(inputs)},
            tokens[:, 1:])


def _vision_batch(recipe, batch_size, rng, num_classes=10):
    images = rng.integers(0, 256, (batch_size, recipe.image_size,
                                   recipe.image_size, 3)).astype("uint8")
    return images, rng.integers(0, num_classes, (batch_size,),
                                dtype="int32")


def measure_model(domain, attention, recipe, batch_size, repeats, seed=0):
    """Cost of one model of a recipe (`domain` `"language"` or
    `"vision"`), in this process. Returns `measure_cost`'s dict plus
    `domain`, `attention`, `tokens`, `parameters`, `projection_dim`."""
    import keras

    from keras_neural_attention.experiments import training

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    if domain == "language":
        model, _ = training.build_language_model(
            recipe, attention, recipe.vocabulary_size)
        x, y = _language_batch(recipe, batch_size, rng)
        tokens = recipe.context
    else:
        # The model as trained: an augmentation the input pipeline applies
        # (`training.PIPELINE_AUGMENTATIONS`) is not part of its step.
        model = training.build_vision_model(training.model_recipe(recipe),
                                            attention, 10)
        x, y = _vision_batch(recipe, batch_size, rng)
        tokens = (recipe.image_size // recipe.patch_size) ** 2 + 1
    optimizer = recipes_lib.build_optimizer(recipe, model, 1)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = evaluation.measure_cost(model, x, y, batch_size, repeats)
    result.update(domain=domain, attention=attention, tokens=int(tokens),
                  parameters=int(model.count_params()),
                  projection_dim=recipe.projection_dim)
    return result


def measure_trained(model, recipe, batch_size, repeats, seed=0):
    """`measure_cost` of a trained (compiled) language model on random
    tokens of its recipe's context."""
    rng = np.random.default_rng(seed)
    x, y = _language_batch(recipe, batch_size, rng)
    result = evaluation.measure_cost(model, x, y, batch_size, repeats)
    result.update(domain="language", tokens=int(recipe.context),
                  parameters=int(model.count_params()),
                  projection_dim=recipe.projection_dim)
    return result


def measure_series(domain, attention, recipes, batch_size, repeats,
                   measure_rss=False):
    """`measure_model` for each recipe in turn (smallest first); with
    `measure_rss`, each result also holds `peak_rss_mib` (this process's
    peak so far) and `peak_rss_growth_mib` (over its RSS before the first
    model)."""
    before = environment.peak_rss()[0] if measure_rss else None
    results = []
    for recipe in recipes:
        result = measure_model(domain, attention, recipe, batch_size,
                               repeats)
        if measure_rss:
            peak, source = environment.peak_rss()
            result.update(peak_rss_mib=peak, peak_rss_source=source,
                          rss_before_mib=before,
                          peak_rss_growth_mib=(
                              None if peak is None or before is None
                              else peak - before))
        results.append(result)
    return results


def _child(backend, domain, attention, recipes, batch_size, repeats):
    os.environ["KERAS_BACKEND"] = backend
    return measure_series(domain, attention, recipes, batch_size, repeats,
                          measure_rss=True)


def measure(domain, attention, recipes, batch_size, repeats, isolate):
    """`measure_series` in a fresh "spawn" child process (`isolate`) or
    here."""
    import keras

    if not isolate:
        return measure_series(domain, attention, recipes, batch_size,
                              repeats)
    context = multiprocessing.get_context("spawn")
    previous = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = keras.backend.backend()
    try:
        with concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=context) as executor:
            return executor.submit(
                _child, keras.backend.backend(), domain, attention,
                list(recipes), batch_size, repeats).result()
    finally:
        if previous is None:
            os.environ.pop("KERAS_BACKEND", None)
        else:
            os.environ["KERAS_BACKEND"] = previous


def memory_of(result):
    """The peak-memory number of a result: the device's allocated peak, or
    the child process's RSS growth on a CPU (None when not measured)."""
    if result.get("device_peak_allocated_mib") is not None:
        return result["device_peak_allocated_mib"]
    return result.get("peak_rss_growth_mib")


def with_context(recipe, context):
    return dataclasses.replace(recipe, context=int(context))
