"""Attention surgery: Neural or Expressive Attention in chosen layers of a
stock KerasHub backbone, its weights kept.

`replace_attention(backbone, layers=(0,), attention="neural")` returns the
same architecture with the self-attention of the chosen blocks replaced,
every weight that exists in both models copied, and only the new scoring
weights freshly initialized. The result is an instance of a registered
subclass of the stock backbone (`GPT2Backbone` -> `GPT2BackboneWith
ReplacedAttention`) whose config records the choice (`attention`,
`attention_layers`, `attention_kwargs`), so `get_config`/`from_config`,
`.keras` files and presets restore it exactly. Each supported backbone has
matching task, preprocessor, tokenizer and image-converter subclasses
(`GPT2CausalLMWithReplacedAttention`, ...), so
`keras_hub.models.CausalLM.from_preset(dir)` (or `ImageClassifier`) finds a
task for a converted preset.

How it works: KerasHub backbones create their blocks inline in `__init__`
and the blocks create their attention inline in `build`, with no hook. The
subclass's `__init__` runs the stock `__init__` while the name under which
the stock backbone's module refers to its block class (for GPT-2,
`keras_hub.src.models.gpt2.gpt2_backbone.TransformerDecoder`) points to a
factory that returns, for the chosen block indices, a block with the new
attention (`keras_neural_attention.models.TransformerDecoder`, or a ViT
block subclass), and the stock block otherwise. So a new backbone needs one
`SURGERY_TABLE` entry: where its blocks are named, which kind of block they
are, and its task classes. Those module paths are KerasHub internals;
`tests/models/test_attention_surgery.py` checks every entry against the
installed KerasHub.
"""

import dataclasses
import importlib
import itertools
import threading

import keras
from keras_neural_attention.models import require_package

keras_hub = require_package("keras_hub", __name__)

from keras_neural_attention.layers.expressive_attention import (
    ExpressiveAttention,
)
from keras_neural_attention.layers.neural_attention import NeuralAttention
from keras_neural_attention.models.transformer_decoder import (
    TransformerDecoder,
)

ATTENTION_CHOICES = ("neural", "expressive")
_PACKAGE = "keras_neural_attention"
_SUFFIX = "WithReplacedAttention"


@dataclasses.dataclass(frozen=True)
class BackboneSurgery:
    """Where the attention of one KerasHub backbone class lives.

    Attributes:
        backbone: name of the backbone in `keras_hub.models`.
        block_module: module whose global `block_name` is the block class
            the backbone instantiates once per layer, in layer order.
        block_name: that global's name.
        block_kind: `"decoder"` (KerasHub's `TransformerDecoder`: replaced
            by `keras_neural_attention.models.TransformerDecoder`, the
            attention called with KerasHub's `CachedMultiHeadAttention`
            contract, so cached generation works) or `"vit_encoder"`
            (KerasHub's `ViTEncoderBlock`, attention `self.mha(x, x)` with
            `keras.layers.MultiHeadAttention`'s contract).
        tasks: names in `keras_hub.models` of the backbone's tasks.
        preprocessors: names in `keras_hub.models` of its preprocessors.
        tokenizers: names in `keras_hub.tokenizers` of its tokenizers.
        image_converters: names in `keras_hub.layers` of its converters.
    """

    backbone: str
    block_module: str
    block_name: str
    block_kind: str
    tasks: tuple = ()
    preprocessors: tuple = ()
    tokenizers: tuple = ()
    image_converters: tuple = ()


SURGERY_TABLE = (
    BackboneSurgery(
        backbone="GPT2Backbone",
        block_module="keras_hub.src.models.gpt2.gpt2_backbone",
        block_name="TransformerDecoder",
        block_kind="decoder",
        tasks=("GPT2CausalLM",),
        preprocessors=("GPT2CausalLMPreprocessor", "GPT2Preprocessor"),
        tokenizers=("GPT2Tokenizer",),
    ),
    BackboneSurgery(
        backbone="OPTBackbone",
        block_module="keras_hub.src.models.opt.opt_backbone",
        block_name="TransformerDecoder",
        block_kind="decoder",
        tasks=("OPTCausalLM",),
        preprocessors=("OPTCausalLMPreprocessor",),
        tokenizers=("OPTTokenizer",),
    ),
    BackboneSurgery(
        backbone="ViTBackbone",
        block_module="keras_hub.src.models.vit.vit_layers",
        block_name="ViTEncoderBlock",
        block_kind="vit_encoder",
        tasks=("ViTImageClassifier",),
        preprocessors=("ViTImageClassifierPreprocessor",),
        image_converters=("ViTImageConverter",),
    ),
)

