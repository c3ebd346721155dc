"""The Neural Attention paper's language model as a KerasHub backbone.

`NeuralAttentionLMBackbone` is the released code's WikiText-103 model
(post-LN decoder blocks, ReLU feed-forward of width 1024, scaled sinusoidal
positions, untied output head with a bias) with every size an argument. It
exposes the attributes KerasHub's GPT-2 task reads; its own task is
`NeuralAttentionCausalLM` (GPT-2's cached generation, KerasHub presets), with
`NeuralAttentionCausalLMPreprocessor` and `NeuralAttentionLMTokenizer`.
"""

import sys

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.models.biased_reversible_embedding import (
    BiasedReversibleEmbedding,
)
from keras_neural_attention.layers.scaled_sinusoidal_encoding import (
    FREQUENCIES,
)
from keras_neural_attention.layers.scaled_sinusoidal_encoding import (
    ScaledSinusoidalEncoding,
)
from keras_neural_attention.models.transformer_decoder import ATTENTION_TYPES
from keras_neural_attention.models.transformer_decoder import (
    TransformerDecoder,
)

# The WikiText-103 configuration of the released code
# (`SimpleTransformer(dim=512, num_unique_tokens=28996, num_layers=8,
# heads=8, max_seq_len=1024)`, FFN 1024, dropout 0.1, bert-base-cased vocab).
PAPER_LM_CONFIG = {
    "vocabulary_size": 28996,
    "num_layers": 8,
    "num_heads": 8,
    "hidden_dim": 512,
    "intermediate_dim": 1024,
    "max_sequence_length": 1024,
    "dropout": 0.1,
}

# Parameter counts of the released PyTorch models (neural-attention-paper.md
# §3): baseline (8 dot-product layers) and Neural (first layer Neural
# Attention with d' = 2, as at the code's HEAD `f6572f5`).
RELEASED_CODE_PARAMETER_COUNTS = {
    "dot_product": 46_527_812,
    "neural": 46_528_087,
}


