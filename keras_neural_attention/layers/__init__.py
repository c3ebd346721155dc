"""Keras layers of keras-neural-attention."""

from keras_neural_attention.layers.neural_attention import NeuralAttention

__all__ = ["NeuralAttention"]
