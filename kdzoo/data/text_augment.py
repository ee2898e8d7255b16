"""Text transfer-set augmentation in the style of Tang et al. (2019), "Distilling
Task-Specific Knowledge from BERT into Simple Neural Networks", section 3.3.

A teacher labels softly whatever text it is given, so new sentences made from the training
sentences enlarge the transfer set a student learns from (``kdzoo.datasets.with_transfer``).
Per copy of a sentence, each word is, independently:

- **masked** with probability ``mask_probability``: replaced by ``mask_token``;
- or **replaced** with probability ``replace_probability`` (the two exclude each other, so
  their sum is at most 1) by a word drawn uniformly from ``vocabulary`` (Tang et al. draw a
  word of the same part of speech; kdzoo has no tagger, so this is the untagged variant,
  off by default);

then, with probability ``ngram_probability``, the copy is cut to a random **n-gram** of
``n`` words, ``n`` uniform in ``1..max_ngram``. Copies identical to their sentence or to an
earlier copy are dropped, so fewer than ``copies`` may come back. The defaults are the
paper's (``p_mask = 0.1``, ``p_ng = 0.25``, n-grams of 1 to 5 words). Everything is
seeded: the same call gives the same sentences.
"""

from __future__ import annotations

import numpy as np

#: Stands for a masked word. Whitespace tokenisation keeps it one token; a vocabulary
#: learnt from the augmented set gives it its own id, as BERT's ``[MASK]`` has.
MASK = "[mask]"


def augment_sentences(
    texts,
    copies: int,
    *,
    seed: int = 0,
    mask_probability: float = 0.1,
    replace_probability: float = 0.0,
    ngram_probability: float = 0.25,
    max_ngram: int = 5,
    vocabulary=None,
    mask_token: str = MASK,
) -> np.ndarray:
    """Up to ``copies`` augmented versions of each sentence of ``texts``.

    Args:
        texts: sentences (``str``, or UTF-8 ``bytes`` as tf.data and TFDS give them);
            words are separated by whitespace.
        copies: augmented versions tried per sentence, ``>= 1``.
        seed: the random stream; the same arguments give the same output.
        mask_probability, replace_probability, ngram_probability: in ``[0, 1]``.
        max_ngram: the longest n-gram kept, ``>= 1``.
        vocabulary: words a replacement draws from (needed when
            ``replace_probability > 0``).
        mask_token: what a masked word becomes.

    Returns:
        An object array of new sentences, grouped by source sentence in input order.

    Raises:
        TypeError: ``texts`` is one string, not a list of sentences.
        ValueError: a row of bytes that are not UTF-8 (named); a probability outside
            ``[0, 1]``, mask and replacement probabilities summing above 1, ``copies`` or
            ``max_ngram`` below 1, or replacements without a vocabulary.
    """
    for name, p in (
        ("mask_probability", mask_probability),
        ("replace_probability", replace_probability),
        ("ngram_probability", ngram_probability),
    ):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1]; got {p!r}.")
    if mask_probability + replace_probability > 1.0:
        raise ValueError(
            "`mask_probability` + `replace_probability` must be at most 1; got "
            f"{mask_probability} + {replace_probability}."
        )
    if isinstance(copies, bool) or int(copies) != copies or copies < 1:
        raise ValueError(f"`copies` must be an int >= 1; got {copies!r}.")
    if isinstance(max_ngram, bool) or int(max_ngram) != max_ngram or max_ngram < 1:
        raise ValueError(f"`max_ngram` must be an int >= 1; got {max_ngram!r}.")
    words_to_draw = None if vocabulary is None else np.asarray(list(vocabulary), dtype=object)
    if replace_probability > 0 and (words_to_draw is None or not len(words_to_draw)):
        raise ValueError("`replace_probability` > 0 needs a non-empty `vocabulary`.")
    if isinstance(texts, (str, bytes)):
        raise TypeError("`texts` is one string; give a list (or array) of sentences, e.g. [text].")
    rng = np.random.default_rng(seed)
    out = []
    for row, text in enumerate(texts):
        if isinstance(text, bytes | np.bytes_):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"`texts` row {row}: bytes that are not UTF-8 ({err}).") from err
        words = str(text).split()
        if not words:
            continue
        seen = {" ".join(words)}
        for _ in range(copies):
            draw = rng.random(len(words))
            new = []
            for word, u in zip(words, draw, strict=True):
                if u < mask_probability:
                    new.append(mask_token)
                elif u < mask_probability + replace_probability:
                    new.append(str(words_to_draw[rng.integers(len(words_to_draw))]))
                else:
                    new.append(word)
            if rng.random() < ngram_probability:
                n = min(int(rng.integers(1, max_ngram + 1)), len(new))
                start = int(rng.integers(0, len(new) - n + 1))
                new = new[start : start + n]
            sentence = " ".join(new)
            if sentence not in seen:
                seen.add(sentence)
                out.append(sentence)
    return np.array(out, dtype=object)
