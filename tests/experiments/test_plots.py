"""The notebooks' figures: attention maps of a ViT's first block and the
record plots (Agg backend, nothing shown)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_neural_attention.experiments import plots  # noqa: E402
from keras_neural_attention.experiments import training  # noqa: E402
from keras_neural_attention.experiments.scales import VISION  # noqa: E402


def test_first_block_attention_maps_are_probabilities():
    model = training.build_vision_model(VISION["tiny"], "neural", 10)
    images = np.random.default_rng(0).integers(
        0, 256, (2, 32, 32, 3)).astype("uint8")
    scores = plots.vision_attention_maps(model, images)
    tokens = (32 // VISION["tiny"].patch_size) ** 2 + 1
    assert scores.shape == (2, VISION["tiny"].num_heads, tokens, tokens)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    axes = plots.plot_attention_maps({"neural": model}, images[0])
    assert len(axes) == 2
    plt.close("all")


def test_record_plots():
    history = {"loss": [2.0, 1.5], "val_loss": [2.1, 1.7]}
    record = {
        "table": "5", "scale": "tiny",
        "runs": [{"variant": v, "seed": 0, "history": history}
                 for v in ("dot_product", "neural")],
        "rows": [
            {"domain": "language", "attention": a, "tokens": t,
             "train_step_s": 0.1 * t, "memory_mib": None}
            for a in ("dot_product", "neural") for t in (8, 16)],
    }
    ax = plots.plot_training_curves(record)
    assert len(ax.lines) == 4
    axes = plots.plot_cost_against_length(record)
    assert len(axes[0].lines) == 2 and not axes[1].lines
    record["rows"] = [
        {"attention": "dot_product", "projection_dim": None,
         "perplexity_released_code": 9.0, "train_step_s": 0.1,
         "memory_mib": None}] + [
        {"attention": "neural", "projection_dim": d,
         "perplexity_released_code": 9.0 - d / 10, "train_step_s": 0.1 * d,
         "memory_mib": None} for d in (1, 2)]
    axes = plots.plot_projection_width(record)
    assert len(axes[0].lines) == 2  # neural curve + dot-product line
    plt.close("all")
