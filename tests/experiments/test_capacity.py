"""Tests of the trained memorization-capacity proxy: data, independence of
the units trained together, the fit criterion on a labeling no threshold
unit can fit, argument checks, a tiny run, table, plot and result files
(once, in the one-backend session: see tests/conftest.py)."""

import json

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_neural_attention.experiments import capacity  # noqa: E402

# Trains small models through the experiment's own code (backend-
# independent plumbing; the layers are tested per backend): once per
# suite, see tests/conftest.py.
pytestmark = pytest.mark.one_backend


def test_random_labeled_points_are_distinct_signs_and_deterministic():
    points, labels = capacity.random_labeled_points(5, 20, seed=1)
    assert points.shape == (20, 5) and labels.shape == (20,)
    assert points.dtype == np.float32 and labels.dtype == np.float32
    assert set(np.unique(points)) == {-1.0, 1.0}
    assert set(np.unique(labels)) == {-1.0, 1.0}
    assert len({tuple(p) for p in points}) == 20
    again, again_labels = capacity.random_labeled_points(5, 20, seed=1)
    np.testing.assert_array_equal(points, again)
    np.testing.assert_array_equal(labels, again_labels)
    other, _ = capacity.random_labeled_points(5, 20, seed=2)
    assert not np.array_equal(points, other)
    # All 2^n points when asked for all of them.
    every, _ = capacity.random_labeled_points(3, 8, seed=0)
    assert len({tuple(p) for p in every}) == 8


@pytest.mark.parametrize(
    "architecture, expected", [
        ("threshold", 7), ("output_gating", 14), ("multiplexing", 15),
    ],
)
def test_one_unit_has_the_parameters_of_its_formula(architecture, expected):
    # n = 6: n + 1, 2 (n + 1), 2 n + 3.
    assert capacity.count_parameters(architecture, 6) == expected


@pytest.mark.parametrize("architecture", capacity.ARCHITECTURES)
def test_units_trained_together_are_independent(architecture):
    """Changing the weights of one unit changes no other unit's output, and
    the multiplexing units keep reading only their own gate after a training
    step."""
    n, units = 4, 3
    layer = capacity.build_units(architecture, units, n)
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(16, n)).astype("float32")
    before = keras.ops.convert_to_numpy(layer(x))
    for weight in layer.trainable_weights:
        value = keras.ops.convert_to_numpy(weight).copy()
        if value.ndim == 2 and value.shape == (units, units):
            value[1, 1] += 0.7  # the diagonal gate-output weight of unit 1
        else:
            value[..., 1] += 0.7  # unit 1's column (or gate)
        weight.assign(value)
    after = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(after[:, [0, 2]], before[:, [0, 2]],
                               atol=1e-6)
    assert np.abs(after[:, 1] - before[:, 1]).max() > 1e-3

    inputs = keras.Input((n,))
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    model.fit(x, rng.normal(size=(16, units)).astype("float32"),
              epochs=2, verbose=0)
    if architecture == "multiplexing":
        kernel = keras.ops.convert_to_numpy(layer.gate_output_kernel)
        np.testing.assert_array_equal(kernel * (1 - np.eye(units)), 0.0)
        assert np.all(np.diag(kernel) != 0.0)


def _xor_seed():
    """A seed whose 4 points of {-1, 1}^2 carry the labels +-x1*x2 (XOR up
    to sign): no threshold unit can fit them."""
    for seed in range(100):
        points, labels = capacity.random_labeled_points(2, 4, seed)
        product = points[:, 0] * points[:, 1]
        if np.all(labels == product) or np.all(labels == -product):
            return seed
    raise AssertionError("no XOR labeling among the first 100 seeds")


def test_the_fit_criterion_on_xor_labels():
    seed = _xor_seed()
    fitted = {
        architecture: capacity.fit_point_counts(
            architecture, 2, [2, 4], [seed], steps=400, learning_rate=0.05,
            restarts=3,
        )
        for architecture in ("threshold", "output_gating")
    }
    fitted["linear programming"] = capacity.linearly_separable_counts(
        2, [2, 4], [seed]
    )
    for result in fitted.values():
        assert result.shape == (1, 2) and result.dtype == bool
    assert fitted["linear programming"].tolist() == [[True, False]]
    # Two distinct points are always separable; XOR never is.
    assert fitted["threshold"].tolist() == [[True, False]]
    # The product of two threshold units computes XOR.
    assert fitted["output_gating"].tolist() == [[True, True]]


