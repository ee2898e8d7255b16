"""The training ``TextVectorizer`` as it runs inside a serving graph.

Two things change from training, and nothing else: the lookup table reads the vocabulary
*file*, so the file becomes a SavedModel asset, and, for a portable export, the
tensorflow-text ``WhitespaceTokenizer`` is swapped for core-op splitting. Normalisation,
lookup, the OOV bucket, padding and truncation are ``TextVectorizer.__call__`` itself.

Why the core split is the same tokeniser: after ``kdzoo.data.text._normalize`` has mapped
every Unicode space separator (``\\p{Z}``) to " ", the characters tensorflow-text 2.21 still
splits on are the ASCII whitespace ``\\t \\n \\v \\f \\r`` and U+0085 (NEXT LINE, a control
character with the Unicode White_Space property). ``tf.strings.split`` splits on ASCII
whitespace, so U+0085 is mapped to " " first. One quirk is reproduced on purpose, so the
ids stay the training ids: tensorflow-text ends a token that runs into U+0085 one byte
late, keeping the first byte ``\\xc2`` of U+0085's UTF-8 encoding (the bug ``_normalize``
works around for U+00A0). ``tests/test_serving.py`` checks the two agree on every Unicode
code point, on random strings of whitespace and letters, and on the real SST-2 and SMS
Spam text.
"""

from __future__ import annotations

import tensorflow as tf

from kdzoo.data.text import TextVectorizer

#: Tokenisers a serving export can use: the training one, or core ops only.
TOKENIZERS = ("tensorflow_text", "core")


# A character that is not whitespace (after _normalize), followed by U+0085 (NEXT LINE).
_BEFORE_NEL = "([^\t\n\x0b\x0c\r \u0085])\u0085"


class CoreWhitespaceTokenizer:
    """``tensorflow_text.WhitespaceTokenizer().tokenize`` on ``_normalize``d text, with core
    TF ops only (see the module docstring for why the two agree)."""

    def tokenize(self, strings):
        """Splits ``tf.string`` ``[batch]`` into a ``RaggedTensor`` of tokens."""
        # A token running into U+0085 keeps the byte \xc2, as tensorflow-text's does.
        strings = tf.strings.regex_replace(strings, _BEFORE_NEL, b"\\1\xc2 ")
        return tf.strings.split(tf.strings.regex_replace(strings, "\u0085", " "))


def read_vocabulary(path) -> list[str]:
    """The tokens of a vocabulary file written by ``TextVectorizer.save``, in id order.

    Raises ``ValueError`` on an empty line: the table maps a token to its *line number*, so
    a blank line would shift every later id."""
    with open(path, encoding="utf-8") as f:
        tokens = f.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    if "" in tokens:
        raise ValueError(
            f"{path}: line {tokens.index('') + 1} is empty; expected one token a line."
        )
    return tokens


class ServingTextVectorizer(TextVectorizer):
    """A ``TextVectorizer`` whose table is initialised from ``vocabulary_path``.

    Args:
        vocabulary_path: the vocabulary file the model was trained with (one token per
            line, ``[PAD]`` first), as written by ``TextVectorizer.save``.
        sequence_length: ids are padded with 0 or truncated to this length.
        tokenizer: ``"tensorflow_text"`` (the training tokeniser; the graph then needs
            ``import tensorflow_text`` to load) or ``"core"`` (core ops only). Defaults to
            ``"tensorflow_text"``.
    """

    def __init__(self, vocabulary_path, sequence_length, tokenizer="tensorflow_text"):
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"`tokenizer` must be one of {TOKENIZERS}; got {tokenizer!r}.")
        super().__init__(read_vocabulary(vocabulary_path), sequence_length)
        self.vocabulary_path = str(vocabulary_path)
        self.tokenizer = tokenizer
        # Same ids as the training table (token -> line number, one OOV bucket); a file
        # initialiser makes the vocabulary an asset of the SavedModel.
        self.table = tf.lookup.StaticVocabularyTable(
            tf.lookup.TextFileInitializer(
                self.vocabulary_path,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            num_oov_buckets=1,
        )
        self._table = self.table
        if tokenizer == "core":
            self._tokenizer = CoreWhitespaceTokenizer()
