"""A trained memorization-capacity proxy for the quarks of attention.

Baldi & Vershynin ("The Quarks of Attention", arXiv 2202.08371) measure
capacity as `log2` of the number of Boolean functions an architecture can
realize, and prove that output gating roughly doubles the capacity of a
linear threshold gate (`2 n^2` against `n^2`). `experiments.quarks` counts
these functions exactly for small `n`. This module measures something
different and easier to reach for larger `n`: **memorization**, the largest
number `m` of random points of `{-1, 1}^n` with random `+-1` labels that one
unit of each architecture fits perfectly after training. It is a TRAINED
PROXY: the optimizer can fail on a set the architecture could realize, so
the numbers are lower estimates of what the architecture can memorize, and
they are not the paper's capacity.

Architectures (one unit each, smooth activations for training, evaluated by
the sign of the output):

- `"threshold"`: `keras.layers.Dense(1, activation="tanh")`, the smooth
  linear threshold gate `tanh(x . w + b)` (`n + 1` parameters). Cover's
  counting theorem puts the memorization capacity of a threshold gate in
  general position at about `2 n` points (half of the random labelings of
  `2 n` points are separable).
- `"output_gating"`: `OutputGating(1, activation="tanh",
  gate_activation="tanh")`, `tanh(x . w + b) * tanh(x . v + e)`, whose sign
  is the product of two threshold gates (`2 n + 2` parameters).
- `"multiplexing"`: `AdditiveActivationAttention(1, gate_units=1,
  activation="tanh", gate_activation="tanh")`,
  `tanh(x . w + b + u tanh(x . v + e))`, one attending unit adding to the
  activation (`2 n + 3` parameters).

Protocol: for each input size `n` and seed, `max_points` distinct points of
`{-1, 1}^n` (sampled without replacement) with uniform random labels; for
every `m` of the sweep, `restarts` freshly initialized units are trained on
the first `m` of them (full batch, Adam, squared error between the output
and the label), and `m` counts as fitted when the sign of one unit's output
matches all `m` labels. The largest fitted `m` of a seed is its largest
fitted count. All units of one (architecture, `n`) are the columns of one
layer (`make_units(architecture, units)`), trained at once: the points of
all seeds are stacked into one batch and each unit's loss is masked to its
own points, and Adam updates every weight from its own gradient, so each
unit trains as if alone (`AdditiveActivationAttention` gets a diagonal
gate-output kernel so that each unit reads only its own attending unit).

For the threshold unit the exact answer is also computed, by linear
programming (`linearly_separable_counts`, SciPy): the largest `m` whose
points are linearly separable. The gap between it and the trained count
shows how often training fails for that unit.

Run it with
`python -m keras_neural_attention.experiments.capacity --scale default
--output-dir DIR`.
"""

import dataclasses
import importlib.util
import time

import keras
import numpy as np

from keras_neural_attention.experiments.records import resolve_scale
from keras_neural_attention.experiments.records import run_cli
from keras_neural_attention.experiments.records import scale_config
from keras_neural_attention.experiments.records import scale_name
from keras_neural_attention.experiments.records import (
    write_json_and_markdown,
)

ARCHITECTURES = ("threshold", "output_gating", "multiplexing")
ARCHITECTURE_TITLES = {
    "threshold": "threshold unit: Dense(1, tanh)",
    "output_gating": "output-gated unit: OutputGating(1, tanh, tanh)",
    "multiplexing": (
        "additive activation attention: "
        "AdditiveActivationAttention(1, gate_units=1, tanh, tanh)"
    ),
}
MULTIPLEXING_UNITS_PER_LAYER = 128
PROXY_LABEL = (
    "trained memorization proxy (largest number of random +-1 points "
    "fitted perfectly after training; the optimizer can fail, so these are "
    "lower estimates, not the theoretical capacity)"
)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_architecture(architecture):
    if architecture not in ARCHITECTURES:
        raise ValueError(
            "Argument `architecture` must be one of "
            f"{', '.join(repr(a) for a in ARCHITECTURES)}. "
            f"Received: architecture={architecture!r}"
        )


