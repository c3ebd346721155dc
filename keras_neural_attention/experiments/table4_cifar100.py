"""Table 4: CIFAR-100 test accuracy, dot-product vs Neural Attention in the
first block (the paper: +4.26 points, mapping unconfirmed).

CIFAR-100 comes from its official python archive
(`cifar-100-python.tar.gz` or the extracted folder in `data_dir`, or a
download) or tensorflow-datasets (`source="tfds"`); without either the
record says the table was skipped.
"""

from keras_neural_attention.experiments import vision_tables
from keras_neural_attention.experiments.vision_tables import vision_table

TITLE = "CIFAR-100 accuracy: dot-product vs Neural (first block)"


def run(scale="smoke", data_dir=None, output_dir=None, log=None,
        verbose=2, keep_models=False, source=None):
    """Table 4's record (and the trained models when `keep_models`)."""
    record, models = vision_table(
        "4", TITLE, scale, "cifar100", "cifar100_gain", data_dir,
        output_dir, log, verbose, keep_models=keep_models, source=source)
    return (record, models) if keep_models else record


def recipe_record(scale):
    """The `recipe` a run at `scale` writes into its record."""
    return vision_tables.recipe_record(scale, "cifar100")


def load_models(record, models_dir):
    """The record's trained models, `{(variant, seed): model}`, rebuilt
    and loaded from their best checkpoints in `models_dir`."""
    return vision_tables.load_models(record, "cifar100", models_dir)
