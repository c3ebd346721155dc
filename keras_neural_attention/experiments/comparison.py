"""The main job: dot-product attention vs Neural Attention, side by side.

`run_comparison` trains the two `build_model` models of
`keras_neural_attention.experiments.nearest_key` on the same data, with the
same seed, optimizer and schedule, and returns one result row per model.
`format_table`, `verdict` and `write_results` turn the rows into a markdown
table, a one-line conclusion computed from the numbers, and files.

Memory is measured, not estimated: with `isolate=True` (the default) each
model is trained in a fresh child process (multiprocessing, "spawn" start
method, same `KERAS_BACKEND`) and the row reports that process's own peak
resident set size. On Linux it is read from `VmHWM` in `/proc/self/status`:
`resource.getrusage(RUSAGE_SELF).ru_maxrss`, also recorded, is not the
child's own in a spawned process, because the kernel carries over the
high-water mark of the forked copy of the parent (a notebook kernel holding
a few hundred MiB would be charged to every child). Elsewhere `ru_maxrss` is
reported. Either way the number counts everything the process holds in host
memory, the framework itself included (its value before training started is
reported too), and not the memory of an accelerator.

Scripts that call `run_comparison` with `isolate=True` must guard their
entry point with `if __name__ == "__main__":`, as for any "spawn" child
process; notebooks and the command line need nothing.
"""

import contextlib
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from keras_neural_attention.experiments.environment import (
    _device_description,
)
from keras_neural_attention.experiments.environment import _ru_maxrss_mib
from keras_neural_attention.experiments.environment import environment_info
from keras_neural_attention.experiments.environment import peak_rss
from keras_neural_attention.experiments.nearest_key import ATTENTION_KINDS
from keras_neural_attention.experiments.nearest_key import (
    DEFAULT_MODEL_CONFIG,
)
from keras_neural_attention.experiments.nearest_key import LAYER_NAMES
from keras_neural_attention.experiments.records import resolve_scale
from keras_neural_attention.experiments.records import scale_name
from keras_neural_attention.experiments.records import (
    write_json_and_markdown,
)

RESULTS_DIR = os.path.join("results", "demo")
MEMORY_LABEL = "peak RSS of the training process (MiB)"


