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


def test_reuse_returns_the_finished_record_and_its_models(tmp_path):
    import keras
    import numpy as np

    from tests.experiments.fake_data import write_fake_cifar

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_fake_cifar(str(data_dir / "cifar10_jpeg.npz"))
    out = tmp_path / "out"
    record, models = reproduce.run_table(
        "3", scale="tiny", data_dir=str(data_dir), output_dir=out, log=None,
        verbose=0, keep_models=True)
    assert record["status"] == "complete"
    written = (out / f"table3-tiny-{record['backend']}.json").read_text()

    # The results folder moves: checkpoints are found beside the record.
    moved = tmp_path / "moved"
    (out).rename(moved)
    messages = []
    again, loaded = reproduce.run_table(
        "3", scale="tiny", data_dir=str(data_dir), output_dir=moved,
        log=messages.append, verbose=0, keep_models=True, reuse=True)
    assert any("reusing" in m for m in messages)
    assert again["date"] == record["date"]
    assert again["rows"] == json.loads(written)["rows"]
    assert sorted(loaded) == sorted(models)
    images = np.zeros((2, 32, 32, 3), dtype="uint8")
    for key, model in models.items():
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(loaded[key].predict(images, verbose=0)),
            keras.ops.convert_to_numpy(model.predict(images, verbose=0)),
            rtol=1e-5, atol=1e-6)


def test_reuse_refuses_a_record_of_another_recipe_or_status(tmp_path):
    import keras

    (record,) = reproduce.reproduce(
        "1", scale="tiny", output_dir=tmp_path, log=None, verbose=0)
    path = tmp_path / f"table1-tiny-{keras.backend.backend()}.json"
    assert reproduce.reusable_record("1", "tiny", tmp_path)["date"] == (
        record["date"])
    changed = json.loads(path.read_text())
    changed["recipe"]["language"]["context"] += 1
    path.write_text(json.dumps(changed))
    assert reproduce.reusable_record("1", "tiny", tmp_path) is None
    changed = dict(record, status="skipped: data not found (x)")
    changed.pop("paths")
    path.write_text(json.dumps(changed))
    assert reproduce.reusable_record("1", "tiny", tmp_path) is None
    assert reproduce.reusable_record("1", "smoke", tmp_path) is None
    with pytest.raises(ValueError, match="keep_models"):
        path.write_text(json.dumps({k: v for k, v in record.items()
                                    if k != "paths"}))
        reproduce.run_table("1", scale="tiny", output_dir=tmp_path,
                            log=None, keep_models=True, reuse=True)
