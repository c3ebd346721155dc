"""`NeuralAttentionCausalLMPreprocessor`: KerasHub's causal-LM preprocessing
for the paper's language model."""

import sys

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.models.causal_lm import NeuralAttentionLMBackbone
from keras_neural_attention.models.neural_attention_lm_tokenizer import (
    NeuralAttentionLMTokenizer,
)


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class NeuralAttentionCausalLMPreprocessor(
    keras_hub.models.CausalLMPreprocessor
):
    """Causal-LM preprocessing for `NeuralAttentionCausalLM`.

    `keras_hub.models.CausalLMPreprocessor` with a
    `NeuralAttentionLMTokenizer`: strings are tokenized, packed between the
    start (`[CLS]`) and end (`[SEP]`) tokens, padded with `[PAD]` to
    `sequence_length + 1`, and split into inputs
    `{"token_ids", "padding_mask"}` of length `sequence_length`, labels (the
    same ids shifted by one) and sample weights (the shifted padding mask).
    `generate_preprocess` / `generate_postprocess` serve
    `NeuralAttentionCausalLM.generate` on strings.

    Args:
        tokenizer: a `NeuralAttentionLMTokenizer`.
        sequence_length: int. Length of the packed inputs (1024).
        add_start_token: bool. Prepend `[CLS]` (True).
        add_end_token: bool. Append `[SEP]` (True).
        **kwargs: arguments of `keras_hub.models.CausalLMPreprocessor`.

    Call arguments:
        - x: a string, list of strings or string tensor.
        - y: must be None (the labels are made from `x`).
        - sample_weight: must be None.
        - sequence_length: optional int overriding `sequence_length`.

    Returns:
        `(x, y, sample_weight)` as described above.

    Example:

    ```python
    from keras_neural_attention.models import (
        NeuralAttentionCausalLMPreprocessor, NeuralAttentionLMTokenizer)

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat"]
    preprocessor = NeuralAttentionCausalLMPreprocessor(
        NeuralAttentionLMTokenizer(vocabulary), sequence_length=6)
    x, y, sample_weight = preprocessor(["the cat sat"])
    # x["token_ids"] == [[2, 4, 5, 6, 3, 0]], y == [[4, 5, 6, 3, 0, 0]]
    ```
    """

    backbone_cls = NeuralAttentionLMBackbone
    tokenizer_cls = NeuralAttentionLMTokenizer


# Register the task with its preprocessor (see the end of causal_lm.py).
_IMPORTING = (
    "keras_neural_attention.models.neural_attention_causal_lm",
)
if not any(name in sys.modules for name in _IMPORTING):
    import keras_neural_attention.models.neural_attention_causal_lm  # noqa: E402,E501,F401,I001