@dataclasses.dataclass(frozen=True)
class Scale:
    """How much data and training one comparison uses.

    Attributes:
        num_train: training examples.
        num_validation: validation examples (accuracy after every epoch;
            used for the learning curves only, never to select a model).
        num_test: test examples (the reported accuracy).
        epochs: training epochs.
        batch_size: examples per step.
        learning_rate: Adam's initial learning rate (cosine decay to 0).
        num_items: memory tokens S per example.
        num_classes: labels C.
    """

    num_train: int
    num_validation: int
    num_test: int
    epochs: int
    batch_size: int = 128
    learning_rate: float = 3e-3
    num_items: int = 16
    num_classes: int = 8

    @property
    def steps(self):
        """Optimizer steps of one training run."""
        return self.epochs * -(-self.num_train // self.batch_size)


SCALES = {
    # Plumbing checks in unit tests: seconds; the numbers mean nothing.
    "tiny": Scale(num_train=256, num_validation=64, num_test=128, epochs=1,
                  batch_size=64),
    # CI and the notebooks' stored outputs: the whole comparison (two child
    # processes included) in well under 30 s on a 2-core CPU.
    "smoke": Scale(num_train=3072, num_validation=256, num_test=1024,
                   epochs=6, batch_size=32),
    # `make demo`: 1-2 minutes on a 2-core CPU with KERAS_BACKEND=jax.
    "default": Scale(num_train=60_000, num_validation=2_000,
                     num_test=10_000, epochs=50),
    # A GPU: more data, bigger batches, longer training.
    "large": Scale(num_train=500_000, num_validation=10_000,
                   num_test=50_000, epochs=60, batch_size=512,
                   learning_rate=4e-3),
}


def get_scale(scale):
    """A `Scale` from its name in `SCALES` (or a `Scale`, returned as is)."""
    return resolve_scale(scale, SCALES, Scale)


def _split_seeds(seed):
    """Independent seeds for the train, validation and test sets."""
    state = np.random.SeedSequence(int(seed)).generate_state(3)
    return [int(s) for s in state]


def make_splits(scale, seed=0):
    """Train, validation and test sets of a scale, each `(inputs, labels)`.

    Deterministic given `(scale, seed)`; the three sets use independent
    seeds derived from `seed`.
    """
    from keras_neural_attention.experiments.nearest_key import make_dataset

    scale = get_scale(scale)
    sizes = (scale.num_train, scale.num_validation, scale.num_test)
    return tuple(
        make_dataset(n, scale.num_items, scale.num_classes, seed=s)
        for n, s in zip(sizes, _split_seeds(seed))
    )


def train_one(attention, scale, seed=0, model_config=None, weights_path=None,
              measure_memory=False):
    """Trains and evaluates one model; returns its result row.

    This is what each child process of `run_comparison` runs; it can also be
    called directly (in the current process).

    Args:
        attention: `"dot_product"` or `"neural"`.
        scale: a `Scale` or the name of one.
        seed: seeds the data and the model.
        model_config: overrides of `DEFAULT_MODEL_CONFIG`.
        weights_path: if given, the trained weights are saved there
            (a `.weights.h5` file).
        measure_memory: report this process's peak RSS (meaningful only in
            a fresh process that trains nothing else).

    Returns:
        A result row (dict); see `run_comparison`.
    """
    import keras

    from keras_neural_attention.experiments.nearest_key import build_model
    from keras_neural_attention.experiments.nearest_key import (
        count_trainable_params,
    )
    from keras_neural_attention.experiments.nearest_key import (
        seed_everything,
    )

    scale = get_scale(scale)
    config = dict(DEFAULT_MODEL_CONFIG)
    config.update(model_config or {})
    config["hidden_units"] = tuple(config["hidden_units"])
    config.update(num_items=scale.num_items, num_classes=scale.num_classes)
    train, validation, test = make_splits(scale, seed)
    seed_everything(seed)
    model = build_model(
        attention,
        learning_rate=scale.learning_rate,
        decay_steps=scale.steps,
        **config,
    )
    rss_before = peak_rss()[0] if measure_memory else None
    start = time.perf_counter()
    history = model.fit(
        train[0],
        train[1],
        batch_size=scale.batch_size,
        epochs=scale.epochs,
        validation_data=validation,
        shuffle=True,
        verbose=0,
    )
    train_time = time.perf_counter() - start
    # The batch size of training and validation: no new compilation.
    test_loss, test_accuracy = model.evaluate(
        test[0], test[1], batch_size=scale.batch_size, verbose=0
    )
    peak, peak_source = peak_rss() if measure_memory else (None, None)
    ru_maxrss = _ru_maxrss_mib() if measure_memory else None
    if weights_path:
        Path(weights_path).parent.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(weights_path))
    curves = {
        name: [float(v) for v in values]
        for name, values in history.history.items()
    }
    return {
        "attention": attention,
        "layer": LAYER_NAMES[attention],
        "trainable_params": count_trainable_params(model),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "final_train_loss": curves["loss"][-1],
        "final_train_accuracy": curves["accuracy"][-1],
        "train_time_s": train_time,
        "peak_rss_mib": peak,
        "rss_before_training_mib": rss_before,
        "peak_rss_source": peak_source,
        "ru_maxrss_mib": ru_maxrss,
        "memory_measurement": (
            f"{MEMORY_LABEL}, from {peak_source} of the process that "
            "trained the model; includes the framework and the data, "
            "excludes accelerator memory"
            if measure_memory
            else "not measured (trained in the calling process)"
        ),
        "history": curves,
        "backend": keras.backend.backend(),
        "device": _device_description(),
        "scale": scale_name(scale, SCALES),
        "scale_config": dataclasses.asdict(scale),
        "seed": int(seed),
        "model_config": {
            key: (list(value) if isinstance(value, tuple) else value)
            for key, value in config.items()
        },
        "weights_path": str(weights_path) if weights_path else None,
    }


@contextlib.contextmanager
def _backend_in_environment(backend):
    """Makes `KERAS_BACKEND` name `backend` while child processes start
    (they inherit the environment and import Keras before anything else)."""
    previous = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = backend
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("KERAS_BACKEND", None)
        else:
            os.environ["KERAS_BACKEND"] = previous


