"""Training recipes as data, and the released code's optimizer, schedules,
augmentations and initialization built from them.

- `LanguageModelRecipe`, `VisionRecipe`: frozen dataclasses holding every
  choice of one run (model sizes, data, optimizer, schedule, length).
- `weight_decay_variables(model)`: the variables the released code decays
  (dense kernels, the untied output head and Neural Attention's scoring
  kernels; not biases, norms, embeddings, the class token or the patch
  convolution).
- `build_optimizer(recipe, model, steps_per_epoch)`: AdamW with betas
  `(beta_1, beta_2)`, decay on those variables only, global clipnorm.
- `learning_rate_schedule(...)`: constant (released code) or linear
  warm-up then cosine decay to 0 (`keras.optimizers.schedules.CosineDecay`).
- `augmentation_layers(name)`: `"released_code"` (`vision_augmentation()`),
  `"crop_flip"` (reflect-padded random crop of 4 pixels and horizontal
  flip) or None.
- `apply_pytorch_initialization(model, seed)`: PyTorch's default
  initialization on a built model (`initialization="pytorch"`).
"""

import dataclasses
import math

import numpy as np

INITIALIZATIONS = ("keras", "pytorch")
SCHEDULES = ("constant", "warmup_cosine")
AUGMENTATIONS = (None, "released_code", "crop_flip")


@dataclasses.dataclass(frozen=True)
class LanguageModelRecipe:
    """A language-model run (Table 2, 5, 6, 7).

    Attributes:
        dataset: `"wikitext-2"` or `"wikitext-103"`.
        train_split, eval_split: WikiText splits to train on and to report
            (the `cpu`/`smoke` scales train on WikiText-2 `valid` and test
            on `test`: WikiText-2's train split is not on these machines).
        max_train_lines, max_eval_lines: int or None, a prefix of the
            split's lines.
        vocabulary_size: size of the vocabulary learned on the training
            split when `vocabulary_file` is None.
        vocabulary_file: optional WordPiece vocabulary (e.g.
            `bert-base-cased`'s `vocab.txt`, 28,996 tokens, as the paper).
        context: tokens per example (1024 in the paper; blocks hold
            `context + 1`).
        num_layers, num_heads, hidden_dim, intermediate_dim, dropout: the
            `NeuralAttentionLMBackbone` sizes.
        attention_layers: blocks with Neural Attention in the Neural model
            (`(0,)`: first layer only; `"all"`: every layer).
        projection_dim: Neural Attention's d' (None: head width // 32).
        learning_rate, beta_1, beta_2, weight_decay, global_clipnorm:
            AdamW.
        schedule: `"constant"` (released code) or `"warmup_cosine"`.
        warmup_steps: linear warm-up steps of `"warmup_cosine"`.
        batch_size: sequences per step (released code: 1).
        steps: optimizer steps (released code: 2,000,010).
        validation_every: steps between validations (one Keras epoch).
        eval_batch_size: windows per evaluation batch.
        released_code_stride: stride of the released code's perplexity
            windows (512 for context 1024).
        initialization: `"keras"` (Glorot) or `"pytorch"` (the released
            code's defaults; see `apply_pytorch_initialization`).
        seeds: seeds run per mechanism.
    """

    dataset: str = "wikitext-103"
    train_split: str = "train"
    eval_split: str = "test"
    max_train_lines: int = None
    max_eval_lines: int = None
    vocabulary_size: int = 28996
    vocabulary_file: str = None
    context: int = 1024
    num_layers: int = 8
    num_heads: int = 8
    hidden_dim: int = 512
    intermediate_dim: int = 1024
    dropout: float = 0.1
    attention_layers: object = (0,)
    projection_dim: int = None
    learning_rate: float = 3e-4
    beta_1: float = 0.9
    beta_2: float = 0.95
    weight_decay: float = 0.1
    global_clipnorm: float = 1.0
    schedule: str = "constant"
    warmup_steps: int = 0
    batch_size: int = 1
    steps: int = 2_000_010
    validation_every: int = 10_000
    eval_batch_size: int = 8
    released_code_stride: int = 512
    initialization: str = "keras"
    seeds: tuple = (0,)