# Names of the attention sublayer inside each kind of block: a given layer is
# renamed so that its projections keep the stock weight paths.
_ATTENTION_NAMES = {"decoder": "self_attention", "vit_encoder": "mha"}

# The block-class globals are swapped only while a converted backbone's
# `__init__` runs, one at a time.
_PATCH_LOCK = threading.RLock()


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_attention(attention, attention_kwargs):
    """Validates the attention choice; returns it in config form."""
    if isinstance(attention, keras.layers.Layer):
        if attention.built:
            raise ValueError(
                "Argument `attention` must be an attention layer that is not "
                "built yet (it is copied into every chosen block and built "
                f"there). Received: attention={attention!r} (built)"
            )
        attention = keras.saving.serialize_keras_object(attention)
    if isinstance(attention, dict):
        if attention_kwargs:
            raise ValueError(
                "Keyword arguments for the attention apply to an attention "
                "chosen by name ('neural', 'expressive'); configure an "
                "attention layer instance directly. Received: "
                f"attention_kwargs={attention_kwargs!r}"
            )
        return attention
    if attention not in ATTENTION_CHOICES:
        raise ValueError(
            "Argument `attention` must be 'neural', 'expressive' or an "
            "attention layer instance (not built). "
            f"Received: attention={attention!r}"
        )
    return attention


def _attention_layer_from_config(config, name):
    config = {**config, "config": {**config["config"], "name": name}}
    return keras.saving.deserialize_keras_object(config)


def _decoder_factory(stock_cls, chosen, attention, attention_kwargs):
    counter = itertools.count()

    def make_block(*args, **kwargs):
        if next(counter) not in chosen:
            return stock_cls(*args, **kwargs)
        if isinstance(attention, dict):
            return TransformerDecoder(
                *args,
                attention=_attention_layer_from_config(
                    attention, _ATTENTION_NAMES["decoder"]
                ),
                **kwargs,
            )
        return TransformerDecoder(
            *args,
            attention=attention,
            attention_kwargs=dict(attention_kwargs),
            **kwargs,
        )

    return make_block


def _vit_encoder_factory(stock_cls, chosen, attention, attention_kwargs):
    counter = itertools.count()

    def make_block(*args, **kwargs):
        if next(counter) not in chosen:
            return stock_cls(*args, **kwargs)
        return _vit_block_class()(
            *args,
            attention=attention,
            attention_kwargs=dict(attention_kwargs),
            **kwargs,
        )

    return make_block


_FACTORIES = {"decoder": _decoder_factory, "vit_encoder": _vit_encoder_factory}


def _make_encoder_attention(attention, attention_kwargs, **defaults):
    """A `keras.layers.MultiHeadAttention`-contract layer for an encoder."""
    if isinstance(attention, dict):
        return _attention_layer_from_config(attention, defaults["name"])
    attention_cls = {
        "neural": NeuralAttention,
        "expressive": ExpressiveAttention,
    }[attention]
    try:
        return attention_cls(**{**defaults, **attention_kwargs})
    except TypeError as error:
        raise ValueError(
            f"The attention keyword arguments hold an argument that "
            f"{attention_cls.__name__} does not accept ({error}). "
            f"Received: attention_kwargs={attention_kwargs!r}"
        ) from error


_VIT_BLOCK_CLASS = []


