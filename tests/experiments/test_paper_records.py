"""Records of the paper tables and their one markdown writer."""

import json

from keras_neural_attention.experiments import records

COLUMNS = [{"key": "variant", "title": "Attention", "format": "{}"},
           {"key": "ppl", "title": "PPL", "format": "{:.2f}"},
           {"key": "params", "title": "Params", "format": "{:,}"}]


def _record(**changes):
    record = records.make_record(
        "2", "Perplexity", "tiny", COLUMNS,
        [{"variant": "dot_product", "ppl": 12.3456, "params": 1234},
         {"variant": "neural", "ppl": None, "params": 1240}],
        paper=[{"quantity": "reduction", "paper": "over 2%",
                "ours": 0.0123, "format": "{:+.2%}"}],
        notes=["trained on valid"], seeds=(0, 1), wall_time_s=3.21)
    record.update(changes)
    return record


def test_record_fields():
    record = _record()
    for key in ("table", "scale", "backend", "device", "versions", "date",
                "seeds", "wall_time_s", "rows", "paper", "notes"):
        assert key in record
    assert record["versions"]["keras"]
    assert record["seeds"] == [0, 1] and record["wall_time_s"] == 3.2
    json.dumps(record)


def test_markdown_rendering():
    text = records.render_markdown(_record())
    assert "## Table 2: Perplexity" in text
    assert "| Attention | PPL | Params |" in text
    assert "| dot_product | 12.35 | 1,234 |" in text
    assert "| neural | n/a | 1,240 |" in text
    assert "| reduction | over 2% | +1.23% |" in text
    assert "- trained on valid" in text
    skipped = records.render_markdown(
        _record(status="skipped: data not found", rows=[]))
    assert "**Not run** (skipped: data not found)" in skipped


def test_write_and_read_records(tmp_path):
    paths = records.write_record(_record(), tmp_path)
    assert paths["json"].endswith(
        f"table2-tiny-{_record()['backend']}.json")
    other = _record(table="1")
    records.write_record(other, tmp_path)
    back = records.read_records(tmp_path)
    assert [r["table"] for r in back] == ["1", "2"]
    assert open(paths["markdown"]).read() == records.render_markdown(
        back[1])


def test_table1_vit_count_equals_a_built_model():
    from keras_neural_attention.experiments import table1_configurations
    from keras_neural_attention.experiments.scales import VISION
    from keras_neural_attention.models.vit import (
        vision_transformer_parameter_count,
    )

    for attention in ("dot_product", "neural"):
        config = table1_configurations._scale_vit_config(VISION["tiny"],
                                                         attention)
        for position in ("released_code", "learned"):
            config["position_embedding"] = position
            assert table1_configurations.vit_parameter_count(
                10, config) == vision_transformer_parameter_count(
                    10, **config)
