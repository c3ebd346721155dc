"""A complexity ladder of synthetic next-token tasks: dot-product attention
vs Expressive Attention vs Neural Attention.

Gros ("Reorganizing attention-space geometry with expressive attention",
arXiv 2407.18601) reports that Expressive Attention (EA, squared dot-product
scores) is at least as accurate as dot-product attention (DPA) on
autoregressive tasks of growing complexity, with a margin that widens with
the complexity. The paper's own tasks were not available to us; this module
builds a ladder in the same spirit and measures the claim.

**Tasks.** Sequences over the alphabet `0..N-1` follow a linear recurrence
with a lag set `S`:

```
x_t = (sum_{tau in S} x_{t - tau}) mod N
```

The first `max(S)` tokens are drawn uniformly at random, every later token is
determined by the recurrence. A model reads the sequence and predicts every
next token (teacher forcing, causal attention); only the determined tokens
are scored. The complexity grows with `N` and `|S|`: predicting `x_t` needs
the tokens at `|S|` lags and a sum modulo `N`, a table of `N^|S|` entries.
In the multi-task variant a level has several lag sets; every sequence
starts with a task token (`N + task index`) that says which lag set
generates it.

**Model.** One small model for every attention kind, identical except for
its attention layer: token embedding plus learned positional embedding, one
causal self-attention layer with a residual connection, then a two-layer
ReLU head that classifies every position over the `N` symbols. The
attention layer is `keras.layers.MultiHeadAttention` (`"dot_product"`),
`ExpressiveAttention` (`"expressive"`, `normalization="ratio"`) or
`NeuralAttention` (`"neural"`).

**Protocol.** For every (level, attention kind, seed): fresh training and
test sequences from the seed, a fresh model from the seed, Adam with a
cosine-decayed learning rate; the test accuracy is the fraction of correctly
predicted determined tokens in the test sequences, and a run *solves* its
level when that fraction is exactly 1. `summarize` reports per level and
kind the mean and standard deviation of the test accuracy over seeds and
the fraction of seeds that solved the level; `verdict` states, from these
numbers, whether EA >= DPA held at every level and whether the margin grew.

Run it with
`python -m keras_neural_attention.experiments.complexity_ladder --scale
default --output-dir DIR`.
"""

import dataclasses
import math
import time

import keras
import numpy as np

from keras_neural_attention.experiments.records import resolve_scale
from keras_neural_attention.experiments.records import run_cli
from keras_neural_attention.experiments.records import scale_config
from keras_neural_attention.experiments.records import scale_name
from keras_neural_attention.experiments.records import (
    write_json_and_markdown,
)

ATTENTION_KINDS = ("dot_product", "expressive", "neural")
ATTENTION_TITLES = {
    "dot_product": "Dot-product attention",
    "expressive": "Expressive Attention",
    "neural": "Neural Attention",
}
LAYER_NAMES = {
    "dot_product": "keras.layers.MultiHeadAttention",
    "expressive": "ExpressiveAttention",
    "neural": "NeuralAttention",
}


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_attention(attention):
    if attention not in ATTENTION_KINDS:
        raise ValueError(
            "Argument `attention` must be one of "
            f"{', '.join(repr(a) for a in ATTENTION_KINDS)}. "
            f"Received: attention={attention!r}"
        )


