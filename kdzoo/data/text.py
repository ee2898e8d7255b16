"""Whitespace tokenisation (tensorflow-text) plus a vocabulary table built from training text.

Id 0 is padding, ids 1..V-1 are the vocabulary, and id V is the out-of-vocabulary bucket,
so ``vocab_size = len(vocabulary) + 1``. The vocabulary is a plain text file (one token per
line, line 0 is ``[PAD]``) that travels with the model.
"""

from __future__ import annotations

import collections
import os

import tensorflow as tf
import tensorflow_text as tf_text

PAD = "[PAD]"


def _normalize(strings):
    """Unicode-aware lower-casing, and every Unicode space separator mapped to " ", with core
    TF ops (no custom op in a serving graph).

    The separator mapping works around tensorflow-text 2.21's ``WhitespaceTokenizer``, which
    splits U+00A0 (no-break space, in SST-2) inside its UTF-8 bytes and leaves a dangling
    ``\xc2`` byte, i.e. an invalid UTF-8 token.
    """
    strings = tf.strings.regex_replace(strings, r"\p{Z}", " ")
    return tf.strings.lower(strings, encoding="utf-8")


class TextVectorizer:
    """Maps ``tf.string`` sentences to int32 token ids ``[batch, sequence_length]``.

    Args:
        vocabulary: tokens; index 0 must be ``"[PAD]"``.
        sequence_length: ids are padded with 0 or truncated to this length.
    """

    def __init__(self, vocabulary, sequence_length=16):
        vocabulary = list(vocabulary)
        if not vocabulary or vocabulary[0] != PAD:
            raise ValueError(f"The vocabulary must start with {PAD!r}.")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("The vocabulary has duplicate tokens.")
        if sequence_length <= 0:
            raise ValueError(f"`sequence_length` must be > 0, got {sequence_length}.")
        self.vocabulary = vocabulary
        self.sequence_length = int(sequence_length)
        self._tokenizer = tf_text.WhitespaceTokenizer()
        init = tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocabulary), tf.range(len(vocabulary), dtype=tf.int64)
        )
        self._table = tf.lookup.StaticVocabularyTable(init, num_oov_buckets=1)

    @property
    def vocab_size(self) -> int:
        """Embedding rows a model needs: vocabulary plus the OOV bucket."""
        return len(self.vocabulary) + 1

    @classmethod
    def adapt(cls, texts, max_tokens=2000, sequence_length=16, min_count=1, batch_size=1024):
        """Builds the vocabulary from ``texts`` (pass a training split only).

        Tokens come from the same tensorflow-text tokeniser and lower-casing the vectoriser
        applies, so the vocabulary and the lookups cannot disagree. Keeps the
        ``max_tokens - 1`` most frequent tokens seen at least ``min_count`` times (ties by
        token), after ``[PAD]``.
        """
        tokenizer = tf_text.WhitespaceTokenizer()
        counts = collections.Counter()
        texts = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string))
        for batch in texts.batch(batch_size):
            tokens = tokenizer.tokenize(_normalize(batch)).flat_values.numpy()
            counts.update(t.decode("utf-8") for t in tokens)
        ranked = sorted(
            ((tok, n) for tok, n in counts.items() if n >= min_count and tok != PAD),
            key=lambda kv: (-kv[1], kv[0]),
        )[: max_tokens - 1]
        return cls([PAD] + [tok for tok, _ in ranked], sequence_length)

    def __call__(self, strings):
        tokens = self._tokenizer.tokenize(_normalize(strings))
        ids = tf.cast(self._table.lookup(tokens), tf.int32)
        shape = [None, self.sequence_length] if ids.shape.rank == 2 else [self.sequence_length]
        return ids.to_tensor(default_value=0, shape=shape)

    def save(self, path):
        """Writes the vocabulary, one token per line."""
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(self.vocabulary) + "\n")

    @classmethod
    def load(cls, path, sequence_length=16):
        if not os.path.exists(path):
            raise FileNotFoundError(f"No vocabulary file at {path!r}.")
        with open(path, encoding="utf-8") as f:
            return cls([line.rstrip("\n") for line in f if line.rstrip("\n")], sequence_length)
