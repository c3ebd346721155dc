"""Saved models load in a fresh process after `import keras_neural_attention`
alone (issue 10: "Could not locate class 'TransformerDecoder'"), while that
import still pulls in neither KerasHub nor TensorFlow."""

import importlib
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np

import keras_neural_attention
from keras_neural_attention import models

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _save_model(path):
    """Saves a small language model (token embedding with its biased
    reverse projection around a Neural Attention decoder block); returns
    its inputs and outputs."""
    from keras_neural_attention.models import BiasedReversibleEmbedding
    from keras_neural_attention.models import TransformerDecoder

    keras.utils.set_random_seed(0)
    ids = keras.Input((5,), dtype="int32")
    embedding = BiasedReversibleEmbedding(11, 8, tie_weights=False)
    hidden = TransformerDecoder(
        intermediate_dim=12, num_heads=2, attention="neural",
        hidden_units=[3, 2],
    )(embedding(ids))
    model = keras.Model(ids, embedding(hidden, reverse=True))
    model.save(path)
    inputs = np.random.default_rng(0).integers(0, 11, size=(2, 5))
    inputs = inputs.astype("int32")
    return inputs, keras.ops.convert_to_numpy(model(inputs))


_LOAD_IN_FRESH_PROCESS = r"""
import json, sys
import keras_neural_attention  # the only import of the package
heavy = sorted(m for m in ("keras_hub", "tensorflow") if m in sys.modules)
import keras
import numpy as np

model = keras.saving.load_model(sys.argv[1])
outputs = model(np.load(sys.argv[2]))
np.save(sys.argv[3], keras.ops.convert_to_numpy(outputs))
classes = sorted(
    type(layer).__module__ + "." + type(layer).__name__
    for layer in model.layers
)
print(json.dumps({"heavy_at_import": heavy, "classes": classes}))
"""


def test_saved_model_loads_after_importing_only_the_package(tmp_path):
    path = str(tmp_path / "model.keras")
    inputs, expected = _save_model(path)
    np.save(tmp_path / "inputs.npy", inputs)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        ),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    result = subprocess.run(
        [
            sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, path,
            str(tmp_path / "inputs.npy"), str(tmp_path / "outputs.npy"),
        ],
        env=env, capture_output=True, text=True, timeout=600,
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if keras.backend.backend() != "tensorflow":
        assert report["heavy_at_import"] == []
    else:
        assert "keras_hub" not in report["heavy_at_import"]
    np.testing.assert_allclose(
        np.load(tmp_path / "outputs.npy"), expected, rtol=1e-6, atol=1e-6
    )
    package = "keras_neural_attention.models."
    assert (
        package + "biased_reversible_embedding.BiasedReversibleEmbedding"
        in report["classes"]
    )
    assert package + "transformer_decoder.TransformerDecoder" in (
        report["classes"]
    )


def test_every_serializable_model_class_has_a_stand_in():
    registry = keras.saving.get_custom_objects()
    found = {}
    for module_name in set(models.SERIALIZABLE_CLASSES.values()) | {
        "causal_lm", "transformer_decoder", "vit",
        "biased_reversible_embedding", "distribution",
    }:
        importlib.import_module(f"keras_neural_attention.models.{module_name}")
    for registered_name, obj in registry.items():
        module = getattr(obj, "__module__", "") or ""
        if isinstance(obj, type) and module.startswith(
            "keras_neural_attention.models."
        ):
            found[registered_name] = module.rsplit(".", 1)[1]
    assert found == models.SERIALIZABLE_CLASSES
    # Once its module is imported, the registry holds the class itself.
    for registered_name in models.SERIALIZABLE_CLASSES:
        assert isinstance(registry[registered_name], type)


def test_stand_in_resolves_to_the_class():
    stand_in = models._LazySerializableClass(
        "keras_neural_attention>TransformerDecoder", "transformer_decoder"
    )
    assert stand_in.resolve() is models.TransformerDecoder
    assert "transformer_decoder" in repr(stand_in)
    layer = stand_in(intermediate_dim=4, num_heads=1)
    assert type(layer) is models.TransformerDecoder
    revived = stand_in.from_config(layer.get_config())
    assert type(revived) is models.TransformerDecoder
    assert keras_neural_attention.models is models
