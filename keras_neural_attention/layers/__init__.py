"""Keras layers of keras-neural-attention (one public layer per file)."""

from keras_neural_attention.layers.additive_activation_attention import (
    AdditiveActivationAttention,
)
from keras_neural_attention.layers.cached_expressive_attention import (
    CachedExpressiveAttention,
)
from keras_neural_attention.layers.cached_neural_attention import (
    CachedNeuralAttention,
)
from keras_neural_attention.layers.expressive_attention import (
    ExpressiveAttention,
)
from keras_neural_attention.layers.neural_attention import NeuralAttention
from keras_neural_attention.layers.output_gating import OutputGating
from keras_neural_attention.layers.patch_embedding import PatchEmbedding
from keras_neural_attention.layers.scaled_sinusoidal_encoding import (
    ScaledSinusoidalEncoding,
)
from keras_neural_attention.layers.synaptic_gating import SynapticGating
from keras_neural_attention.layers.transformer_encoder_block import (
    TransformerEncoderBlock,
)

__all__ = [
    "AdditiveActivationAttention",
    "CachedExpressiveAttention",
    "CachedNeuralAttention",
    "ExpressiveAttention",
    "NeuralAttention",
    "OutputGating",
    "PatchEmbedding",
    "ScaledSinusoidalEncoding",
    "SynapticGating",
    "TransformerEncoderBlock",
]
