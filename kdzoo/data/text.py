"""Whitespace tokenisation (tensorflow-text) plus a vocabulary table built from training text.

Id 0 is padding, ids 1..V-1 are the vocabulary, and id V is the out-of-vocabulary bucket,
so ``vocab_size = len(vocabulary) + 1``. The vocabulary is a plain text file (one token per
line, line 0 is ``[PAD]``) that travels with the model. Sizes default to
``kdzoo.defaults.DEFAULTS`` (``text_max_tokens``, ``text_sequence_length``); a dataset's own
length is a fact of its catalog entry (``kdzoo.datasets.catalog``).
"""

from __future__ import annotations

import collections
import os

import tensorflow as tf
import tensorflow_text as tf_text

from kdzoo.data.bad_input import BadExampleError
from kdzoo.defaults import DEFAULTS
from kdzoo.files import atomic_file

PAD = "[PAD]"

# Every Unicode space separator (Z: Zs, and the line/paragraph separators U+2028, U+2029)
# and U+0085 (NEXT LINE, a control character with the White_Space property).
_SEPARATORS = r"[\p{Z}\x{0085}]"


def _normalize(strings):
    """Unicode-aware lower-casing, and every non-ASCII Unicode whitespace character mapped to
    " ", with core TF ops (no custom op in a serving graph).

    The mapping works around tensorflow-text 2.21's ``WhitespaceTokenizer``, which splits
    U+00A0 (no-break space, in SST-2) and U+0085 (next line) inside their UTF-8 bytes: the
    token before them keeps a dangling ``\xc2`` byte, i.e. it is invalid UTF-8 (which cannot
    be written to the vocabulary file) and never matches the vocabulary.
    """
    strings = tf.strings.regex_replace(strings, _SEPARATORS, " ")
    return tf.strings.lower(strings, encoding="utf-8")


def _utf8_rows(texts) -> list[bytes]:
    """``texts`` as UTF-8 bytes; a row that is not valid UTF-8 raises naming its index."""
    out = []
    for i, text in enumerate(texts):
        try:
            if isinstance(text, bytes):
                text.decode("utf-8")
            else:
                text = str(text).encode("utf-8")
        except UnicodeError as err:
            raise BadExampleError(
                f"text row {i}: not valid UTF-8 ({err.reason}; expected UTF-8 text)"
            ) from None
        out.append(text)
    return out


def _row_with_token(rows, token, tokenizer) -> int:
    """The index of the first row of ``rows`` whose tokens include ``token``."""
    for i, row in enumerate(rows):
        if token in tokenizer.tokenize(_normalize(tf.constant([row]))).flat_values.numpy():
            return i
    return -1


class TextVectorizer:
    """Maps ``tf.string`` sentences to int32 token ids ``[batch, sequence_length]``.

    Args:
        vocabulary: tokens; index 0 must be ``"[PAD]"``.
        sequence_length: ids are padded with 0 or truncated to this length. Defaults to
            ``DEFAULTS.text_sequence_length`` (64).
    """

    def __init__(self, vocabulary, sequence_length=DEFAULTS.text_sequence_length):
        vocabulary = list(vocabulary)
        if not vocabulary or vocabulary[0] != PAD:
            raise ValueError(f"The vocabulary must start with {PAD!r}.")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("The vocabulary has duplicate tokens.")
        for i, token in enumerate(vocabulary):
            if not token or "\n" in token or "\r" in token:
                raise ValueError(
                    f"Vocabulary token {i} is {token!r}; the vocabulary file holds one token a "
                    "line, so a token must be non-empty, without '\\n' or '\\r'."
                )
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
    def adapt(
        cls,
        texts,
        max_tokens=DEFAULTS.text_max_tokens,
        sequence_length=DEFAULTS.text_sequence_length,
        min_count=1,
        batch_size=1024,
    ):
        """Builds the vocabulary from ``texts`` (pass a training split only).

        ``max_tokens`` (vocabulary entries, ``[PAD]`` included; the OOV bucket comes on top)
        defaults to ``DEFAULTS.text_max_tokens`` (20,000), ``sequence_length`` to
        ``DEFAULTS.text_sequence_length`` (64).

        Tokens come from the same tensorflow-text tokeniser and lower-casing the vectoriser
        applies, so the vocabulary and the lookups cannot disagree. Keeps the
        ``max_tokens - 1`` most frequent tokens seen at least ``min_count`` times (ties by
        token), after ``[PAD]``. ``texts`` are strings, UTF-8 bytes or a ``tf.string``
        tensor; a row that is not valid UTF-8 raises ``BadExampleError`` naming its index.
        """
        tokenizer = tf_text.WhitespaceTokenizer()
        rows = _utf8_rows(texts.numpy() if isinstance(texts, tf.Tensor) else texts)
        raw_counts = collections.Counter()
        for start in range(0, len(rows), batch_size):
            batch = tf.constant(rows[start : start + batch_size])
            raw_counts.update(tokenizer.tokenize(_normalize(batch)).flat_values.numpy())
        counts = {}
        for token, n in raw_counts.items():
            try:
                counts[token.decode("utf-8")] = n
            except UnicodeDecodeError as err:
                raise BadExampleError(
                    f"text row {_row_with_token(rows, token, tokenizer)}: the tokeniser made "
                    f"the token {token!r}, which is not valid UTF-8 ({err.reason}; expected "
                    "UTF-8 tokens)"
                ) from None
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

    def file_content(self) -> str:
        """The vocabulary file's text: one token a line, ``"\\n"``-terminated."""
        return "\n".join(self.vocabulary) + "\n"

    def save(self, path):
        """Writes the vocabulary atomically (``kdzoo.files.atomic_file``), one token per line
        (``"\\n"`` only: a token may hold other characters that some readers treat as line
        breaks, e.g. U+001C)."""
        with atomic_file(path, "wb") as f:  # bytes: no newline translation
            f.write(self.file_content().encode("utf-8"))

    @classmethod
    def load(cls, path, sequence_length=DEFAULTS.text_sequence_length):
        """Reads a vocabulary file written by ``save``; lines are split on ``"\\n"`` only,
        as TF's ``TextFileInitializer`` splits them."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"No vocabulary file at {path!r}.")
        with open(path, encoding="utf-8", newline="") as f:
            return cls([t for t in f.read().split("\n") if t], sequence_length)
