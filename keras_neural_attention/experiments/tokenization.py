"""WordPiece tokenization and the released code's language-model blocks.

The released code tokenizes WikiText-103 with `bert-base-cased` (WordPiece,
28,996 entries): each line becomes `line.strip(' ')` with its line end
replaced by `[SEP]` and `<unk>` by `[UNK]`; all ids are concatenated into
one stream, cut into non-overlapping blocks of `context + 1` tokens (the
remainder dropped); a block's first `context` tokens are the input and its
last `context` the targets.

Here the tokenizer is KerasHub's `WordPieceTokenizer`, given a vocabulary
file (for example `bert-base-cased`'s `vocab.txt`) or a vocabulary trained on
the training split with `keras_hub.tokenizers.compute_word_piece_vocabulary`.
KerasHub (and TensorFlow) is imported inside the functions only.
"""

import hashlib
import os
from pathlib import Path

import numpy as np

SEPARATOR_TOKEN = "[SEP]"
UNKNOWN_TOKEN = "[UNK]"
PADDING_TOKEN = "[PAD]"
WIKITEXT_UNKNOWN = "<unk>"
RESERVED_TOKENS = (PADDING_TOKEN, UNKNOWN_TOKEN, SEPARATOR_TOKEN)


def released_code_lines(lines, separator=SEPARATOR_TOKEN,
                        unknown_token=UNKNOWN_TOKEN):
    """The released code's per-line text: `line.strip(' ')`, `<unk>`
    mapped to `unknown_token`, and `separator` in place of the line end.

    Args:
        lines: iterable of str (line ends already removed).
        separator: str appended to every line.
        unknown_token: str replacing WikiText's `<unk>`.

    Returns:
        A list of str.
    """
    return [
        line.strip(" ").replace(WIKITEXT_UNKNOWN, unknown_token) + separator
        for line in lines
    ]


def vocabulary_training_text(lines):
    """The text a vocabulary is learned from: the lines with WikiText's
    `<unk>` removed (it would otherwise be learned as `<`, `unk`, `>`) and
    blank lines dropped."""
    text = [line.replace(WIKITEXT_UNKNOWN, " ").strip() for line in lines]
    return [line for line in text if line]


def train_vocabulary(lines, vocabulary_size, output_file=None,
                     reserved_tokens=RESERVED_TOKENS):
    """A WordPiece vocabulary learned on `lines` with
    `keras_hub.tokenizers.compute_word_piece_vocabulary` (cased, split on
    punctuation, as `bert-base-cased`).

    Args:
        lines: list of str, the training split.
        vocabulary_size: int. Upper bound of the vocabulary size.
        output_file: optional path; the vocabulary is written there, one
            token per line.
        reserved_tokens: tokens placed first (`[PAD]`, `[UNK]`, `[SEP]`).

    Returns:
        A list of str.
    """
    if (not isinstance(vocabulary_size, int) or isinstance(
            vocabulary_size, bool) or vocabulary_size <= len(reserved_tokens)):
        raise ValueError(
            "Argument `vocabulary_size` must be an integer larger than the "
            f"{len(reserved_tokens)} reserved tokens. "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )
    import keras_hub
    import tensorflow as tf

    text = vocabulary_training_text(lines)
    if not text:
        raise ValueError(
            "Argument `lines` holds no text to learn a vocabulary from. "
            f"Received: {len(lines)} blank line(s)"
        )
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(text).batch(1024),
        vocabulary_size,
        lowercase=False,
        reserved_tokens=list(reserved_tokens),
    )
    if output_file is not None:
        Path(output_file).parent.mkdir(parents=True, exist_ok=True)
        Path(output_file).write_text("\n".join(vocabulary) + "\n",
                                     encoding="utf-8")
    return list(vocabulary)


