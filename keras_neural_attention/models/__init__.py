"""Models built from the package's layers and KerasHub.

The modules here import KerasHub (which imports TensorFlow when it is
installed, about 3 s), so this package loads them on first attribute access:
`import keras_neural_attention.models` alone imports neither.

Saved models still load after `import keras_neural_attention` alone: every
serializable class of these modules has a stand-in in Keras' registry of
custom objects (`keras.saving.get_custom_objects()`) under its registered
name, which imports the defining module when Keras deserializes an object of
that class. Importing the module replaces the stand-in by the class itself.
"""

import importlib

import keras

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
    "distribution_device_count": "distribution",
    "resolve_distribution": "distribution",
    "train_image_classifier": "distribution",
}

__all__ = sorted(_EXPORTS)

_PACKAGE = "keras_neural_attention"

# Registered name (`package>ClassName`) -> defining module, for every class
# of the modules above that is registered with
# `keras.saving.register_keras_serializable(package="keras_neural_attention")`.
SERIALIZABLE_CLASSES = {
    f"{_PACKAGE}>BiasedReversibleEmbedding": "biased_reversible_embedding",
    f"{_PACKAGE}>NeuralAttentionLMBackbone": "causal_lm",
    f"{_PACKAGE}>NeuralAttentionCausalLM": "neural_attention_causal_lm",
    f"{_PACKAGE}>NeuralAttentionCausalLMPreprocessor": (
        "neural_attention_causal_lm_preprocessor"
    ),
    f"{_PACKAGE}>NeuralAttentionLMTokenizer": "neural_attention_lm_tokenizer",
    f"{_PACKAGE}>TransformerDecoder": "transformer_decoder",
    f"{_PACKAGE}>VisionTransformerBackbone": "vit",
    f"{_PACKAGE}>VisionTransformerImageClassifier": (
        "vision_transformer_image_classifier"
    ),
    f"{_PACKAGE}>VisionTransformerImageClassifierPreprocessor": (
        "vision_transformer_image_classifier_preprocessor"
    ),
    f"{_PACKAGE}>VisionTransformerImageConverter": (
        "vision_transformer_image_converter"
    ),
    # The classes `replace_attention` builds, one per SURGERY_TABLE entry,
    # and its ViT encoder block.
    f"{_PACKAGE}>ViTEncoderBlockWithReplacedAttention": "attention_surgery",
    **{
        f"{_PACKAGE}>{stock}WithReplacedAttention": "attention_surgery"
        for stock in (
            "GPT2Backbone", "GPT2CausalLM", "GPT2CausalLMPreprocessor",
            "GPT2Preprocessor", "GPT2Tokenizer",
            "OPTBackbone", "OPTCausalLM", "OPTCausalLMPreprocessor",
            "OPTTokenizer",
            "ViTBackbone", "ViTImageClassifier",
            "ViTImageClassifierPreprocessor", "ViTImageConverter",
        )
    },
}


class _LazySerializableClass:
    """Stands in Keras' custom-object registry for a class whose module is
    not imported yet.

    Keras' deserialization calls `from_config` on what the registry holds;
    this imports the defining module (which registers the class itself,
    replacing the stand-in) and hands over to the class. Calling the
    stand-in constructs the class.
    """

    def __init__(self, registered_name, module_name):
        self.registered_name = registered_name
        self.module_name = module_name
        self.class_name = registered_name.split(">", 1)[1]

    def resolve(self):
        """Imports the defining module and returns the class."""
        module = importlib.import_module(f"{__name__}.{self.module_name}")
        return getattr(module, self.class_name)

    def from_config(self, config, *args, **kwargs):
        return self.resolve().from_config(config, *args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self):
        return (
            f"<lazy {self.registered_name} from "
            f"{__name__}.{self.module_name}>"
        )


def _register_lazy_serializable_classes():
    registry = keras.saving.get_custom_objects()
    for registered_name, module_name in SERIALIZABLE_CLASSES.items():
        # Never replace the class itself (its module already imported).
        if registered_name not in registry:
            registry[registered_name] = _LazySerializableClass(
                registered_name, module_name
            )


_register_lazy_serializable_classes()


# Top-level packages the model modules need, and the extra that installs them.
_EXTRAS = {"keras_hub": "hub", "tensorflow_text": "hub", "tensorflow": "hub"}


def _missing_extra_error(package, needed_by, error):
    extra = _EXTRAS[package]
    return ImportError(
        f"{needed_by} needs the `{package}` package, which is not "
        "installed. Install the extra: pip install "
        f"'keras-neural-attention[{extra}]' (from a checkout: "
        f"pip install -e '.[{extra}]')."
    )


def require_package(package, needed_by="keras_neural_attention.models"):
    """Imports `package` (for example `"keras_hub"`); if it is missing, the
    `ImportError` names the extra that installs it."""
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in _EXTRAS:
            raise
        raise _missing_extra_error(
            (error.name or package).split(".")[0], needed_by, error
        ) from error


def import_model_module(module_name):
    """Imports a model module; a missing dependency raises an `ImportError`
    that names the extra to install."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing not in _EXTRAS:
            raise
        raise _missing_extra_error(missing, module_name, error) from error


def __getattr__(name):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}"
        )
    if "." not in module_name:
        module_name = f"{__name__}.{module_name}"
    module = import_model_module(module_name)
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
