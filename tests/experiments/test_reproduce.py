"""`keras-neural-attention reproduce` end to end at the tests' scale, on
WikiText files the test writes."""

import json

import pytest

from keras_neural_attention import cli
from keras_neural_attention.experiments import reproduce

# Trains small models end to end through the experiment code (backend-
# independent plumbing): once per suite, see tests/conftest.py.
pytestmark = pytest.mark.one_backend

TEXT = [" ", " = Cats = ", " ", " the cat sat on the mat . ",
        " a dog sat on the log . ", " the cat saw the <unk> dog . "] * 6


@pytest.fixture
def wikitext(tmp_path):
    folder = tmp_path / "data" / "wikitext-2"
    folder.mkdir(parents=True)
    for split in ("valid", "test"):
        (folder / f"wiki.{split}.tokens").write_text(
            "\n".join(TEXT) + "\n", encoding="utf-8")
    return tmp_path / "data"


def test_reproduce_table_2_tiny(wikitext, tmp_path, capsys):
    out = tmp_path / "out"
    status = cli.main(["reproduce", "2", "--scale", "tiny", "--data-dir",
                       str(wikitext), "--output-dir", str(out),
                       "--verbose", "0"])
    assert status == 0
    record = json.loads(next(out.glob("table2-tiny-*.json")).read_text())
    assert record["status"] == "complete"
    assert [r["variant"] for r in record["rows"]] == [
        "dot_product", "neural_first_layer"]
    for row in record["rows"]:
        assert row["perplexity_released_code"] > 1
        assert row["perplexity_standard"] > 1
    assert record["rows"][1]["parameters"] > record["rows"][0]["parameters"]
    assert any("valid" in note for note in record["notes"])
    assert (out / "table2" / "dot_product-seed0-history.csv").is_file()
    assert (out / "table2" / "neural_first_layer-seed0-best.weights.h5"
            ).is_file()
    assert "## Table 2" in capsys.readouterr().out


def test_missing_data_is_a_skipped_record(tmp_path):
    (record,) = reproduce.reproduce(
        "4", scale="tiny", data_dir=str(tmp_path), output_dir=tmp_path,
        log=None, verbose=0)
    assert record["status"].startswith("skipped: data not found")
    assert (tmp_path / f"table4-tiny-{record['backend']}.md").is_file()


def test_unknown_table_or_scale():
    with pytest.raises(ValueError, match="`table` must be one of"):
        reproduce.table_module("9")
    with pytest.raises(ValueError, match="`scale` must be one of"):
        reproduce.reproduce("1", scale="huge")


def test_reproduce_table_1_through_the_command_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["reproduce", "1", "--scale", "tiny", "--output-dir",
                     str(out)]) == 0
    record = json.loads(next(out.glob("table1-tiny-*.json")).read_text())
    by_model = {(r["model"], r["attention"]): r for r in record["rows"]}
    for attention in ("dot_product", "neural"):
        row = by_model[("WikiText-103 LM (paper)", attention)]
        assert row["parameters"] == row["released_code"]
        for dataset in ("CIFAR10", "CIFAR100"):
            row = by_model[(f"{dataset} ViT (paper)", attention)]
            assert row["parameters"] == row["released_code"]
    assert "| LM parameters added by Neural Attention |" in (
        capsys.readouterr().out)
