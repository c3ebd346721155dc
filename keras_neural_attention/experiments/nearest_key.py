"""Nearest-key retrieval: a synthetic task whose query/key relation is
nonlinear, and the two models the main job compares on it.

Every example has one query token carrying a scalar `r ~ U[0, 1]` and
`num_items` memory tokens, each carrying a scalar key `k_j ~ U[0, 1]` and a
one-hot class label `y_j` (uniform over `num_classes`). The target is the
label of the memory token whose key is nearest to `r`:

```
target = y_{j*},   j* = argmin_j |r - k_j|
```

The model embeds both kinds of token with a linear `Dense` layer, lets the
query token cross-attend to the memory tokens with ONE attention layer
(`T = 1` query, `S = num_items` keys) and classifies the attended output
with a `Dense` layer. Only the attention layer differs between the two
models:

- `"dot_product"`: `keras.layers.MultiHeadAttention`. Its projections are
  linear, so for a fixed query the score `q . k_j` is an affine function of
  `k_j` (plus a per-label term): `s_j = k_j * slope(r) + bias(r, y_j)`. It is
  monotone in `k_j` and its softmax can concentrate on the smallest or the
  largest key, never on the key nearest to a query in the middle.
- `"neural"`: `NeuralAttention`. Its score `w . act(a(r) + c(k_j, y_j)) + b`
  is a small ReLU network of the pair; two hidden units already express
  `-|r - k_j| = -relu(r - k_j) - relu(k_j - r)`.

The task is designed to separate the two scoring functions: with nonlinear
(MLP) embeddings of `r` and `k_j`, a dot product of features could learn
"nearness" as well. It needs no download.
"""

import random

import keras
import numpy as np

from keras_neural_attention.layers import NeuralAttention

ATTENTION_KINDS = ("dot_product", "neural")

# The model used by the comparison. `projection_dim` and `hidden_units` are
# set explicitly: the layer's defaults (`d' = max(1, key_dim // 32)`, hidden
# `(d', max(1, d' // 2))`) are sized for transformer widths and would give a
# 1-unit network at `key_dim=16`. `d' = 4` and one hidden layer of 8 ReLU
# units is the paper's single-hidden-layer formula with a little headroom
# over the 2 units that `-|r - k|` needs; it adds about 200 parameters to
# the dot-product model.
DEFAULT_MODEL_CONFIG = {
    "embed_dim": 32,
    "num_heads": 2,
    "key_dim": 16,
    "projection_dim": 4,
    "hidden_units": (8,),
}

LAYER_NAMES = {
    "dot_product": "keras.layers.MultiHeadAttention",
    "neural": "NeuralAttention",
}


def _check_attention(attention):
    if attention not in ATTENTION_KINDS:
        raise ValueError(
            "Argument `attention` must be one of "
            f"{', '.join(repr(a) for a in ATTENTION_KINDS)}. "
            f"Received: attention={attention!r}"
        )


def seed_everything(seed):
    """Seeds Python, NumPy and the backend, so that weight initialization and
    the shuffling done by `Model.fit` are reproducible.

    Under TensorFlow this is `keras.utils.set_random_seed`. Under JAX and
    PyTorch it seeds the same generators without importing TensorFlow (which
    `keras.utils.set_random_seed` imports whenever it is installed, adding
    seconds of start-up and hundreds of MiB to the process being measured):
    Keras initializers without a seed draw theirs from Python's `random`.
    """
    seed = int(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)


def nearest_key_index(query, keys):
    """Index of the key nearest to each query (ties: the lowest index).

    Args:
        query: `(N,)` scalars `r`.
        keys: `(N, S)` scalars `k_j`.

    Returns:
        `(N,)` int array of `argmin_j |r - k_j|`.
    """
    query = np.asarray(query, dtype="float64")
    keys = np.asarray(keys, dtype="float64")
    return np.argmin(np.abs(keys - query[:, None]), axis=1)


def make_dataset(num_examples, num_items=16, num_classes=8, seed=0):
    """Draws `num_examples` nearest-key retrieval examples.

    Deterministic given its arguments (a NumPy `default_rng(seed)`).

    Args:
        num_examples: number of examples N.
        num_items: number of memory tokens S per example.
        num_classes: number of labels C.
        seed: int seed.

    Returns:
        `(inputs, labels)`: `inputs` is a dict of float32 arrays
        `{"query": (N, 1, 1), "memory": (N, S, 1 + C)}`; the query token is
        `[r]`, memory token j is `[k_j, one_hot(y_j)]`. `labels` is an
        `(N,)` int32 array, the label of the memory token nearest to `r`.
    """
    if num_examples < 1 or num_items < 1 or num_classes < 2:
        raise ValueError(
            "Need num_examples >= 1, num_items >= 1 and num_classes >= 2. "
            f"Received: num_examples={num_examples}, num_items={num_items}, "
            f"num_classes={num_classes}"
        )
    rng = np.random.default_rng(seed)
    query = rng.uniform(size=(num_examples,)).astype("float32")
    keys = rng.uniform(size=(num_examples, num_items)).astype("float32")
    item_labels = rng.integers(0, num_classes, size=(num_examples, num_items))
    nearest = nearest_key_index(query, keys)
    labels = item_labels[np.arange(num_examples), nearest].astype("int32")
    one_hot = np.eye(num_classes, dtype="float32")[item_labels]
    memory = np.concatenate([keys[..., None], one_hot], axis=-1)
    inputs = {"query": query[:, None, None], "memory": memory}
    return inputs, labels


