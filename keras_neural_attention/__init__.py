"""keras-neural-attention: Neural Attention (arXiv 2502.17206) for Keras 3.

`import keras_neural_attention` imports Keras (with the backend that
`KERAS_BACKEND` names) and nothing else: TensorFlow and KerasHub are imported
only by the modules that need them.
"""

from keras_neural_attention import layers
from keras_neural_attention import ops
from keras_neural_attention.layers import NeuralAttention

__version__ = "0.1.0"

__all__ = ["NeuralAttention", "layers", "ops", "__version__"]
