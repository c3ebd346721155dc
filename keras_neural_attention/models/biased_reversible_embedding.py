"""`BiasedReversibleEmbedding`: a reversible embedding whose reverse
(logits) projection has a bias."""

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)
from keras import ops


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class BiasedReversibleEmbedding(keras_hub.layers.ReversibleEmbedding):
    """`keras_hub.layers.ReversibleEmbedding` with an optional bias on the
    reverse projection.

    Forward (`reverse=False`) it embeds token ids like
    `keras.layers.Embedding`. With `reverse=True` it maps hidden states to
    vocabulary logits with the transposed embeddings (`tie_weights=True`) or
    its own `(output_dim, input_dim)` matrix (`tie_weights=False`), then
    adds a `(input_dim,)` bias when `use_reverse_bias=True`. An untied
    projection with a bias is the `nn.Linear(dim, vocab)` output head of the
    Neural Attention paper's released language model; KerasHub's causal-LM
    tasks compute logits with `backbone.token_embedding(x, reverse=True)`,
    so the head must live in this layer. The bias is added after
    `logit_soft_cap`, if one is set.

    Args:
        input_dim: int. Vocabulary size.
        output_dim: int. Embedding size.
        tie_weights: bool. Reuse the embeddings for the reverse projection.
        use_reverse_bias: bool. Add a bias to the reverse projection.
        reverse_bias_initializer: initializer of that bias (zeros by
            default).
        **kwargs: other arguments of `keras_hub.layers.ReversibleEmbedding`
            (`embeddings_initializer`, `reverse_dtype`, ...).

    Call arguments:
        - inputs: token ids `(B, T)`, or hidden states `(B, T, output_dim)`
          with `reverse=True`.
        - reverse: bool. Project hidden states to logits.

    Returns:
        Embeddings `(B, T, output_dim)`, or logits `(B, T, input_dim)` with
        `reverse=True`.

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.models import BiasedReversibleEmbedding

    embedding = BiasedReversibleEmbedding(100, 16, tie_weights=False)
    x = embedding(np.array([[1, 2, 3]]))                 # (1, 3, 16)
    logits = embedding(x, reverse=True)                  # (1, 3, 100)
    ```
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        tie_weights=True,
        use_reverse_bias=True,
        reverse_bias_initializer="zeros",
        **kwargs,
    ):
        if not isinstance(use_reverse_bias, bool):
            raise ValueError(
                "Argument `use_reverse_bias` must be True or False. "
                f"Received: use_reverse_bias={use_reverse_bias!r}"
            )
        super().__init__(
            input_dim, output_dim, tie_weights=tie_weights, **kwargs
        )
        self.use_reverse_bias = use_reverse_bias
        self.reverse_bias_initializer = keras.initializers.get(
            reverse_bias_initializer
        )

    def build(self, input_shape=None):
        super().build(input_shape)
        self.reverse_bias = None
        if self.use_reverse_bias:
            self.reverse_bias = self.add_weight(
                shape=(self.input_dim,),
                initializer=self.reverse_bias_initializer,
                name="reverse_bias",
                trainable=True,
            )

    @property
    def variable_serialization_spec(self):
        # Saving and loading walk this list of variable names, per
        # quantization mode.
        spec = super().variable_serialization_spec
        if self.use_reverse_bias:
            for variable_names in spec.values():
                variable_names.append("reverse_bias")
        return spec

    def call(self, inputs, reverse=False):
        outputs = super().call(inputs, reverse=reverse)
        if reverse and self.reverse_bias is not None:
            outputs = outputs + ops.cast(self.reverse_bias, outputs.dtype)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "use_reverse_bias": self.use_reverse_bias,
                "reverse_bias_initializer": keras.initializers.serialize(
                    self.reverse_bias_initializer
                ),
            }
        )
        return config