@dataclasses.dataclass(frozen=True)
class TaskLevel:
    """One rung of the ladder: a modulus and one or more lag sets.

    Attributes:
        modulus: the alphabet size `N` (tokens `0..N-1`), at least 2.
        lag_sets: tuple of lag sets, each a tuple of distinct positive
            integer lags. One lag set: a single task. Several: the
            multi-task variant, in which a leading task token selects the
            lag set of each sequence.
    """

    modulus: int
    lag_sets: tuple

    def __post_init__(self):
        if not _is_int(self.modulus) or self.modulus < 2:
            raise ValueError(
                "Argument `modulus` must be an integer >= 2. "
                f"Received: modulus={self.modulus!r}"
            )
        message = (
            "Argument `lag_sets` must be a non-empty tuple of non-empty "
            "tuples of distinct positive integers, e.g. ((1, 2),). "
            f"Received: lag_sets={self.lag_sets!r}"
        )
        if not isinstance(self.lag_sets, (tuple, list)) or not self.lag_sets:
            raise ValueError(message)
        normalized = []
        for lags in self.lag_sets:
            if (
                not isinstance(lags, (tuple, list))
                or not lags
                or not all(_is_int(lag) and lag >= 1 for lag in lags)
                or len(set(lags)) != len(lags)
            ):
                raise ValueError(message)
            normalized.append(tuple(sorted(int(lag) for lag in lags)))
        object.__setattr__(self, "modulus", int(self.modulus))
        object.__setattr__(self, "lag_sets", tuple(normalized))

    @property
    def num_tasks(self):
        """Number of lag sets (1 for a single task)."""
        return len(self.lag_sets)

    @property
    def multi_task(self):
        """Whether sequences start with a task token."""
        return self.num_tasks > 1

    @property
    def max_lag(self):
        """The largest lag: the length of the random initial segment."""
        return max(max(lags) for lags in self.lag_sets)

    @property
    def vocab_size(self):
        """`N` symbols plus one token per task in the multi-task variant."""
        return self.modulus + (self.num_tasks if self.multi_task else 0)

    @property
    def complexity(self):
        """`log2` of the size of the table a model must learn: `N^|S|` per
        task, times the number of tasks."""
        return math.log2(
            sum(self.modulus ** len(lags) for lags in self.lag_sets)
        )

    @property
    def name(self):
        """A short label, e.g. `"N=8 S={1,2}"` or `"N=8 S in {1,2}|{1,3}"`."""
        sets = "|".join(
            "{" + ",".join(str(lag) for lag in lags) + "}"
            for lags in self.lag_sets
        )
        if self.multi_task:
            return f"N={self.modulus} S in {sets}"
        return f"N={self.modulus} S={sets}"


def as_level(level):
    """A `TaskLevel` from a `TaskLevel` or a `(modulus, lag_sets)` pair."""
    if isinstance(level, TaskLevel):
        return level
    if isinstance(level, (tuple, list)) and len(level) == 2:
        return TaskLevel(level[0], level[1])
    raise TypeError(
        "Argument `level` must be a `TaskLevel` or a `(modulus, lag_sets)` "
        f"pair. Received: level={level!r}"
    )


def make_sequences(num_sequences, level, seq_len, seed=0):
    """Draws sequences of one ladder level.

    Deterministic given its arguments (a NumPy `default_rng(seed)`). A
    single-task sequence is `max_lag` random symbols followed by the
    recurrence; a multi-task sequence starts with its task token
    `N + task` (task drawn uniformly), then the same.

    Args:
        num_sequences: number of sequences, at least 1.
        level: a `TaskLevel` (or a `(modulus, lag_sets)` pair).
        seq_len: tokens per sequence, including the task token and the
            random initial segment; it must leave at least one determined
            token.
        seed: int seed.

    Returns:
        A dict of NumPy arrays: `"tokens"` `(num_sequences, seq_len)` int32,
        `"tasks"` `(num_sequences,)` int32 (the lag-set index, 0 for a
        single task) and `"determined"` `(num_sequences, seq_len)` bool, True
        where the token follows from the recurrence.
    """
    level = as_level(level)
    if not _is_int(num_sequences) or num_sequences < 1:
        raise ValueError(
            "Argument `num_sequences` must be a positive integer. "
            f"Received: num_sequences={num_sequences!r}"
        )
    start = level.max_lag + (1 if level.multi_task else 0)
    if not _is_int(seq_len) or seq_len <= start:
        raise ValueError(
            f"Argument `seq_len` must be an integer > {start} for level "
            f"{level.name!r} (task token and {level.max_lag} random initial "
            f"tokens, then the recurrence). Received: seq_len={seq_len!r}"
        )
    rng = np.random.default_rng(seed)
    tasks = rng.integers(0, level.num_tasks, size=num_sequences)
    tokens = np.zeros((num_sequences, seq_len), dtype=np.int64)
    offset = 1 if level.multi_task else 0
    if level.multi_task:
        tokens[:, 0] = level.modulus + tasks
    tokens[:, offset:start] = rng.integers(
        0, level.modulus, size=(num_sequences, level.max_lag)
    )
    # One boolean (num_tasks, max_lag) table: which lags each task sums.
    uses_lag = np.zeros((level.num_tasks, level.max_lag + 1), dtype=bool)
    for task, lags in enumerate(level.lag_sets):
        uses_lag[task, list(lags)] = True
    selected = uses_lag[tasks]  # (num_sequences, max_lag + 1)
    for t in range(start, seq_len):
        lagged = tokens[:, t - np.arange(level.max_lag + 1)]
        tokens[:, t] = (lagged * selected).sum(axis=1) % level.modulus
    determined = np.zeros((num_sequences, seq_len), dtype=bool)
    determined[:, start:] = True
    return {
        "tokens": tokens.astype(np.int32),
        "tasks": tasks.astype(np.int32),
        "determined": determined,
    }


