"""Tables 3 and 4 share this: CIFAR test accuracy of a ViT, dot-product
attention vs Neural Attention in the first block (best and final epoch)."""

import dataclasses
from pathlib import Path

from keras_neural_attention.experiments import records
from keras_neural_attention.experiments import reproduction
from keras_neural_attention.experiments import scales
from keras_neural_attention.experiments import training
from keras_neural_attention.experiments.data import CIFAR_NUM_CLASSES
from keras_neural_attention.experiments.recipes import recipe_dict

VARIANTS = (
    ("dot_product", "dot_product", {}),
    ("neural_first_layer", "neural", {"attention_layers": (0,)}),
)
COLUMNS = [
    {"key": "variant", "title": "Attention", "format": "{}"},
    {"key": "parameters", "title": "Parameters", "format": "{:,}"},
    {"key": "best_accuracy", "title": "Best-epoch test accuracy",
     "format": "{:.2%}"},
    {"key": "best_accuracy_std", "title": "std", "format": "{:.2%}"},
    {"key": "final_accuracy", "title": "Final-epoch test accuracy",
     "format": "{:.2%}"},
    {"key": "final_accuracy_std", "title": "std", "format": "{:.2%}"},
    {"key": "train_seconds", "title": "Train time (s)", "format": "{:.0f}"},
]
KEYS = ("best_accuracy", "final_accuracy")


def vision_recipe_for(scale, dataset):
    recipe = scales.VISION[scale]
    if dataset == "cifar100":
        # No JPEG copy of CIFAR-100: the official archive (or tfds).
        recipe = dataclasses.replace(recipe, dataset="cifar100",
                                     source="archive")
    return recipe


def vision_table(table, title, scale, dataset, paper_key, data_dir,
                 output_dir, log, verbose, keep_models=False, source=None):
    timer = reproduction.Timer()
    recipe = vision_recipe_for(scale, dataset)
    if source is not None:
        recipe = dataclasses.replace(recipe, source=source)
    try:
        runs, vision_data, models = reproduction.run_vision_variants(
            recipe, VARIANTS, data_dir=data_dir, output_dir=output_dir,
            log=log, verbose=verbose, keep_models=keep_models)
    except FileNotFoundError as error:
        record = records.make_record(
            table, title, scale, COLUMNS, [], notes=[str(error)],
            seeds=recipe.seeds, wall_time_s=timer.seconds,
            recipe=recipe_dict(recipe),
            status=f"skipped: data not found ({dataset}, {recipe.source})")
        return record, {}
    rows = reproduction.summarize_variants(runs, KEYS)
    dot, neural = rows
    paper = [
        {"quantity": "Accuracy gain, Neural - dot-product (best epoch)",
         "paper": reproduction.PAPER_FIGURES[paper_key],
         "ours": 100 * (neural["best_accuracy"] - dot["best_accuracy"]),
         "format": "{:+.2f} points"},
        {"quantity": "Accuracy gain, Neural - dot-product (final epoch)",
         "paper": reproduction.PAPER_FIGURES[paper_key],
         "ours": 100 * (neural["final_accuracy"] - dot["final_accuracy"]),
         "format": "{:+.2f} points"},
    ]
    notes = list(vision_data.notes) + [
        "Test accuracy after every epoch; the released code reports the "
        "best epoch's test accuracy (selection on the test set): both are "
        "given.",
        reproduction.spread_note(rows, "final_accuracy",
                                 "Final-epoch accuracy"),
        f"Images {recipe.image_size} x {recipe.image_size}, patch "
        f"{recipe.patch_size}, augmentation {recipe.augmentation!r}, "
        f"schedule {recipe.schedule!r}.",
    ]
    record = records.make_record(
        table, title, scale, COLUMNS, rows, paper=paper,
        notes=[n for n in notes if n], seeds=recipe.seeds,
        wall_time_s=timer.seconds, recipe=recipe_dict(recipe), runs=runs)
    return record, models


def recipe_record(scale, dataset):
    """The `recipe` a run of the table on `dataset` at `scale` records."""
    return recipe_dict(vision_recipe_for(scale, dataset))


def load_models(record, dataset, models_dir):
    """The trained models of a record, `{(variant, seed): model}`: each
    rebuilt from the scale's recipe and loaded from its best checkpoint
    (the file named in the record's run, looked up in `models_dir`, so
    that a moved results folder still loads).

    Raises:
        FileNotFoundError: naming a checkpoint that is not there.
    """
    recipe = vision_recipe_for(record["scale"], dataset)
    variants = {name: (attention, changes)
                for name, attention, changes in VARIANTS}
    models = {}
    for run in record["runs"]:
        attention, changes = variants[run["variant"]]
        checkpoint = Path(models_dir) / Path(run["best_checkpoint"]).name
        if not checkpoint.is_file():
            raise FileNotFoundError(
                f"The best checkpoint of {run['variant']} seed "
                f"{run['seed']} is not in {models_dir}: {checkpoint}"
            )
        model = training.build_vision_model(
            training.model_recipe(dataclasses.replace(recipe, **changes)),
            attention, CIFAR_NUM_CLASSES[dataset], seed=run["seed"])
        model.load_weights(str(checkpoint))
        models[(run["variant"], run["seed"])] = model
    return models
