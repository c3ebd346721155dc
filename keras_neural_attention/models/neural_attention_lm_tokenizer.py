"""`NeuralAttentionLMTokenizer`: the WordPiece tokenizer type of the paper's
language model."""

import sys

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.models.causal_lm import NeuralAttentionLMBackbone


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class NeuralAttentionLMTokenizer(keras_hub.tokenizers.WordPieceTokenizer):
    """A WordPiece tokenizer for `NeuralAttentionLMBackbone`.

    The paper trains on WikiText-103 tokenized with `bert-base-cased`'s
    WordPiece vocabulary (28996 tokens, cased). This is
    `keras_hub.tokenizers.WordPieceTokenizer` with BERT's special tokens
    registered under KerasHub's names: `[CLS]` is the start token, `[SEP]`
    the end token and `[PAD]` the padding token (all three, and `[UNK]`,
    must be in the vocabulary). Its `backbone_cls` is
    `NeuralAttentionLMBackbone`, so `keras_hub.tokenizers.Tokenizer
    .from_preset(dir)` finds it in a preset of that backbone, and
    `NeuralAttentionCausalLMPreprocessor` uses it.

    Args:
        vocabulary: list of strings or a path to a vocabulary file (one
            token per line), as in `keras_hub.tokenizers.WordPieceTokenizer`.
            May be None when the tokenizer is restored from a preset (the
            vocabulary is then read from the preset's assets).
        lowercase: bool. Lowercase the input (False: the paper's vocabulary
            is cased).
        **kwargs: other `keras_hub.tokenizers.WordPieceTokenizer` arguments
            (`sequence_length`, `strip_accents`, `split_on_cjk`, ...).

    Call arguments:
        - inputs: a string, a list of strings or a string tensor.

    Returns:
        Token ids (a ragged or dense int tensor, or nested lists without
        TensorFlow), as `keras_hub.tokenizers.WordPieceTokenizer` returns.

    Example:

    ```python
    from keras_neural_attention.models import NeuralAttentionLMTokenizer

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat"]
    tokenizer = NeuralAttentionLMTokenizer(vocabulary=vocabulary)
    tokenizer("the cat sat")  # [4, 5, 6]
    ```
    """

    backbone_cls = NeuralAttentionLMBackbone

    def __init__(self, vocabulary=None, lowercase=False, **kwargs):
        self._add_special_token("[CLS]", "cls_token")
        self._add_special_token("[SEP]", "sep_token")
        self._add_special_token("[PAD]", "pad_token")
        # KerasHub's causal-LM preprocessing reads these two names.
        self._add_special_token("[CLS]", "start_token")
        self._add_special_token("[SEP]", "end_token")
        super().__init__(
            vocabulary=vocabulary, lowercase=lowercase, **kwargs
        )


# Register the task with its tokenizer (see the end of causal_lm.py).
_IMPORTING = (
    "keras_neural_attention.models.neural_attention_causal_lm_preprocessor",
    "keras_neural_attention.models.neural_attention_causal_lm",
)
if not any(name in sys.modules for name in _IMPORTING):
    import keras_neural_attention.models.neural_attention_causal_lm  # noqa: E402,E501,F401,I001