@dataclasses.dataclass(frozen=True)
class CapacityScale:
    """How large one capacity run is.

    Attributes:
        input_sizes: tuple of input sizes `n`.
        seeds: point sets (and labelings) per input size.
        max_points_per_input: the sweep goes up to
            `max_points_per_input * n` points.
        point_step: spacing of the sweep over `m` (from `point_step`).
        steps: full-batch Adam steps per unit.
        learning_rate: Adam's learning rate.
        restarts: independently initialized units per (seed, `m`); `m`
            counts as fitted when one of them fits.
    """

    input_sizes: tuple
    seeds: int
    max_points_per_input: int = 8
    point_step: int = 1
    steps: int = 3000
    learning_rate: float = 0.01
    restarts: int = 4

    def __post_init__(self):
        object.__setattr__(self, "input_sizes", tuple(self.input_sizes))

    def point_counts(self, n):
        """The sweep over `m` for `n` inputs (at most `2^n` points)."""
        largest = min(self.max_points_per_input * n, 2**n)
        return tuple(range(self.point_step, largest + 1, self.point_step))


SCALES = {
    # Plumbing checks in unit tests: seconds; the numbers mean nothing.
    "tiny": CapacityScale(input_sizes=(3,), seeds=2, max_points_per_input=2,
                          point_step=2, steps=20, restarts=1),
    # The notebook's stored outputs and CI: seconds on a CPU.
    "smoke": CapacityScale(input_sizes=(4, 6), seeds=3, steps=1000,
                           restarts=2),
    # A CPU: about 3 minutes on 2 cores with JAX.
    "default": CapacityScale(input_sizes=(4, 6, 8, 10, 12), seeds=5),
    # A GPU (or a patient CPU): larger inputs, more seeds and restarts.
    "large": CapacityScale(input_sizes=(4, 6, 8, 10, 12, 16, 20), seeds=10,
                           steps=6000, restarts=8),
}


def get_scale(scale):
    """A `CapacityScale` from its name in `SCALES` (or a `CapacityScale`,
    returned as is)."""
    return resolve_scale(scale, SCALES, CapacityScale)


def random_labeled_points(n, num_points, seed=0):
    """Distinct random points of `{-1, 1}^n` with random `+-1` labels.

    Args:
        n: input size, a positive integer (at most 30).
        num_points: number of points, at most `2^n`.
        seed: int seed (NumPy `default_rng`).

    Returns:
        `(points, labels)`: float32 arrays `(num_points, n)` and
        `(num_points,)`, entries in `{-1, 1}`.
    """
    if not _is_int(n) or not 1 <= n <= 30:
        raise ValueError(
            "Argument `n` must be an integer in 1..30. "
            f"Received: n={n!r}"
        )
    if not _is_int(num_points) or not 1 <= num_points <= 2**n:
        raise ValueError(
            f"Argument `num_points` must be an integer in 1..2^n = {2**n}. "
            f"Received: num_points={num_points!r}"
        )
    rng = np.random.default_rng(seed)
    codes = rng.choice(2**n, size=num_points, replace=False)
    bits = (codes[:, None] >> np.arange(n)[::-1]) & 1
    points = (2 * bits - 1).astype(np.float32)
    labels = rng.choice(np.array([-1.0, 1.0], np.float32), size=num_points)
    return points, labels


def _has_scipy():
    return importlib.util.find_spec("scipy") is not None


def linearly_separable_counts(n, point_counts, seeds):
    """Exact reference for the threshold unit: which point sets are
    linearly separable, by linear programming.

    The points and labels of seed `s` are those of `fit_point_counts`
    (`random_labeled_points(n, max(point_counts), s)`); the first `m` are
    separable when some `w, b` give `y_i (x_i . w + b) >= 1` for all of
    them, i.e. when a threshold unit can fit them. Comparing with the
    trained threshold unit measures how often the optimizer fails.

    Needs SciPy (`scipy.optimize.linprog`, installed with JAX).

    Args:
        n: input size.
        point_counts: increasing point counts `m`.
        seeds: seeds of the point sets.

    Returns:
        A bool array `(len(seeds), len(point_counts))`.
    """
    from scipy.optimize import linprog

    point_counts = [int(m) for m in point_counts]
    max_points = max(point_counts)
    result = np.zeros((len(seeds), len(point_counts)), bool)
    for i, seed in enumerate(seeds):
        points, labels = random_labeled_points(n, max_points, int(seed))
        # Rows -y_i [x_i, 1] . [w, b] <= -1.
        constraints = -labels[:, None] * np.concatenate(
            [points, np.ones((max_points, 1), np.float32)], axis=1
        )
        for j, m in enumerate(point_counts):
            solution = linprog(
                np.zeros(n + 1), A_ub=constraints[:m].astype(np.float64),
                b_ub=-np.ones(m), bounds=[(None, None)] * (n + 1),
                method="highs",
            )
            if solution.status not in (0, 2):
                raise RuntimeError(
                    f"linprog failed (status {solution.status}): "
                    f"{solution.message}"
                )
            result[i, j] = solution.status == 0
    return result


