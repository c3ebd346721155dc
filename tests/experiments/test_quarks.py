"""Tests of `experiments.quarks.truth_table_mask`, the bridge between a
layer's outputs and the enumerated truth tables (the counts themselves are
tested in tests/layers/test_quarks.py)."""

import numpy as np
import pytest

from keras_neural_attention.experiments import quarks

# Trains small models through the experiment's own code (backend-
# independent plumbing; the layers are tested per backend): once per
# suite, see tests/conftest.py.
pytestmark = pytest.mark.one_backend


def test_truth_table_mask_packs_bits_in_point_order():
    points = quarks.boolean_points(2)  # (0,0), (0,1), (1,0), (1,1)
    assert quarks.truth_table_mask(points[:, 0] & points[:, 1]) == 0b1000
    assert quarks.truth_table_mask(points[:, 0] ^ points[:, 1]) == 0b0110
    # +-1 outputs: +1 counts as 1, -1 as 0.
    assert quarks.truth_table_mask([-1.0, 1.0, 1.0, -1.0]) == 0b0110
    assert quarks.truth_table_mask(np.zeros(8)) == 0


def test_masks_of_threshold_units_are_among_the_threshold_tables():
    points = quarks.boolean_points(3)
    tables = set(quarks.threshold_tables(3).tolist())
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = rng.integers(-3, 4, size=3)
        b = rng.integers(-9, 10)
        assert quarks.truth_table_mask(points @ w + b >= 0) in tables
    parity = points.sum(1) % 2
    assert quarks.truth_table_mask(parity) not in tables


@pytest.mark.parametrize("size", [0, 1, 3, 6, 64])
def test_truth_table_mask_rejects_sizes_that_are_not_tables(size):
    with pytest.raises(ValueError, match="`outputs`.*2\\^n"):
        quarks.truth_table_mask(np.ones(size))