def make_attention_layer(attention, num_heads, key_dim, projection_dim,
                         hidden_units, name="attention"):
    """The attention layer of one model: `MultiHeadAttention` or
    `NeuralAttention` with the same heads and key size."""
    _check_attention(attention)
    if attention == "dot_product":
        return keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=key_dim, name=name
        )
    return NeuralAttention(
        num_heads=num_heads,
        key_dim=key_dim,
        projection_dim=projection_dim,
        hidden_units=tuple(hidden_units),
        name=name,
    )


def build_model(
    attention="neural",
    num_items=16,
    num_classes=8,
    embed_dim=DEFAULT_MODEL_CONFIG["embed_dim"],
    num_heads=DEFAULT_MODEL_CONFIG["num_heads"],
    key_dim=DEFAULT_MODEL_CONFIG["key_dim"],
    projection_dim=DEFAULT_MODEL_CONFIG["projection_dim"],
    hidden_units=DEFAULT_MODEL_CONFIG["hidden_units"],
    learning_rate=3e-3,
    decay_steps=None,
    seed=None,
    compile=True,
):
    """The nearest-key model with a dot-product or a Neural Attention layer.

    `Dense(embed_dim)` embeddings of the query and memory tokens, one
    cross-attention layer (the query token attends to the memory tokens)
    and a `Dense(num_classes)` classifier on its output. The two kinds are
    identical except for the layer named `"attention"`.

    Args:
        attention: `"neural"` (`NeuralAttention`) or `"dot_product"`
            (`keras.layers.MultiHeadAttention`).
        num_items: number of memory tokens S.
        num_classes: number of labels C.
        embed_dim: width of the token embeddings.
        num_heads: attention heads.
        key_dim: size of each head.
        projection_dim: `NeuralAttention`'s scoring width d' (ignored for
            `"dot_product"`).
        hidden_units: `NeuralAttention`'s scoring hidden layers (ignored for
            `"dot_product"`).
        learning_rate: Adam's (initial) learning rate.
        decay_steps: if given, the learning rate follows a cosine decay to 0
            over this many steps.
        seed: if given, `seed_everything(seed)` runs first, so the initial
            weights are reproducible.
        compile: compile the model (Adam, sparse categorical cross-entropy
            on logits, accuracy).

    Returns:
        A `keras.Model` with inputs `{"query", "memory"}` (see
        `make_dataset`) and `(N, num_classes)` logits.
    """
    _check_attention(attention)
    if seed is not None:
        seed_everything(seed)
    query_in = keras.Input((1, 1), name="query")
    memory_in = keras.Input((num_items, 1 + num_classes), name="memory")
    query = keras.layers.Dense(embed_dim, name="query_embedding")(query_in)
    memory = keras.layers.Dense(embed_dim, name="memory_embedding")(memory_in)
    attended = make_attention_layer(
        attention, num_heads, key_dim, projection_dim, hidden_units
    )(query, memory)
    features = keras.layers.Flatten(name="flatten")(attended)
    logits = keras.layers.Dense(num_classes, name="classifier")(features)
    model = keras.Model(
        {"query": query_in, "memory": memory_in},
        logits,
        name=f"nearest_key_{attention}",
    )
    if compile:
        schedule = learning_rate
        if decay_steps:
            schedule = keras.optimizers.schedules.CosineDecay(
                learning_rate, int(decay_steps)
            )
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    return model


def count_trainable_params(model):
    """Number of trainable scalars of a built model."""
    return int(
        sum(np.prod(w.shape, dtype="int64") for w in model.trainable_weights)
    )


def attention_weights(model, inputs, batch_size=1024):
    """Attention probabilities of a `build_model` model on `inputs`.

    Args:
        model: a model from `build_model` (trained or not).
        inputs: the inputs dict of `make_dataset`.
        batch_size: examples per forward pass.

    Returns:
        `(N, num_heads, S)` float32 NumPy array: for every example and head,
        the softmax weights of the query over the memory tokens.
    """
    query_embedding = model.get_layer("query_embedding")
    memory_embedding = model.get_layer("memory_embedding")
    layer = model.get_layer("attention")
    pieces = []
    num_examples = len(inputs["query"])
    for start in range(0, num_examples, batch_size):
        stop = min(start + batch_size, num_examples)
        query = query_embedding(inputs["query"][start:stop])
        memory = memory_embedding(inputs["memory"][start:stop])
        _, scores = layer(query, memory, return_attention_scores=True)
        pieces.append(
            keras.ops.convert_to_numpy(scores)[:, :, 0, :].astype("float32")
        )
    return np.concatenate(pieces, axis=0)


def load_trained_model(row):
    """Rebuilds a model trained by `run_comparison(..., weights_dir=...)`.

    Args:
        row: one result row of `run_comparison` with a `"weights_path"`.

    Returns:
        The `keras.Model` with the trained weights, compiled with the loss
        and metric (not the optimizer state) of training.
    """
    path = row.get("weights_path")
    if not path:
        raise ValueError(
            "This result row has no `weights_path`: pass `weights_dir` to "
            "`run_comparison` to keep the trained weights."
        )
    config = dict(row["model_config"])
    # Load into an uncompiled model (the file also holds the optimizer's
    # state, which is of no use here), then compile it for `evaluate`.
    model = build_model(row["attention"], compile=False, **config)
    model.load_weights(path)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model
