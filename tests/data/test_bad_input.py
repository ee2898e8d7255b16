"""Each kind of bad input raises a clear error naming the file or row at fault, or, with
skip_bad=True, is skipped, counted and logged."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from helpers import av_pair

import kdzoo
from kdzoo import datasets
from kdzoo.data import AudioConfig, TextVectorizer, from_arrays
from kdzoo.data.bad_input import BadExampleError


def _wav(path, rate=8000, seconds=0.25):
    tone = np.sin(np.linspace(0, 100, int(rate * seconds)))[:, None].astype("float32") * 0.5
    tf.io.write_file(str(path), tf.audio.encode_wav(tone, rate))


@pytest.fixture
def fsdd_root(tmp_path):
    """Six good clips (digits 0-2, takes 0 and 5), a corrupt one and a 16 kHz one."""
    folder = tmp_path / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    for digit in range(3):
        for take in (0, 5):
            _wav(folder / f"{digit}_ann_{take}.wav")
    good = (folder / "0_ann_0.wav").read_bytes()
    (folder / "1_ann_6.wav").write_bytes(good[: len(good) // 3][:30])  # truncated header
    _wav(folder / "2_ann_7.wav", rate=16000)
    return tmp_path


def test_corrupt_and_wrong_rate_wavs_raise_naming_the_file_or_are_skipped(fsdd_root, caplog):
    with pytest.raises(BadExampleError, match=r"1_ann_6\.wav: cannot decode wav.*skip_bad"):
        datasets.fsdd.load_arrays(root=fsdd_root)
    with caplog.at_level(logging.WARNING, logger="kdzoo.data"):
        data = datasets.load("fsdd", root=fsdd_root, skip_bad=True)
    assert data.skipped == 2
    assert data.num_examples == {"train": 3, "test": 3}
    assert "1_ann_6.wav: cannot decode wav" in caplog.text
    assert "2_ann_7.wav: sample rate 16000 Hz, expected 8000" in caplog.text
    assert "skipped 2 bad example(s): 1 corrupt wav, 1 sample rate" in caplog.text


@pytest.fixture
def text_root(tmp_path):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sms_spam").mkdir()
    good = b"1 a fine film\n0 a dull film\n"
    for name in ("train", "dev", "test"):
        (tmp_path / "sst2" / f"stsa.binary.{name}").write_bytes(good)
    # line 3: whitespace-only text, line 4: label out of range
    (tmp_path / "sst2" / "stsa.binary.train").write_bytes(good + b"1    \n7 great\n")
    sms = [b"ham\thi there"] * 8 + [b"spam\twin cash now"] * 4
    sms[2] = b"ham\tbad \xff\xfe bytes"  # not UTF-8
    sms[5] = b"eggs\tunknown label"
    (tmp_path / "sms_spam" / "SMSSpamCollection").write_bytes(b"\n".join(sms) + b"\n")
    return tmp_path


def test_empty_text_and_out_of_range_labels_in_files(text_root, tmp_path, caplog):
    with pytest.raises(BadExampleError, match=r"stsa\.binary\.train:3: empty or whitespace"):
        datasets.sst2.load_arrays(root=text_root)
    with caplog.at_level(logging.WARNING, logger="kdzoo.data"):
        data = datasets.load("sst2", root=text_root, skip_bad=True, cache_dir=tmp_path / "c")
    assert data.skipped == 2 and data.num_examples["train"] == 2
    assert "stsa.binary.train:4: label '7' is not 0 or 1" in caplog.text


def test_non_utf8_bytes_and_unknown_labels_in_the_sms_file(text_root, tmp_path, caplog):
    with pytest.raises(BadExampleError, match=r"SMSSpamCollection:3: bytes are not valid utf-8"):
        datasets.sms_spam.load_arrays(root=text_root)
    with caplog.at_level(logging.WARNING, logger="kdzoo.data"):
        data = datasets.load("sms_spam", root=text_root, skip_bad=True, cache_dir=tmp_path / "c")
    assert data.skipped == 2 and sum(data.num_examples.values()) == 10
    assert "SMSSpamCollection:6: label 'eggs'" in caplog.text


def test_bad_rows_in_arrays_name_the_row_or_are_skipped(caplog):
    vec = TextVectorizer(["[PAD]", "good"], 4)
    arrays = {
        "text": np.array(["good", "   ", b"\xff\xfe", "good good", "good"], dtype=object),
        "label": np.array([0, 1, 1, 2, 9], dtype=np.int32),
    }
    with pytest.raises(BadExampleError, match="row 4: label 9 is outside 0..2"):
        from_arrays(arrays, ("text",), text_vectorizer=vec, num_classes=3)
    with pytest.raises(BadExampleError, match="text row 1: empty or whitespace-only"):
        from_arrays(arrays, ("text",), text_vectorizer=vec)
    with caplog.at_level(logging.WARNING, logger="kdzoo.data"):
        ds = from_arrays(arrays, ("text",), text_vectorizer=vec, num_classes=3, skip_bad=True)
    labels = np.concatenate([y for _, y in ds.as_numpy_iterator()])
    np.testing.assert_array_equal(labels, [0, 2])
    assert "text row 2: bytes are not valid UTF-8" in caplog.text
    audio = np.zeros((3, 4000), np.float32)
    audio[1, 7] = np.nan
    with pytest.raises(BadExampleError, match="audio row 1: non-finite"):
        from_arrays(
            {"audio": audio, "label": np.zeros(3, np.int32)},
            ("audio",),
            audio_config=AudioConfig.embedded(),
        )


def test_a_missing_modality_key_names_it(tiny_av_batch):
    arrays = {"audio": np.zeros((4, 4000), np.float32), "label": np.zeros(4, np.int32)}
    with pytest.raises(KeyError, match=r"lack modality/label key\(s\) \['image'\]"):
        from_arrays(arrays, ("image", "audio"), audio_config=AudioConfig.embedded())
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"no key\(s\) \['image'\] that the teacher reads"):
        distiller.fit({"audio": x["audio"]}, y, epochs=1, verbose=0)
