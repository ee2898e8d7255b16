"""The training ``TextVectorizer`` as it runs inside a serving graph.

Two things change from training, and nothing else: the lookup table reads the vocabulary
*file*, so the file becomes a SavedModel asset, and, for a portable export, the
tensorflow-text ``WhitespaceTokenizer`` is swapped for core-op splitting. Normalisation,
lookup, the OOV bucket, padding and truncation are ``TextVectorizer.__call__`` itself.

Why the core split is the same tokeniser: ``kdzoo.data.text._normalize`` maps every Unicode
space separator (``\\p{Z}``) and U+0085 (NEXT LINE, which tensorflow-text 2.21 would split
one byte late, leaving ``\\xc2`` on the token) to " ", so the only characters left for
tensorflow-text to split on are the ASCII whitespace ``\\t \\n \\v \\f \\r``, which is what
``tf.strings.split`` splits on. ``tests/serving/test_serving.py`` checks the two agree on every
Unicode code point, on random strings of whitespace and letters, and on the real SST-2 and
SMS Spam text.
"""

from __future__ import annotations

import tensorflow as tf

from kdzoo.data.text import TextVectorizer

#: Tokenisers a serving export can use: the training one, or core ops only.
TOKENIZERS = ("tensorflow_text", "core")


class CoreWhitespaceTokenizer:
    """``tensorflow_text.WhitespaceTokenizer().tokenize`` on ``_normalize``d text, with core
    TF ops only (see the module docstring for why the two agree)."""

    def tokenize(self, strings):
        """Splits ``tf.string`` ``[batch]`` into a ``RaggedTensor`` of tokens."""
        return tf.strings.split(strings)


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
