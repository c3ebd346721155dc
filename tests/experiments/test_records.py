"""Tests of `experiments.records`: named scales and result files."""

import dataclasses
import json

import pytest

from keras_neural_attention.experiments.records import resolve_scale
from keras_neural_attention.experiments.records import scale_config
from keras_neural_attention.experiments.records import scale_name
from keras_neural_attention.experiments.records import (
    write_json_and_markdown,
)


@dataclasses.dataclass(frozen=True)
class _Scale:
    steps: int
    widths: tuple = (2, 1)


SCALES = {"small": _Scale(1), "big": _Scale(10, (4,))}


def test_resolve_scale_by_name_or_instance():
    assert resolve_scale("big", SCALES, _Scale) is SCALES["big"]
    custom = _Scale(3)
    assert resolve_scale(custom, SCALES, _Scale) is custom


def test_resolve_scale_names_the_accepted_values():
    with pytest.raises(
        ValueError, match=r"`scale` must be one of 'small', 'big' or a "
                          r"`_Scale`\. Received: scale='huge'"
    ):
        resolve_scale("huge", SCALES, _Scale)


def test_scale_name_and_config():
    assert scale_name(_Scale(10, (4,)), SCALES) == "big"
    assert scale_name(_Scale(7), SCALES) == "custom"
    assert scale_config("small", SCALES) == {"steps": 1, "widths": [2, 1]}
    assert scale_config("custom", SCALES) is None


def test_write_json_and_markdown(tmp_path):
    paths = write_json_and_markdown(
        {"rows": [1, 2]}, "# report\n", tmp_path / "new", "run-1")
    assert json.loads(open(paths["json"]).read()) == {"rows": [1, 2]}
    assert open(paths["markdown"]).read() == "# report\n"
    assert paths["json"].endswith("run-1.json")
