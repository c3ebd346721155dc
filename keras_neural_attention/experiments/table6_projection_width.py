"""Table 6: Neural Attention's projection width d' in (1, 2, 4, 8, 16):
language-model quality and cost of each width (Neural in the first layer),
with the dot-product model for reference.

The released code's README: a larger d' "drastically increases memory
requirements with not much gain in performance".
"""

import dataclasses

from keras_neural_attention.experiments import cost
from keras_neural_attention.experiments import reproduction
from keras_neural_attention.experiments import scales
from keras_neural_attention.experiments.recipes import TableScale
from keras_neural_attention.experiments.recipes import recipe_dict
from keras_neural_attention.experiments.table2_language_model import (
    language_table,
)

TITLE = "Projection width d': quality and memory"
SCALES = {
    "tiny": TableScale(language=scales.LANGUAGE["tiny"],
                       projection_dims=(1, 2), cost_batch_size=2,
                       cost_repeats=1, isolate=False),
    "smoke": TableScale(
        language=scales.language_recipe("smoke", steps=12,
                                        validation_every=12),
        projection_dims=(1, 4, 16), cost_batch_size=4,
        cost_repeats=2, isolate=False,
        note="Smoke scale: d' in (1, 4, 16) only, to stay within two "
        "minutes; measured in the calling process: CPU memory not "
        "measured."),
    "cpu": TableScale(
        # Six variants x two seeds: 200 steps each (Table 2: 800).
        language=scales.language_recipe("cpu", steps=200,
                                        validation_every=100,
                                        warmup_steps=20),
        projection_dims=(1, 2, 4, 8, 16), cost_batch_size=8,
        cost_repeats=5, isolate=True),
    "gpu": TableScale(language=scales.LANGUAGE["gpu"],
                      projection_dims=(1, 2, 4, 8, 16), cost_batch_size=16,
                      cost_repeats=10, isolate=True),
    "paper": TableScale(language=scales.LANGUAGE["paper"],
                        projection_dims=(1, 2, 4, 8, 16), cost_batch_size=1,
                        cost_repeats=10, isolate=True),
}
COLUMNS = [
    {"key": "variant", "title": "Attention", "format": "{}"},
    {"key": "projection_dim", "title": "d'", "format": "{}"},
    {"key": "parameters", "title": "Parameters", "format": "{:,}"},
    {"key": "perplexity_released_code", "title": "Test PPL (released code)",
     "format": "{:.2f}"},
    {"key": "perplexity_released_code_std", "title": "std",
     "format": "{:.2f}"},
    {"key": "perplexity_standard", "title": "Test PPL (non-overlapping)",
     "format": "{:.2f}"},
    {"key": "train_step_s", "title": "Train step (s)", "format": "{:.4f}"},
    {"key": "memory_mib", "title": "Peak memory (MiB)", "format": "{:.0f}"},
]


def variants(projection_dims):
    return (("dot_product", "dot_product", {}),) + tuple(
        (f"neural_d{d}", "neural", {"projection_dim": d})
        for d in projection_dims)


def run(scale="smoke", data_dir=None, output_dir=None, log=None,
        verbose=2):
    """Table 6's record."""
    table_scale = SCALES[scale]
    recipe = table_scale.language
    record, models = language_table(
        "6", TITLE, scale, variants(table_scale.projection_dims), recipe,
        data_dir, output_dir, log, verbose, columns=COLUMNS,
        keep_models=not table_scale.isolate)
    if record["status"] != "complete":
        return record
    timer = reproduction.Timer()
    if table_scale.isolate:
        dot_cost = cost.measure("language", "dot_product", [recipe],
                                table_scale.cost_batch_size,
                                table_scale.cost_repeats, True)
        neural_cost = cost.measure(
            "language", "neural",
            [dataclasses.replace(recipe, projection_dim=d)
             for d in sorted(table_scale.projection_dims)],
            table_scale.cost_batch_size, table_scale.cost_repeats, True)
    else:
        # The trained models, at their training batch shape: no new
        # compilation of the training step.
        dot_cost, neural_cost = [], []
        for (name, seed), model in models.items():
            if seed != recipe.seeds[0]:
                continue
            measured = cost.measure_trained(
                model, recipe, recipe.batch_size, table_scale.cost_repeats)
            if name == "dot_product":
                dot_cost.append(measured)
            else:
                measured["projection_dim"] = int(name.split("_d")[1])
                neural_cost.append(measured)
    by_dim = {r["projection_dim"]: r for r in neural_cost}
    for row in record["rows"]:
        measured = (dot_cost[0] if row["attention"] == "dot_product"
                    else by_dim[int(row["variant"].split("_d")[1])])
        row["projection_dim"] = measured["projection_dim"]
        row["train_step_s"] = measured["train_step_s"]
        row["inference_per_sample_s"] = measured["inference_per_sample_s"]
        row["memory_mib"] = cost.memory_of(measured)
    record["cost"] = dot_cost + neural_cost
    record["wall_time_s"] = round(record["wall_time_s"] + timer.seconds, 1)
    neural_rows = [r for r in record["rows"] if r["attention"] == "neural"]
    best = min(neural_rows, key=lambda r: r["perplexity_released_code"])
    record["paper"].append({
        "quantity": "d' with the lowest perplexity (released-code protocol)",
        "paper": "larger d' costs much memory for little gain (released "
                 "code's README; table values pending the PDF)",
        "ours": best["projection_dim"], "format": "{}"})
    smallest, largest = neural_rows[0], neural_rows[-1]
    record["paper"].append({
        "quantity": f"Train-step time, d' = {largest['projection_dim']} / "
                    f"d' = {smallest['projection_dim']}",
        "paper": "pending the PDF",
        "ours": largest["train_step_s"] / smallest["train_step_s"],
        "format": "{:.2f}x"})
    if table_scale.note:
        record["notes"].append(table_scale.note)
    record["notes"].append(
        "Memory: " + ("accelerator peak, or a fresh child process's peak "
                      "RSS growth on a CPU (d' smallest first)."
                      if table_scale.isolate else
                      "accelerator peak; not measured on a CPU at this "
                      "scale."))
    return record


def recipe_record(scale):
    """The `recipe` a run at `scale` writes into its record."""
    return recipe_dict(SCALES[scale].language)
