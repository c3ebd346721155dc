"""Counting the Boolean functions that the quarks of attention compute.

Baldi & Vershynin ("The Quarks of Attention", arXiv 2202.08371) measure an
architecture by its capacity: the number of Boolean functions of `n` inputs
it can realize. This module counts them exactly for small `n` by
enumeration, with threshold (Heaviside) activations on `{0, 1}^n`, for:

- `"threshold"`: one linear threshold unit `[x . w + b >= 0]`
  (`keras.layers.Dense(1, activation=step)`).
- `"output_gating"`: one output-gated unit
  `[x . w + b >= 0] * [x . v + e >= 0]`, the AND of two threshold
  functions (`OutputGating(1)` with step `f` and `g`).
- `"product_gating"`: the `+-1` form `sign(x . w + b) * sign(x . v + e)`
  (`OutputGating(1)` with sign `f` and `g`), counted as `{0, 1}` tables.
- `"multiplexing"`: one unit with one attending unit,
  `[x . w + b + u [x . v + e >= 0] >= 0]`
  (`AdditiveActivationAttention(1, gate_units=1)` with step activations),
  i.e. a threshold function `T(x, g(x))` of the inputs and of the output of
  a threshold unit `g`.

Method: every threshold unit with integer weights in
`-weight_bound..weight_bound` and every integer bias in the reachable range
(on `{0, 1}` inputs `x . w` is an integer, so these biases give every
threshold) is evaluated on all `2^n` points; each truth table is packed into
an integer (bit `p` is the output on the `p`-th point of `{0, 1}^n` in
`itertools.product` order, last coordinate fastest). The gated counts are
the distinct tables over all pairs.

An enumeration over a finite weight grid gives LOWER BOUNDS in general: a
function that needs a larger integer weight is missed. `count_functions`
therefore also reports whether the threshold count equals the known number
of threshold functions of `n` inputs (OEIS A000609: 2, 4, 14, 104, 1882 for
n = 0..4, including the constants). When it does, the set of threshold
functions is complete, and so are the gated sets built from it (each gated
unit is a function of two threshold units; multiplexing needs the complete
set on `n + 1` inputs, which is checked too): the counts are then exact.
With the default `weight_bound=3`, all counts for `n <= 3` are exact:

| n | all | threshold | output gating | product gating | multiplexing |
|---|---|---|---|---|---|
| 2 | 16 | 14 | 16 | 16 | 16 |
| 3 | 256 | 104 | 246 | 254 | 256 |

One output-gated unit computes XOR (the AND of OR and NAND), which no
threshold unit can; at `n = 3` AND gating misses 10 functions and product
gating misses two (3-input parity and its complement).

Run it with `python -m keras_neural_attention.experiments.quarks`.
"""

import itertools

import numpy as np

# Number of linear threshold functions of n inputs (OEIS A000609).
THRESHOLD_FUNCTION_COUNTS = {0: 2, 1: 4, 2: 14, 3: 104, 4: 1882}
ARCHITECTURES = (
    "threshold",
    "output_gating",
    "product_gating",
    "multiplexing",
)
MAX_INPUTS = 3


def boolean_points(n):
    """`(2^n, n)` array of `{0, 1}^n` in `itertools.product` order."""
    return np.array(list(itertools.product([0, 1], repeat=n)), np.int64)


def _pack(tables):
    """Packs `(..., 2^n)` boolean truth tables into int64 masks."""
    bits = np.left_shift(np.int64(1), np.arange(tables.shape[-1]))
    return (tables.astype(np.int64) * bits).sum(-1)


def truth_table_mask(outputs):
    """Packs a unit's outputs on the points of `boolean_points(n)` (in that
    order) into the integer truth-table mask of `threshold_tables` and
    `gated_tables`.

    Args:
        outputs: `2^n` numbers, the outputs on `boolean_points(n)`; an output
            counts as 1 when it is positive (`{0, 1}` and `+-1` outputs
            alike).

    Returns:
        A Python int: bit `p` is 1 when output `p` is positive.

    Example:

    ```python
    xor = truth_table_mask([0, 1, 1, 0])     # 0b0110 = 6
    xor in set(threshold_tables(2).tolist())  # False: no threshold unit
    ```
    """
    outputs = np.asarray(outputs).reshape(-1)
    size = outputs.size
    if size < 2 or size & (size - 1) or size > 32:
        raise ValueError(
            "Argument `outputs` must hold 2^n outputs with n in 1..5 (the "
            f"mask is an int64). Received: {size} outputs"
        )
    return int(_pack(outputs > 0))


