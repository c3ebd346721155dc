"""Tests of the main job: the nearest-key task, its models and the
side-by-side comparison (once, in the one-backend session)."""

import json
import os

import keras
import numpy as np
import pytest

from keras_neural_attention import NeuralAttention
from keras_neural_attention import experiments
from keras_neural_attention.experiments import comparison

# Trains small models through the experiment's own code (backend-
# independent plumbing; the layers are tested per backend): once per
# suite, see tests/conftest.py.
pytestmark = pytest.mark.one_backend

TINY = experiments.SCALES["tiny"]


def _brute_force_labels(inputs):
    """Nearest-key labels with plain Python loops, independent of
    `make_dataset`'s vectorized code."""
    labels = []
    for query, memory in zip(inputs["query"], inputs["memory"]):
        r = float(query[0, 0])
        best, best_distance = None, None
        for token in memory:
            distance = abs(float(token[0]) - r)
            if best_distance is None or distance < best_distance:
                best_distance = distance
                best = int(np.flatnonzero(token[1:] == 1.0)[0])
        labels.append(best)
    return np.array(labels)


# ----------------------------------------------------------------- dataset


def test_make_dataset_shapes_and_values():
    inputs, labels = experiments.make_dataset(
        50, num_items=7, num_classes=5, seed=3
    )
    assert set(inputs) == {"query", "memory"}
    assert inputs["query"].shape == (50, 1, 1)
    assert inputs["memory"].shape == (50, 7, 1 + 5)
    assert labels.shape == (50,)
    assert inputs["query"].dtype == np.float32
    assert inputs["memory"].dtype == np.float32
    assert labels.dtype == np.int32
    for array in (inputs["query"], inputs["memory"][..., 0]):
        assert array.min() >= 0.0 and array.max() <= 1.0
    one_hot = inputs["memory"][..., 1:]
    assert set(np.unique(one_hot)) <= {0.0, 1.0}
    np.testing.assert_array_equal(one_hot.sum(-1), 1.0)
    assert labels.min() >= 0 and labels.max() < 5


def test_make_dataset_is_deterministic_given_the_seed():
    a_inputs, a_labels = experiments.make_dataset(64, seed=11)
    b_inputs, b_labels = experiments.make_dataset(64, seed=11)
    c_inputs, c_labels = experiments.make_dataset(64, seed=12)
    for name in ("query", "memory"):
        np.testing.assert_array_equal(a_inputs[name], b_inputs[name])
    np.testing.assert_array_equal(a_labels, b_labels)
    assert not np.array_equal(a_inputs["memory"], c_inputs["memory"])


def test_labels_are_those_of_the_nearest_key():
    inputs, labels = experiments.make_dataset(300, seed=5)
    np.testing.assert_array_equal(labels, _brute_force_labels(inputs))
    # The targets are spread over the classes, not a constant.
    assert len(np.unique(labels)) == 8


def test_nearest_key_index():
    query = np.array([0.5, 0.0, 0.94])
    keys = np.array([[0.1, 0.45, 0.9], [0.3, 0.2, 0.8], [0.1, 0.45, 0.9]])
    np.testing.assert_array_equal(
        experiments.nearest_key_index(query, keys), [1, 1, 2]
    )


def test_make_dataset_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_classes"):
        experiments.make_dataset(10, num_classes=1)


def test_splits_are_deterministic_and_distinct():
    train, validation, test = experiments.make_splits(TINY, seed=1)
    assert len(train[1]) == TINY.num_train
    assert len(validation[1]) == TINY.num_validation
    assert len(test[1]) == TINY.num_test
    again = experiments.make_splits(TINY, seed=1)
    np.testing.assert_array_equal(train[0]["memory"], again[0][0]["memory"])
    assert not np.array_equal(
        train[0]["query"][: TINY.num_test], test[0]["query"]
    )


# ------------------------------------------------------------------ models


