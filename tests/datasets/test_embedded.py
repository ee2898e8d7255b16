import numpy as np
import pytest

from kdzoo.data import AudioConfig, TextVectorizer, from_arrays
from kdzoo.datasets import embedded


def test_generation_is_deterministic_and_well_formed():
    a = embedded.generate(5000, seed=3)
    b = embedded.generate(5000, seed=3)
    c = embedded.generate(5000, seed=4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["audio"], c["audio"])
    assert a["image"].shape == (5000, 16, 16, 1) and a["image"].dtype == np.float32
    assert a["audio"].shape == (5000, AudioConfig.embedded().num_samples)
    assert a["label"].min() == 0 and a["label"].max() == 9
    assert np.bincount(a["label"]).min() > 400  # roughly balanced
    assert all(isinstance(t, str) and t for t in a["text"])
    assert np.isfinite(a["image"]).all() and np.isfinite(a["audio"]).all()


def test_split_is_disjoint_and_complete():
    a = embedded.generate(100, seed=0)
    parts = embedded.split(a, test_fraction=0.2, validation_fraction=0.1)
    assert [len(parts[p]["label"]) for p in ("train", "validation", "test")] == [70, 10, 20]
    joined = np.concatenate([parts[p]["audio"] for p in ("train", "validation", "test")])
    np.testing.assert_array_equal(joined, a["audio"])
    with pytest.raises(ValueError, match="no training examples"):
        embedded.split(a, test_fraction=0.9, validation_fraction=0.2)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="audio_dims"):
        embedded.EmbeddedConfig(audio_dims=9)
    with pytest.raises(ValueError, match="num_examples"):
        embedded.generate(0)


def test_pipeline_yields_modality_dicts_matching_the_models():
    from kdzoo import models

    a = embedded.generate(40, seed=0)
    vectorizer = TextVectorizer.adapt(a["text"], max_tokens=100, sequence_length=16)
    ds = from_arrays(
        a,
        ("image", "audio", "text"),
        batch_size=16,
        training=True,
        seed=1,
        audio_config=AudioConfig.embedded(),
        text_vectorizer=vectorizer,
        drop_remainder=True,
    )
    x, y = next(iter(ds))
    assert set(x) == {"image", "audio", "text"}
    assert tuple(x["audio"].shape) == (16, *AudioConfig.embedded().feature_shape)
    assert tuple(x["text"].shape) == (16, 16) and x["text"].dtype.name == "int32"
    assert len(list(ds)) == 2  # drop_remainder: 40 -> two full batches of 16
    assert int(ds.cardinality()) == 2  # known length: Keras and LR schedules need it
    model = models.build(
        "multimodal_concat", modalities=("image", "audio", "text"), vocab_size=vectorizer.vocab_size
    )
    assert model(x).shape == (16, 10)
    # Seeded shuffling is reproducible; evaluation splits are never shuffled.
    again = from_arrays(
        a, ("audio",), batch_size=16, training=True, seed=1, audio_config=AudioConfig.embedded()
    )
    first = np.concatenate([y for _, y in again])
    second = np.concatenate(
        [
            y
            for _, y in from_arrays(
                a,
                ("audio",),
                batch_size=16,
                training=True,
                seed=1,
                audio_config=AudioConfig.embedded(),
            )
        ]
    )
    np.testing.assert_array_equal(first, second)
    ordered = np.concatenate(
        [
            y
            for _, y in from_arrays(
                a, ("audio",), batch_size=16, audio_config=AudioConfig.embedded()
            )
        ]
    )
    np.testing.assert_array_equal(ordered, a["label"])


def test_pipeline_errors_name_the_missing_key():
    a = embedded.generate(10, seed=0)
    with pytest.raises(KeyError, match="smell"):
        from_arrays(a, ("smell",))
    with pytest.raises(ValueError, match="audio_config"):
        from_arrays(a, ("audio",))


def test_text_vectorizer_pads_truncates_and_round_trips(tmp_path):
    vec = TextVectorizer.adapt(["b a a", "a c"], max_tokens=10, sequence_length=4)
    assert vec.vocabulary == ["[PAD]", "a", "b", "c"]
    ids = vec(np.array(["a b zz", "a a a a a a"]))
    np.testing.assert_array_equal(ids.numpy(), [[1, 2, 4, 0], [1, 1, 1, 1]])  # 4 = OOV
    vec.save(tmp_path / "vocab.txt")
    again = TextVectorizer.load(tmp_path / "vocab.txt", sequence_length=4)
    assert again.vocabulary == vec.vocabulary and again.vocab_size == 5
    with pytest.raises(FileNotFoundError, match="vocab"):
        TextVectorizer.load(tmp_path / "missing.txt")


def test_log_mel_shape_and_padding():
    import tensorflow as tf

    from kdzoo.data.audio import log_mel_spectrogram

    cfg = AudioConfig.embedded()
    short = tf.ones([2, 1000])
    long = tf.ones([2, 9000])
    assert tuple(log_mel_spectrogram(short, cfg).shape) == (2, *cfg.feature_shape)
    assert tuple(log_mel_spectrogram(long, cfg).shape) == (2, *cfg.feature_shape)
    silence = log_mel_spectrogram(tf.zeros([1, cfg.num_samples]), cfg)
    assert np.isfinite(silence.numpy()).all()
    with pytest.raises(ValueError, match="fft_length"):
        AudioConfig(fft_length=128, frame_length=256)
