"""Loaders of the real datasets, read in place from the data root ($KDZOO_DATA_DIR)."""

import gzip
import wave

import numpy as np
import pytest

from kdzoo import datasets
from kdzoo.data import AudioConfig
from kdzoo.datasets import fsdd, mnist
from kdzoo.datasets.root import ENV_VAR, DataNotFoundError, data_root


@pytest.fixture(scope="module")
def shared_root():
    """The data root; the tests taking it are marked ``requires_data``."""
    return data_root()


def _write_wav(path, rate, samples):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(ENV_VAR)
    assert str(data_root()).endswith(".kdzoo/data")


def test_missing_files_error_lists_paths_and_source(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        mnist.load_arrays("test", root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / mnist.TEST_IMAGES) in message
    assert str(tmp_path / mnist.TEST_LABELS) in message
    assert "mnist" in message and ENV_VAR in message
    with pytest.raises(DataNotFoundError, match="Jakobovski"):
        fsdd.load_arrays(root=tmp_path)


@pytest.mark.requires_data("fsdd")
def test_fsdd_official_split(shared_root):
    data = fsdd.load_arrays("official", root=shared_root)
    train, test = data["train"], data["test"]
    assert len(test["label"]) == 300 and len(train["label"]) == 2700
    assert train["audio"].shape == (2700, AudioConfig().num_samples)
    assert np.bincount(test["label"]).tolist() == [30] * 10
    assert sorted(set(test["speaker"])) == sorted(set(train["speaker"]))
    assert np.abs(train["audio"]).max() <= 1.0


@pytest.mark.requires_data("fsdd")
def test_fsdd_leave_one_speaker_out(shared_root):
    data = fsdd.load_arrays("speaker:george", root=shared_root)
    assert set(data["test"]["speaker"]) == {"george"}
    assert "george" not in set(data["train"]["speaker"])
    assert len(data["test"]["label"]) == 500
    with pytest.raises(ValueError, match="speakers: george"):
        fsdd.load_arrays("speaker:nobody", root=shared_root)


@pytest.mark.requires_data("fsdd")
def test_unseen_voices_are_normalised_per_utterance_unless_told_otherwise(shared_root):
    held_out = {"root": shared_root, "split": "test", "fsdd_split": "speaker:george"}
    cmvn = datasets.load("fsdd", batch_size=500, **held_out)
    chosen = {
        "auto, unseen voice": cmvn,
        "auto, official split": datasets.load("fsdd", root=shared_root, split="test"),
        "told": datasets.load("fsdd", utterance_norm="none", **held_out),
        "told, official split": datasets.load(
            "fsdd", root=shared_root, split="test", utterance_norm="mean"
        ),
    }
    assert {k: v.audio_config.utterance_norm for k, v in chosen.items()} == {
        "auto, unseen voice": "mean_var",
        "auto, official split": "none",
        "told": "none",
        "told, official split": "mean",
    }
    with pytest.raises(ValueError, match="utterance_norm must be one of .*got 'cmvn'"):
        datasets.load("fsdd", utterance_norm="cmvn", **held_out)
    config = cmvn.audio_config
    features = next(iter(cmvn.splits["test"]))[0]["audio"].numpy()
    per_utterance = features * np.array(config.mel_std) + np.array(config.mel_mean)
    padded, spreads = 0, []
    for clip in per_utterance:
        voiced = np.abs(clip).max(axis=1) > 1e-4  # the padding's frames are exactly 0
        assert voiced.any()
        padded += not voiced.all()
        np.testing.assert_allclose(clip[voiced].mean(0), 0, atol=1e-3)
        spreads.append(clip[voiced].std(0))
    assert padded > 400  # most FSDD clips are shorter than the 1 s they are padded to
    # Unit variance, except bins that hardly move in a clip (a recording without energy near
    # 4 kHz): the 1e-2 floor on their standard deviation keeps them below 1, not blown up.
    spreads = np.array(spreads)
    assert spreads.max() < 1 + 1e-3 and np.isclose(spreads, 1, atol=1e-3).mean() > 0.9


@pytest.mark.requires_data("mnist")
def test_mnist_splits(shared_root):
    train = mnist.load_arrays("train", root=shared_root)
    test = mnist.load_arrays("test", root=shared_root)
    assert train["image"].shape == (5000, 28, 28, 1) and test["image"].shape == (10000, 28, 28, 1)
    assert np.bincount(train["label"]).tolist() == [500] * 10
    assert 0.0 <= train["image"].min() and train["image"].max() <= 1.0
    with pytest.raises(ValueError, match="'train' or 'test'"):
        mnist.load_arrays("validation", root=shared_root)


def test_wav_errors_name_the_file(tmp_path):
    config = AudioConfig()
    good = tmp_path / "0_ann_0.wav"
    _write_wav(good, 8000, np.zeros(100))
    assert fsdd.decode_wav(str(good), config).shape == (config.num_samples,)
    wrong_rate = tmp_path / "1_ann_0.wav"
    _write_wav(wrong_rate, 16000, np.zeros(100))
    with pytest.raises(ValueError, match=r"1_ann_0\.wav: sample rate 16000 Hz, expected 8000"):
        fsdd.decode_wav(str(wrong_rate), config)
    corrupt = tmp_path / "2_ann_0.wav"
    corrupt.write_bytes(good.read_bytes()[:20])
    with pytest.raises(ValueError, match=r"2_ann_0\.wav: cannot decode wav"):
        fsdd.decode_wav(str(corrupt), config)


def test_mnist_bad_files_are_named(tmp_path):
    (tmp_path / "mnist").mkdir()
    with gzip.open(tmp_path / mnist.TEST_IMAGES, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + b"\x00" * 12)  # a labels magic where images belong
    with gzip.open(tmp_path / mnist.TEST_LABELS, "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError, match="t10k-images.*magic"):
        mnist.load_arrays("test", root=tmp_path)
    with gzip.open(tmp_path / mnist.TRAIN_CSV, "wt") as f:
        f.write(",".join(["0"] * 784 + ["12"]) + "\n" + ",".join(["0"] * 785) + "\n")
    with pytest.raises(ValueError, match="mnist_5k.*label out of range.*row 0"):
        mnist.load_arrays("train", root=tmp_path)


def test_pair_by_label_is_deterministic_and_label_consistent():
    from kdzoo.datasets.av_digits import pair_by_label

    labels = np.array([0, 1, 1, 0, 1, 1])
    image_labels = np.array([1, 0, 1, 0])
    first = pair_by_label(labels, image_labels, np.random.default_rng(3))
    again = pair_by_label(labels, image_labels, np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(image_labels[first], labels)
    # Images of a class are used in turn before any repeats.
    assert sorted(first[labels == 1][:2]) == [0, 2]
    with pytest.raises(ValueError, match="label 7"):
        pair_by_label(np.array([7]), image_labels, np.random.default_rng(0))


@pytest.mark.requires_data("fsdd", "mnist")
@pytest.mark.slow
def test_av_digits_pairs_train_with_train_and_test_with_test(shared_root):
    from kdzoo.datasets import av_digits

    data = av_digits.load_arrays(seed=0, root=shared_root)
    mnist_test = mnist.load_arrays("test", root=shared_root)["image"].reshape(10000, -1)
    mnist_train = mnist.load_arrays("train", root=shared_root)["image"].reshape(5000, -1)
    train_rows = {r.tobytes() for r in mnist_train}
    test_rows = {r.tobytes() for r in mnist_test}
    assert all(r.tobytes() in train_rows for r in data["train"]["image"].reshape(2700, -1))
    assert all(r.tobytes() in test_rows for r in data["test"]["image"].reshape(300, -1))
    again = av_digits.load_arrays(seed=0, root=shared_root)
    np.testing.assert_array_equal(again["test"]["image"], data["test"]["image"])
    other = av_digits.load_arrays(seed=1, root=shared_root)
    assert not np.array_equal(other["train"]["image"], data["train"]["image"])


@pytest.mark.requires_data("fsdd", "mnist")
def test_load_returns_pipelines_and_metadata(shared_root):
    from kdzoo.datasets import load

    data = load(
        "av_digits", batch_size=32, root=shared_root, validation_fraction=0.1, drop_remainder=True
    )
    assert data.num_examples == {"train": 2430, "validation": 270, "test": 300}
    assert data.class_names == tuple("0123456789") and data.num_classes == 10
    assert tuple(data.input_specs["image"].shape) == (28, 28, 1)
    assert tuple(data.input_specs["audio"].shape) == data.audio_config.feature_shape
    x, y = next(iter(data.splits["train"]))
    assert set(x) == {"image", "audio"} and tuple(y.shape) == (32,)
    with pytest.raises(ValueError, match="Valid names"):
        load("imagenet")
    with pytest.raises(ValueError, match="no modality"):
        load("mnist", root=shared_root, modalities=("audio",))