@pytest.mark.parametrize("attention", ["dot_product", "neural"])
def test_build_model(attention):
    model = experiments.build_model(attention, num_items=5, num_classes=3)
    layer = model.get_layer("attention")
    if attention == "neural":
        assert isinstance(layer, NeuralAttention)
        assert layer.projection_dim == 4
        assert layer.hidden_units == (8,)
    else:
        assert type(layer) is keras.layers.MultiHeadAttention
    inputs, _ = experiments.make_dataset(4, num_items=5, num_classes=3)
    logits = keras.ops.convert_to_numpy(model(inputs))
    assert logits.shape == (4, 3)
    assert np.all(np.isfinite(logits))
    assert model.optimizer is not None  # compiled


def test_models_differ_only_in_the_attention_layer():
    dot = experiments.build_model("dot_product")
    neural = experiments.build_model("neural")
    names = [layer.name for layer in dot.layers]
    assert names == [layer.name for layer in neural.layers]
    for name in names:
        if name == "attention":
            continue
        dot_shapes = [w.shape for w in dot.get_layer(name).weights]
        neural_shapes = [w.shape for w in neural.get_layer(name).weights]
        assert dot_shapes == neural_shapes
    extra = experiments.count_trainable_params(
        neural
    ) - experiments.count_trainable_params(dot)
    # Scoring network: query and key projections 2 * (16 * 4 + 4),
    # hidden layer 8 * 8 + 8, output 8 + 1.
    assert extra == 2 * (16 * 4 + 4) + (8 * 8 + 8) + (8 + 1)


def test_build_model_rejects_unknown_attention():
    with pytest.raises(ValueError, match="attention"):
        experiments.build_model("cosine")


def test_build_model_seed_makes_weights_reproducible():
    a = experiments.build_model("neural", seed=7)
    b = experiments.build_model("neural", seed=7)
    c = experiments.build_model("neural", seed=8)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(
        not np.array_equal(wa, wc)
        for wa, wc in zip(a.get_weights(), c.get_weights())
    )


