"""Attention surgery on a small pretrained GPT-2: swap its first layer to
Neural Attention, fine-tune, and compare perplexity with the unmodified
model fine-tuned the same way.

The steps (what the tutorial notebook narrates):

1. Tokenize the text with the given tokenizer (the caller's choice: the
   reproduction's WordPiece tokenizer for WikiText-2) and cut it into
   windows of `sequence_length + 1` tokens.
2. "Pretrain" a stock `keras_hub.models.GPT2Backbone` briefly on the
   pretraining text and save it as a local preset.
3. Load the preset twice: once as is, once converted with
   `keras_neural_attention.models.replace_attention` (Neural Attention in
   `layers`, every weight kept, only the scoring network new).
4. Fine-tune both with the same optimizer, steps and batches, then measure
   perplexity on the evaluation text.

`run_surgery_comparison` returns a JSON-ready record (scale, backend,
devices, date, perplexities) and `write_surgery_results` writes it as JSON
and markdown.
"""

import dataclasses
import datetime
import math

import keras
import numpy as np

from keras_neural_attention.experiments.records import resolve_scale
from keras_neural_attention.experiments.records import scale_config
from keras_neural_attention.experiments.records import scale_name
from keras_neural_attention.experiments.records import (
    write_json_and_markdown,
)


@dataclasses.dataclass(frozen=True)
class SurgeryScale:
    """Sizes and budget of one comparison run.

    Attributes:
        sequence_length: tokens per training window.
        num_layers, num_heads, hidden_dim, intermediate_dim: GPT-2 sizes.
        pretrain_steps: optimizer steps of the stock model before saving.
        finetune_steps: optimizer steps of each fine-tuned model.
        batch_size: windows per step.
        learning_rate: Adam learning rate (pretraining and fine-tuning).
        eval_windows: most evaluation windows used (None: all).
    """

    sequence_length: int
    num_layers: int
    num_heads: int
    hidden_dim: int
    intermediate_dim: int
    pretrain_steps: int
    finetune_steps: int
    batch_size: int
    learning_rate: float
    eval_windows: int = None


SCALES = {
    # CI smoke scale: seconds on a CPU, numbers meaningless.
    "smoke": SurgeryScale(
        sequence_length=16, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, pretrain_steps=4, finetune_steps=3,
        batch_size=4, learning_rate=1e-3, eval_windows=8,
    ),
    # A few minutes on one GPU.
    "small": SurgeryScale(
        sequence_length=128, num_layers=4, num_heads=4, hidden_dim=256,
        intermediate_dim=1024, pretrain_steps=2000, finetune_steps=500,
        batch_size=32, learning_rate=5e-4, eval_windows=None,
    ),
}


def token_windows(token_ids, sequence_length):
    """Cuts a flat token stream into non-overlapping windows of
    `sequence_length + 1` tokens (inputs and shifted labels); the tail that
    does not fill a window is dropped.

    Args:
        token_ids: 1-D int array.
        sequence_length: int, positive.

    Returns:
        int32 array `(num_windows, sequence_length + 1)`.
    """
    if not isinstance(sequence_length, int) or sequence_length <= 0:
        raise ValueError(
            "Argument `sequence_length` must be a positive integer. "
            f"Received: sequence_length={sequence_length!r}"
        )
    token_ids = np.asarray(token_ids, dtype="int32").reshape(-1)
    width = sequence_length + 1
    count = len(token_ids) // width
    if count == 0:
        raise ValueError(
            f"The text has {len(token_ids)} tokens, fewer than one window of "
            f"{width}. Received: sequence_length={sequence_length}"
        )
    return token_ids[: count * width].reshape(count, width)


def tokenize_lines(tokenizer, text):
    """Token ids of `text` (a string), tokenized line by line with
    `tokenizer` and concatenated into one stream."""
    lines = [line for line in text.splitlines() if line.strip()]
    ids = tokenizer(lines)
    if hasattr(ids, "to_list"):  # tf.RaggedTensor
        ids = ids.to_list()
    elif hasattr(ids, "numpy") and not isinstance(ids, list):
        ids = ids.numpy().tolist()
    return np.concatenate([np.asarray(row, "int32").reshape(-1)
                           for row in ids])


def _batches(windows, batch_size, steps, rng):
    for _ in range(steps):
        rows = windows[rng.integers(0, len(windows), size=batch_size)]
        yield ({"token_ids": rows[:, :-1],
                "padding_mask": np.ones_like(rows[:, :-1])}, rows[:, 1:])


def _train(lm, windows, scale, steps, seed):
    lm.compile(optimizer=keras.optimizers.Adam(scale.learning_rate),
               sampler="greedy")
    rng = np.random.default_rng(seed)
    losses = [
        float(lm.train_on_batch(x, y, return_dict=True)["loss"])
        for x, y in _batches(windows, scale.batch_size, steps, rng)
    ]
    return losses


def perplexity(lm, windows, batch_size):
    """exp(mean next-token cross-entropy) of `lm` over `windows`."""
    total, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        rows = windows[start:start + batch_size]
        logits = lm({"token_ids": rows[:, :-1],
                     "padding_mask": np.ones_like(rows[:, :-1])})
        loss = keras.losses.sparse_categorical_crossentropy(
            rows[:, 1:], logits, from_logits=True
        )
        total += float(keras.ops.sum(loss))
        count += loss.shape[0] * loss.shape[1]
    return math.exp(total / count)


