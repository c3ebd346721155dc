"""Backend-agnostic math of Neural Attention, written with `keras.ops`."""

from keras_neural_attention.ops.attention import neural_attention
from keras_neural_attention.ops.expressive import expressive_attention
from keras_neural_attention.ops.expressive import expressive_normalize
from keras_neural_attention.ops.expressive import squared_dot_product_scores
from keras_neural_attention.ops.attention import resolve_implementation
from keras_neural_attention.ops.scoring import ScoringWeights
from keras_neural_attention.ops.scoring import key_terms
from keras_neural_attention.ops.scoring import neural_attention_scores
from keras_neural_attention.ops.scoring import pair_scores
from keras_neural_attention.ops.scoring import project_features
from keras_neural_attention.ops.scoring import query_terms
from keras_neural_attention.ops.softmax import masked_softmax

__all__ = [
    "ScoringWeights",
    "expressive_attention",
    "expressive_normalize",
    "squared_dot_product_scores",
    "key_terms",
    "masked_softmax",
    "neural_attention",
    "neural_attention_scores",
    "pair_scores",
    "project_features",
    "query_terms",
    "resolve_implementation",
]