@dataclasses.dataclass(frozen=True)
class VisionRecipe:
    """A ViT classification run (Tables 3, 4, 5, 6, 7).

    Attributes:
        dataset: `"cifar10"` or `"cifar100"`.
        source: `"npz"` (the JPEG copy), `"archive"` or `"tfds"` (see
            `data.load_cifar`).
        num_train, num_test: int or None, class-balanced prefixes.
        image_size: images are used at this size (32: no resizing; the
            released code resizes to 224).
        patch_size, num_layers, num_heads, hidden_dim, intermediate_dim,
            dropout, position_embedding, normalize_first: the
            `VisionTransformerBackbone`.
        attention_layers: blocks with Neural Attention (`(0,)` or `"all"`).
        projection_dim: d' (None: head width // 32).
        epochs, batch_size: training length.
        learning_rate, beta_1, beta_2, weight_decay, global_clipnorm:
            AdamW.
        schedule: `"constant"` or `"warmup_cosine"`.
        warmup_epochs: linear warm-up of `"warmup_cosine"`.
        augmentation: `"released_code"`, `"crop_flip"` or None.
        initialization: `"keras"` or `"pytorch"`.
        seeds: seeds run per mechanism.
    """

    dataset: str = "cifar10"
    source: str = "npz"
    num_train: int = None
    num_test: int = None
    image_size: int = 224
    patch_size: int = 8
    num_layers: int = 12
    num_heads: int = 8
    hidden_dim: int = 768
    intermediate_dim: int = 1024
    dropout: float = 0.1
    position_embedding: str = "released_code"
    normalize_first: bool = False
    attention_layers: object = (0,)
    projection_dim: int = None
    epochs: int = 350
    batch_size: int = 1
    learning_rate: float = 5e-5
    beta_1: float = 0.9
    beta_2: float = 0.95
    weight_decay: float = 0.1
    global_clipnorm: float = 1.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    augmentation: str = "released_code"
    initialization: str = "keras"
    seeds: tuple = (0,)


def recipe_dict(recipe):
    """The recipe's fields, JSON-ready (tuples become lists)."""
    values = dataclasses.asdict(recipe)
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in values.items()
    }


def neural_layers(attention_layers, num_layers):
    """Block indices of `attention_layers` (`"all"` or a sequence)."""
    if attention_layers == "all":
        return tuple(range(num_layers))
    if isinstance(attention_layers, (list, tuple)) and all(
        isinstance(i, int) and -num_layers <= i < num_layers
        for i in attention_layers
    ):
        return tuple(i % num_layers for i in attention_layers)
    raise ValueError(
        "Argument `attention_layers` must be 'all' or a sequence of block "
        f"indices in [-{num_layers}, {num_layers}). "
        f"Received: attention_layers={attention_layers!r}"
    )


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Argument `{name}` must be one of "
            f"{', '.join(repr(c) for c in choices)}. "
            f"Received: {name}={value!r}"
        )


def learning_rate_schedule(learning_rate, schedule="constant",
                           total_steps=None, warmup_steps=0):
    """The learning rate of `keras.optimizers.AdamW`.

    Args:
        learning_rate: float. The constant rate, or the peak after warm-up.
        schedule: `"constant"` or `"warmup_cosine"` (linear warm-up from 0
            over `warmup_steps`, then cosine decay to 0 at `total_steps`).
        total_steps: int, needed by `"warmup_cosine"`.
        warmup_steps: int.

    Returns:
        A float or a `keras.optimizers.schedules.CosineDecay`.
    """
    _check_choice("schedule", schedule, SCHEDULES)
    if schedule == "constant":
        return float(learning_rate)
    import keras

    if not total_steps or total_steps <= warmup_steps:
        raise ValueError(
            "Argument `total_steps` must exceed `warmup_steps` for "
            f"'warmup_cosine'. Received: total_steps={total_steps!r}, "
            f"warmup_steps={warmup_steps!r}"
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=int(total_steps - warmup_steps),
        alpha=0.0,
        warmup_target=float(learning_rate),
        warmup_steps=int(warmup_steps),
    )


def _is_decayed(variable):
    """The released code's rule: `nn.Linear` weights decay; biases,
    LayerNorm, `nn.Embedding`, the class token and the patch `Conv2d` do
    not."""
    path = variable.path
    name = path.split("/")[-1]
    if "patch_projection" in path:
        return False
    if name == "reverse_embeddings":  # the untied output head (a Linear)
        return True
    return "kernel" in name


def weight_decay_variables(model):
    """The trainable variables the released code decays (see the module
    docstring), in `model.trainable_variables` order."""
    return [v for v in model.trainable_variables if _is_decayed(v)]


def build_optimizer(recipe, model, steps_per_epoch):
    """AdamW of the recipe, decaying `weight_decay_variables(model)` only.

    Args:
        recipe: a `LanguageModelRecipe` or `VisionRecipe`.
        model: the built model to be trained.
        steps_per_epoch: optimizer steps per Keras epoch (for the schedule).

    Returns:
        A `keras.optimizers.AdamW`.
    """
    import keras

    if isinstance(recipe, LanguageModelRecipe):
        total_steps = recipe.steps
        warmup = recipe.warmup_steps
    else:
        total_steps = recipe.epochs * steps_per_epoch
        warmup = int(round(recipe.warmup_epochs * steps_per_epoch))
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate_schedule(
            recipe.learning_rate, recipe.schedule, total_steps, warmup),
        weight_decay=recipe.weight_decay,
        beta_1=recipe.beta_1,
        beta_2=recipe.beta_2,
        global_clipnorm=recipe.global_clipnorm,
    )
    decayed = {id(v) for v in weight_decay_variables(model)}
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in model.trainable_variables
                  if id(v) not in decayed]
    )
    return optimizer


