"""The released code's preprocessing with KerasHub's WordPiece."""

import numpy as np
import pytest

from keras_neural_attention.experiments import tokenization

VOCABULARY = ["[PAD]", "[UNK]", "[SEP]", "the", "cat", "sat", ".", "=",
              "Title", "on", "mat", "##s"]


def test_released_code_lines():
    lines = [" ", " = Title = ", " the <unk> sat . "]
    assert tokenization.released_code_lines(lines) == [
        "[SEP]", "= Title =[SEP]", "the [UNK] sat .[SEP]"]


def test_wordpiece_with_a_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    tokenizer = tokenization.wordpiece_tokenizer(path)
    lines = tokenization.released_code_lines(
        [" the cat sat on the mats . ", " = Title = ", " <unk> dog "])
    stream = tokenization.token_stream(tokenizer, lines)
    index = {t: i for i, t in enumerate(VOCABULARY)}
    expected = [index[t] for t in (
        "the", "cat", "sat", "on", "the", "mat", "##s", ".", "[SEP]",
        "=", "Title", "=", "[SEP]", "[UNK]", "[UNK]", "[SEP]")]
    np.testing.assert_array_equal(stream, expected)


def test_vocabulary_needs_special_tokens():
    with pytest.raises(ValueError, match=r"\[SEP\]"):
        tokenization.wordpiece_tokenizer(["[UNK]", "a"])


def test_trained_vocabulary_holds_reserved_tokens_and_words(tmp_path):
    lines = [" the cat sat on the mat . "] * 20 + [" <unk> "]
    vocabulary = tokenization.train_vocabulary(
        lines, 30, output_file=tmp_path / "v.txt")
    assert vocabulary[:3] == ["[PAD]", "[UNK]", "[SEP]"]
    assert {"the", "cat", "sat", "."} <= set(vocabulary)
    assert "unk" not in vocabulary  # <unk> is not learned as text
    assert tokenization.read_vocabulary(tmp_path / "v.txt") == vocabulary
    cached = tokenization.cached_vocabulary(lines, 30, tmp_path / "cache")
    assert cached == vocabulary
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_blocks_of_context_plus_one():
    blocks, dropped = tokenization.stream_to_blocks(np.arange(11), 3)
    np.testing.assert_array_equal(blocks, np.arange(9).reshape(3, 3))
    assert dropped == 2
    x, y = tokenization.blocks_to_lm_arrays(blocks)
    np.testing.assert_array_equal(x["token_ids"], [[0, 1], [3, 4], [6, 7]])
    np.testing.assert_array_equal(y, [[1, 2], [4, 5], [7, 8]])
    np.testing.assert_array_equal(x["padding_mask"], np.ones((3, 2)))
    with pytest.raises(ValueError, match="shorter than one block"):
        tokenization.stream_to_blocks(np.arange(2), 3)
    with pytest.raises(ValueError, match="block_length"):
        tokenization.stream_to_blocks(np.arange(5), 1)
