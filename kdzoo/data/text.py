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
    def adapt(cls, texts, max_tokens=2000, sequence_length=16):
        """Builds the vocabulary from ``texts`` (a training split only): the
        ``max_tokens - 1`` most frequent lower-cased whitespace tokens, ties by token."""
        counts = collections.Counter()
        for line in texts:
            counts.update(str(line).lower().split())
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max_tokens - 1]
        return cls([PAD] + [tok for tok, _ in ranked], sequence_length)

    def __call__(self, strings):
        tokens = self._tokenizer.tokenize(tf.strings.lower(strings))
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
