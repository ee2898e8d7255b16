"""Tang et al. (2019) transfer-set augmentation: seeded, and each operation as specified."""

import numpy as np
import pytest

from kdzoo.data.text_augment import MASK, augment_sentences

SENTENCES = [f"the film is {w} and {w} again , truly {w}" for w in ("good", "bad", "long")]


def test_the_same_seed_gives_the_same_sentences_and_another_seed_others():
    a = augment_sentences(SENTENCES, 10, seed=3)
    b = augment_sentences(SENTENCES, 10, seed=3)
    c = augment_sentences(SENTENCES, 10, seed=4)
    np.testing.assert_array_equal(a, b)
    assert list(a) != list(c)


def test_copies_are_new_distinct_and_made_of_their_sentences_words():
    out = augment_sentences(SENTENCES, 20, seed=0)
    assert 0 < len(out) <= 60 and len(set(out)) == len(out)
    assert not set(out) & set(SENTENCES)  # a copy equal to its sentence is dropped
    vocabularies = [set(s.split()) | {MASK} for s in SENTENCES]
    assert all(any(set(s.split()) <= v for v in vocabularies) for s in out)


def test_masking_rate_and_ngram_lengths():
    long = [" ".join(f"w{i}" for i in range(50))] * 1
    masked = augment_sentences(long * 1, 200, seed=1, mask_probability=0.2, ngram_probability=0)
    tokens = np.concatenate([s.split() for s in masked])
    assert abs(np.mean(tokens == MASK) - 0.2) < 0.02  # 10,000 words, binomial sd 0.004
    assert all(len(s.split()) == 50 for s in masked)
    cut = augment_sentences(long, 300, seed=2, mask_probability=0, ngram_probability=1.0)
    lengths = [len(s.split()) for s in cut]
    assert set(lengths) <= {1, 2, 3, 4, 5} and len(set(lengths)) == 5
    for s in cut:  # an n-gram is a contiguous run of the sentence
        first = int(s.split()[0][1:])
        assert s.split() == [f"w{i}" for i in range(first, first + len(s.split()))]


def test_replacements_draw_from_the_vocabulary():
    out = augment_sentences(["a b c d e f g h"], 50, seed=0, mask_probability=0,
                            replace_probability=0.5, ngram_probability=0,
                            vocabulary=["zz"])  # fmt: skip
    assert any("zz" in s for s in out) and all(len(s.split()) == 8 for s in out)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"copies": 0}, "copies"),
        ({"copies": 2, "mask_probability": 1.5}, r"mask_probability.*\[0, 1\]"),
        ({"copies": 2, "mask_probability": 0.6, "replace_probability": 0.6}, "at most 1"),
        ({"copies": 2, "replace_probability": 0.1}, "needs a non-empty `vocabulary`"),
        ({"copies": 2, "max_ngram": 0}, "max_ngram"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment_sentences(SENTENCES, **kwargs)


def test_bytes_are_read_as_utf8_and_one_string_is_refused():
    # tf.data and TFDS give text as bytes: str(b"...") would augment "b'the film ...'".
    as_bytes = [s.encode("utf-8") for s in SENTENCES] + [np.bytes_("café ok".encode())]
    out = augment_sentences(as_bytes, 5, seed=1)
    assert list(out[: len(augment_sentences(SENTENCES, 5, seed=1))]) == list(
        augment_sentences(SENTENCES, 5, seed=1)
    )
    assert not any(s.startswith("b'") for s in out)
    with pytest.raises(TypeError, match="one string"):
        augment_sentences(SENTENCES[0], 2)
    with pytest.raises(ValueError, match="row 1: bytes that are not UTF-8"):
        augment_sentences([b"fine", b"\xff\xfe bad"], 2)
