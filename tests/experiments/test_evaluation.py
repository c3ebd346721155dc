"""Perplexity protocols against a NumPy computation, accuracy summary."""

import keras
import numpy as np
import pytest

from keras_neural_attention.experiments import evaluation


class _BigramLM(keras.Model):
    """Logits that depend on the previous token only: a fixed table."""

    def __init__(self, table):
        super().__init__(name="bigram_lm")
        self.table = keras.ops.convert_to_tensor(table)

    def call(self, inputs):
        return keras.ops.take(self.table, inputs["token_ids"], axis=0)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _numpy_perplexity(table, stream, context, stride):
    losses = []
    for start in range(0, len(stream) - context, stride):
        window = stream[start:start + context + 1]
        if len(window) < context + 1:
            break
        logp = _log_softmax(table[window[:-1]])
        losses.append(-logp[np.arange(context), window[1:]].mean())
    return float(np.exp(np.mean(losses))), len(losses)


@pytest.mark.parametrize("protocol,stride", [("released_code", 3),
                                             ("standard", 6)])
def test_perplexity_protocols_match_numpy(protocol, stride):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(7, 7)).astype("float32")
    stream = rng.integers(0, 7, 41).astype("int32")
    model = _BigramLM(table)
    result = evaluation.perplexity(model, stream, 6, protocol, stride=3,
                                   batch_size=4)
    expected, windows = _numpy_perplexity(table, stream, 6, stride)
    assert result["windows"] == windows
    assert result["stride"] == stride
    np.testing.assert_allclose(result["perplexity"], expected, rtol=1e-5)


def test_compiled_perplexity_with_padding_rows_matches_numpy():
    import keras_hub

    rng = np.random.default_rng(1)
    table = rng.normal(size=(5, 5)).astype("float32")
    stream = rng.integers(0, 5, 30).astype("int32")
    model = _BigramLM(table)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), weighted_metrics=[keras_hub.metrics.Perplexity(
            from_logits=True, name="perplexity")])
    result = evaluation.perplexity(model, stream, 4, "released_code",
                                   stride=2, batch_size=4)
    expected, windows = _numpy_perplexity(table, stream, 4, 2)
    assert windows % 4  # the last batch is padded
    np.testing.assert_allclose(result["perplexity"], expected, rtol=1e-5)


def test_perplexity_errors():
    with pytest.raises(ValueError, match="`protocol` must be one of"):
        evaluation.perplexity(None, np.arange(10), 4, "sliding")
    with pytest.raises(ValueError, match="shorter than one window"):
        evaluation.perplexity_windows(np.arange(3), 4, 2)


def test_accuracy_summary_best_and_final():
    summary = evaluation.accuracy_summary(
        {"val_accuracy": [0.2, 0.5, 0.4]})
    assert summary == {"best_accuracy": 0.5, "best_epoch": 2,
                       "final_accuracy": 0.4, "epochs": 3}
    with pytest.raises(ValueError, match="val_accuracy"):
        evaluation.accuracy_summary({"loss": [1.0]})


def test_measure_cost_reports_the_median_after_two_warm_ups(monkeypatch):
    """Two untimed calls of each, then `repeats` timed one by one: the
    median, not a mean a load spike moves, with every time kept."""
    now = [0.0]
    calls = {"train": 0, "predict": 0}
    # Warm-ups interleave train and predict; then all train, all predict.
    durations = iter([0.0] * 4 + [0.5, 0.1, 0.2, 5.0, 0.3]
                     + [0.05, 0.01, 0.02, 0.03, 0.9])

    class FakeModel:
        def train_on_batch(self, x, y):
            calls["train"] += 1
            now[0] += next(durations)

        def predict_on_batch(self, x):
            calls["predict"] += 1
            now[0] += next(durations)
            return np.zeros((len(x), 1))

    monkeypatch.setattr(evaluation.time, "perf_counter", lambda: now[0])
    result = evaluation.measure_cost(FakeModel(), np.zeros((8, 2)),
                                     np.zeros(8), batch_size=4, repeats=5)
    assert calls == {"train": 7, "predict": 7}
    assert result["train_step_s"] == pytest.approx(0.3)
    assert result["train_step_times_s"] == pytest.approx(
        [0.5, 0.1, 0.2, 5.0, 0.3])
    assert result["inference_batch_s"] == pytest.approx(0.03)
    assert result["inference_per_sample_s"] == pytest.approx(0.03 / 4)
    assert result["repeats"] == 5 and result["batch_size"] == 4
