"""Figures of the reproduction notebooks, drawn from records (and, for
attention maps, from trained models). Matplotlib is imported inside each
function.
"""

import numpy as np


def _axes(ax, ncols=1, width=5.0):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.6),
                           squeeze=False)
    return axes[0] if ncols > 1 else axes[0][0]


def plot_training_curves(record, keys=("loss", "val_loss"), ax=None):
    """Per-epoch curves of every run of a record (one colour per variant,
    one line style per key)."""
    import matplotlib.pyplot as plt

    ax = _axes(ax)
    variants = list(dict.fromkeys(run["variant"] for run in record["runs"]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    for run in record["runs"]:
        colour = colours[variants.index(run["variant"]) % len(colours)]
        for style, key in zip(styles, keys):
            values = run["history"].get(key)
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, style,
                        color=colour, marker="o", markersize=3,
                        label=f"{run['variant']} seed {run['seed']} {key}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(", ".join(keys))
    ax.set_title(f"Table {record['table']} ({record['scale']}): training")
    ax.legend(fontsize=7)
    return ax


def plot_cost_against_length(record, axes=None):
    """Table 5: train-step time and peak memory of the language models
    against the sequence length T."""
    axes = _axes(axes, ncols=2)
    rows = [r for r in record["rows"] if r["domain"] == "language"]
    for attention in ("dot_product", "neural"):
        mine = sorted((r for r in rows if r["attention"] == attention),
                      key=lambda r: r["tokens"])
        lengths = [r["tokens"] for r in mine]
        axes[0].plot(lengths, [r["train_step_s"] for r in mine], "o-",
                     label=attention)
        memory = [r["memory_mib"] for r in mine]
        if all(m is not None for m in memory):
            axes[1].plot(lengths, memory, "o-", label=attention)
    axes[0].set(xlabel="T (tokens)", ylabel="train step (s)",
                xscale="log", yscale="log", title="time against T")
    axes[1].set(xlabel="T (tokens)", ylabel="peak memory (MiB)",
                xscale="log", title="memory against T")
    if not axes[1].lines:
        axes[1].text(0.5, 0.5, "memory not measured at this scale",
                     ha="center", va="center", transform=axes[1].transAxes)
    for ax in axes:
        if ax.lines:
            ax.legend()
    return axes


def plot_projection_width(record, axes=None):
    """Table 6: perplexity, train-step time and memory against d'."""
    axes = _axes(axes, ncols=3, width=4.0)
    neural = sorted((r for r in record["rows"] if r["attention"] ==
                     "neural"), key=lambda r: r["projection_dim"])
    dot = next((r for r in record["rows"] if r["attention"] ==
                "dot_product"), None)
    dims = [r["projection_dim"] for r in neural]
    for ax, key, label in (
            (axes[0], "perplexity_released_code", "test perplexity"),
            (axes[1], "train_step_s", "train step (s)"),
            (axes[2], "memory_mib", "peak memory (MiB)")):
        values = [r.get(key) for r in neural]
        if all(v is not None for v in values):
            ax.plot(dims, values, "o-", label="neural")
            if dot is not None and dot.get(key) is not None:
                ax.axhline(dot[key], color="grey", linestyle="--",
                           label="dot-product")
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not measured at this scale", ha="center",
                    va="center", transform=ax.transAxes)
        ax.set(xlabel="d'", ylabel=label, xscale="log")
        ax.set_xticks(dims, [str(d) for d in dims])
    return axes


def vision_attention_maps(model, images):
    """First block's attention probabilities of a trained ViT classifier.

    Args:
        model: a `ViTImageClassifier` built by `training.build_vision_model`.
        images: uint8 `(B, H, W, 3)`.

    Returns:
        float `(B, heads, T, T)` (class token first).
    """
    import keras

    x = images
    if model.preprocessor is not None:
        x = model.preprocessor(images)
        if isinstance(x, tuple):
            x = x[0]
    backbone = model.backbone
    tokens = backbone.patch_embedding(x)
    _, scores = backbone.transformer_blocks[0](
        tokens, return_attention_scores=True)
    return keras.ops.convert_to_numpy(scores)


def plot_attention_maps(models, image, axes=None):
    """The class token's first-layer attention over the patches (mean over
    heads) for each trained model, on the same image, beside the image.

    Args:
        models: `{name: model}`.
        image: uint8 `(H, W, 3)`.
    """
    axes = _axes(axes, ncols=1 + len(models), width=3.2)
    axes[0].imshow(image)
    axes[0].set_title("input")
    axes[0].axis("off")
    for ax, (name, model) in zip(axes[1:], models.items()):
        scores = vision_attention_maps(model, image[None])[0]
        patches = scores.mean(0)[0, 1:]
        grid = int(round(np.sqrt(len(patches))))
        shown = ax.imshow(patches.reshape(grid, grid), cmap="viridis")
        ax.set_title(f"{name}: class token -> patches")
        ax.axis("off")
        ax.figure.colorbar(shown, ax=ax, fraction=0.046)
    return axes


def plot_surgery_finetuning(record, ax=None):
    """The attention-surgery comparison (`kerashub_surgery`): training
    loss of every fine-tuning step of the unmodified and the converted
    model, each labelled with its test perplexity."""
    ax = _axes(ax)
    for row in record["rows"]:
        losses = row["losses"]
        ax.plot(np.arange(1, len(losses) + 1), losses,
                label=f"{row['model']} (perplexity {row['perplexity']:.2f})")
    ax.set_xlabel("fine-tuning step")
    ax.set_ylabel("training loss")
    ax.set_title(f"Fine-tuning the pretrained GPT-2 ({record['scale']}, "
                 f"{record['backend']})")
    ax.legend(fontsize=7)
    return ax
