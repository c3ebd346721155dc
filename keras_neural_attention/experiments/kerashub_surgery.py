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
import os
import time
from pathlib import Path

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
    # The run committed from a shared 2-core CPU: about ten minutes.
    "cpu": SurgeryScale(
        sequence_length=64, num_layers=2, num_heads=4, hidden_dim=128,
        intermediate_dim=512, pretrain_steps=600, finetune_steps=200,
        batch_size=16, learning_rate=1e-3, eval_windows=1024,
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
        `parameter_count`, `losses`: the training loss of every
        fine-tuning step).
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
            "losses": losses,
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
            "losses": pretrain_losses,
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
    run = []
    if payload.get("wall_time_s") is not None:
        run.append(f"wall time {payload['wall_time_s']:.0f} s, CPU time "
                   f"{payload['cpu_time_s']:.0f} s")
    if payload.get("load_average"):
        run.append("load average (1, 5, 15 min) before "
                   f"{payload['load_average']['before']}, after "
                   f"{payload['load_average']['after']}")
    if payload.get("environment"):
        env = payload["environment"]
        run.append(f"{env['cpu']} ({env['usable_cpus']} usable CPUs), "
                   f"Keras {env['keras_version']}, {env['backend']} "
                   f"{env['backend_version']}")
    if run:
        lines += ["", "Run: " + "; ".join(run) + "."]
    notes = payload.get("notes") or []
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return write_json_and_markdown(payload, "\n".join(lines) + "\n",
                                   output_dir, stem)


# --------------------------------------------------------------------------
# The comparison on WikiText-2 (what the tutorial notebook runs).


@dataclasses.dataclass(frozen=True)
class WikiTextSurgeryData:
    """How much of WikiText-2 a scale reads.

    Only `valid` and `test` of WikiText-2 are on the project's machines:
    the first `pretrain_fraction` of the `valid` lines pretrain the stock
    model, the rest fine-tune both models, `test` is scored.

    Attributes:
        vocabulary_size: upper bound of the WordPiece vocabulary learned
            on the `valid` lines used (never on `test`).
        pretrain_fraction: float in (0, 1), share of the `valid` lines
            used for pretraining.
        max_valid_lines: first lines of `valid` read (None: all).
        max_test_lines: first lines of `test` read (None: all).
    """

    vocabulary_size: int
    pretrain_fraction: float
    max_valid_lines: int = None
    max_test_lines: int = None