def make_units(architecture, units=1, name=None):
    """`units` independent units of `architecture` with smooth (tanh)
    activations, as one layer.

    `Dense(units)` and `OutputGating(units)` are `units` independent units
    (each has its own weights and gate). `AdditiveActivationAttention(units,
    gate_units=units)` would let every unit read every gate; its
    `gate_output_kernel` gets a diagonal constraint when the layer is built
    (`build_units`), so that unit `k` reads only gate `k`, as one unit with
    one attending unit.

    Args:
        architecture: one of `ARCHITECTURES`.
        units: number of units.
        name: optional layer name.

    Returns:
        A Keras layer mapping `(batch, n)` to `(batch, units)`.
    """
    from keras_neural_attention.layers import AdditiveActivationAttention
    from keras_neural_attention.layers import OutputGating

    _check_architecture(architecture)
    if not _is_int(units) or units < 1:
        raise ValueError(
            "Argument `units` must be a positive integer. "
            f"Received: units={units!r}"
        )
    if architecture == "threshold":
        return keras.layers.Dense(units, activation="tanh", name=name)
    if architecture == "output_gating":
        return OutputGating(
            units, activation="tanh", gate_activation="tanh", name=name
        )
    return AdditiveActivationAttention(
        units, gate_units=units, activation="tanh", gate_activation="tanh",
        name=name,
    )


class DiagonalConstraint(keras.constraints.Constraint):
    """Zeroes the off-diagonal entries of a square kernel."""

    def __call__(self, w):
        size = w.shape[0]
        return keras.ops.multiply(w, keras.ops.eye(size, dtype=w.dtype))


def build_units(architecture, units, n, name=None):
    """`make_units` built for `n` inputs, with independent units.

    Args:
        architecture: one of `ARCHITECTURES`.
        units: number of units.
        n: input size.
        name: optional layer name.

    Returns:
        The built layer.
    """
    layer = make_units(architecture, units, name=name)
    layer.build((None, n))
    if architecture == "multiplexing":
        kernel = layer.gate_output_kernel
        kernel.constraint = DiagonalConstraint()
        kernel.assign(kernel.constraint(kernel))
    return layer


def count_parameters(architecture, n):
    """Trainable parameters of ONE unit of `architecture` on `n` inputs."""
    layer = build_units(architecture, 1, n)
    return int(sum(np.prod(w.shape) for w in layer.trainable_weights))