def _train_in_child(backend, **kwargs):
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with _backend_in_environment(backend):
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=context
        ) as executor:
            return executor.submit(
                train_one, measure_memory=True, **kwargs
            ).result()


def run_comparison(
    scale="default",
    seed=0,
    isolate=True,
    attentions=("dot_product", "neural"),
    model_config=None,
    weights_dir=None,
    log=None,
):
    """Trains dot-product attention and Neural Attention side by side.

    Both models see the same data (from `seed`), start from the same seed,
    and use the same optimizer, schedule, batch size and number of epochs.

    Args:
        scale: a name in `SCALES` (`"tiny"`, `"smoke"`, `"default"`,
            `"large"`) or a `Scale`.
        seed: int seed of the data, the weights and the shuffling.
        isolate: train each model in a fresh child process ("spawn") and
            measure its peak RSS. `False` trains in this process (faster to
            start, memory not measured).
        attentions: which models to train, in table order.
        model_config: overrides of `DEFAULT_MODEL_CONFIG` (`embed_dim`,
            `num_heads`, `key_dim`, `projection_dim`, `hidden_units`).
        weights_dir: if given, each trained model's weights are saved there
            as `<attention>.weights.h5` (see `load_trained_model`).
        log: optional callable receiving progress lines (for example
            `print`).

    Returns:
        A list of result rows, one dict per model, with keys `attention`,
        `layer`, `trainable_params`, `test_accuracy`, `test_loss`,
        `final_train_loss`, `final_train_accuracy`, `train_time_s` (wall time
        of `Model.fit`, compilation and per-epoch validation included),
        `peak_rss_mib` (peak RSS of the training process, `None` when not
        isolated), `rss_before_training_mib` (the same before `Model.fit`),
        `peak_rss_source`, `ru_maxrss_mib` (see the module docstring),
        `memory_measurement`,
        `history` (per-epoch `loss`, `accuracy`, `val_loss`,
        `val_accuracy`), `backend`, `device`, `scale`, `scale_config`,
        `seed`, `model_config`, `weights_path`.
    """
    import keras

    scale_obj = get_scale(scale)
    for attention in attentions:
        if attention not in ATTENTION_KINDS:
            raise ValueError(
                f"Unknown attention {attention!r}; expected one of "
                f"{ATTENTION_KINDS}."
            )
    backend = keras.backend.backend()
    rows = []
    for attention in attentions:
        weights_path = None
        if weights_dir is not None:
            weights_path = os.path.join(
                str(weights_dir), f"{attention}.weights.h5"
            )
        kwargs = dict(
            attention=attention,
            scale=scale_obj,
            seed=seed,
            model_config=model_config,
            weights_path=weights_path,
        )
        if log:
            where = "a child process" if isolate else "this process"
            log(
                f"Training {LAYER_NAMES[attention]} ({attention}) in {where}: "
                f"scale={scale_name(scale_obj, SCALES)}, backend={backend}, "
                f"seed={seed} ..."
            )
        if isolate:
            row = _train_in_child(backend, **kwargs)
        else:
            row = train_one(measure_memory=False, **kwargs)
        if log:
            log(
                f"  test accuracy {row['test_accuracy']:.1%}, "
                f"{row['train_time_s']:.1f} s"
            )
        rows.append(row)
    return rows


_ATTENTION_TITLES = {
    "dot_product": "Dot-product attention",
    "neural": "Neural Attention",
}


def _format_mib(value):
    return "n/a" if value is None else f"{value:,.0f}"


