"""Models built from the package's layers and KerasHub.

The modules here import KerasHub (which imports TensorFlow when it is
installed, about 3 s), so this package loads them on first attribute access:
`import keras_neural_attention.models` alone imports neither.
"""

import importlib

_EXPORTS = {
    "BackboneSurgery": "attention_surgery",
    "SURGERY_TABLE": "attention_surgery",
    "copy_matching_weights": "attention_surgery",
    "replace_attention": "attention_surgery",
    "replaced_attention_class": "attention_surgery",
    "supported_backbones": "attention_surgery",
    "BiasedReversibleEmbedding": "biased_reversible_embedding",
    "NeuralAttentionLMBackbone": "causal_lm",
    "NeuralAttentionCausalLM": "neural_attention_causal_lm",
    "NeuralAttentionCausalLMPreprocessor": (
        "neural_attention_causal_lm_preprocessor"
    ),
    "NeuralAttentionLMTokenizer": "neural_attention_lm_tokenizer",
    "PAPER_LM_CONFIG": "causal_lm",
    "RELEASED_CODE_PARAMETER_COUNTS": "causal_lm",
    "neural_attention_parameter_count": "causal_lm",
    "paper_lm_backbone": "causal_lm",
    "paper_lm_causal_lm": "causal_lm",
    "paper_lm_parameter_count": "causal_lm",
    # A layer (no KerasHub needed); also exported here, where it started.
    "ScaledSinusoidalEncoding": "keras_neural_attention.layers",
    "TransformerDecoder": "transformer_decoder",
    "RELEASED_CODE_VISION_PARAMETER_COUNTS": "vit",
    "VisionTransformerBackbone": "vit",
    "VisionTransformerImageClassifier": "vision_transformer_image_classifier",
    "VisionTransformerImageClassifierPreprocessor": (
        "vision_transformer_image_classifier_preprocessor"
    ),
    "VisionTransformerImageConverter": "vision_transformer_image_converter",
    "paper_vision_parameter_counts": "vit",
    "paper_vision_transformer_config": "vit",
    "vision_augmentation": "vit",
    "vision_transformer_classifier": "vit",
    "vision_transformer_parameter_count": "vit",
    "vision_transformer_preprocessor": "vit",
    "data_parallel_distribution": "distribution",
    "distribution_scope": "distribution",
    "distribution_supported": "distribution",
    "train_image_classifier": "distribution",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}"
        )
    if "." not in module_name:
        module_name = f"{__name__}.{module_name}"
    module = importlib.import_module(module_name)
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
