"""Table 2: language-model perplexity, dot-product attention vs Neural
Attention in the first layer.

The paper: WikiText-103 test perplexity, relative reduction over 2% (up to
2.19%; its first version said over 5%). At the `smoke` and `cpu` scales the
models are small and train on WikiText-2 `valid`, scored on `test`.
"""

from keras_neural_attention.experiments import records
from keras_neural_attention.experiments import reproduction
from keras_neural_attention.experiments import scales
from keras_neural_attention.experiments.recipes import recipe_dict

TITLE = "Language-model perplexity: dot-product vs Neural (first layer)"
VARIANTS = (
    ("dot_product", "dot_product", {}),
    ("neural_first_layer", "neural", {"attention_layers": (0,)}),
)
COLUMNS = [
    {"key": "variant", "title": "Attention", "format": "{}"},
    {"key": "parameters", "title": "Parameters", "format": "{:,}"},
    {"key": "perplexity_released_code",
     "title": "Test PPL (released-code protocol)", "format": "{:.2f}"},
    {"key": "perplexity_released_code_std", "title": "std over seeds",
     "format": "{:.2f}"},
    {"key": "perplexity_standard", "title": "Test PPL (non-overlapping)",
     "format": "{:.2f}"},
    {"key": "perplexity_standard_std", "title": "std over seeds",
     "format": "{:.2f}"},
    {"key": "train_seconds", "title": "Train time (s)", "format": "{:.0f}"},
]
KEYS = ("perplexity_released_code", "perplexity_standard", "best_val_loss")


def language_table(table, title, scale, variants, recipe, data_dir,
                   output_dir, log, verbose, columns=COLUMNS, paper=None,
                   extra_notes=(), keep_models=False):
    """Runs language-model variants and returns their record (shared by
    Tables 2, 6 and 7)."""
    timer = reproduction.Timer()
    cache = None if output_dir is None else f"{output_dir}/vocabulary"
    try:
        runs, language_data, models = reproduction.run_language_variants(
            recipe, variants, data_dir=data_dir, output_dir=output_dir,
            cache_dir=cache, log=log, verbose=verbose,
            keep_models=keep_models)
    except FileNotFoundError as error:
        return records.make_record(
            table, title, scale, columns, [], paper=paper,
            notes=[str(error)], seeds=recipe.seeds,
            wall_time_s=timer.seconds, recipe=recipe_dict(recipe),
            status=f"skipped: data not found ({recipe.dataset})"), {}
    rows = reproduction.summarize_variants(runs, KEYS)
    notes = list(language_data.notes) + [
        "Released-code protocol: windows of context + 1 tokens at stride "
        f"{recipe.released_code_stride} (the paper: 1025 at 512), whole-"
        "window mean loss; non-overlapping: every token scored once.",
        reproduction.spread_note(rows, "perplexity_released_code",
                                 "Perplexity (released-code protocol)"),
        reproduction.RELEASED_CODE_DIFFERENCES,
    ] + list(extra_notes)
    record = records.make_record(
        table, title, scale, columns, rows, paper=paper,
        notes=[n for n in notes if n], seeds=recipe.seeds,
        wall_time_s=timer.seconds, recipe=recipe_dict(recipe), runs=runs)
    return record, models


def run(scale="smoke", data_dir=None, output_dir=None, log=None,
        verbose=2, keep_models=False):
    """Table 2's record (and the trained models when `keep_models`)."""
    recipe = scales.LANGUAGE[scale]
    record, models = language_table(
        "2", TITLE, scale, VARIANTS, recipe, data_dir, output_dir, log,
        verbose, keep_models=keep_models)
    rows = record["rows"]
    if len(rows) == 2:
        dot, neural = rows
        for key, label in (("perplexity_released_code", "released-code"),
                           ("perplexity_standard", "non-overlapping")):
            reduction = reproduction.relative_reduction(dot[key],
                                                        neural[key])
            record["paper"].append({
                "quantity": f"Perplexity reduction, Neural vs dot-product "
                            f"({label} protocol)",
                "paper": reproduction.PAPER_FIGURES["lm_ppl_reduction"],
                "ours": reduction, "format": "{:+.2%}"})
    return (record, models) if keep_models else record


def recipe_record(scale):
    """The `recipe` a run at `scale` writes into its record."""
    return recipe_dict(scales.LANGUAGE[scale])
