"""What the table modules share: running a set of model variants over the
seeds of a recipe, summarizing numbers over seeds, and the paper's figures.

A *variant* is `(name, attention, changes)`: a mechanism (`"dot_product"`
or `"neural"`) and changes to the recipe (for example
`{"attention_layers": "all"}` or `{"projection_dim": 4}`).
"""

import dataclasses
import math
import time

import numpy as np

from keras_neural_attention.experiments import training

# The paper's headline figures (neural-attention-paper.md, sec. 5): the
# body's tables were not available; these come from its abstracts and a
# summary that quotes it.
PAPER_FIGURES = {
    "lm_ppl_reduction": (
        "over 2% (later abstract), up to 2.19% (summary quoting the paper); "
        "first version: over 5%"
    ),
    "cifar10_gain": "+3.0 points (summary; mapping to CIFAR-10 unconfirmed)",
    "cifar100_gain": (
        "+4.26 points (summary; mapping to CIFAR-100 unconfirmed; later "
        "abstract: more than 4 points)"
    ),
}

RELEASED_CODE_DIFFERENCES = (
    "Kept our corrected behaviour where the released code has a bug: its "
    "Neural LM adds the input twice ((2+sqrt(d))x + pe against the "
    "baseline's (1+sqrt(d))x + pe; both models here use the latter), and "
    "with head width < 64 its second scoring layer has zero units (a "
    "constant score); ours uses widths (d', max(1, d'//2))."
)


def seed_statistics(values):
    """`{"mean", "std", "min", "max", "n"}` of per-seed values (sample
    standard deviation; None for one seed)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("Argument `values` must not be empty.")
    array = np.asarray(values)
    return {
        "mean": float(array.mean()),
        "std": float(array.std(ddof=1)) if len(values) > 1 else None,
        "min": float(array.min()),
        "max": float(array.max()),
        "n": len(values),
    }


def relative_reduction(baseline, candidate):
    """`(baseline - candidate) / baseline`, as a fraction."""
    return (baseline - candidate) / baseline


def _run_variants(recipe, variants, train, describe, log, keep_models):
    """Trains every `(name, attention, recipe changes)` variant over the
    recipe's seeds with `train(variant_recipe, attention, seed, run_name)`
    -> `(row, model)`; `describe(row)` is the progress line's result."""
    runs, models = [], {}
    for seed in recipe.seeds:
        for name, attention, changes in variants:
            variant_recipe = dataclasses.replace(recipe, **changes)
            if log:
                log(f"[{name}] seed {seed}: training ...")
            row, model = train(variant_recipe, attention, seed,
                               f"{name}-seed{seed}")
            row["variant"] = name
            if log:
                log(f"[{name}] seed {seed}: {describe(row)}, "
                    f"{row['train_seconds']:.0f} s")
            runs.append(row)
            if keep_models:
                models[(name, seed)] = model
    return runs, models


def run_language_variants(recipe, variants, data_dir=None, output_dir=None,
                          cache_dir=None, log=None, verbose=2,
                          keep_models=False):
    """Trains every variant of a language-model recipe over its seeds.

    Returns:
        `(runs, language_data, models)`: the result rows (one per variant
        and seed, with `variant`), the tokenized data, and the trained
        models by `(variant, seed)` when `keep_models` (else empty).
    """
    language_data = training.prepare_language_data(
        recipe, data_dir=data_dir, cache_dir=cache_dir)
    runs, models = _run_variants(
        recipe, variants,
        lambda variant_recipe, attention, seed, run_name:
            training.train_language_model(
                variant_recipe, attention, seed, language_data,
                output_dir=output_dir, run_name=run_name, verbose=verbose),
        lambda row: (f"perplexity {row['perplexity_released_code']:.2f} "
                     f"(released code), {row['perplexity_standard']:.2f} "
                     "(standard)"),
        log, keep_models)
    return runs, language_data, models


def run_vision_variants(recipe, variants, data_dir=None, output_dir=None,
                        log=None, verbose=2, keep_models=False):
    """Trains every variant of a vision recipe over its seeds (see
    `run_language_variants`)."""
    vision_data = training.prepare_vision_data(recipe, data_dir=data_dir)
    runs, models = _run_variants(
        recipe, variants,
        lambda variant_recipe, attention, seed, run_name:
            training.train_vision_model(
                variant_recipe, attention, seed, vision_data,
                output_dir=output_dir, run_name=run_name, verbose=verbose),
        lambda row: (f"best {row['best_accuracy']:.1%}, final "
                     f"{row['final_accuracy']:.1%}"),
        log, keep_models)
    return runs, vision_data, models


def summarize_variants(runs, keys):
    """One row per variant: for each key, the mean over seeds (`key`), its
    standard deviation (`key_std`) and the per-seed values
    (`key_seeds`)."""
    rows = []
    for name in dict.fromkeys(run["variant"] for run in runs):
        mine = [run for run in runs if run["variant"] == name]
        row = {
            "variant": name,
            "attention": mine[0]["attention"],
            "neural_layers": mine[0]["neural_layers"],
            "parameters": mine[0]["parameters"],
            "seeds": [run["seed"] for run in mine],
            "train_seconds": float(np.mean([r["train_seconds"]
                                            for r in mine])),
        }
        for key in keys:
            stats = seed_statistics([run[key] for run in mine])
            row[key] = stats["mean"]
            row[f"{key}_std"] = stats["std"]
            row[f"{key}_seeds"] = [run[key] for run in mine]
        rows.append(row)
    return rows


def spread_note(rows, key, label):
    """A sentence comparing the gap between the first two variants with
    the seed spread of `key`."""
    if len(rows) < 2:
        return None
    first, second = rows[0], rows[1]
    gap = second[key] - first[key]
    spreads = [r[f"{key}_std"] for r in (first, second)
               if r.get(f"{key}_std") is not None]
    if not spreads:
        return (f"{label}: one seed per variant, so the seed spread is "
                f"unknown; the gap {second['variant']} - "
                f"{first['variant']} is {gap:+.4g}.")
    spread = max(spreads)
    within = abs(gap) <= 2 * spread
    return (
        f"{label}: gap {second['variant']} - {first['variant']} = "
        f"{gap:+.4g}, largest seed standard deviation {spread:.3g}: the "
        f"difference is {'within' if within else 'outside'} twice the "
        "seed spread."
    )


class Timer:
    """Wall time of a table run."""

    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self):
        return time.perf_counter() - self.start


def finite(value):
    return value is not None and math.isfinite(value)