def next_token_arrays(sequences):
    """Inputs, targets and sample weights for next-token prediction.

    Args:
        sequences: the dict of `make_sequences`.

    Returns:
        `(inputs, targets, weights)`: `tokens[:, :-1]`, `tokens[:, 1:]`
        (int32) and float32 weights that are 1 on determined targets and 0
        elsewhere.
    """
    tokens = sequences["tokens"]
    weights = sequences["determined"][:, 1:].astype(np.float32)
    return tokens[:, :-1], tokens[:, 1:], weights


@dataclasses.dataclass(frozen=True)
class LadderScale:
    """How large one ladder run is.

    Attributes:
        levels: tuple of `TaskLevel`s, in order of complexity.
        seeds: how many seeds per (level, attention kind).
        num_train: training sequences.
        num_test: test sequences (the reported accuracy).
        seq_len: tokens per sequence.
        epochs: training epochs.
        batch_size: sequences per step.
        learning_rate: Adam's initial learning rate (cosine decay to 0).
        embed_dim: width of the token and positional embeddings.
        num_heads: attention heads.
        key_dim: size of each head.
        head_units: width of the hidden layer of the output head.
        projection_dim: `NeuralAttention`'s scoring width d'.
        scoring_units: `NeuralAttention`'s scoring hidden layers.
    """

    levels: tuple
    seeds: int
    num_train: int
    num_test: int
    seq_len: int = 16
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 3e-3
    embed_dim: int = 32
    num_heads: int = 4
    key_dim: int = 8
    head_units: int = 64
    projection_dim: int = 4
    scoring_units: tuple = (8,)

    def __post_init__(self):
        object.__setattr__(
            self, "levels", tuple(as_level(level) for level in self.levels)
        )
        object.__setattr__(self, "scoring_units", tuple(self.scoring_units))

    @property
    def steps(self):
        """Optimizer steps of one training run."""
        return self.epochs * -(-self.num_train // self.batch_size)

    def model_config(self):
        """The model arguments of `build_model` this scale uses."""
        return {
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "head_units": self.head_units,
            "projection_dim": self.projection_dim,
            "scoring_units": self.scoring_units,
        }


# Single-task rungs in order of complexity (log2 of the table size).
_SINGLE_TASK_LADDER = (
    TaskLevel(4, ((1,),)),
    TaskLevel(4, ((1, 2),)),
    TaskLevel(8, ((1, 2),)),
    TaskLevel(12, ((1, 2),)),
    TaskLevel(16, ((1, 2),)),
    TaskLevel(8, ((1, 2, 3),)),
)
# Multi-task rungs: a task token selects one of three lag sets.
_MULTI_TASK_LADDER = (
    TaskLevel(4, ((1, 2), (1, 3), (2, 3))),
    TaskLevel(8, ((1, 2), (1, 3), (2, 3))),
)

SCALES = {
    # Plumbing checks in unit tests: seconds; the numbers mean nothing.
    "tiny": LadderScale(
        levels=(TaskLevel(3, ((1,), (2,))),),
        seeds=1, num_train=64, num_test=32, seq_len=8, epochs=1,
        batch_size=32, embed_dim=8, num_heads=2, key_dim=4, head_units=8,
        projection_dim=2, scoring_units=(2,),
    ),
    # The notebook's stored outputs and CI: well under two minutes on a
    # 2-core CPU with JAX; one single-task and one multi-task rung, one
    # seed, a short training.
    "smoke": LadderScale(
        levels=(_SINGLE_TASK_LADDER[1], _MULTI_TASK_LADDER[0]), seeds=1,
        num_train=1024, num_test=256, epochs=6, batch_size=64,
    ),
    # A CPU: about 8-10 minutes on 2 cores with JAX.
    "default": LadderScale(
        levels=_SINGLE_TASK_LADDER + _MULTI_TASK_LADDER, seeds=4,
        num_train=2048, num_test=512, epochs=40,
    ),
    # A GPU: more seeds, data and training, and two harder rungs.
    "large": LadderScale(
        levels=(
            _SINGLE_TASK_LADDER
            + (TaskLevel(16, ((1, 2, 3),)),)
            + _MULTI_TASK_LADDER
            + (TaskLevel(16, ((1, 2), (1, 3), (2, 3))),)
        ),
        seeds=5, num_train=16_384, num_test=2048, seq_len=24, epochs=60,
        batch_size=128,
    ),
}


def get_scale(scale):
    """A `LadderScale` from its name in `SCALES` (or a `LadderScale`,
    returned as is)."""
    return resolve_scale(scale, SCALES, LadderScale)


def _make_attention_layer(attention, num_heads, key_dim, projection_dim,
                          scoring_units):
    from keras_neural_attention.layers import ExpressiveAttention
    from keras_neural_attention.layers import NeuralAttention

    _check_attention(attention)
    if attention == "dot_product":
        return keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=key_dim, name="attention"
        )
    if attention == "expressive":
        return ExpressiveAttention(
            num_heads=num_heads, key_dim=key_dim, name="attention"
        )
    return NeuralAttention(
        num_heads=num_heads,
        key_dim=key_dim,
        projection_dim=projection_dim,
        hidden_units=tuple(scoring_units),
        name="attention",
    )