def _vit_block_class():
    """KerasHub's ViT encoder block with a chosen attention (built once)."""
    if _VIT_BLOCK_CLASS:
        return _VIT_BLOCK_CLASS[0]
    vit_layers = importlib.import_module("keras_hub.src.models.vit.vit_layers")

    @keras.saving.register_keras_serializable(package=_PACKAGE)
    class ViTEncoderBlockWithReplacedAttention(vit_layers.ViTEncoderBlock):
        """KerasHub's `ViTEncoderBlock` whose attention (`mha`) is Neural or
        Expressive Attention or a given layer; same sublayers and weight
        paths otherwise. Only `build` is rewritten (KerasHub creates the
        attention inline there)."""

        def __init__(self, *args, attention="neural", attention_kwargs=None,
                     **kwargs):
            super().__init__(*args, **kwargs)
            self.attention = attention
            self.attention_kwargs = dict(attention_kwargs or {})

        def build(self, input_shape):
            self.layer_norm_1 = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon,
                name="ln_1",
                dtype=self.dtype_policy,
            )
            self.layer_norm_1.build(input_shape)
            self.mha = _make_encoder_attention(
                self.attention,
                self.attention_kwargs,
                num_heads=self.num_heads,
                key_dim=self.key_dim,
                use_bias=self.use_mha_bias,
                dropout=self.attention_dropout,
                name="mha",
                dtype=self.dtype_policy,
            )
            self.mha.build(input_shape, input_shape)
            self.dropout = keras.layers.Dropout(
                self.dropout_rate, dtype=self.dtype_policy, name="dropout"
            )
            self.layer_norm_2 = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon,
                name="ln_2",
                dtype=self.dtype_policy,
            )
            self.layer_norm_2.build((None, None, self.hidden_dim))
            self.mlp = vit_layers.MLP(
                hidden_dim=self.hidden_dim,
                mlp_dim=self.mlp_dim,
                use_bias=self.use_mlp_bias,
                dropout_rate=self.dropout_rate,
                name="mlp",
                dtype=self.dtype_policy,
            )
            self.mlp.build((None, None, self.hidden_dim))
            self.built = True

        def get_config(self):
            config = super().get_config()
            config.pop("key_dim", None)  # derived; not an __init__ argument
            config.update(
                {
                    "attention": self.attention,
                    "attention_kwargs": dict(self.attention_kwargs),
                }
            )
            return config

    _VIT_BLOCK_CLASS.append(ViTEncoderBlockWithReplacedAttention)
    return ViTEncoderBlockWithReplacedAttention


def _backbone_init(self, *args, attention="neural", attention_layers=(0,),
                   attention_kwargs=None, **kwargs):
    spec = type(self)._surgery
    attention_kwargs = dict(attention_kwargs or {})
    attention = _check_attention(attention, attention_kwargs)
    if not isinstance(attention_layers, (list, tuple)) or not all(
        _is_int(i) and i >= 0 for i in attention_layers
    ):
        raise ValueError(
            "Argument `attention_layers` must be a list of non-negative "
            f"layer indices. Received: attention_layers={attention_layers!r}"
        )
    chosen = frozenset(attention_layers)
    module = importlib.import_module(spec.block_module)
    stock_block = getattr(module, spec.block_name)
    factory = _FACTORIES[spec.block_kind](
        stock_block, chosen, attention, attention_kwargs
    )
    with _PATCH_LOCK:
        setattr(module, spec.block_name, factory)
        try:
            type(self)._stock_cls.__init__(self, *args, **kwargs)
        finally:
            setattr(module, spec.block_name, stock_block)
    num_layers = getattr(self, "num_layers", None)
    if num_layers is not None and max(chosen, default=-1) >= num_layers:
        raise ValueError(
            "Argument `attention_layers` holds an index beyond the "
            f"backbone's {num_layers} layers. "
            f"Received: attention_layers={attention_layers!r}"
        )
    self.attention = attention
    self.attention_layers = tuple(sorted(chosen))
    self.attention_kwargs = attention_kwargs


def _backbone_get_config(self):
    config = type(self)._stock_cls.get_config(self)
    config.update(
        {
            "attention": self.attention,
            "attention_layers": list(self.attention_layers),
            "attention_kwargs": dict(self.attention_kwargs),
        }
    )
    return config


def _register(name, base, namespace):
    cls = type(name, (base,), {"__module__": __name__, **namespace})
    cls.__qualname__ = name
    keras.saving.register_keras_serializable(package=_PACKAGE)(cls)
    globals()[name] = cls
    return cls


