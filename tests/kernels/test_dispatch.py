"""The layer routes to the fused kernels by name and falls back under "auto".

On CPU the kernels run in their interpreters: Pallas with `interpret=True`
(chosen automatically off-GPU), Triton with `TRITON_INTERPRET=1`, which must
be set before Triton is imported.
"""

import os

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
if BACKEND == "torch":
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

from keras_neural_attention.layers import NeuralAttention  # noqa: E402
from keras_neural_attention.ops import resolve_implementation  # noqa: E402
from tests.backend_utils import to_numpy  # noqa: E402
from tests.backend_utils import value_and_grad  # noqa: E402

KERNEL_OF_BACKEND = {"jax": "pallas", "torch": "triton"}


def _kernel_or_skip():
    name = KERNEL_OF_BACKEND.get(BACKEND)
    if name is None:
        pytest.skip(f"no fused kernel on the {BACKEND} backend (by design)")
    if name == "triton":
        pytest.importorskip("triton")
    return name


def _pair(name, **config):
    reference = NeuralAttention(
        num_heads=2, key_dim=8, implementation="factored", **config
    )
    fused = NeuralAttention(
        num_heads=2, key_dim=8, implementation=name, **config
    )
    return reference, fused


CONFIGS = [
    dict(),
    dict(projection_dim=3, hidden_units=(4,), share_scoring_across_heads=False),
    dict(projection_dim=2, hidden_units=(3, 2)),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_fused_kernel_matches_keras_ops_path(config):
    name = _kernel_or_skip()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 19, 16)).astype("float32")
    memory = rng.normal(size=(2, 11, 16)).astype("float32")
    mask = rng.random((2, 19, 11)) > 0.3
    mask[1, 4] = False
    reference, fused = _pair(name, **config)
    reference(x, memory)
    fused(x, memory)
    fused.set_weights(reference.get_weights())

    for call in (
        dict(query=x, value=memory, attention_mask=mask),
        dict(query=x, value=x, use_causal_mask=True),
    ):
        expected = to_numpy(reference(**call))
        got = to_numpy(fused(**call))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        to_numpy(fused(x, memory, attention_mask=mask))[1, 4],
        to_numpy(fused.output_dense.bias),
    )

    def loss_of(layer):
        def loss(q, v):
            out = layer(q, v, attention_mask=mask)
            return keras.ops.sum(out * out)

        return loss

    _, expected_grads = value_and_grad(loss_of(reference), [x, memory])
    _, grads = value_and_grad(loss_of(fused), [x, memory])
    for got, expected in zip(grads, expected_grads):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_fused_kernel_by_name_refuses_what_it_cannot_do():
    name = _kernel_or_skip()
    x = np.zeros((1, 4, 8), "float32")
    layer = NeuralAttention(num_heads=2, key_dim=4, implementation=name)
    with pytest.raises(ValueError, match="returns no attention scores"):
        layer(x, x, return_attention_scores=True)
    layer = NeuralAttention(
        num_heads=2, key_dim=4, implementation=name, activation="softsign"
    )
    with pytest.raises(ValueError, match="does not support"):
        layer(x, x)


def test_auto_uses_fused_kernels_only_on_a_gpu():
    weights_layer = NeuralAttention(num_heads=2, key_dim=8)
    x = np.zeros((1, 4, 8), "float32")
    weights_layer(x, x)
    on_gpu = False
    if BACKEND == "torch":
        on_gpu = torch.cuda.is_available()
    elif BACKEND == "jax":
        import jax

        on_gpu = jax.default_backend() == "gpu"
    chosen = resolve_implementation(
        "auto",
        weights_layer.scoring_weights,
        "relu",
        "float32",
        shapes=((1, 2, 4, 1), (1, 2, 4, 1), (1, 2, 4, 8)),
    )
    expected = KERNEL_OF_BACKEND.get(BACKEND) if on_gpu else "factored"
    assert chosen == expected
    assert (
        resolve_implementation(
            "auto", weights_layer.scoring_weights, "relu", "float32",
            shapes=((1, 2, 4, 1), (1, 2, 4, 1), (1, 2, 4, 8)),
            needs_probabilities=True,
        )
        == "factored"
    )


def test_kernel_of_another_backend_is_refused():
    other = {"jax": "triton", "torch": "pallas", "tensorflow": "pallas"}
    x = np.zeros((1, 4, 8), "float32")
    layer = NeuralAttention(
        num_heads=2, key_dim=4, implementation=other[BACKEND]
    )
    with pytest.raises(ValueError, match="backend"):
        layer(x, x)
