"""The attention-surgery fine-tuning comparison at smoke scale."""

import json

import numpy as np
import pytest

from keras_neural_attention.experiments.kerashub_surgery import SCALES
from keras_neural_attention.experiments.kerashub_surgery import (
    run_surgery_comparison,
)
from keras_neural_attention.experiments.kerashub_surgery import token_windows
from keras_neural_attention.experiments.kerashub_surgery import (
    write_surgery_results,
)
from keras_neural_attention.models import NeuralAttentionLMTokenizer

# Trains small models end to end through the experiment code (backend-
# independent plumbing): once per suite, see tests/conftest.py.
pytestmark = pytest.mark.one_backend

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "."]
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + WORDS


def text(seed, lines):
    rng = np.random.default_rng(seed)
    return "\n".join(" ".join(rng.choice(WORDS, size=12)) for _ in
                     range(lines))


def test_token_windows_drop_the_tail_and_check_the_length():
    windows = token_windows(np.arange(10), 2)
    np.testing.assert_array_equal(windows, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    with pytest.raises(ValueError, match="sequence_length"):
        token_windows(np.arange(10), 0)
    with pytest.raises(ValueError, match="fewer than one window"):
        token_windows(np.arange(3), 5)


def test_smoke_comparison_writes_a_complete_record(tmp_path):
    payload = run_surgery_comparison(
        NeuralAttentionLMTokenizer(VOCABULARY),
        pretrain_text=text(0, 12), finetune_text=text(1, 12),
        eval_text=text(2, 12), preset_dir=tmp_path / "preset",
        scale="smoke", data_description="random words (test)",
    )
    assert payload["scale"] == "smoke"
    assert payload["scale_config"]["sequence_length"] == (
        SCALES["smoke"].sequence_length
    )
    assert [row["model"] for row in payload["rows"]] == [
        "unmodified", "neural in layers [0]"
    ]
    for row in payload["rows"]:
        assert np.isfinite(row["perplexity"]) and row["perplexity"] > 1.0
    # Neural Attention adds only its scoring network to the same model.
    added = (payload["rows"][1]["parameter_count"]
             - payload["rows"][0]["parameter_count"])
    assert 0 < added < 100
    assert (tmp_path / "preset" / "config.json").exists()
    paths = write_surgery_results(payload, tmp_path / "results")
    with open(paths["json"]) as file:
        assert json.load(file)["rows"] == payload["rows"]
    with open(paths["markdown"]) as file:
        assert "neural in layers [0]" in file.read()