class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each position to `(B, T, D)` inputs.

    Args:
        max_length: the longest sequence it embeds.
        **kwargs: arguments of `keras.layers.Layer`.
    """

    def __init__(self, max_length, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_length, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )

    def call(self, inputs):
        length = keras.ops.shape(inputs)[1]
        return inputs + self.embeddings[None, :length]

    def get_config(self):
        config = super().get_config()
        config["max_length"] = self.max_length
        return config


def build_model(
    attention,
    vocab_size,
    num_classes,
    seq_len,
    embed_dim=32,
    num_heads=4,
    key_dim=8,
    head_units=64,
    projection_dim=4,
    scoring_units=(8,),
    learning_rate=3e-3,
    decay_steps=None,
    seed=None,
):
    """The ladder's next-token model with one kind of attention layer.

    Token embedding plus learned positional embedding, one causal
    self-attention layer (named `"attention"`) with a residual connection,
    then `Dense(head_units, relu)` and `Dense(num_classes)` at every
    position. The kinds differ only in the attention layer.

    Args:
        attention: `"dot_product"` (`keras.layers.MultiHeadAttention`),
            `"expressive"` (`ExpressiveAttention`) or `"neural"`
            (`NeuralAttention`).
        vocab_size: number of input tokens.
        num_classes: number of output symbols `N`.
        seq_len: length of the input sequences.
        embed_dim: width of the embeddings and of the residual stream.
        num_heads: attention heads.
        key_dim: size of each head.
        head_units: hidden width of the output head.
        projection_dim: `NeuralAttention`'s scoring width d' (ignored by the
            other kinds).
        scoring_units: `NeuralAttention`'s scoring hidden layers (ignored by
            the other kinds).
        learning_rate: Adam's (initial) learning rate.
        decay_steps: if given, cosine decay of the learning rate to 0 over
            this many steps.
        seed: if given, `seed_everything(seed)` runs first.

    Returns:
        A compiled `keras.Model` mapping `(B, seq_len)` int tokens to
        `(B, seq_len, num_classes)` logits.

    Example:

    ```python
    model = build_model("expressive", vocab_size=8, num_classes=8,
                        seq_len=15)
    ```
    """
    from keras_neural_attention.experiments.nearest_key import (
        seed_everything,
    )

    _check_attention(attention)
    if seed is not None:
        seed_everything(seed)
    tokens = keras.Input((seq_len,), dtype="int32", name="tokens")
    hidden = keras.layers.Embedding(
        vocab_size, embed_dim, name="token_embedding"
    )(tokens)
    hidden = PositionEmbedding(seq_len, name="position_embedding")(hidden)
    attended = _make_attention_layer(
        attention, num_heads, key_dim, projection_dim, scoring_units
    )(hidden, hidden, use_causal_mask=True)
    hidden = keras.layers.Add(name="residual")([hidden, attended])
    hidden = keras.layers.Dense(head_units, activation="relu", name="head")(
        hidden
    )
    logits = keras.layers.Dense(num_classes, name="logits")(hidden)
    model = keras.Model(tokens, logits, name=f"ladder_{attention}")
    schedule = learning_rate
    if decay_steps:
        schedule = keras.optimizers.schedules.CosineDecay(
            learning_rate, int(decay_steps)
        )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _split_seeds(level_index, seed):
    """Independent data seeds for the training and test sets."""
    state = np.random.SeedSequence([int(level_index), int(seed)])
    return [int(s) for s in state.generate_state(2)]


def train_one(level, attention, scale, seed=0, level_index=0):
    """Trains and evaluates one model on one level; returns its result row.

    Args:
        level: a `TaskLevel` (or `(modulus, lag_sets)` pair).
        attention: one of `ATTENTION_KINDS`.
        scale: a `LadderScale` or the name of one.
        seed: seeds the model (weights and shuffling); with `level_index`
            it also seeds the data, so that every attention kind sees the
            same sequences.
        level_index: position of the level in the ladder (data seeds).

    Returns:
        A dict with `level` (name), `level_index`, `modulus`, `lag_sets`,
        `tasks` (number of lag sets), `complexity`, `attention`, `layer`,
        `seed`, `test_accuracy` (on the determined test tokens), `solved`
        (test accuracy exactly 1), `train_accuracy`, `final_train_loss`,
        `trainable_params` and `train_time_s`.
    """
    level = as_level(level)
    _check_attention(attention)
    scale = get_scale(scale)
    train_seed, test_seed = _split_seeds(level_index, seed)
    train = next_token_arrays(
        make_sequences(scale.num_train, level, scale.seq_len, train_seed)
    )
    test = next_token_arrays(
        make_sequences(scale.num_test, level, scale.seq_len, test_seed)
    )
    keras.backend.clear_session()
    model = build_model(
        attention,
        vocab_size=level.vocab_size,
        num_classes=level.modulus,
        seq_len=scale.seq_len - 1,
        learning_rate=scale.learning_rate,
        decay_steps=scale.steps,
        seed=seed,
        **scale.model_config(),
    )
    start = time.perf_counter()
    history = model.fit(
        train[0],
        train[1],
        sample_weight=train[2],
        batch_size=scale.batch_size,
        epochs=scale.epochs,
        shuffle=True,
        verbose=0,
    )
    train_time = time.perf_counter() - start

    def accuracy(arrays):
        # The training batch size: no new compilation for full batches.
        logits = model.predict(
            arrays[0], batch_size=scale.batch_size, verbose=0
        )
        correct = np.argmax(logits, axis=-1) == arrays[1]
        scored = arrays[2] > 0
        return int(correct[scored].sum()), int(scored.sum())

    test_correct, test_total = accuracy(test)
    train_correct, train_total = accuracy(train)
    return {
        "level": level.name,
        "level_index": int(level_index),
        "modulus": level.modulus,
        "lag_sets": [list(lags) for lags in level.lag_sets],
        "tasks": level.num_tasks,
        "complexity": level.complexity,
        "attention": attention,
        "layer": LAYER_NAMES[attention],
        "seed": int(seed),
        "test_accuracy": test_correct / test_total,
        "solved": test_correct == test_total,
        "train_accuracy": train_correct / train_total,
        "final_train_loss": float(history.history["loss"][-1]),
        "trainable_params": int(
            sum(np.prod(w.shape) for w in model.trainable_weights)
        ),
        "train_time_s": train_time,
    }


def run_ladder(scale="default", attentions=ATTENTION_KINDS, seeds=None,
               log=None):
    """Trains every attention kind on every level with several seeds.

    All kinds see the same sequences for a given (level, seed), and start
    from the same seed.

    Args:
        scale: a name in `SCALES` (`"tiny"`, `"smoke"`, `"default"`,
            `"large"`) or a `LadderScale`.
        attentions: attention kinds to train, a subset of
            `ATTENTION_KINDS`.
        seeds: iterable of int seeds; defaults to `range(scale.seeds)`.
        log: optional callable receiving progress lines (e.g. `print`).

    Returns:
        A list of result rows of `train_one`, one per (level, kind, seed),
        each also carrying `scale` (its name).

    Example:

    ```python
    rows = run_ladder("smoke", log=print)
    print(format_table(summarize(rows)))
    ```
    """
    scale_obj = get_scale(scale)
    attentions = tuple(attentions)
    if not attentions:
        raise ValueError(
            "Argument `attentions` must name at least one of "
            f"{', '.join(repr(a) for a in ATTENTION_KINDS)}. "
            f"Received: attentions={attentions!r}"
        )
    for attention in attentions:
        _check_attention(attention)
    seeds = list(range(scale_obj.seeds)) if seeds is None else list(seeds)
    if not seeds or not all(_is_int(s) for s in seeds):
        raise ValueError(
            "Argument `seeds` must be a non-empty iterable of integers. "
            f"Received: seeds={seeds!r}"
        )
    rows = []
    for index, level in enumerate(scale_obj.levels):
        for attention in attentions:
            for seed in seeds:
                row = train_one(level, attention, scale_obj, seed, index)
                row["scale"] = scale_name(scale_obj, SCALES)
                rows.append(row)
                if log:
                    log(
                        f"{level.name:24s} {attention:12s} seed {seed}: "
                        f"test accuracy {row['test_accuracy']:.2%}, "
                        f"{row['train_time_s']:.1f} s"
                    )
    return rows


def summarize(rows):
    """Per (level, attention kind) statistics over seeds.

    Args:
        rows: result rows of `run_ladder`.

    Returns:
        A list of dicts in ladder order then `ATTENTION_KINDS` order, with
        `level`, `level_index`, `tasks`, `complexity`, `attention`, `seeds`,
        `mean_accuracy`, `std_accuracy` (population standard deviation over
        seeds), `min_accuracy`, `max_accuracy` and `solved_fraction` (the
        fraction of seeds with 100% test accuracy).
    """
    groups = {}
    for row in rows:
        groups.setdefault((row["level_index"], row["attention"]), []).append(
            row
        )
    summary = []
    order = {kind: i for i, kind in enumerate(ATTENTION_KINDS)}
    for (index, attention) in sorted(
        groups, key=lambda key: (key[0], order.get(key[1], len(order)))
    ):
        group = groups[(index, attention)]
        accuracies = np.array([r["test_accuracy"] for r in group])
        summary.append(
            {
                "level": group[0]["level"],
                "level_index": index,
                "tasks": group[0]["tasks"],
                "complexity": group[0]["complexity"],
                "attention": attention,
                "seeds": len(group),
                "mean_accuracy": float(accuracies.mean()),
                "std_accuracy": float(accuracies.std()),
                "min_accuracy": float(accuracies.min()),
                "max_accuracy": float(accuracies.max()),
                "solved_fraction": float(
                    np.mean([r["solved"] for r in group])
                ),
            }
        )
    return summary


def format_table(summary):
    """Markdown table of `summarize`'s output: one line per level, one
    column group per attention kind (mean ± std test accuracy, fraction of
    seeds at 100%)."""
    kinds = [k for k in ATTENTION_KINDS
             if any(s["attention"] == k for s in summary)]
    levels = {}
    for item in summary:
        levels.setdefault(item["level_index"], {})[item["attention"]] = item
    header = "| Level | log2 table size | " + " | ".join(
        f"{ATTENTION_TITLES[k]}: accuracy | {ATTENTION_TITLES[k]}: 100%"
        for k in kinds
    ) + " |"
    lines = [header, "|---|---:|" + "---:|---:|" * len(kinds)]
    for index in sorted(levels):
        by_kind = levels[index]
        first = next(iter(by_kind.values()))
        # A `|` in a multi-task name would split the markdown cell.
        cells = [
            first["level"].replace("|", "\\|"),
            f"{first['complexity']:.1f}",
        ]
        for kind in kinds:
            item = by_kind.get(kind)
            if item is None:
                cells += ["", ""]
                continue
            cells.append(
                f"{item['mean_accuracy']:.2%} ± {item['std_accuracy']:.2%}"
            )
            solved = round(item["solved_fraction"] * item["seeds"])
            cells.append(f"{solved}/{item['seeds']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(summary):
    """Whether Expressive Attention matched or beat dot-product attention at
    every level, and whether its margin grew with the complexity, computed
    from `summarize`'s output.

    EA >= DPA at a level means: mean test accuracy at least as high (within
    0.1 point) and a fraction of solved seeds at least as high.

    Returns:
        A one-paragraph string.
    """
    levels = {}
    for item in summary:
        levels.setdefault(item["level_index"], {})[item["attention"]] = item
    pairs = [
        (index, by_kind["expressive"], by_kind["dot_product"])
        for index, by_kind in sorted(levels.items())
        if "expressive" in by_kind and "dot_product" in by_kind
    ]
    if not pairs:
        return (
            "Expressive Attention and dot-product attention were not both "
            "trained: nothing to compare."
        )
    gaps = [100.0 * (ea["mean_accuracy"] - dpa["mean_accuracy"])
            for _, ea, dpa in pairs]
    holds = [
        gap >= -0.1 and ea["solved_fraction"] >= dpa["solved_fraction"]
        for gap, (_, ea, dpa) in zip(gaps, pairs)
    ]
    failed = [pair[1]["level"] for pair, ok in zip(pairs, holds) if not ok]
    gap_text = ", ".join(
        f"{ea['level']}: {gap:+.1f}" for gap, (_, ea, _) in zip(gaps, pairs)
    )
    if all(holds):
        head = (
            f"EA >= DPA held at all {len(pairs)} levels (mean test accuracy "
            "and fraction of seeds at 100%)."
        )
    else:
        head = (
            f"EA >= DPA did NOT hold at {len(failed)} of {len(pairs)} levels "
            f"({'; '.join(failed)})."
        )
    # The trend: single-task rungs in order of complexity.
    single = sorted(
        (ea["complexity"], gap)
        for gap, (_, ea, _) in zip(gaps, pairs)
        if ea["tasks"] == 1
    )
    single_gaps = [gap for _, gap in single]
    widening = all(b >= a - 0.1 for a, b in zip(single_gaps, single_gaps[1:]))
    if len(single_gaps) < 2:
        trend = "Fewer than two single-task levels: no trend."
    elif widening and single_gaps[-1] > single_gaps[0] + 0.1:
        trend = (
            "On the single-task levels the margin never shrank as the "
            "complexity grew, and grew overall."
        )
    else:
        trend = (
            "On the single-task levels, in order of complexity, the margin "
            "did not grow steadily."
        )
    seeds = pairs[0][1]["seeds"]
    return (
        f"{head} {trend} EA - DPA mean test accuracy in points: {gap_text}. "
        f"{seeds} seed(s) per level: differences of a few points are within "
        "seed-to-seed variation."
    )


def plot_ladder(summary, ax=None):
    """Plots mean test accuracy (± std, error bars) and the fraction of
    seeds at 100% per level, one line per attention kind.

    Args:
        summary: the output of `summarize`.
        ax: optional sequence of two matplotlib axes; new ones otherwise.

    Returns:
        The matplotlib `Figure`.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    else:
        fig = ax[0].figure
    level_names = {}
    for item in summary:
        level_names[item["level_index"]] = item["level"]
    indices = sorted(level_names)
    position = {index: i for i, index in enumerate(indices)}
    kinds = [k for k in ATTENTION_KINDS
             if any(s["attention"] == k for s in summary)]
    width = 0.8 / max(1, len(kinds))
    for k, kind in enumerate(kinds):
        items = [s for s in summary if s["attention"] == kind]
        x = np.array([position[s["level_index"]] for s in items])
        ax[0].errorbar(
            x + (k - (len(kinds) - 1) / 2) * 0.08,
            [s["mean_accuracy"] for s in items],
            yerr=[s["std_accuracy"] for s in items],
            marker="o", capsize=3, label=ATTENTION_TITLES[kind],
        )
        ax[1].bar(
            x + (k - (len(kinds) - 1) / 2) * width,
            [s["solved_fraction"] for s in items],
            width=width, label=ATTENTION_TITLES[kind],
        )
    for axis, label in zip(
        ax, ("test accuracy\n(mean ± std over seeds)",
             "fraction of seeds\nat 100% test accuracy")
    ):
        axis.set_xticks(range(len(indices)))
        axis.set_xticklabels(
            [level_names[i] for i in indices], rotation=30, ha="right"
        )
        axis.set_ylabel(label)
        axis.set_xlabel("ladder level (in the order of the scale)")
        axis.set_ylim(0, 1.05)
    ax[0].legend(loc="lower left")
    fig.tight_layout()
    return fig


