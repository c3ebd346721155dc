"""`TransformerEncoderBlock`: selectable attention, masks, Keras contract."""

import keras
import numpy as np
import pytest

from keras_neural_attention.layers import ExpressiveAttention
from keras_neural_attention.layers import NeuralAttention
from keras_neural_attention.layers import TransformerEncoderBlock
from tests.backend_utils import to_numpy


def test_keras_layer_test_contract():
    from keras.src import testing

    class Case(testing.TestCase):
        def runTest(self):
            self.run_layer_test(
                TransformerEncoderBlock,
                init_kwargs=dict(
                    num_heads=2, intermediate_dim=12, attention_type="neural",
                ),
                input_shape=(2, 5, 8),
                expected_output_shape=(2, 5, 8),
                # 8 attention + 10 scoring (d' = 1, hidden (1, 1)) +
                # 4 LayerNorm + 4 feed-forward weights
                expected_num_trainable_weights=26,
                expected_num_non_trainable_weights=0,
            )

    result = Case().run()
    assert result.wasSuccessful(), result.errors + result.failures


@pytest.mark.parametrize(
    "attention_type, attention_class, weights",
    [
        ("dot_product", keras.layers.MultiHeadAttention, 16),
        ("neural", NeuralAttention, 26),
        ("expressive", ExpressiveAttention, 16),
    ],
)
def test_attention_type_selects_the_attention_layer(
    attention_type, attention_class, weights
):
    block = TransformerEncoderBlock(2, 12, attention_type=attention_type)
    block.build((None, 5, 8))
    assert type(block.self_attention_layer) is attention_class
    assert len(block.trainable_weights) == weights
    config = block.get_config()
    assert TransformerEncoderBlock.from_config(config).get_config() == config


def test_padding_mask_hides_padded_tokens():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 4, 8)).astype("float32")
    block = TransformerEncoderBlock(2, 12, attention_type="neural")
    padding = np.array([[True, True, True, False]])
    out = to_numpy(block(x, padding_mask=padding))
    changed = x.copy()
    changed[0, 3] = rng.normal(size=8)
    out_changed = to_numpy(block(changed, padding_mask=padding))
    # Unpadded tokens never see the padded one.
    np.testing.assert_allclose(out[0, :3], out_changed[0, :3], atol=1e-5)
    _, scores = block(x, padding_mask=padding, return_attention_scores=True)
    np.testing.assert_allclose(to_numpy(scores)[..., 3], 0.0, atol=1e-7)


def test_key_dim_must_divide_or_be_given():
    block = TransformerEncoderBlock(num_heads=3, intermediate_dim=8)
    with pytest.raises(ValueError, match="key_dim"):
        block.build((None, 4, 8))
    block = TransformerEncoderBlock(num_heads=3, intermediate_dim=8,
                                    key_dim=5)
    assert to_numpy(block(np.zeros((1, 4, 8), "float32"))).shape == (1, 4, 8)
    with pytest.raises(TypeError, match="attention_options"):
        TransformerEncoderBlock(2, 8, attention_options=["projection_dim"])
