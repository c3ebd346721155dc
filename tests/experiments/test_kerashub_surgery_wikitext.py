"""`run_wikitext2_surgery` on tiny WikiText-style files the test writes (no
network, no shared data).

One end-to-end run at smoke scale (about half a minute, mostly compiling
three models): the function's job is the wiring of files, vocabulary,
splits and record, which only a whole run checks.
"""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_neural_attention.experiments import plots  # noqa: E402
from keras_neural_attention.experiments import (  # noqa: E402
    kerashub_surgery,
)

# Trains small models end to end through the experiment code (backend-
# independent plumbing): once per suite, see tests/conftest.py.
pytestmark = pytest.mark.one_backend

SCALES = kerashub_surgery.SCALES
run_wikitext2_surgery = kerashub_surgery.run_wikitext2_surgery

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", ",",
         "."]


def write_split(folder, split, seed, lines):
    rng = np.random.default_rng(seed)
    text = []
    for index in range(lines):
        # WikiText's shapes: blank lines, headings, and <unk>.
        if index % 7 == 0:
            text.append("")
        elif index % 11 == 0:
            text.append(" = heading = ")
        else:
            words = list(rng.choice(WORDS, size=12))
            words[3] = "<unk>"
            text.append(" " + " ".join(words) + " ")
    (folder / f"wiki.{split}.tokens").write_text("\n".join(text) + "\n",
                                                 encoding="utf-8")


@pytest.fixture
def wikitext_dir(tmp_path):
    folder = tmp_path / "data" / "wikitext-2"
    folder.mkdir(parents=True)
    write_split(folder, "valid", 0, 40)
    write_split(folder, "test", 1, 30)
    return tmp_path / "data"


def test_smoke_run_splits_valid_and_writes_the_record(wikitext_dir,
                                                      tmp_path):
    output_dir = tmp_path / "out"
    record = run_wikitext2_surgery("smoke", data_dir=wikitext_dir,
                                   output_dir=output_dir)
    assert record["scale"] == "smoke"
    # The first half of the 40 `valid` lines pretrains, the rest
    # fine-tunes; `test` (30 lines) is scored.
    assert "`valid` lines 1-20" in record["data"]
    assert "`valid` lines 21-40" in record["data"]
    assert "`test` lines 1-30" in record["data"]
    assert any("fine-tuned on the rest of `valid`" in note
               for note in record["notes"])
    assert [row["model"] for row in record["rows"]] == [
        "unmodified", "neural in layers [0]"]
    for row in record["rows"]:
        assert len(row["losses"]) == SCALES["smoke"].finetune_steps
        assert row["losses"][0] == row["first_loss"]
        assert np.isfinite(row["perplexity"]) and row["perplexity"] > 1.0
    assert len(record["pretrain"]["losses"]) == SCALES["smoke"].pretrain_steps
    assert record["backend"] == record["environment"]["backend"]
    assert record["wall_time_s"] > 0
    assert set(record["load_average"]) == {"before", "after"}
    # The vocabulary is learned on `valid` and cached; the preset is there.
    assert len(list((output_dir / "vocabulary").glob("wordpiece-*.txt"))) == 1
    assert (output_dir / "pretrained_preset" / "config.json").is_file()

    with open(record["paths"]["json"], encoding="utf-8") as file:
        saved = json.load(file)
    assert saved["rows"] == record["rows"]
    assert saved["notes"] == record["notes"]
    assert record["paths"]["json"].endswith(
        f"kerashub_surgery-smoke-{record['backend']}.json")
    with open(record["paths"]["markdown"], encoding="utf-8") as file:
        markdown = file.read()
    assert "| neural in layers [0] |" in markdown
    assert "load average" in markdown and "Notes:" in markdown

    ax = plots.plot_surgery_finetuning(record)
    assert len(ax.get_lines()) == 2
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(),
                               record["rows"][1]["losses"])
    plt.close("all")


def test_missing_data_and_unknown_scale_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="wiki.valid.tokens"):
        run_wikitext2_surgery("smoke", data_dir=tmp_path / "nothing",
                              output_dir=tmp_path / "out")
    with pytest.raises(ValueError, match="Received: scale='huge'"):
        run_wikitext2_surgery("huge", data_dir=tmp_path,
                              output_dir=tmp_path / "out")