def _is_positive_int(value):
    return (
        isinstance(value, int) and not isinstance(value, bool) and value > 0
    )


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class NeuralAttentionLMBackbone(keras_hub.models.Backbone):
    """The Neural Attention paper's decoder-only language model backbone.

    Token ids go through an embedding, the released code's scaled sinusoidal
    positions (`x + dropout(sqrt(d) x + pe)`), `num_layers` post-LN
    `TransformerDecoder` blocks (ReLU feed-forward) and a final layer
    normalization. `attention_layers` lists the blocks whose self-attention
    is `attention` (Neural Attention in the first block only, by default);
    the others use KerasHub's dot-product attention. With
    `attention="dot_product"` this is the paper's baseline (the "dot-product
    twin").

    The backbone is a functional model with the inputs and attributes of
    `keras_hub.models.GPT2Backbone` (`token_embedding`,
    `position_embedding`, `embeddings_add`, `embeddings_dropout`,
    `transformer_layers`, `layer_norm`, `num_layers`, `num_heads`,
    `hidden_dim`, ...); its causal-LM task is `NeuralAttentionCausalLM`
    (GPT-2's task logic; `keras_hub.models.GPT2CausalLM(backbone,
    preprocessor=None)` runs it too, but only our task is found by
    `keras_hub.models.CausalLM.from_preset`): `token_embedding` is a
    `BiasedReversibleEmbedding` whose reverse projection is the untied
    output head with a bias (`tie_weights=False`, `use_output_bias=True`, as
    in the released code). The cached Neural Attention layer keeps
    KerasHub's cache layout, so GPT-2's cached `generate()` runs unchanged.

    Differences from the released code, by design: the baseline's
    positional input `(1 + sqrt(d)) x + pe` is used for both models (the
    released Neural model's HEAD adds `x` twice); the Q/K/V projections are
    three matrices instead of one interleaved `to_qkv` (same parameters);
    initializers are Keras' (`kernel_initializer`, `embeddings_initializer`)
    rather than PyTorch's defaults. Parameter counts equal the released
    code's (see `paper_lm_parameter_count`).

    Args:
        vocabulary_size: int. Number of tokens (28996 in the paper:
            `bert-base-cased`).
        num_layers: int. Number of decoder blocks (8).
        num_heads: int. Attention heads per block (8).
        hidden_dim: int. Model width (512).
        intermediate_dim: int. Feed-forward width (1024).
        max_sequence_length: int. Longest sequence (1024).
        dropout: float. Dropout of the positional encoding, the residual
            branches and the feed-forward network (0.1).
        attention: `"neural"` (default), `"expressive"` or `"dot_product"`,
            the self-attention of the blocks in `attention_layers`.
        attention_layers: sequence of block indices using `attention`;
            defaults to `(0,)`, the first block. Negative indices count from
            the end.
        projection_dim: optional int, Neural Attention's d' (defaults to
            `head_dim // 32`, 2 for the paper).
        hidden_units: optional tuple, Neural Attention's hidden widths
            (defaults to `(d', d' // 2)`).
        attention_dropout: float. Dropout on attention probabilities (0: the
            released code has none in Neural Attention).
        use_attention_bias: bool. Biases in the Q/K/V/output projections
            (False, as in the released code).
        positional_encoding: `"released_code"` (default) or `"standard"`
            sinusoid frequencies (see `ScaledSinusoidalEncoding`).
        tie_weights: bool. Reuse the token embeddings as the output head
            (False in the paper).
        use_output_bias: bool. Bias on the output logits (True in the
            paper).
        layer_norm_epsilon: float. Epsilon of every layer normalization.
        kernel_initializer: initializer of the dense and attention kernels.
        embeddings_initializer: initializer of the token embeddings and of
            an untied output head.
        dtype: dtype policy of the model.
        **kwargs: arguments of `keras.Model` (`name`, ...).

    Call arguments:
        - inputs: dict with `"token_ids"` (int, `(B, T)`) and
          `"padding_mask"` (int or bool, `(B, T)`, 1 for real tokens).

    Returns:
        Hidden states `(B, T, hidden_dim)` after the final layer norm; the
        task computes logits with `token_embedding(x, reverse=True)`.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.models import NeuralAttentionCausalLM
    from keras_neural_attention.models import NeuralAttentionLMBackbone

    backbone = NeuralAttentionLMBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=64,
        intermediate_dim=128, max_sequence_length=32,
    )
    lm = NeuralAttentionCausalLM(backbone=backbone)
    lm.compile(sampler="greedy")
    prompt = {
        "token_ids": np.array([[5, 6, 7, 0, 0, 0, 0, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 0, 0, 0, 0, 0]], "int32"),
    }
    out = lm.generate(prompt, stop_token_ids=None)  # fills the 5 pads
    ```

    Reference:
        - [DiGiugno & Mahmood, "Neural Attention: A Novel Mechanism for
          Enhanced Expressive Power in Transformer Models", arXiv 2502.17206](
          https://arxiv.org/abs/2502.17206)
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers=8,
        num_heads=8,
        hidden_dim=512,
        intermediate_dim=1024,
        max_sequence_length=1024,
        dropout=0.1,
        attention="neural",
        attention_layers=(0,),
        projection_dim=None,
        hidden_units=None,
        attention_dropout=0.0,
        use_attention_bias=False,
        positional_encoding="released_code",
        tie_weights=False,
        use_output_bias=True,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        embeddings_initializer="uniform",
        dtype=None,
        **kwargs,
    ):
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("hidden_dim", hidden_dim),
            ("intermediate_dim", intermediate_dim),
            ("max_sequence_length", max_sequence_length),
        ):
            if not _is_positive_int(value):
                raise ValueError(
                    f"Argument `{name}` must be a positive integer. "
                    f"Received: {name}={value!r}"
                )
        if hidden_dim % num_heads:
            raise ValueError(
                "Argument `hidden_dim` must be divisible by `num_heads`. "
                f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        if attention not in ATTENTION_TYPES:
            raise ValueError(
                "Argument `attention` must be one of "
                f"{', '.join(repr(a) for a in ATTENTION_TYPES)}. "
                f"Received: attention={attention!r}"
            )
        if positional_encoding not in FREQUENCIES:
            raise ValueError(
                "Argument `positional_encoding` must be one of "
                f"{', '.join(repr(f) for f in FREQUENCIES)}. "
                f"Received: positional_encoding={positional_encoding!r}"
            )
        if not isinstance(attention_layers, (list, tuple)) or not all(
            isinstance(i, int) and not isinstance(i, bool)
            and -num_layers <= i < num_layers
            for i in attention_layers
        ):
            raise ValueError(
                "Argument `attention_layers` must be a list of block "
                f"indices in [-{num_layers}, {num_layers}). "
                f"Received: attention_layers={attention_layers!r}"
            )
        chosen = {i % num_layers for i in attention_layers}
        if attention == "dot_product" and (
            projection_dim is not None or hidden_units is not None
        ):
            raise ValueError(
                "Arguments `projection_dim` and `hidden_units` configure "
                "Neural Attention; they are accepted only with "
                "attention='neural'. Received: "
                f"projection_dim={projection_dim!r}, "
                f"hidden_units={hidden_units!r}, attention={attention!r}"
            )
        if isinstance(hidden_units, list):
            hidden_units = tuple(hidden_units)

        # === Layers ===
        self.token_embedding = BiasedReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            tie_weights=tie_weights,
            use_reverse_bias=use_output_bias,
            embeddings_initializer=embeddings_initializer,
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = ScaledSinusoidalEncoding(
            max_sequence_length=max_sequence_length,
            frequencies=positional_encoding,
            dropout=dropout,
            dtype=dtype,
            name="position_embedding",
        )
        self.embeddings_add = keras.layers.Add(
            dtype=dtype, name="embeddings_add"
        )
        # The released code's only embedding dropout is inside the
        # positional encoding (above); this layer is the identity and exists
        # because KerasHub's tasks call it.
        self.embeddings_dropout = keras.layers.Dropout(
            0.0, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = []
        for i in range(num_layers):
            layer_attention = attention if i in chosen else "dot_product"
            neural_options = {}
            if layer_attention == "neural":
                neural_options = dict(
                    projection_dim=projection_dim, hidden_units=hidden_units
                )
            self.transformer_layers.append(
                TransformerDecoder(
                    intermediate_dim=intermediate_dim,
                    num_heads=num_heads,
                    dropout=dropout,
                    activation="relu",
                    layer_norm_epsilon=layer_norm_epsilon,
                    kernel_initializer=kernel_initializer,
                    normalize_first=False,
                    attention=layer_attention,
                    attention_kwargs={
                        "use_bias": use_attention_bias,
                        "dropout": attention_dropout,
                    },
                    dtype=dtype,
                    name=f"transformer_layer_{i}",
                    **neural_options,
                )
            )
        self.layer_norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=layer_norm_epsilon, dtype=dtype, name="layer_norm"
        )

        # === Functional Model ===
        token_id_input = keras.Input(
            shape=(None,), dtype="int32", name="token_ids"
        )
        padding_mask_input = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        tokens = self.token_embedding(token_id_input)
        positions = self.position_embedding(tokens)
        x = self.embeddings_add((tokens, positions))
        x = self.embeddings_dropout(x)
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(x, decoder_padding_mask=padding_mask_input)
        sequence_output = self.layer_norm(x)
        super().__init__(
            inputs={
                "token_ids": token_id_input,
                "padding_mask": padding_mask_input,
            },
            outputs=sequence_output,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.attention = attention
        self.attention_layers = tuple(attention_layers)
        self.projection_dim = projection_dim
        self.hidden_units = hidden_units
        self.attention_dropout = attention_dropout
        self.use_attention_bias = use_attention_bias
        self.positional_encoding = positional_encoding
        self.tie_weights = tie_weights
        self.use_output_bias = use_output_bias
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "max_sequence_length": self.max_sequence_length,
                "dropout": self.dropout,
                "attention": self.attention,
                "attention_layers": list(self.attention_layers),
                "projection_dim": self.projection_dim,
                "hidden_units": (
                    list(self.hidden_units)
                    if isinstance(self.hidden_units, tuple)
                    else self.hidden_units
                ),
                "attention_dropout": self.attention_dropout,
                "use_attention_bias": self.use_attention_bias,
                "positional_encoding": self.positional_encoding,
                "tie_weights": self.tie_weights,
                "use_output_bias": self.use_output_bias,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config


def paper_lm_backbone(attention="neural", **overrides):
    """The paper's WikiText-103 language model backbone.

    Args:
        attention: `"neural"` (Neural Attention in the first block, d' = 2)
            or `"dot_product"` (the baseline), or `"expressive"`.
        **overrides: any `NeuralAttentionLMBackbone` argument, to change a
            size (for example `num_layers=2` for a test).

    Returns:
        A `NeuralAttentionLMBackbone` with `PAPER_LM_CONFIG` and the
        overrides.
    """
    config = dict(PAPER_LM_CONFIG)
    config.update(overrides)
    return NeuralAttentionLMBackbone(attention=attention, **config)


def paper_lm_causal_lm(attention="neural", preprocessor=None, **overrides):
    """The paper's language model as a KerasHub causal-LM task.

    Args:
        attention: as in `paper_lm_backbone`.
        preprocessor: a `NeuralAttentionCausalLMPreprocessor`, or None (the
            default: inputs are token ids and padding masks).
        **overrides: any `NeuralAttentionLMBackbone` argument.

    Returns:
        A `NeuralAttentionCausalLM` on `paper_lm_backbone(attention,
        **overrides)`.
    """
    from keras_neural_attention.models.neural_attention_causal_lm import (
        NeuralAttentionCausalLM,
    )

    return NeuralAttentionCausalLM(
        backbone=paper_lm_backbone(attention=attention, **overrides),
        preprocessor=preprocessor,
    )


def neural_attention_parameter_count(key_dim, projection_dim=None,
                                     hidden_units=None, num_heads=1,
                                     share_scoring_across_heads=True):
    """Weights that Neural Attention's scoring network adds to a
    dot-product attention layer (its projections are the same).

    Defaults follow `NeuralAttention`: `d' = max(1, key_dim // 32)`, hidden
    units `(d', max(1, d' // 2))`; d' = 2 (the paper's LM) gives 275.
    """
    d = projection_dim or max(1, key_dim // 32)
    hidden = tuple(hidden_units) if hidden_units else (d, max(1, d // 2))
    count = 2 * (key_dim * d + d)
    width = 2 * d
    for units in hidden + (1,):
        count += width * units + units
        width = units
    return count if share_scoring_across_heads else count * num_heads


def paper_lm_parameter_count(attention="neural", **overrides):
    """Parameter count of `paper_lm_backbone(attention, **overrides)`,
    computed from the sizes without building the model.

    For the paper's sizes it equals the released code's counts,
    `RELEASED_CODE_PARAMETER_COUNTS` (46,527,812 for the baseline,
    46,528,087 with Neural Attention in the first block).

    Args:
        attention: `"neural"`, `"expressive"` or `"dot_product"`.
        **overrides: `NeuralAttentionLMBackbone` size arguments
            (`vocabulary_size`, `num_layers`, `num_heads`, `hidden_dim`,
            `intermediate_dim`, `attention_layers`, `projection_dim`,
            `hidden_units`, `use_attention_bias`, `tie_weights`,
            `use_output_bias`).

    Returns:
        int, the number of weights.
    """
    if attention not in ATTENTION_TYPES:
        raise ValueError(
            "Argument `attention` must be one of "
            f"{', '.join(repr(a) for a in ATTENTION_TYPES)}. "
            f"Received: attention={attention!r}"
        )
    config = dict(PAPER_LM_CONFIG)
    config.update(
        attention_layers=(0,), projection_dim=None, hidden_units=None,
        use_attention_bias=False, tie_weights=False, use_output_bias=True,
    )
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(
            "paper_lm_parameter_count accepts the size arguments "
            f"{sorted(config)}. Received unknown arguments: {sorted(unknown)}"
        )
    config.update(overrides)
    vocab, d = config["vocabulary_size"], config["hidden_dim"]
    layers, heads = config["num_layers"], config["num_heads"]
    bias = config["use_attention_bias"]
    attention_params = 4 * d * d + (4 * d if bias else 0)
    feedforward = 2 * d * config["intermediate_dim"] + config[
        "intermediate_dim"
    ] + d
    block = attention_params + feedforward + 2 * (2 * d)
    count = vocab * d + layers * block + 2 * d
    if not config["tie_weights"]:
        count += d * vocab
    if config["use_output_bias"]:
        count += vocab
    if attention == "neural":
        chosen = {i % layers for i in config["attention_layers"]}
        count += len(chosen) * neural_attention_parameter_count(
            d // heads, config["projection_dim"], config["hidden_units"]
        )
    return count


# KerasHub finds the task, preprocessor and tokenizer of a preset by their
# `backbone_cls` among registered classes: register them whenever the
# backbone is. (Skipped while one of them is being imported: it imports the
# task module itself once its class exists.)
_IMPORTING = (
    "keras_neural_attention.models.neural_attention_lm_tokenizer",
    "keras_neural_attention.models.neural_attention_causal_lm_preprocessor",
    "keras_neural_attention.models.neural_attention_causal_lm",
)
if not any(name in sys.modules for name in _IMPORTING):
    import keras_neural_attention.models.neural_attention_causal_lm  # noqa: E402,E501,F401,I001