def fit_point_counts(architecture, n, point_counts, seeds, steps=3000,
                     learning_rate=0.01, restarts=1, model_seed=0):
    """Trains units per (seed, point count) and reports which fit.

    Every (seed, point count, restart) gets its own unit; all of them are
    columns of one layer trained at once. The points of all seeds are
    stacked into one batch; each unit's loss is masked (sample weights) to
    the first `m` points of its own seed, so each unit trains on its own
    problem only and Adam, which updates every weight from its own
    gradient, trains each unit as if it were alone.

    Args:
        architecture: one of `ARCHITECTURES`.
        n: input size.
        point_counts: increasing point counts `m` to try.
        seeds: seeds of the point sets; seed `s` draws
            `max(point_counts)` points and labels, and the units for `m`
            train on the first `m`.
        steps: full-batch Adam steps.
        learning_rate: Adam's learning rate.
        restarts: independently initialized units per (seed, `m`); the
            count is fitted when at least one of them fits.
        model_seed: seeds the initial weights.

    Returns:
        A bool array `(len(seeds), len(point_counts))`: whether the sign of
        a trained unit's output matched every label.
    """
    from keras_neural_attention.experiments.nearest_key import (
        seed_everything,
    )

    _check_architecture(architecture)
    point_counts = [int(m) for m in point_counts]
    seeds = [int(s) for s in seeds]
    if (not point_counts or point_counts[0] < 1
            or sorted(set(point_counts)) != point_counts):
        raise ValueError(
            "Argument `point_counts` must be a non-empty increasing "
            "sequence of distinct positive integers. "
            f"Received: point_counts={point_counts!r}"
        )
    if not seeds:
        raise ValueError(
            "Argument `seeds` must be a non-empty sequence of integers. "
            f"Received: seeds={seeds!r}"
        )
    for name, value in (("steps", steps), ("restarts", restarts)):
        if not _is_int(value) or value < 1:
            raise ValueError(
                f"Argument `{name}` must be a positive integer. "
                f"Received: {name}={value!r}"
            )
    max_points = point_counts[-1]
    num_seeds, num_counts = len(seeds), len(point_counts)
    num_units = num_seeds * num_counts * restarts
    x = np.zeros((num_seeds * max_points, n), np.float32)
    y = np.zeros((num_seeds * max_points, num_units), np.float32)
    weights = np.zeros((num_seeds * max_points, num_units), np.float32)
    for i, seed in enumerate(seeds):
        points, labels = random_labeled_points(n, max_points, seed)
        rows = slice(i * max_points, (i + 1) * max_points)
        x[rows] = points
        for j, m in enumerate(point_counts):
            for r in range(restarts):
                k = (i * num_counts + j) * restarts + r
                y[rows, k] = labels
                weights[i * max_points:i * max_points + m, k] = 1.0
    keras.backend.clear_session()
    seed_everything(model_seed)
    inputs = keras.Input((n,), name="points")
    # `"multiplexing"` in layers of at most `MULTIPLEXING_UNITS_PER_LAYER`
    # units: its diagonal gate-output kernel costs `units^2` per point.
    per_layer = (
        MULTIPLEXING_UNITS_PER_LAYER if architecture == "multiplexing"
        else num_units
    )
    sizes = [per_layer] * (num_units // per_layer)
    if num_units % per_layer:
        sizes.append(num_units % per_layer)
    outputs = [
        build_units(architecture, size, n, name=f"units_{i}")(inputs)
        for i, size in enumerate(sizes)
    ]
    if len(outputs) > 1:
        outputs = [keras.layers.Concatenate()(outputs)]
    # `(batch, num_units, 1)`: the loss averages over the last axis only,
    # so every unit keeps its own per-point loss and sample weight.
    outputs = keras.layers.Reshape((num_units, 1))(outputs[0])
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.MeanSquaredError(),
    )
    # Every step sees the whole set: `repeats` copies of the full batch per
    # epoch (a divisor of `steps`) keep the per-epoch overhead of `fit`
    # small.
    repeats = max(d for d in range(1, min(steps, 100) + 1) if steps % d == 0)
    model.fit(
        np.tile(x, (repeats, 1)),
        np.tile(y, (repeats, 1))[..., None],
        sample_weight=np.tile(weights, (repeats, 1)),
        batch_size=len(x),
        epochs=steps // repeats,
        shuffle=False,
        verbose=0,
    )
    outputs = model.predict(x, batch_size=len(x), verbose=0)[..., 0]
    correct = (np.sign(outputs) == y) | (weights == 0)
    fitted = correct.all(axis=0).reshape(num_seeds, num_counts, restarts)
    return fitted.any(axis=-1)


