"""`NeuralAttentionCausalLM`: the KerasHub causal-LM task of the paper's
language model."""

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.models.causal_lm import NeuralAttentionLMBackbone
from keras_neural_attention.models.neural_attention_causal_lm_preprocessor import (  # noqa: E501
    NeuralAttentionCausalLMPreprocessor,
)

_GPT2CausalLM = keras_hub.models.GPT2CausalLM


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class NeuralAttentionCausalLM(keras_hub.models.CausalLM):
    """End-to-end causal language model on a `NeuralAttentionLMBackbone`.

    A `keras_hub.models.CausalLM`: `fit()` trains next-token prediction
    (KerasHub's default compile: sparse categorical cross-entropy on
    logits, weighted accuracy), `generate()` decodes with the sampler given
    to `compile(sampler=...)` (`keras_hub.samplers`, top-k by default) and a
    key/value cache, `score()` returns per-token logits or losses. Logits
    are `backbone.token_embedding(hidden_states, reverse=True)` (the paper's
    untied output head with a bias, or the tied embedding). The forward
    pass with cache, the cache layout and the generation step are
    `keras_hub.models.GPT2CausalLM`'s, which the backbone's attributes
    follow; Neural Attention's cached layer keeps KerasHub's cache layout.

    Because `backbone_cls` is `NeuralAttentionLMBackbone`, a preset saved
    with `save_to_preset(dir)` is restored whole (backbone, preprocessor,
    tokenizer, weights) by `keras_hub.models.CausalLM.from_preset(dir)` and
    by `NeuralAttentionCausalLM.from_preset(dir)`.

    Args:
        backbone: a `NeuralAttentionLMBackbone`.
        preprocessor: a `NeuralAttentionCausalLMPreprocessor`, or None (the
            default): inputs are then `{"token_ids", "padding_mask"}` int
            arrays and `generate()` takes and returns such dicts.
        **kwargs: arguments of `keras_hub.models.CausalLM` (`name`, ...).

    Call arguments:
        - inputs: dict with `"token_ids"` and `"padding_mask"` (int,
          `(B, T)`).

    Returns:
        Logits `(B, T, vocabulary_size)`.

    Example:

    ```python
    import keras_hub
    import numpy as np
    from keras_neural_attention.models import (
        NeuralAttentionCausalLM, NeuralAttentionLMBackbone)

    backbone = NeuralAttentionLMBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=64,
        intermediate_dim=128, max_sequence_length=32)
    lm = NeuralAttentionCausalLM(backbone)
    lm.compile(sampler="greedy")
    prompt = {
        "token_ids": np.array([[5, 6, 7, 0, 0, 0, 0, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 0, 0, 0, 0, 0]], "int32"),
    }
    out = lm.generate(prompt, stop_token_ids=None)  # fills the 5 pads
    lm.save_to_preset("my_lm")
    restored = keras_hub.models.CausalLM.from_preset("my_lm")
    ```
    """

    backbone_cls = NeuralAttentionLMBackbone
    preprocessor_cls = NeuralAttentionCausalLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        if not isinstance(backbone, NeuralAttentionLMBackbone):
            raise TypeError(
                "Argument `backbone` must be a `NeuralAttentionLMBackbone`. "
                f"Received: backbone={backbone!r}"
            )
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor

        # === Functional Model ===
        inputs = backbone.input
        hidden_states = backbone(inputs)
        outputs = backbone.token_embedding(hidden_states, reverse=True)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    # The backbone exposes GPT-2's attributes (`token_embedding`,
    # `position_embedding`, `embeddings_add`, `embeddings_dropout`,
    # `transformer_layers`, `layer_norm`, `num_layers`, `num_heads`,
    # `hidden_dim`) and its blocks keep KerasHub's cache contract, so
    # GPT-2's cached forward pass, cache construction, generation step and
    # scoring apply unchanged (none of them calls `super()`).
    call_with_cache = _GPT2CausalLM.call_with_cache
    _build_cache = _GPT2CausalLM._build_cache
    generate_step = _GPT2CausalLM.generate_step
    score = _GPT2CausalLM.score
