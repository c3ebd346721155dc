"""Draws the documentation's picture of the mechanism (an SVG).

Dot-product attention scores a query/key pair with `q . k / sqrt(d)`;
Neural Attention scores it with a small feed-forward network on the
projected pair. The picture puts the two side by side. The docs build runs
this script (`docs/hooks/generated.py` calls `draw()`); run it by hand with
`python docs/scripts/draw_mechanism.py OUT.svg`.
"""

import io
import sys

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

QUERY = "#1f77b4"
KEY = "#ff7f0e"
NET = "#2ca02c"
OUT = "#7f7f7f"


def _box(ax, x, y, text, color, width=1.7, height=0.62):
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2), width, height,
            boxstyle="round,pad=0.04,rounding_size=0.12",
            facecolor=color, alpha=0.18, edgecolor=color, linewidth=1.6,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=11)


def _arrow(ax, start, end):
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=12,
            linewidth=1.2, color="#444444", shrinkA=18, shrinkB=18,
        )
    )


def _column(ax, x0, title, score_boxes):
    ax.text(x0 + 1.5, 6.55, title, ha="center", fontsize=13,
            fontweight="bold")
    _box(ax, x0 + 0.4, 5.7, r"query $q_i$", QUERY)
    _box(ax, x0 + 2.6, 5.7, r"key $k_j$", KEY)
    previous = [(x0 + 0.4, 5.7), (x0 + 2.6, 5.7)]
    y = 4.7
    for text, color in score_boxes:
        _box(ax, x0 + 1.5, y, text, color, width=2.9)
        for start in previous:
            _arrow(ax, start, (x0 + 1.5, y))
        previous = [(x0 + 1.5, y)]
        y -= 1.0
    _box(ax, x0 + 1.5, y, r"softmax over $j$, then $\sum_j p_{ij} v_j$",
         OUT, width=2.9)
    _arrow(ax, previous[0], (x0 + 1.5, y))


def draw():
    """The picture as SVG text."""
    fig, ax = plt.subplots(figsize=(9.2, 5.4))
    ax.set_xlim(-0.6, 8.6)
    ax.set_ylim(0.3, 7.0)
    ax.axis("off")
    _column(ax, 0.0, "Dot-product attention", [
        (r"$s_{ij} = q_i \cdot k_j / \sqrt{d}$", OUT),
    ])
    _column(ax, 5.0, "Neural Attention", [
        (r"$q'_i = q_i P_q + b_q,\ k'_j = k_j P_k + b_k$", QUERY),
        (r"$h_{ij} = \mathrm{act}(W_h [q'_i ; k'_j] + b_h)$", NET),
        (r"$s_{ij} = w_a \cdot h_{ij} + b_a$", NET),
    ])
    ax.plot([4.25, 4.25], [0.6, 6.8], color="#cccccc", linewidth=1)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight",
                metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/scripts/draw_mechanism.py OUT.svg")
    with open(sys.argv[1], "w", encoding="utf-8") as handle:
        handle.write(draw())