def run_surgery_comparison(tokenizer, pretrain_text, finetune_text,
                           eval_text, preset_dir, scale="smoke",
                           layers=(0,), attention="neural", seed=0,
                           data_description=None):
    """Pretrain a small GPT-2, save it as a preset, then fine-tune it as is
    and with `attention` in `layers`, and compare perplexities.

    Args:
        tokenizer: a KerasHub tokenizer (or any callable mapping a list of
            strings to lists of token ids) with `vocabulary_size()`.
        pretrain_text: str, text of the "pretraining" run.
        finetune_text: str, text both models are fine-tuned on.
        eval_text: str, text their perplexity is measured on.
        preset_dir: where the pretrained model is saved as a KerasHub
            preset (and loaded from).
        scale: a name in `SCALES` or a `SurgeryScale`.
        layers: layer indices that get the new attention.
        attention: `"neural"` or `"expressive"`.
        seed: int. Seeds initialization and batch order.
        data_description: optional str saved in the record (where the three
            texts came from).

    Returns:
        A dict: `scale`, `scale_config`, `backend`, `devices`, `date`,
        `data`, `layers`, `attention`, `pretrain` (losses and perplexity of
        the saved model), and `rows`, one per fine-tuned model
        (`model`, `perplexity`, `first_loss`, `last_loss`,
        `parameter_count`).
    """
    import keras_hub

    from keras_neural_attention.models.attention_surgery import (
        replace_attention,
    )
    from keras_neural_attention.models.attention_surgery import (
        replaced_attention_class,
    )

    scale_value = resolve_scale(scale, SCALES, SurgeryScale)
    windows = {
        name: token_windows(tokenize_lines(tokenizer, text),
                            scale_value.sequence_length)
        for name, text in (("pretrain", pretrain_text),
                           ("finetune", finetune_text),
                           ("eval", eval_text))
    }
    if scale_value.eval_windows is not None:
        windows["eval"] = windows["eval"][: scale_value.eval_windows]

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=int(tokenizer.vocabulary_size()),
        num_layers=scale_value.num_layers,
        num_heads=scale_value.num_heads,
        hidden_dim=scale_value.hidden_dim,
        intermediate_dim=scale_value.intermediate_dim,
        max_sequence_length=scale_value.sequence_length,
        dropout=0.0,
    )
    stock_lm = keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)
    pretrain_losses = _train(stock_lm, windows["pretrain"], scale_value,
                             scale_value.pretrain_steps, seed)
    backbone.save_to_preset(str(preset_dir))
    pretrained_perplexity = perplexity(stock_lm, windows["eval"],
                                       scale_value.batch_size)

    rows = []
    for variant in ("unmodified", attention):
        keras.utils.set_random_seed(seed + 1)
        loaded = keras_hub.models.Backbone.from_preset(str(preset_dir))
        if variant == "unmodified":
            lm = keras_hub.models.GPT2CausalLM(loaded, preprocessor=None)
        else:
            converted = replace_attention(loaded, layers=list(layers),
                                          attention=attention)
            lm = replaced_attention_class(keras_hub.models.GPT2CausalLM)(
                converted, preprocessor=None
            )
        losses = _train(lm, windows["finetune"], scale_value,
                        scale_value.finetune_steps, seed + 2)
        rows.append({
            "model": (variant if variant == "unmodified"
                      else f"{variant} in layers {list(layers)}"),
            "perplexity": perplexity(lm, windows["eval"],
                                     scale_value.batch_size),
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "parameter_count": int(lm.count_params()),
        })

    return {
        "experiment": "kerashub_surgery",
        "scale": scale_name(scale_value, SCALES),
        "scale_config": (scale_config(scale_name(scale_value, SCALES),
                                      SCALES)
                         or dataclasses.asdict(scale_value)),
        "backend": keras.backend.backend(),
        "devices": _devices(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "data": data_description,
        "windows": {name: int(len(w)) for name, w in windows.items()},
        "layers": list(layers),
        "attention": attention,
        "seed": seed,
        "pretrain": {
            "steps": scale_value.pretrain_steps,
            "first_loss": pretrain_losses[0] if pretrain_losses else None,
            "last_loss": pretrain_losses[-1] if pretrain_losses else None,
            "perplexity": pretrained_perplexity,
        },
        "rows": rows,
    }


def _devices():
    try:
        return [str(d) for d in keras.distribution.list_devices()]
    except (AttributeError, NotImplementedError, RuntimeError, ValueError):
        # Backends without `keras.distribution` support (torch).
        return [f"{keras.backend.backend()} default device"]


def write_surgery_results(payload, output_dir, stem="kerashub_surgery"):
    """Writes `payload` (from `run_surgery_comparison`) as `<stem>.json` and
    a markdown table `<stem>.md`; returns their paths."""
    lines = [
        "# Attention surgery on a small GPT-2: fine-tuned perplexity",
        "",
        f"Scale `{payload['scale']}`, backend `{payload['backend']}`, "
        f"devices {', '.join(payload['devices'])}, {payload['date']}.",
        f"Data: {payload['data'] or 'not described'}; windows "
        f"{payload['windows']}.",
        f"Pretrained model perplexity (before fine-tuning): "
        f"{payload['pretrain']['perplexity']:.2f}.",
        "",
        "| Model | Perplexity | First loss | Last loss | Parameters |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in payload["rows"]:
        lines.append(
            f"| {row['model']} | {row['perplexity']:.2f} | "
            f"{row['first_loss']:.4f} | {row['last_loss']:.4f} | "
            f"{row['parameter_count']:,} |"
        )
    return write_json_and_markdown(payload, "\n".join(lines) + "\n",
                                   output_dir, stem)
