"""Table 3: CIFAR-10 test accuracy, dot-product vs Neural Attention in the
first block (the paper: +3.0 points, mapping unconfirmed)."""

from keras_neural_attention.experiments import vision_tables
from keras_neural_attention.experiments.vision_tables import vision_table

TITLE = "CIFAR-10 accuracy: dot-product vs Neural (first block)"


def run(scale="smoke", data_dir=None, output_dir=None, log=None,
        verbose=2, keep_models=False, source=None):
    """Table 3's record (and the trained models when `keep_models`)."""
    record, models = vision_table(
        "3", TITLE, scale, "cifar10", "cifar10_gain", data_dir, output_dir,
        log, verbose, keep_models=keep_models, source=source)
    return (record, models) if keep_models else record


def recipe_record(scale):
    """The `recipe` a run at `scale` writes into its record."""
    return vision_tables.recipe_record(scale, "cifar10")


def load_models(record, models_dir):
    """The record's trained models, `{(variant, seed): model}`, rebuilt
    and loaded from their best checkpoints in `models_dir`."""
    return vision_tables.load_models(record, "cifar10", models_dir)