def format_table(rows):
    """The result rows as a markdown table (one line per model)."""
    lines = [
        "| Attention | Layer | Trainable params | Test accuracy "
        "| Final train loss | Train time (s) | Peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        title = _ATTENTION_TITLES.get(row["attention"], row["attention"])
        lines.append(
            f"| {title} | `{row['layer']}` | {row['trainable_params']:,} "
            f"| {row['test_accuracy']:.1%} | {row['final_train_loss']:.4f} "
            f"| {row['train_time_s']:.1f} "
            f"| {_format_mib(row.get('peak_rss_mib'))} |"
        )
    return "\n".join(lines)


def table_notes(rows):
    """Footnotes explaining the table's columns, computed from the rows."""
    notes = [
        "Train time: wall time of `Model.fit` (compilation and per-epoch "
        "validation included).",
    ]
    measured = [r for r in rows if r.get("peak_rss_mib") is not None]
    if measured:
        before = ", ".join(
            f"{_ATTENTION_TITLES.get(r['attention'], r['attention'])} "
            f"{_format_mib(r['rss_before_training_mib'])}"
            for r in measured
        )
        notes.append(
            f"Peak RSS: {MEMORY_LABEL}, a fresh child process per model "
            f"(from {measured[0].get('peak_rss_source')}); it includes the "
            "framework and the data, not accelerator memory (before "
            f"training: {before} MiB)."
        )
    else:
        notes.append(
            "Peak RSS: not measured (models trained in the calling process; "
            "run with isolation to measure it)."
        )
    return notes


def verdict(rows):
    """A one-line conclusion computed from the rows' numbers."""
    by_kind = {row["attention"]: row for row in rows}
    if "neural" not in by_kind or "dot_product" not in by_kind:
        return "Only one model was trained: nothing to compare."
    neural, dot = by_kind["neural"], by_kind["dot_product"]
    gap = 100.0 * (neural["test_accuracy"] - dot["test_accuracy"])
    accuracies = (
        f"{neural['test_accuracy']:.1%} vs {dot['test_accuracy']:.1%} test "
        "accuracy"
    )
    if abs(gap) < 0.05:
        head = (
            "Neural Attention and dot-product attention are equally accurate "
            f"({accuracies})"
        )
    elif gap > 0:
        head = (
            f"Neural Attention is {gap:.1f} points more accurate than "
            f"dot-product attention ({accuracies})"
        )
    else:
        head = (
            f"Dot-product attention is {-gap:.1f} points more accurate than "
            f"Neural Attention ({dot['test_accuracy']:.1%} vs "
            f"{neural['test_accuracy']:.1%} test accuracy)"
        )
    costs = [
        f"{neural['trainable_params'] / dot['trainable_params']:.2f}x the "
        "trainable parameters"
    ]
    if dot["train_time_s"] > 0:
        costs.append(
            f"{neural['train_time_s'] / dot['train_time_s']:.2f}x the "
            "training time"
        )
    if neural.get("peak_rss_mib") and dot.get("peak_rss_mib"):
        costs.append(
            f"{neural['peak_rss_mib'] / dot['peak_rss_mib']:.2f}x the peak "
            "RSS"
        )
    return (
        f"{head}; Neural Attention used {', '.join(costs[:-1])}"
        + (" and " if len(costs) > 1 else "")
        + f"{costs[-1]} of dot-product attention."
    )


def format_report(rows, metadata=None):
    """Title, table, notes and verdict as one markdown document."""
    first = rows[0] if rows else {}
    title = (
        f"# Nearest-key retrieval: dot-product attention vs Neural Attention"
        f"\n\nScale `{first.get('scale')}`, seed {first.get('seed')}, "
        f"backend `{first.get('backend')}` on {first.get('device')}."
    )
    parts = [title, format_table(rows)]
    parts.append("\n".join(f"- {note}" for note in table_notes(rows)))
    parts.append(f"**Verdict:** {verdict(rows)}")
    if metadata:
        parts.append(
            "Run: "
            + ", ".join(f"{key} `{value}`" for key, value in metadata.items())
        )
    return "\n\n".join(parts) + "\n"


def write_results(rows, output_dir=RESULTS_DIR, metadata=None):
    """Saves the rows, metadata and verdict as JSON and the report as
    markdown.

    Args:
        rows: the rows of `run_comparison`.
        output_dir: directory to write (created if needed).
        metadata: dict of run information; defaults to `environment_info()`.

    Returns:
        `{"json": path, "markdown": path}`.
    """
    if metadata is None:
        metadata = environment_info()
    first = rows[0] if rows else {}
    payload = {
        "task": "nearest-key retrieval",
        "scale": first.get("scale"),
        "seed": first.get("seed"),
        "metadata": metadata,
        "verdict": verdict(rows),
        "table": format_table(rows),
        "rows": rows,
    }
    return write_json_and_markdown(
        payload, format_report(rows, metadata), output_dir, "comparison")