def _derive_classes(spec):
    """The converted backbone class of one table entry and its tasks,
    preprocessors, tokenizers and image converters."""
    stock = getattr(keras_hub.models, spec.backbone)
    backbone_cls = _register(
        spec.backbone + _SUFFIX,
        stock,
        {
            "_stock_cls": stock,
            "_surgery": spec,
            "__init__": _backbone_init,
            "get_config": _backbone_get_config,
            "__doc__": (
                f"`keras_hub.models.{spec.backbone}` with the attention of "
                "chosen layers replaced (made by "
                "`keras_neural_attention.models.replace_attention`).\n\n"
                f"Args: those of `{spec.backbone}`, plus `attention` "
                "(`'neural'`, `'expressive'` or an attention layer config), "
                "`attention_layers` (layer indices) and `attention_kwargs` "
                "(arguments of the attention layer chosen by name).\n"
            ),
        },
    )
    derived = {spec.backbone: backbone_cls}

    def derive(names, namespace):
        for name in names:
            base = getattr(namespace, name)
            attributes = {"backbone_cls": backbone_cls}
            for attribute in ("tokenizer_cls", "image_converter_cls",
                              "preprocessor_cls"):
                stock_value = getattr(base, attribute, None)
                if stock_value is not None and stock_value.__name__ in derived:
                    attributes[attribute] = derived[stock_value.__name__]
            attributes["__doc__"] = (
                f"`{namespace.__name__}.{name}` for "
                f"`{backbone_cls.__name__}`."
            )
            derived[name] = _register(name + _SUFFIX, base, attributes)

    derive(spec.tokenizers, keras_hub.tokenizers)
    derive(spec.image_converters, keras_hub.layers)
    derive(spec.preprocessors, keras_hub.models)
    derive(spec.tasks, keras_hub.models)
    return derived


_vit_block_class()  # registered now, so saved ViT blocks always resolve

_DERIVED = {}
for _spec in SURGERY_TABLE:
    for _stock_name, _cls in _derive_classes(_spec).items():
        _DERIVED[_stock_name] = _cls
del _spec, _stock_name, _cls


def supported_backbones():
    """Names of the `keras_hub.models` backbones `replace_attention`
    accepts."""
    return tuple(spec.backbone for spec in SURGERY_TABLE)


def replaced_attention_class(stock_cls):
    """The converted counterpart of a stock KerasHub class.

    Args:
        stock_cls: a backbone, task, preprocessor, tokenizer or image
            converter class of a backbone in `SURGERY_TABLE` (for example
            `keras_hub.models.GPT2CausalLM`).

    Returns:
        The registered subclass for converted backbones (for example
        `GPT2CausalLMWithReplacedAttention`), whose `backbone_cls` is the
        converted backbone class.
    """
    name = getattr(stock_cls, "__name__", None)
    cls = _DERIVED.get(name)
    if cls is None or not issubclass(cls, stock_cls):
        raise ValueError(
            "Argument `stock_cls` must be a KerasHub class of a backbone in "
            f"{supported_backbones()} (its backbone, tasks, preprocessors, "
            f"tokenizers, image converters). Received: stock_cls={stock_cls!r}"
        )
    return cls