def format_report(rows, metadata=None):
    """Title, setup, table and verdict as one markdown document."""
    summary = summarize(rows)
    first = rows[0] if rows else {}
    scale = SCALES.get(first.get("scale"))
    parts = [
        "# Complexity ladder: dot-product vs Expressive vs Neural Attention",
        "Next-token prediction of `x_t = (sum of x_{t-tau}, tau in S) mod "
        "N`; multi-task levels start with a task token selecting S. One "
        "model (embedding + positional embedding + one causal attention "
        "layer with residual + ReLU head) per kind, identical except for "
        "the attention layer. Accuracy on the determined tokens of fresh "
        "test sequences; \"100%\" counts the seeds that predicted every "
        "one of them.",
    ]
    if scale is not None:
        parts.append(
            f"Scale `{first.get('scale')}`: "
            + ", ".join(
                f"{key} `{value}`"
                for key, value in dataclasses.asdict(scale).items()
                if key != "levels"
            )
            + "."
        )
    parts.append(format_table(summary))
    parts.append(f"**Verdict:** {verdict(summary)}")
    if metadata:
        parts.append(
            "Run: "
            + ", ".join(f"{key} `{value}`" for key, value in metadata.items())
        )
    return "\n\n".join(parts) + "\n"


def write_results(rows, output_dir, metadata=None,
                  stem="complexity-ladder"):
    """Writes the rows, summary, verdict and metadata as JSON and the
    report as markdown.

    Args:
        rows: result rows of `run_ladder`.
        output_dir: directory to write (created if needed).
        metadata: dict of run information (backend, hardware, date, ...);
            defaults to `environment.environment_info()`.
        stem: file name without extension.

    Returns:
        `{"json": path, "markdown": path}`.
    """
    from keras_neural_attention.experiments.environment import (
        environment_info,
    )

    if metadata is None:
        metadata = environment_info()
    summary = summarize(rows)
    first = rows[0] if rows else {}
    payload = {
        "experiment": "complexity ladder",
        "scale": first.get("scale"),
        "scale_config": scale_config(first.get("scale"), SCALES),
        "metadata": metadata,
        "verdict": verdict(summary),
        "summary": summary,
        "rows": rows,
    }
    return write_json_and_markdown(
        payload, format_report(rows, metadata), output_dir, stem)


def main(argv=None):
    """Command line: runs the ladder at a scale and writes result files."""
    def report(rows):
        summary = summarize(rows)
        return f"{format_table(summary)}\n{verdict(summary)}"

    return run_cli(
        argv,
        prog="python -m keras_neural_attention.experiments.complexity_ladder",
        description=(
            "Trains dot-product, Expressive and Neural Attention models on "
            "a ladder of synthetic next-token tasks and writes "
            "<stem>.json and <stem>.md. Set KERAS_BACKEND to choose the "
            "backend."
        ),
        scales=SCALES,
        default_output_dir="results/complexity-ladder",
        stem_prefix="complexity-ladder",
        run=run_ladder,
        write_results=write_results,
        report=report,
    )


if __name__ == "__main__":
    raise SystemExit(main())
