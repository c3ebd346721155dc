"""keras-neural-attention: Neural Attention (arXiv 2502.17206) for Keras 3.

`import keras_neural_attention` imports Keras (with the backend that
`KERAS_BACKEND` names) and nothing else: TensorFlow and KerasHub are imported
only by the modules that need them. `keras_neural_attention.models` loads its
modules lazily; importing it registers its classes with Keras so that saved
models load after `import keras_neural_attention` alone.
"""

from keras_neural_attention import layers
from keras_neural_attention import models
from keras_neural_attention import ops
from keras_neural_attention.layers import NeuralAttention

__version__ = "0.1.0"

__all__ = ["NeuralAttention", "layers", "models", "ops", "__version__"]
