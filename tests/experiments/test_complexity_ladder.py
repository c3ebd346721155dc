"""Tests of the complexity ladder: the task generator against a plain NumPy
recurrence, argument checks, the model, a tiny training run, the summary,
table, verdict, plot and result files (once, in the one-backend session)."""

import json

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_neural_attention.experiments import complexity_ladder  # noqa: E402
from keras_neural_attention.experiments.complexity_ladder import (  # noqa: E402
    TaskLevel,
)

# Trains small models through the experiment's own code (backend-
# independent plumbing; the layers are tested per backend): once per
# suite, see tests/conftest.py.
pytestmark = pytest.mark.one_backend


def _reference_sequences(initial, tasks, level, seq_len):
    """The recurrence with Python loops over sequences and positions,
    independent of `make_sequences`' vectorized code: starting from the
    generator's random initial tokens, recompute every later token."""
    offset = 1 if level.multi_task else 0
    expected = []
    for start_tokens, task in zip(initial, tasks):
        sequence = []
        if level.multi_task:
            sequence.append(level.modulus + int(task))
        sequence.extend(int(v) for v in start_tokens)
        lags = level.lag_sets[int(task)]
        while len(sequence) < seq_len:
            t = len(sequence)
            total = 0
            for lag in lags:
                # Lags count symbols, never the task token.
                assert t - lag >= offset
                total += sequence[t - lag]
            sequence.append(total % level.modulus)
        expected.append(sequence)
    return np.array(expected)


@pytest.mark.parametrize(
    "level",
    [
        TaskLevel(5, ((1,),)),
        TaskLevel(7, ((1, 3),)),
        TaskLevel(16, ((2, 3, 5),)),
        TaskLevel(8, ((1, 2), (1, 3), (2, 3))),
        TaskLevel(3, ((4,), (1, 2, 3))),
    ],
    ids=lambda level: level.name,
)
def test_make_sequences_follows_the_recurrence(level):
    seq_len = 20
    data = complexity_ladder.make_sequences(40, level, seq_len, seed=4)
    tokens, tasks = data["tokens"], data["tasks"]
    offset = 1 if level.multi_task else 0
    start = offset + level.max_lag
    assert tokens.shape == (40, seq_len) and tokens.dtype == np.int32
    assert tasks.shape == (40,) and tasks.dtype == np.int32
    initial = tokens[:, offset:start]
    expected = _reference_sequences(initial, tasks, level, seq_len)
    np.testing.assert_array_equal(tokens, expected)
    # The determined positions are exactly those after the initial segment.
    determined = np.zeros((40, seq_len), bool)
    determined[:, start:] = True
    np.testing.assert_array_equal(data["determined"], determined)
    # Symbols stay in 0..N-1; task tokens are N + task.
    assert tokens[:, offset:].min() >= 0
    assert tokens[:, offset:].max() < level.modulus
    if level.multi_task:
        np.testing.assert_array_equal(tokens[:, 0], level.modulus + tasks)
        assert set(np.unique(tasks)) == set(range(level.num_tasks))
    else:
        np.testing.assert_array_equal(tasks, 0)
    # The initial segment is random: not every sequence starts alike.
    assert len({tuple(row) for row in initial}) > 1


def test_make_sequences_is_deterministic_given_the_seed():
    level = TaskLevel(8, ((1, 2), (2, 3)))
    a = complexity_ladder.make_sequences(16, level, 12, seed=3)
    b = complexity_ladder.make_sequences(16, level, 12, seed=3)
    c = complexity_ladder.make_sequences(16, level, 12, seed=4)
    np.testing.assert_array_equal(a["tokens"], b["tokens"])
    assert not np.array_equal(a["tokens"], c["tokens"])


def test_next_token_arrays_shift_by_one_and_weight_determined_targets():
    level = TaskLevel(5, ((1, 2),))
    data = complexity_ladder.make_sequences(6, level, 9, seed=0)
    inputs, targets, weights = complexity_ladder.next_token_arrays(data)
    np.testing.assert_array_equal(inputs, data["tokens"][:, :-1])
    np.testing.assert_array_equal(targets, data["tokens"][:, 1:])
    # Targets x_1 (random) get weight 0, x_2 onwards (determined) get 1.
    np.testing.assert_array_equal(weights[:, 0], 0.0)
    np.testing.assert_array_equal(weights[:, 1:], 1.0)


def test_task_level_properties():
    single = TaskLevel(8, ((2, 1),))
    assert single.lag_sets == ((1, 2),)
    assert not single.multi_task and single.vocab_size == 8
    assert single.max_lag == 2
    assert single.complexity == pytest.approx(6.0)  # log2(8^2)
    assert single.name == "N=8 S={1,2}"
    multi = TaskLevel(4, ((1,), (1, 3)))
    assert multi.multi_task and multi.vocab_size == 6 and multi.max_lag == 3
    assert multi.complexity == pytest.approx(np.log2(4 + 16))
    assert multi.name == "N=4 S in {1}|{1,3}"
    assert complexity_ladder.as_level((8, ((1, 2),))) == single


