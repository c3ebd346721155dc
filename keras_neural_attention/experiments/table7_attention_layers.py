"""Table 7: Neural Attention in the first layer only vs in every layer
(the paper chose the first layer only, for cost; the other side has not
been published), with the dot-product model for reference."""

from keras_neural_attention.experiments import scales
from keras_neural_attention.experiments.recipes import TableScale
from keras_neural_attention.experiments.recipes import recipe_dict
from keras_neural_attention.experiments.table2_language_model import (
    COLUMNS,
)
from keras_neural_attention.experiments.table2_language_model import (
    language_table,
)

TITLE = "Neural Attention in the first layer only vs every layer"
VARIANTS = (
    ("dot_product", "dot_product", {}),
    ("neural_first_layer", "neural", {"attention_layers": (0,)}),
    ("neural_every_layer", "neural", {"attention_layers": "all"}),
)
SCALES = {
    name: TableScale(language=scales.LANGUAGE[name])
    for name in scales.SCALE_NAMES
}
# Two layers, so that "every layer" differs from "the first layer".
SCALES["tiny"] = TableScale(language=scales.language_recipe(
    "tiny", num_layers=2))
# Three variants x two seeds (estimated, not yet measured: under an hour).
SCALES["cpu"] = TableScale(language=scales.language_recipe(
    "cpu", steps=400, validation_every=100, warmup_steps=40))
SCALES["smoke"] = TableScale(language=scales.language_recipe(
    "smoke", num_layers=2, steps=12, validation_every=12))


def run(scale="smoke", data_dir=None, output_dir=None, log=None,
        verbose=2):
    """Table 7's record."""
    recipe = SCALES[scale].language
    record, _ = language_table(
        "7", TITLE, scale, VARIANTS, recipe, data_dir, output_dir, log,
        verbose,
        columns=COLUMNS[:1] + [{"key": "neural_layers",
                                "title": "Neural layers", "format": "{}"}]
        + COLUMNS[1:])
    rows = {r["variant"]: r for r in record["rows"]}
    if len(rows) == 3:
        first, every = rows["neural_first_layer"], rows["neural_every_layer"]
        record["paper"].append({
            "quantity": "Perplexity, every layer / first layer only "
                        "(released-code protocol)",
            "paper": "not published (the paper uses the first layer only)",
            "ours": every["perplexity_released_code"]
            / first["perplexity_released_code"],
            "format": "{:.3f}x"})
        record["paper"].append({
            "quantity": "Train time, every layer / first layer only",
            "paper": "not published",
            "ours": every["train_seconds"] / first["train_seconds"],
            "format": "{:.2f}x"})
    return record


def recipe_record(scale):
    """The `recipe` a run at `scale` writes into its record."""
    return recipe_dict(SCALES[scale].language)