def run_capacity(scale="default", architectures=ARCHITECTURES, log=None):
    """The memorization proxy for every architecture and input size.

    Args:
        scale: a name in `SCALES` (`"tiny"`, `"smoke"`, `"default"`,
            `"large"`) or a `CapacityScale`.
        architectures: a subset of `ARCHITECTURES`.
        log: optional callable receiving progress lines (e.g. `print`).

    Returns:
        A list of rows, one per (architecture, `n`), with `architecture`,
        `n`, `parameters`, `point_counts`, `fitted` (per seed, per count),
        `fitted_fraction` (per count, over seeds), `largest_fitted` (per
        seed, 0 if none), `mean_largest`, `min_largest`, `max_largest`,
        `first_unfitted` (per seed, the smallest count of the sweep not
        fitted: a gap between it and `largest_fitted` is an optimizer
        failure, since a unit that fits `m` points also fits their first
        `m - 1`), `mean_first_unfitted`, `train_time_s`, `scale`; when SciPy
        is installed, threshold rows also carry the exact reference
        `separable_largest` (per seed, the largest `m` whose points are
        linearly separable, from `linearly_separable_counts`) and
        `mean_separable_largest`.

    Example:

    ```python
    rows = run_capacity("smoke")
    print(format_table(rows))
    ```
    """
    scale_obj = get_scale(scale)
    architectures = tuple(architectures)
    if not architectures:
        raise ValueError(
            "Argument `architectures` must name at least one of "
            f"{', '.join(repr(a) for a in ARCHITECTURES)}. "
            f"Received: architectures={architectures!r}"
        )
    for architecture in architectures:
        _check_architecture(architecture)
    rows = []
    for n in scale_obj.input_sizes:
        counts = scale_obj.point_counts(n)
        for architecture in architectures:
            start = time.perf_counter()
            fitted = fit_point_counts(
                architecture, n, counts, range(scale_obj.seeds),
                steps=scale_obj.steps,
                learning_rate=scale_obj.learning_rate,
                restarts=scale_obj.restarts,
            )
            elapsed = time.perf_counter() - start
            largest = [
                max((m for m, ok in zip(counts, row) if ok), default=0)
                for row in fitted
            ]
            # The smallest count of the sweep that was not fitted (one step
            # past the sweep if every count was): below it, every count of
            # the sweep was fitted.
            first_unfitted = [
                min((m for m, ok in zip(counts, row) if not ok),
                    default=counts[-1] + scale_obj.point_step)
                for row in fitted
            ]
            row = {
                "architecture": architecture,
                "n": int(n),
                "parameters": count_parameters(architecture, n),
                "point_counts": list(counts),
                "fitted": fitted.tolist(),
                "fitted_fraction": fitted.mean(axis=0).tolist(),
                "largest_fitted": [int(v) for v in largest],
                "mean_largest": float(np.mean(largest)),
                "min_largest": int(np.min(largest)),
                "max_largest": int(np.max(largest)),
                "first_unfitted": [int(v) for v in first_unfitted],
                "mean_first_unfitted": float(np.mean(first_unfitted)),
                "train_time_s": elapsed,
                "scale": scale_name(scale_obj, SCALES),
            }
            if architecture == "threshold" and _has_scipy():
                separable = linearly_separable_counts(
                    n, counts, range(scale_obj.seeds)
                )
                exact = [
                    max((m for m, ok in zip(counts, r) if ok), default=0)
                    for r in separable
                ]
                row["separable_largest"] = [int(v) for v in exact]
                row["mean_separable_largest"] = float(np.mean(exact))
            rows.append(row)
            if log:
                log(
                    f"n={n:2d} {architecture:14s} largest fitted "
                    f"{row['mean_largest']:.1f} (min {row['min_largest']}, "
                    f"max {row['max_largest']}), {elapsed:.1f} s"
                )
    return rows