def replace_attention(backbone, layers=(0,), attention="neural",
                      **attention_kwargs):
    """Replace the self-attention of chosen layers of a KerasHub backbone,
    keeping its weights.

    The backbone may come from a config (`keras_hub.models.GPT2Backbone(
    ...)`) or a preset (`keras_hub.models.Backbone.from_preset(dir)`). The
    result has the same architecture, except that the chosen layers'
    self-attention is Neural Attention, Expressive Attention or the given
    layer: every weight of the original that exists in the result (same
    path, same shape) is copied, which is all of them for Neural and
    Expressive Attention (token/position/patch embeddings, norms,
    feed-forward networks, and the query/key/value/output projections of
    the replaced layers too); only the new scoring weights (Neural
    Attention's network) are freshly initialized. The choice is in the
    result's config, so `.keras` files and `save_to_preset` restore it.

    Decoders (GPT-2, OPT) get `keras_neural_attention.models
    .TransformerDecoder` blocks with `CachedNeuralAttention` /
    `CachedExpressiveAttention`, so the stock task's cached `generate()`
    works; wrap the result in `replaced_attention_class(
    keras_hub.models.GPT2CausalLM)` (or the stock task) to train or generate.
    ViT gets `NeuralAttention` / `ExpressiveAttention` in its encoder blocks.

    Args:
        backbone: an instance of a backbone named by `supported_backbones()`
            (`GPT2Backbone`, `OPTBackbone`, `ViTBackbone`).
        layers: sequence of layer indices (negative ones count from the
            end); defaults to `(0,)`, the first layer (the paper's choice).
        attention: `"neural"` (default), `"expressive"`, or an attention
            layer instance that is not built yet, with the call contract of
            the block's attention (`keras_hub.layers.CachedMultiHeadAttention`
            for decoders, `keras.layers.MultiHeadAttention` for ViT) and
            registered with `keras.saving.register_keras_serializable`; it
            is copied into each chosen layer and renamed so that its
            projections keep the stock weight paths.
        **attention_kwargs: constructor arguments of the attention chosen by
            name (e.g. `projection_dim=2`, `hidden_units=(2, 1)` for Neural
            Attention, `normalization="softmax"` for Expressive).

    Returns:
        A backbone of class `<Stock>WithReplacedAttention` (a subclass of
        the stock backbone, registered with Keras).

    Raises:
        TypeError: if `backbone` is not a supported KerasHub backbone.
        ValueError: for bad `layers` or `attention`, or if a weight of the
            original fits nowhere in the result (a custom attention layer
            without the stock projections).

    Example:

    ```python
    import keras_hub
    from keras_neural_attention.models import replace_attention
    from keras_neural_attention.models import replaced_attention_class

    gpt2 = keras_hub.models.GPT2Backbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=64,
        intermediate_dim=128, max_sequence_length=32)
    neural = replace_attention(gpt2, layers=[0], attention="neural")
    lm = replaced_attention_class(keras_hub.models.GPT2CausalLM)(
        backbone=neural, preprocessor=None)
    lm.save_to_preset("gpt2_neural")  # CausalLM.from_preset restores it
    ```
    """
    if not isinstance(backbone, keras_hub.models.Backbone):
        raise TypeError(
            "Argument `backbone` must be a KerasHub backbone, one of "
            f"{supported_backbones()}. Received: backbone={backbone!r}"
        )
    if hasattr(type(backbone), "_surgery"):
        raise ValueError(
            "Argument `backbone` already has replaced attention "
            f"({type(backbone).__name__}, attention_layers="
            f"{list(backbone.attention_layers)}); convert the stock backbone "
            "with every layer to replace at once. "
            f"Received: backbone={backbone.name!r}"
        )
    target_cls = _DERIVED.get(type(backbone).__name__)
    if target_cls is None or type(backbone) is not target_cls._stock_cls:
        raise TypeError(
            "Argument `backbone` must be one of the KerasHub backbones "
            f"{supported_backbones()}. Received: backbone of type "
            f"{type(backbone).__name__}"
        )
    num_layers = backbone.num_layers
    if (
        not isinstance(layers, (list, tuple))
        or not layers
        or not all(_is_int(i) and -num_layers <= i < num_layers
                   for i in layers)
    ):
        raise ValueError(
            "Argument `layers` must be a non-empty list of layer indices in "
            f"[-{num_layers}, {num_layers}). Received: layers={layers!r}"
        )
    config = backbone.get_config()
    converted = target_cls.from_config(
        {
            **config,
            "attention": _check_attention(attention, attention_kwargs),
            "attention_layers": sorted({i % num_layers for i in layers}),
            "attention_kwargs": attention_kwargs,
        }
    )
    copy_matching_weights(backbone, converted)
    return converted


def copy_matching_weights(source, target):
    """Copy every weight of `source` into the weight of `target` with the
    same path (relative to the model) and shape.

    Args:
        source: a built Keras model.
        target: a built Keras model containing every weight of `source`.

    Returns:
        The paths of `target`'s weights that `source` lacks (left as
        initialized).

    Raises:
        ValueError: if a weight of `source` has no weight of the same path
            and shape in `target`.
    """
    target_weights = {weight.path: weight for weight in target.weights}
    unfit = []
    for weight in source.weights:
        match = target_weights.get(weight.path)
        if match is None or tuple(match.shape) != tuple(weight.shape):
            unfit.append(f"{weight.path} {tuple(weight.shape)}")
    if unfit:
        raise ValueError(
            "These weights of the original model have no place of the same "
            "path and shape in the model with replaced attention, so they "
            f"would be lost: {unfit}. Give an attention layer with the "
            "stock projections (query, key, value, attention_output)."
        )
    source_paths = set()
    for weight in source.weights:
        target_weights[weight.path].assign(weight.value)
        source_paths.add(weight.path)
    return [path for path in target_weights if path not in source_paths]


def __getattr__(name):
    # The ViT block subclasses a private KerasHub class: it is built on first
    # use, and also when a saved model looks it up by name.
    if name == "ViTEncoderBlockWithReplacedAttention":
        return _vit_block_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