def threshold_tables(n, weight_bound=3):
    """Distinct truth tables (packed, sorted) of the threshold units
    `[x . w + b >= 0]` with integer `|w_i| <= weight_bound` and every
    integer bias that changes the function."""
    weights = np.array(
        list(itertools.product(range(-weight_bound, weight_bound + 1),
                               repeat=n)),
        np.int64,
    ).reshape(-1, n)
    sums = boolean_points(n) @ weights.T  # (2^n, units)
    reach = n * weight_bound + 1
    biases = np.arange(-reach, reach + 1)
    tables = (sums.T[None] + biases[:, None, None]) >= 0  # (b, units, 2^n)
    return np.unique(_pack(tables))


def _validate(n, weight_bound):
    if not (isinstance(n, int) and not isinstance(n, bool)
            and 1 <= n <= MAX_INPUTS):
        raise ValueError(
            f"Argument `n` must be an integer in 1..{MAX_INPUTS}. "
            f"Received: n={n!r}"
        )
    if not (isinstance(weight_bound, int)
            and not isinstance(weight_bound, bool) and weight_bound >= 1):
        raise ValueError(
            "Argument `weight_bound` must be a positive integer. "
            f"Received: weight_bound={weight_bound!r}"
        )


def gated_tables(n, architecture, weight_bound=3):
    """Distinct packed truth tables of one unit of `architecture` (one of
    `ARCHITECTURES`) on `n` inputs, over the integer weight grid."""
    _validate(n, weight_bound)
    if architecture not in ARCHITECTURES:
        raise ValueError(
            "Argument `architecture` must be one of "
            f"{', '.join(repr(a) for a in ARCHITECTURES)}. "
            f"Received: architecture={architecture!r}"
        )
    ltg = threshold_tables(n, weight_bound)
    full = np.int64((1 << (2**n)) - 1)
    if architecture == "threshold":
        return ltg
    if architecture == "output_gating":
        return np.unique(np.bitwise_and.outer(ltg, ltg))
    if architecture == "product_gating":
        # +-1 outputs multiply to +1 exactly where the {0, 1} tables agree.
        return np.unique(np.bitwise_not(np.bitwise_xor.outer(ltg, ltg)) & full)
    # Multiplexing: T(x, g(x)) with T a threshold function of n + 1 inputs
    # (the extra, last input is the attending unit's output g).
    wide = threshold_tables(n + 1, weight_bound)
    bits = (wide[:, None] >> np.arange(2 ** (n + 1))) & 1
    bits = bits.reshape(-1, 2**n, 2).astype(bool)
    t_off, t_on = _pack(bits[..., 0]), _pack(bits[..., 1])
    composite = (t_off[:, None] & ~ltg[None]) | (t_on[:, None] & ltg[None])
    return np.unique(composite & full)


def count_functions(n, weight_bound=3):
    """Counts of Boolean functions of `n` inputs realized by one unit of
    each architecture over the integer weight grid.

    Returns a dict with `"n"`, `"all"` (`2^(2^n)`), one count per
    architecture, and `"exact"`: whether the threshold sets on `n` and
    `n + 1` inputs are complete (counts equal to OEIS A000609), in which
    case every count is exact rather than a lower bound.
    """
    _validate(n, weight_bound)
    result = {"n": n, "all": 2 ** (2**n), "weight_bound": weight_bound}
    for architecture in ARCHITECTURES:
        result[architecture] = int(
            gated_tables(n, architecture, weight_bound).size
        )
    result["exact"] = bool(
        result["threshold"] == THRESHOLD_FUNCTION_COUNTS[n]
        and threshold_tables(n + 1, weight_bound).size
        == THRESHOLD_FUNCTION_COUNTS[n + 1]
    )
    return result


def format_counts(rows):
    """Markdown table of `count_functions` results."""
    lines = [
        "| n | all | " + " | ".join(ARCHITECTURES) + " | exact |",
        "|---" * (len(ARCHITECTURES) + 3) + "|",
    ]
    for row in rows:
        cells = [row["n"], row["all"]] + [row[a] for a in ARCHITECTURES]
        cells.append("yes" if row["exact"] else "lower bound")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_counts([count_functions(n) for n in (2, 3)]))