def test_invalid_arguments_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="`architecture`.*'threshold', "
                       "'output_gating', 'multiplexing'"):
        capacity.make_units("synaptic")
    with pytest.raises(ValueError, match="`units`"):
        capacity.make_units("threshold", units=0)
    with pytest.raises(ValueError, match="`n`"):
        capacity.random_labeled_points(0, 1)
    with pytest.raises(ValueError, match=r"`num_points`.*2\^n = 8"):
        capacity.random_labeled_points(3, 9)
    with pytest.raises(ValueError, match="`point_counts`"):
        capacity.fit_point_counts("threshold", 3, [4, 2], [0])
    with pytest.raises(ValueError, match="`point_counts`"):
        capacity.fit_point_counts("threshold", 3, [0, 2], [0])
    with pytest.raises(ValueError, match="`seeds`"):
        capacity.fit_point_counts("threshold", 3, [2], [])
    with pytest.raises(ValueError, match="`steps`"):
        capacity.fit_point_counts("threshold", 3, [2], [0], steps=0)
    with pytest.raises(ValueError, match="`restarts`"):
        capacity.fit_point_counts("threshold", 3, [2], [0], restarts=0)
    with pytest.raises(ValueError, match="`scale`.*'tiny'.*'large'"):
        capacity.get_scale("huge")
    with pytest.raises(ValueError, match="`architectures`"):
        capacity.run_capacity("tiny", architectures=())


def test_tiny_run_through_the_command_line(tmp_path):
    assert capacity.main(
        ["--scale", "tiny", "--output-dir", str(tmp_path), "--stem", "run"]
    ) == 0
    payload = json.loads((tmp_path / "run.json").read_text())
    scale = capacity.SCALES["tiny"]
    rows = payload["rows"]
    assert [(r["n"], r["architecture"]) for r in rows] == [
        (n, a) for n in scale.input_sizes for a in capacity.ARCHITECTURES
    ]
    for row in rows:
        counts = row["point_counts"]
        assert counts == list(scale.point_counts(row["n"]))
        fitted = np.array(row["fitted"])
        assert fitted.shape == (scale.seeds, len(counts))
        for largest, first, seed_fitted in zip(
            row["largest_fitted"], row["first_unfitted"], fitted
        ):
            fitted_counts = [m for m, ok in zip(counts, seed_fitted) if ok]
            assert largest == max(fitted_counts, default=0)
            assert first not in fitted_counts
        assert row["min_largest"] <= row["mean_largest"] <= row["max_largest"]
        if row["architecture"] == "threshold":
            # Training never fits a set that is not linearly separable.
            for trained, exact in zip(
                row["largest_fitted"], row["separable_largest"]
            ):
                assert trained <= exact
        else:
            assert "separable_largest" not in row
        np.testing.assert_allclose(row["fitted_fraction"], fitted.mean(0))
    assert "trained memorization proxy" in payload["measures"]
    assert payload["metadata"]["scale"] == "tiny"
    for key in ("backend", "cpu", "date"):
        assert key in payload["metadata"]
    markdown = (tmp_path / "run.md").read_text()
    assert "not the theoretical capacity" in markdown


def _rows():
    rows = []
    for n, values in ((4, (8, 16, 15)), (6, (12, 30, 26))):
        for architecture, largest in zip(capacity.ARCHITECTURES, values):
            rows.append({
                "architecture": architecture, "n": n,
                "parameters": capacity.count_parameters(architecture, n),
                "point_counts": list(range(1, 8 * n + 1)),
                "mean_largest": float(largest), "min_largest": largest - 1,
                "max_largest": largest + 1,
                "mean_first_unfitted": float(largest),
                "scale": "default",
            })
    return rows


def test_linear_programming_agrees_with_the_threshold_enumeration():
    """All 8 points of {-1, 1}^3: a labeling is separable exactly when it is
    one of the 104 threshold functions of 3 inputs."""
    from keras_neural_attention.experiments import quarks

    tables = set(quarks.threshold_tables(3).tolist())
    for seed in range(12):
        points, labels = capacity.random_labeled_points(3, 8, seed)
        # The same points in {0, 1} coordinates and `boolean_points` order.
        order = np.lexsort(((points + 1) / 2).T[::-1])
        mask = quarks.truth_table_mask(labels[order])
        separable = capacity.linearly_separable_counts(3, [8], [seed])
        assert separable[0, 0] == (mask in tables)


def test_table_and_plot():
    import matplotlib.pyplot as plt

    rows = _rows()
    rows[0]["mean_separable_largest"] = 9.0
    lines = capacity.format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[2].endswith("| 9.0 |")
    # output gating at n = 6: 30 / 12 = 2.50 times the threshold unit.
    assert "| 6 | output_gating | 14 | 48 | 30.0 | 29 | 31 | 2.50 | 5.00 |" in (
        lines[6]
    )
    fig = capacity.plot_capacity(rows)
    ax = fig.axes[0]
    assert len(ax.containers) == len(capacity.ARCHITECTURES)
    # The exact threshold reference and Cover's 2n.
    assert len(ax.lines) >= 2
    assert "not the theoretical capacity" in ax.get_title()
    plt.close(fig)