def format_table(rows):
    """Markdown table of `run_capacity` rows: per input size and
    architecture, the parameters of one unit, the largest count of the
    sweep (a largest fitted count equal to it is capped by the sweep, as
    when the sweep holds all `2^n` points), the mean/min/max over seeds
    of the largest fitted count, its ratio to the threshold unit's mean and
    to `n`, the mean smallest count that was not fitted, and for the
    threshold unit the exact (linear programming) mean largest separable
    count."""
    threshold = {
        r["n"]: r["mean_largest"] for r in rows
        if r["architecture"] == "threshold"
    }
    lines = [
        "| n | Architecture | Parameters | Sweep up to m "
        "| Largest fitted m: mean | min "
        "| max | mean / threshold mean | mean / n "
        "| Smallest unfitted m: mean | Exact (LP): mean largest separable m |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        base = threshold.get(row["n"])
        ratio = f"{row['mean_largest'] / base:.2f}" if base else "n/a"
        exact = row.get("mean_separable_largest")
        exact = "" if exact is None else f"{exact:.1f}"
        lines.append(
            f"| {row['n']} | {row['architecture']} | {row['parameters']} "
            f"| {row['point_counts'][-1]} | {row['mean_largest']:.1f} "
            f"| {row['min_largest']} | {row['max_largest']} | {ratio} "
            f"| {row['mean_largest'] / row['n']:.2f} "
            f"| {row['mean_first_unfitted']:.1f} "
            f"| {exact} |"
        )
    return "\n".join(lines)


def plot_capacity(rows, ax=None):
    """Plots the mean largest fitted count (min-max bars) against `n`, one
    line per architecture, with the exact threshold reference (when the
    rows carry it) and Cover's `2 n`.

    Args:
        rows: the rows of `run_capacity`.
        ax: optional matplotlib axis; a new figure otherwise.

    Returns:
        The matplotlib `Figure`.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    for architecture in ARCHITECTURES:
        items = sorted(
            (r for r in rows if r["architecture"] == architecture),
            key=lambda r: r["n"],
        )
        if not items:
            continue
        sizes = np.array([r["n"] for r in items])
        means = np.array([r["mean_largest"] for r in items])
        low = means - np.array([r["min_largest"] for r in items])
        high = np.array([r["max_largest"] for r in items]) - means
        ax.errorbar(
            sizes, means, yerr=[low, high], marker="o", capsize=3,
            label=architecture,
        )
    exact = sorted(
        (r["n"], r["mean_separable_largest"]) for r in rows
        if r.get("mean_separable_largest") is not None
    )
    if exact:
        ax.plot(*zip(*exact), "k:", marker="x",
                label="threshold, exact (linear programming)")
    sizes = sorted({r["n"] for r in rows})
    ax.plot(sizes, [2 * n for n in sizes], "k--", linewidth=1,
            label="2n (Cover, threshold gate)")
    ax.set_xlabel("inputs n")
    ax.set_ylabel("largest fitted number of points\n(mean, min-max bars)")
    ax.set_title("Trained memorization proxy (not the theoretical capacity)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def format_report(rows, metadata=None):
    """Title, protocol, table and notes as one markdown document."""
    first = rows[0] if rows else {}
    scale = SCALES.get(first.get("scale"))
    parts = [
        "# Quarks of attention: trained memorization-capacity proxy",
        f"**What this measures:** {PROXY_LABEL}. The paper's capacity "
        "(log2 of the number of realizable Boolean functions) is counted "
        "exactly for small n by `experiments.quarks`.",
        "For each n and seed: distinct random points of {-1,1}^n with "
        "random +-1 labels; for every point count m of the sweep, "
        "`restarts` independently initialized units trained full batch "
        "with Adam on squared error; m is fitted when the sign of one of "
        "them matches all m labels. For the threshold unit, linear "
        "programming gives the exact answer (the largest m whose points "
        "are linearly separable): the gap between the two shows how often "
        "training fails. Architectures: "
        + "; ".join(f"`{a}` = {t}" for a, t in ARCHITECTURE_TITLES.items())
        + ".",
    ]
    if scale is not None:
        parts.append(
            f"Scale `{first.get('scale')}`: "
            + ", ".join(
                f"{key} `{value}`"
                for key, value in dataclasses.asdict(scale).items()
            )
            + "."
        )
    parts.append(format_table(rows))
    if metadata:
        parts.append(
            "Run: "
            + ", ".join(f"{key} `{value}`" for key, value in metadata.items())
        )
    return "\n\n".join(parts) + "\n"


def write_results(rows, output_dir, metadata=None, stem="capacity"):
    """Writes the rows and metadata as JSON and the report as markdown.

    Args:
        rows: the rows of `run_capacity`.
        output_dir: directory to write (created if needed).
        metadata: dict of run information (backend, hardware, date, ...);
            defaults to `environment.environment_info()`.
        stem: file name without extension.

    Returns:
        `{"json": path, "markdown": path}`.
    """
    from keras_neural_attention.experiments.environment import (
        environment_info,
    )

    if metadata is None:
        metadata = environment_info()
    first = rows[0] if rows else {}
    payload = {
        "experiment": "memorization-capacity proxy",
        "measures": PROXY_LABEL,
        "scale": first.get("scale"),
        "scale_config": scale_config(first.get("scale"), SCALES),
        "metadata": metadata,
        "rows": rows,
    }
    return write_json_and_markdown(
        payload, format_report(rows, metadata), output_dir, stem)


def main(argv=None):
    """Command line: runs the capacity proxy at a scale and writes result
    files."""
    return run_cli(
        argv,
        prog="python -m keras_neural_attention.experiments.capacity",
        description=(
            "Trained memorization-capacity proxy of a threshold unit, an "
            "output-gated unit and additive activation attention; writes "
            "<stem>.json and <stem>.md. Set KERAS_BACKEND to choose the "
            "backend."
        ),
        scales=SCALES,
        default_output_dir="results/capacity",
        stem_prefix="capacity",
        run=run_capacity,
        write_results=write_results,
        report=format_table,
    )


if __name__ == "__main__":
    raise SystemExit(main())