def augmentation_layers(name, seed=None):
    """Training-only image augmentation on `[-1, 1]` pixels.

    Args:
        name: `"released_code"` (`models.vision_augmentation()`: resized
            crop, flip, colour jitter, rotation), `"crop_flip"` (random
            shifts of up to 4 pixels of 32 with reflected borders and
            nearest-pixel sampling, i.e. a random crop after reflect-padding
            by 4, and a horizontal flip) or None.
        seed: optional int.

    Returns:
        A `keras.Sequential` or None.
    """
    _check_choice("augmentation", name, AUGMENTATIONS)
    if name is None:
        return None
    import keras

    if name == "released_code":
        from keras_neural_attention.models.vit import vision_augmentation

        return vision_augmentation(seed=seed)
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(
                4 / 32, 4 / 32, fill_mode="reflect",
                interpolation="nearest", seed=seed,
            ),
            keras.layers.RandomFlip(
                "horizontal", seed=None if seed is None else seed + 1),
        ],
        name="augmentation",
    )


def _fan_in(path, shape):
    """Fan-in of a kernel as PyTorch counts it for the matching
    `nn.Linear` / `nn.Conv2d`."""
    if len(shape) == 3 and path.split("/")[-2] == "attention_output":
        return int(shape[0] * shape[1])  # (heads, head_dim, out)
    if len(shape) == 3:
        return int(shape[0])  # (in, heads, head_dim)
    if len(shape) == 4:
        return int(np.prod(shape[:-1]))  # conv (kh, kw, in, out)
    return int(shape[0])


def apply_pytorch_initialization(model, seed=0):
    """Re-initializes a built model as PyTorch's defaults would.

    Kernels (and an untied output head): `U(-1/sqrt(fan_in),
    1/sqrt(fan_in))` (kaiming-uniform with `a = sqrt(5)`); their biases:
    the same bound from the kernel's fan-in; token embeddings `N(0, 1)`;
    the class token zeros; LayerNorm `gamma = 1`, `beta = 0` (unchanged).
    Our Glorot default changes the input scale of the embedding sum
    relative to the positional encoding by about 35x; this restores the
    released code's scale.

    Args:
        model: a built Keras model (variables exist).
        seed: int seed.

    Returns:
        The number of variables re-initialized.
    """
    rng = np.random.default_rng(seed)
    variables = {v.path: v for v in model.weights}
    changed = 0
    for path, variable in variables.items():
        name = path.split("/")[-1]
        shape = tuple(variable.shape)
        if name == "embeddings":
            value = rng.standard_normal(shape)
        elif name == "class_token":
            value = np.zeros(shape)
        elif name == "reverse_embeddings" or "kernel" in name:
            bound = 1.0 / math.sqrt(_fan_in(path, shape))
            value = rng.uniform(-bound, bound, shape)
        elif "bias" in name:
            kernel_path = path[: -len(name)] + name.replace(
                "bias", "kernel")
            if name == "reverse_bias":
                kernel_path = path[: -len(name)] + "reverse_embeddings"
            kernel = variables.get(kernel_path)
            if kernel is None:
                continue
            bound = 1.0 / math.sqrt(_fan_in(kernel_path,
                                             tuple(kernel.shape)))
            value = rng.uniform(-bound, bound, shape)
        else:
            continue
        variable.assign(value.astype(variable.dtype))
        changed += 1
    return changed


@dataclasses.dataclass(frozen=True)
class TableScale:
    """What one table runs at one scale.

    Attributes:
        language: the `LanguageModelRecipe` (None: the table has no
            language-model run at this scale).
        vision: the `VisionRecipe` (None: no vision run).
        projection_dims: d' values of the projection-width table.
        sequence_lengths: sequence lengths T of the cost sweeps.
        cost_batch_size: batch of the cost measurements.
        cost_repeats: timed calls per cost measurement.
        isolate: measure cost (and peak memory) in fresh child processes.
        note: what a reader must know about this scale.
    """

    language: LanguageModelRecipe = None
    vision: VisionRecipe = None
    projection_dims: tuple = (1, 2, 4, 8, 16)
    sequence_lengths: tuple = ()
    cost_batch_size: int = 1
    cost_repeats: int = 3
    isolate: bool = True
    note: str = ""


def scale_dict(scale):
    """A `TableScale` as JSON-ready dicts."""
    return {
        "language": None if scale.language is None else recipe_dict(
            scale.language),
        "vision": None if scale.vision is None else recipe_dict(
            scale.vision),
        "projection_dims": list(scale.projection_dims),
        "sequence_lengths": list(scale.sequence_lengths),
        "cost_batch_size": scale.cost_batch_size,
        "cost_repeats": scale.cost_repeats,
        "isolate": scale.isolate,
        "note": scale.note,
    }