def cached_vocabulary(lines, vocabulary_size, cache_dir):
    """`train_vocabulary`, stored in `cache_dir` under a name made of the
    text's SHA-256 and the size, and read back when it is there."""
    digest = hashlib.sha256(
        "\n".join(lines).encode("utf-8")).hexdigest()[:16]
    path = Path(cache_dir) / f"wordpiece-{vocabulary_size}-{digest}.txt"
    if path.is_file():
        return read_vocabulary(path)
    return train_vocabulary(lines, vocabulary_size, output_file=path)


def read_vocabulary(path):
    """The tokens of a vocabulary file, one per line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No vocabulary file at {path!r}.")
    with open(path, encoding="utf-8") as handle:
        tokens = [line.rstrip("\n") for line in handle]
    while tokens and not tokens[-1]:
        tokens.pop()
    return tokens


def wordpiece_tokenizer(vocabulary):
    """KerasHub's `WordPieceTokenizer` set up as `bert-base-cased`: cased,
    `[UNK]` for unknown words, and `[SEP]` / `[UNK]` in the text read as the
    special tokens they are.

    Args:
        vocabulary: a list of tokens or the path of a vocabulary file (one
            token per line); it must hold `[SEP]` and `[UNK]`.

    Returns:
        A `keras_hub.tokenizers.WordPieceTokenizer`.
    """
    import keras_hub

    tokens = (
        list(vocabulary) if isinstance(vocabulary, (list, tuple))
        else read_vocabulary(vocabulary)
    )
    missing = [t for t in (SEPARATOR_TOKEN, UNKNOWN_TOKEN) if t not in tokens]
    if missing:
        raise ValueError(
            f"Argument `vocabulary` must hold the tokens {missing}. "
            f"Received: a vocabulary of {len(tokens)} tokens without them"
        )
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=tokens,
        lowercase=False,
        oov_token=UNKNOWN_TOKEN,
        special_tokens=[SEPARATOR_TOKEN, UNKNOWN_TOKEN],
        special_tokens_in_strings=True,
    )


def token_stream(tokenizer, lines, batch_size=2048):
    """All lines tokenized and concatenated into one int32 stream (the
    lines as given: apply `released_code_lines` first for the released
    code's text)."""
    pieces = []
    for start in range(0, len(lines), batch_size):
        batch = tokenizer(list(lines[start:start + batch_size]))
        if hasattr(batch, "to_list"):
            batch = batch.to_list()
        for ids in batch:
            pieces.append(np.asarray(ids, dtype="int32").reshape(-1))
    if not pieces:
        return np.zeros((0,), dtype="int32")
    return np.concatenate(pieces)


def stream_to_blocks(stream, block_length):
    """Non-overlapping blocks of `block_length` tokens (context + 1); the
    remainder is dropped, as in the released code.

    Returns:
        `(blocks, dropped)`: int32 `(n, block_length)` and the number of
        tokens left over.
    """
    if (not isinstance(block_length, int) or isinstance(block_length, bool)
            or block_length < 2):
        raise ValueError(
            "Argument `block_length` must be an integer >= 2 (context + 1). "
            f"Received: block_length={block_length!r}"
        )
    stream = np.asarray(stream, dtype="int32")
    count = len(stream) // block_length
    if count == 0:
        raise ValueError(
            f"The token stream ({len(stream)} tokens) is shorter than one "
            f"block (block_length={block_length})."
        )
    blocks = stream[: count * block_length].reshape(count, block_length)
    return blocks, int(len(stream) - count * block_length)


def blocks_to_lm_arrays(blocks):
    """`(x, y)` for `keras_hub.models.GPT2CausalLM.fit`: x is
    `{"token_ids": blocks[:, :-1], "padding_mask": ones}`, y is
    `blocks[:, 1:]`."""
    blocks = np.asarray(blocks, dtype="int32")
    inputs = blocks[:, :-1]
    return (
        {"token_ids": inputs, "padding_mask": np.ones_like(inputs)},
        blocks[:, 1:],
    )