def test_attention_weights_are_distributions_over_memory():
    model = experiments.build_model("neural", num_items=6, seed=0)
    inputs, _ = experiments.make_dataset(10, num_items=6)
    weights = experiments.attention_weights(model, inputs, batch_size=4)
    assert weights.shape == (10, 2, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(weights >= 0)


def test_tiny_training_lowers_the_loss():
    inputs, labels = experiments.make_dataset(512, seed=0)
    model = experiments.build_model("neural", seed=0, learning_rate=1e-2)
    before = model.evaluate(inputs, labels, batch_size=512, verbose=0)[0]
    model.fit(inputs, labels, batch_size=16, epochs=2, verbose=0)
    after = model.evaluate(inputs, labels, batch_size=512, verbose=0)[0]
    assert np.isfinite(after)
    assert after < before - 0.05, (before, after)


# -------------------------------------------------------------- comparison


def test_scales():
    assert {"smoke", "default", "large"} <= set(experiments.SCALES)
    smoke, default = experiments.SCALES["smoke"], experiments.SCALES["default"]
    assert smoke.steps < default.steps
    assert experiments.get_scale("smoke") is smoke
    assert experiments.get_scale(TINY) is TINY
    with pytest.raises(ValueError, match="scale"):
        experiments.get_scale("huge")


def test_run_comparison_in_process(tmp_path):
    # Both models together: tests/test_cli.py::test_demo_writes_results.
    rows = experiments.run_comparison(
        scale=TINY, seed=0, isolate=False, attentions=("neural",),
        weights_dir=tmp_path,
    )
    assert [row["attention"] for row in rows] == ["neural"]
    for row in rows:
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert np.isfinite(row["final_train_loss"])
        assert row["train_time_s"] > 0
        assert row["peak_rss_mib"] is None
        assert "not measured" in row["memory_measurement"]
        assert row["backend"] == keras.backend.backend()
        assert row["scale"] == "tiny" and row["seed"] == 0
        assert len(row["history"]["val_accuracy"]) == TINY.epochs
        model = experiments.build_model(row["attention"])
        assert row["trainable_params"] == experiments.count_trainable_params(
            model
        )
        # The saved weights reload into a model that predicts as evaluated.
        reloaded = experiments.load_trained_model(row)
        test_inputs, test_labels = experiments.make_splits(TINY, seed=0)[2]
        accuracy = np.mean(
            np.argmax(keras.ops.convert_to_numpy(reloaded(test_inputs)), -1)
            == test_labels
        )
        assert accuracy == pytest.approx(row["test_accuracy"], abs=1e-6)
    json.dumps(rows)  # JSON-serializable


def _current_rss_mib():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_run_comparison_in_a_child_process_measures_memory():
    on_linux = os.path.exists("/proc/self/status")
    # 1 GiB held by this (parent) process must not be charged to the child.
    ballast = np.ones(2**27) if on_linux else None
    parent_rss = _current_rss_mib() if on_linux else None
    (row,) = experiments.run_comparison(
        scale=TINY, seed=0, isolate=True, attentions=("neural",)
    )
    assert row["attention"] == "neural"
    assert row["backend"] == keras.backend.backend()
    # A process that imported Keras and a backend holds more than 50 MiB.
    assert row["peak_rss_mib"] > 50
    assert row["peak_rss_mib"] >= row["rss_before_training_mib"]
    assert "peak RSS of the training process" in row["memory_measurement"]
    if on_linux:
        assert row["peak_rss_source"].startswith("VmHWM")
        assert row["peak_rss_mib"] < parent_rss - 512, (row, parent_rss)
    del ballast


def test_run_comparison_rejects_unknown_attention():
    with pytest.raises(ValueError, match="attention"):
        experiments.run_comparison(TINY, isolate=False, attentions=("x",))


def _row(attention, accuracy, loss=0.5, seconds=2.0, params=1000, rss=500.0):
    return {
        "attention": attention,
        "layer": comparison.LAYER_NAMES[attention],
        "trainable_params": params,
        "test_accuracy": accuracy,
        "final_train_loss": loss,
        "train_time_s": seconds,
        "peak_rss_mib": rss,
        "rss_before_training_mib": None if rss is None else rss - 100,
        "scale": "smoke",
        "seed": 0,
        "backend": "jax",
        "device": "cpu",
    }


def test_format_table():
    rows = [
        _row("dot_product", 0.375, loss=1.61234, params=4872, rss=612.4),
        _row("neural", 0.9712, loss=0.03, seconds=12.345, params=5089,
             rss=None),
    ]
    lines = experiments.format_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("| Attention |")
    assert "Peak RSS (MiB)" in lines[0]
    assert lines[1].startswith("|---")
    assert all(line.count("|") == 8 for line in lines)
    assert "`keras.layers.MultiHeadAttention`" in lines[2]
    assert "| 4,872 | 37.5% | 1.6123 | 2.0 | 612 |" in lines[2]
    assert "| 5,089 | 97.1% | 0.0300 | 12.3 | n/a |" in lines[3]


def test_verdict_is_computed_from_the_numbers():
    neural_wins = experiments.verdict(
        [_row("dot_product", 0.40), _row("neural", 0.95, seconds=3.0)]
    )
    assert neural_wins.startswith(
        "Neural Attention is 55.0 points more accurate than dot-product"
    )
    assert "1.50x the training time" in neural_wins
    dot_wins = experiments.verdict(
        [_row("dot_product", 0.90), _row("neural", 0.875)]
    )
    assert dot_wins.startswith(
        "Dot-product attention is 2.5 points more accurate than Neural"
    )
    tie = experiments.verdict(
        [_row("dot_product", 0.5), _row("neural", 0.5)]
    )
    assert "equally accurate" in tie
    assert "nothing to compare" in experiments.verdict([_row("neural", 0.5)])


def test_write_results(tmp_path):
    rows = [_row("dot_product", 0.4), _row("neural", 0.9)]
    paths = experiments.write_results(rows, tmp_path / "out")
    payload = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert paths["json"].endswith("comparison.json")
    assert payload["rows"] == rows
    assert payload["verdict"] == experiments.verdict(rows)
    assert payload["metadata"]["backend"] == keras.backend.backend()
    assert payload["metadata"]["keras_version"] == keras.__version__
    for key in ("date", "cpu", "python_version", "platform"):
        assert payload["metadata"][key]
    markdown = (tmp_path / "out" / "comparison.md").read_text()
    assert experiments.format_table(rows) in markdown
    assert experiments.verdict(rows) in markdown