WIKITEXT_DATA = {
    "smoke": WikiTextSurgeryData(vocabulary_size=400, pretrain_fraction=0.5,
                                 max_valid_lines=200, max_test_lines=60),
    "cpu": WikiTextSurgeryData(vocabulary_size=8000, pretrain_fraction=0.7),
    "small": WikiTextSurgeryData(vocabulary_size=8000,
                                 pretrain_fraction=0.7),
}
DEFAULT_OUTPUT_DIR = os.path.join("results", "kerashub_surgery")


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def run_wikitext2_surgery(scale="smoke", data_dir=None, output_dir=None,
                          layers=(0,), attention="neural", seed=0,
                          stem=None):
    """`run_surgery_comparison` on WikiText-2 with a WordPiece vocabulary,
    its record written as JSON and markdown.

    The stock GPT-2 is pretrained on the first part of WikiText-2 `valid`,
    both models are fine-tuned on the rest of `valid` and scored on `test`
    (the `train` split is not on the project's machines). The vocabulary is
    learned on the `valid` lines read (`tokenization.cached_vocabulary`,
    cached under `output_dir/vocabulary`); lines follow the released code
    (`tokenization.released_code_lines`: `[SEP]` at each line end).

    Args:
        scale: a name in `WIKITEXT_DATA` (`"smoke"`, `"cpu"`, `"small"`).
        data_dir: where `wiki.valid.tokens` and `wiki.test.tokens` are
            (see `data.wikitext_path`); None searches
            `data.default_data_dirs()` (`../shared/data` beside the
            checkout among them).
        output_dir: folder of the record, the vocabulary and the preset
            (default `results/kerashub_surgery/<scale>`).
        layers, attention, seed: see `run_surgery_comparison`.
        stem: file name stem of the record (default
            `kerashub_surgery-<scale>-<backend>`).

    Returns:
        The record (see `run_surgery_comparison`) with `notes`,
        `environment`, `wall_time_s`, `cpu_time_s`, `load_average` (before
        and after) and `paths` (the files written).

    Raises:
        FileNotFoundError: when the WikiText-2 files are not found.
    """
    import keras

    from keras_neural_attention.experiments import data as data_lib
    from keras_neural_attention.experiments import tokenization
    from keras_neural_attention.experiments.environment import (
        environment_info,
    )

    if scale not in WIKITEXT_DATA:
        raise ValueError(
            "Argument `scale` must be one of "
            f"{', '.join(repr(s) for s in WIKITEXT_DATA)}. "
            f"Received: scale={scale!r}"
        )
    spec = WIKITEXT_DATA[scale]
    output_dir = Path(output_dir or os.path.join(DEFAULT_OUTPUT_DIR, scale))
    load_before = _load_average()
    start, cpu_start = time.perf_counter(), time.process_time()

    valid = data_lib.load_wikitext("wikitext-2", "valid", data_dir=data_dir,
                                   max_lines=spec.max_valid_lines)
    test = data_lib.load_wikitext("wikitext-2", "test", data_dir=data_dir,
                                  max_lines=spec.max_test_lines)
    split = int(round(len(valid) * spec.pretrain_fraction))
    if not 0 < split < len(valid):
        raise ValueError(
            f"WikiText-2 `valid` ({len(valid)} lines) cannot be split at "
            f"pretrain_fraction={spec.pretrain_fraction} into a pretraining "
            "and a fine-tuning part."
        )
    vocabulary = tokenization.cached_vocabulary(
        valid, spec.vocabulary_size, output_dir / "vocabulary")
    tokenizer = tokenization.wordpiece_tokenizer(vocabulary)

    def text(lines):
        return "\n".join(tokenization.released_code_lines(lines))

    description = (
        f"WikiText-2 (tokenized v1): pretraining on `valid` lines 1-{split}, "
        f"fine-tuning on `valid` lines {split + 1}-{len(valid)}, "
        f"evaluation on `test` lines 1-{len(test)}"
    )
    payload = run_surgery_comparison(
        tokenizer, text(valid[:split]), text(valid[split:]), text(test),
        preset_dir=output_dir / "pretrained_preset", scale=scale,
        layers=layers, attention=attention, seed=seed,
        data_description=description,
    )
    payload["notes"] = [
        "WikiText-2's `train` split is not on the project's machines: the "
        "stock model is pretrained on the first part of `valid`, both "
        "models are fine-tuned on the rest of `valid` and evaluated on "
        "`test`. Not a standard WikiText-2 protocol; perplexities are not "
        "comparable with published ones.",
        f"Vocabulary: WordPiece learned on the {len(valid)} `valid` lines "
        f"read (at most {spec.vocabulary_size} tokens, got "
        f"{len(vocabulary)}); `[SEP]` ends every line (the released "
        "code's text).",
        "Perplexity: exp of the mean next-token cross-entropy over "
        "non-overlapping windows of sequence_length + 1 tokens"
        + (f" (the first {payload['windows']['eval']})"
           if spec.max_test_lines or payload["scale_config"].get(
               "eval_windows") else "") + ".",
        "Both fine-tuning runs start from the same saved preset and see the "
        "same batches in the same order; only the attention of layers "
        f"{list(layers)} differs ({attention}, its scoring network newly "
        "initialized, every other weight copied).",
    ]
    if scale == "smoke":
        payload["notes"].append(
            "Smoke scale: a plumbing check, its numbers mean nothing.")
    payload["environment"] = environment_info()
    payload["wall_time_s"] = round(time.perf_counter() - start, 1)
    # CPU time of this process (all its threads): on a shared machine a
    # steadier measure of the work than the wall time.
    payload["cpu_time_s"] = round(time.process_time() - cpu_start, 1)
    payload["load_average"] = {"before": load_before,
                               "after": _load_average()}
    stem = stem or f"kerashub_surgery-{scale}-{keras.backend.backend()}"
    payload["paths"] = write_surgery_results(payload, output_dir, stem=stem)
    return payload
