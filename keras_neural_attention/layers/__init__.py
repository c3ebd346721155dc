"""Keras layers of keras-neural-attention (one public layer per file)."""

from keras_neural_attention.layers.additive_activation_attention import (
    AdditiveActivationAttention,
)
from keras_neural_attention.layers.expressive_attention import (
    ExpressiveAttention,
)
from keras_neural_attention.layers.neural_attention import NeuralAttention
from keras_neural_attention.layers.output_gating import OutputGating
from keras_neural_attention.layers.synaptic_gating import SynapticGating

__all__ = [
    "AdditiveActivationAttention",
    "ExpressiveAttention",
    "NeuralAttention",
    "OutputGating",
    "SynapticGating",
]