# ---------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(modulus=1, lag_sets=((1,),)), "modulus"),
        (dict(modulus=2.0, lag_sets=((1,),)), "modulus"),
        (dict(modulus=4, lag_sets=()), "lag_sets"),
        (dict(modulus=4, lag_sets=((0,),)), "lag_sets"),
        (dict(modulus=4, lag_sets=((1, 1),)), "lag_sets"),
        (dict(modulus=4, lag_sets=((),)), "lag_sets"),
        (dict(modulus=4, lag_sets=(1, 2)), "lag_sets"),
    ],
)
def test_task_level_rejects_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`") as info:
        TaskLevel(**kwargs)
    assert "Received" in str(info.value)


def test_invalid_arguments_raise_value_error_naming_them():
    level = TaskLevel(4, ((1, 2),))
    with pytest.raises(ValueError, match="`num_sequences`.*positive"):
        complexity_ladder.make_sequences(0, level, 8)
    with pytest.raises(ValueError, match=r"`seq_len`.*> 2"):
        complexity_ladder.make_sequences(4, level, 2)
    with pytest.raises(ValueError, match=r"`seq_len`.*> 3"):
        complexity_ladder.make_sequences(
            4, TaskLevel(4, ((1, 2), (1,))), 3
        )
    with pytest.raises(ValueError, match="`attention`.*'dot_product', "
                       "'expressive', 'neural'"):
        complexity_ladder.build_model("additive", 4, 4, 8)
    with pytest.raises(ValueError, match="`scale`.*'tiny'.*'large'"):
        complexity_ladder.get_scale("huge")
    with pytest.raises(ValueError, match="`attention`"):
        complexity_ladder.run_ladder("tiny", attentions=("cosine",))
    with pytest.raises(ValueError, match="`attentions`"):
        complexity_ladder.run_ladder("tiny", attentions=())
    with pytest.raises(ValueError, match="`seeds`"):
        complexity_ladder.run_ladder("tiny", seeds=[])
    with pytest.raises(TypeError, match="`level`"):
        complexity_ladder.as_level("N=4")


# ------------------------------------------------------------------ model


def test_models_differ_only_in_the_attention_layer():
    shapes = {}
    for kind in complexity_ladder.ATTENTION_KINDS:
        model = complexity_ladder.build_model(
            kind, vocab_size=7, num_classes=5, seq_len=9, embed_dim=8,
            num_heads=2, key_dim=4, head_units=8,
        )
        assert type(model.get_layer("attention")).__name__ == (
            complexity_ladder.LAYER_NAMES[kind].split(".")[-1]
        )
        logits = model(np.zeros((3, 9), "int32"))
        assert tuple(logits.shape) == (3, 9, 5)
        shapes[kind] = [
            (layer.name, [tuple(w.shape) for w in layer.weights])
            for layer in model.layers
            if layer.name != "attention"
        ]
    assert shapes["dot_product"] == shapes["expressive"] == shapes["neural"]


def test_the_model_is_causal():
    model = complexity_ladder.build_model(
        "expressive", vocab_size=6, num_classes=6, seq_len=8, embed_dim=8,
        num_heads=2, key_dim=4, head_units=8, seed=1,
    )
    tokens = np.random.default_rng(0).integers(0, 6, (2, 8)).astype("int32")
    changed = tokens.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % 6
    before = keras.ops.convert_to_numpy(model(tokens))
    after = keras.ops.convert_to_numpy(model(changed))
    np.testing.assert_allclose(before[:, :5], after[:, :5], atol=1e-5)
    assert np.abs(before[:, 5:] - after[:, 5:]).max() > 1e-4


# ----------------------------------------------- training, tables, files


def test_tiny_run_through_the_command_line(tmp_path):
    """`main` at the tiny scale: every (level, kind, seed) trains once, and
    the result files hold well-formed rows."""
    assert complexity_ladder.main(
        ["--scale", "tiny", "--output-dir", str(tmp_path), "--stem", "run"]
    ) == 0
    payload = json.loads((tmp_path / "run.json").read_text())
    scale = complexity_ladder.SCALES["tiny"]
    rows = payload["rows"]
    assert len(rows) == (
        len(scale.levels) * len(complexity_ladder.ATTENTION_KINDS)
        * scale.seeds
    )
    for row in rows:
        assert row["attention"] in complexity_ladder.ATTENTION_KINDS
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert 0.0 <= row["train_accuracy"] <= 1.0
        assert row["solved"] == (row["test_accuracy"] == 1.0)
        assert np.isfinite(row["final_train_loss"])
        assert row["trainable_params"] > 0
        assert row["scale"] == "tiny"
    assert {row["level"] for row in rows} == {
        level.name for level in scale.levels
    }
    assert payload["metadata"]["scale"] == "tiny"
    for key in ("backend", "cpu", "date", "keras_version"):
        assert key in payload["metadata"]
    assert len(payload["summary"]) == len(scale.levels) * 3
    markdown = (tmp_path / "run.md").read_text()
    assert "**Verdict:**" in markdown
    assert payload["verdict"] in markdown


def _row(level_index, attention, seed, accuracy):
    level = complexity_ladder.SCALES["default"].levels[level_index]
    return {
        "level": level.name,
        "level_index": level_index,
        "tasks": level.num_tasks,
        "complexity": level.complexity,
        "attention": attention,
        "seed": seed,
        "test_accuracy": accuracy,
        "solved": accuracy == 1.0,
    }


def _rows(accuracies):
    """Rows from `{(level_index, attention): [accuracy per seed]}`."""
    return [
        _row(index, attention, seed, accuracy)
        for (index, attention), values in accuracies.items()
        for seed, accuracy in enumerate(values)
    ]


def test_summarize_computes_per_level_statistics():
    rows = _rows({
        (0, "dot_product"): [1.0, 0.5],
        (0, "expressive"): [1.0, 1.0],
        (1, "dot_product"): [0.25, 0.75],
        (1, "expressive"): [1.0, 0.5],
    })
    summary = complexity_ladder.summarize(rows)
    assert [(s["level_index"], s["attention"]) for s in summary] == [
        (0, "dot_product"), (0, "expressive"),
        (1, "dot_product"), (1, "expressive"),
    ]
    first = summary[0]
    assert first["mean_accuracy"] == pytest.approx(0.75)
    assert first["std_accuracy"] == pytest.approx(0.25)
    assert first["solved_fraction"] == pytest.approx(0.5)
    assert summary[1]["solved_fraction"] == pytest.approx(1.0)
    assert summary[2]["min_accuracy"] == 0.25
    assert summary[2]["max_accuracy"] == 0.75
    table = complexity_ladder.format_table(summary)
    lines = table.splitlines()
    assert len(lines) == 2 + 2
    assert "75.00% ± 25.00%" in lines[2] and "1/2" in lines[2]
    assert "100.00% ± 0.00%" in lines[2] and "2/2" in lines[2]


def test_verdict_follows_the_numbers():
    widening = complexity_ladder.summarize(_rows({
        (0, "dot_product"): [1.0], (0, "expressive"): [1.0],
        (1, "dot_product"): [0.8], (1, "expressive"): [0.9],
        (2, "dot_product"): [0.5], (2, "expressive"): [0.8],
    }))
    text = complexity_ladder.verdict(widening)
    assert "EA >= DPA held at all 3 levels" in text
    assert "grew overall" in text
    # The trend is read on the single-task levels in order of complexity.
    levels = complexity_ladder.SCALES["default"].levels
    multi = next(i for i, level in enumerate(levels) if level.multi_task)
    hardest = max(
        (i for i, level in enumerate(levels) if not level.multi_task),
        key=lambda i: levels[i].complexity,
    )
    shrinking = complexity_ladder.summarize(_rows({
        (0, "dot_product"): [1.0], (0, "expressive"): [1.0],
        (hardest, "dot_product"): [0.5], (hardest, "expressive"): [0.9],
        (multi, "dot_product"): [0.5], (multi, "expressive"): [0.6],
    }))
    assert "grew overall" in complexity_ladder.verdict(shrinking)
    failing = complexity_ladder.summarize(_rows({
        (0, "dot_product"): [1.0], (0, "expressive"): [1.0],
        (1, "dot_product"): [0.9], (1, "expressive"): [0.7],
    }))
    text = complexity_ladder.verdict(failing)
    assert "did NOT hold at 1 of 2 levels" in text
    assert "-20.0" in text
    assert "not both" in complexity_ladder.verdict(
        complexity_ladder.summarize(_rows({(0, "neural"): [1.0]}))
    )


def test_plot_and_report(tmp_path):
    import matplotlib.pyplot as plt

    levels = complexity_ladder.SCALES["default"].levels
    multi = next(i for i, level in enumerate(levels) if level.multi_task)
    rows = _rows({
        (0, "dot_product"): [1.0, 0.5], (0, "expressive"): [1.0, 1.0],
        (0, "neural"): [0.9, 1.0], (multi, "dot_product"): [0.25, 0.75],
        (multi, "expressive"): [1.0, 0.5], (multi, "neural"): [0.5, 0.5],
    })
    for row in rows:
        row["scale"] = "default"
    fig = complexity_ladder.plot_ladder(complexity_ladder.summarize(rows))
    assert len(fig.axes) == 2
    # Three error-bar lines on the accuracy panel, 3 x 2 bars on the other.
    assert len(fig.axes[0].containers) == 3
    assert len(fig.axes[1].patches) == 6
    plt.close(fig)
    paths = complexity_ladder.write_results(
        rows, tmp_path, metadata={"backend": "test"}, stem="ladder"
    )
    payload = json.loads(open(paths["json"]).read())
    assert payload["scale"] == "default"
    assert payload["scale_config"]["epochs"] == (
        complexity_ladder.SCALES["default"].epochs
    )
    report = open(paths["markdown"]).read()
    assert report.startswith("# Complexity ladder")
    # A multi-task name's `|` is escaped: every table line has 8 cells.
    table = [line for line in report.splitlines() if line.startswith("| N=")]
    assert len(table) == 2 and "\\|" in table[1]
    for line in table:
        assert len(line.replace("\\|", "").split("|")) == 2 + 8
    assert "backend `test`" in report
