"""kdzoo.data pipelines: image decoding, augmentation (training only, seeded), audio
normalisation and SpecAugment, text vocabularies, static shapes."""

import numpy as np
import pytest
import tensorflow as tf

from kdzoo import datasets
from kdzoo.data import (
    AudioConfig,
    AugmentConfig,
    ImageConfig,
    SpecAugment,
    TextVectorizer,
    WaveformAugment,
    audio_features,
    from_arrays,
    is_augmented,
    preprocess_images,
)


def _arrays(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "image": rng.random((n, 16, 16, 1)).astype("float32"),
        "audio": (0.1 * rng.standard_normal((n, 4000))).astype("float32"),
        "label": rng.integers(0, 10, n).astype("int32"),
    }


def _epoch(ds):
    xs = [x for x, _ in ds.as_numpy_iterator()]
    return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}


def test_encoded_png_bytes_decode_to_the_same_pixels_as_uint8_arrays():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 12, 10, 1), dtype=np.uint8)
    png = np.array([tf.io.encode_png(p).numpy() for p in pixels], dtype=object)
    config = ImageConfig(12, 10, 1)
    from_bytes = preprocess_images(tf.constant(list(png)), config).numpy()
    from_uint8 = preprocess_images(pixels, config).numpy()
    np.testing.assert_array_equal(from_bytes, from_uint8)
    np.testing.assert_allclose(from_uint8, pixels / 255.0, atol=1e-7)
    resized = preprocess_images(pixels, ImageConfig(24, 20, 1))
    assert resized.shape == (3, 24, 20, 1)
    ds = from_arrays({"image": png, "label": np.arange(3)}, ("image",), image_config=config)
    np.testing.assert_array_equal(_epoch(ds)["image"], from_uint8)
    with pytest.raises(ValueError, match="image_config"):
        from_arrays({"image": png, "label": np.arange(3)}, ("image",))


@pytest.mark.parametrize("augment", [True, AugmentConfig.with_waveform()], ids=["default", "wave"])
def test_augmentation_is_training_only_seeded_and_fresh_each_epoch(augment):
    # Every row is the same example, so shuffling cannot explain any difference.
    a = {k: np.repeat(v[:1], 16, axis=0) for k, v in _arrays().items()}
    cfg = AudioConfig.embedded()

    def build(training, seed=3, aug=augment):
        return from_arrays(
            a,
            ("image", "audio"),
            batch_size=8,
            training=training,
            seed=seed,
            audio_config=cfg,
            augment=aug,
        )

    plain = _epoch(build(True, aug=None))
    evaluation = build(training=False)
    assert not is_augmented(evaluation) and is_augmented(build(True))
    for k, v in _epoch(evaluation).items():
        np.testing.assert_array_equal(v, plain[k])  # augment ignored off training
    train = build(True)
    first, second = _epoch(train), _epoch(train)
    again = _epoch(build(True))
    other = _epoch(build(True, seed=4))
    for k in ("image", "audio"):
        np.testing.assert_array_equal(first[k], again[k])  # same seed, same epochs
        assert not np.allclose(first[k], second[k])  # a new draw each epoch
        assert not np.allclose(first[k], other[k])  # another seed, other draws
        assert not np.allclose(first[k][0], first[k][1])  # a draw per example
        assert not np.allclose(first[k], plain[k])
    assert first["audio"].shape[1:] == cfg.feature_shape
    assert np.isfinite(first["audio"]).all() and np.isfinite(first["image"]).all()
    masked = (first["audio"] == 0).all(axis=1).any(axis=1)  # a whole mel band zeroed
    assert masked.any()


def test_spec_augment_masks_whole_bands_within_the_limits():
    feats = tf.ones((16, 30, 32))
    out = SpecAugment(freq_mask=5, time_mask=7, seed=0)(feats, training=True).numpy()
    for example in out:
        masked_bins = np.flatnonzero((example == 0).all(axis=0))  # frequency masks
        masked_frames = np.flatnonzero((example == 0).all(axis=1))  # time masks
        assert masked_bins.size <= 5 and masked_frames.size <= 7
        if masked_bins.size:
            assert np.ptp(masked_bins) == masked_bins.size - 1  # one contiguous band
        if masked_frames.size:
            assert np.ptp(masked_frames) == masked_frames.size - 1
        partly = (example == 0).sum() - masked_bins.size * 30 - masked_frames.size * 32
        assert partly == -masked_bins.size * masked_frames.size  # only the bands, nothing else
    assert (out == 0).any() and (out == 1).any()
    np.testing.assert_array_equal(SpecAugment(seed=0)(feats, training=False), feats)


def test_waveform_augment_gain_shift_and_noise():
    wave = tf.constant(np.sin(np.linspace(0, 60, 400))[None].repeat(8, 0), tf.float32)
    gain_only = WaveformAugment(noise_stddev=0, gain_db=6, max_shift=0)(wave, seed=[1, 2]).numpy()
    ratio = gain_only[:, 10] / wave.numpy()[:, 10]
    assert np.all((ratio > 10 ** (-6 / 20) - 1e-6) & (ratio < 10 ** (6 / 20) + 1e-6))
    assert np.ptp(ratio) > 0  # a gain per clip
    shifted = WaveformAugment(noise_stddev=0, gain_db=0, max_shift=20)(wave, seed=[1, 2]).numpy()
    for row in shifted:
        lags = [k for k in range(-20, 21) if np.allclose(np.roll(wave[0], k)[25:-25], row[25:-25])]
        assert len(lags) == 1
    noisy = WaveformAugment(noise_stddev=0.1, gain_db=0, max_shift=0, seed=1)(wave).numpy()
    snr_db = 10 * np.log10(np.mean(wave.numpy() ** 2) / np.mean((noisy - wave.numpy()) ** 2))
    assert 17 < snr_db < 23  # 0.1 x RMS is 20 dB


def test_audio_normalisation_statistics_come_from_the_given_split():
    rng = np.random.default_rng(0)
    waves = (0.3 * rng.standard_normal((64, 4000))).astype("float32")
    cfg = AudioConfig.embedded().with_normalization(waves)
    assert cfg.normalized and len(cfg.mel_mean) == cfg.num_mel_bins
    feats = audio_features(waves, cfg).numpy().reshape(-1, cfg.num_mel_bins)
    np.testing.assert_allclose(feats.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(feats.std(0), 1, atol=1e-3)
    assert AudioConfig.from_dict(cfg.to_dict()) == cfg  # travels as JSON-able config
    with pytest.raises(ValueError, match="mel_mean"):
        AudioConfig(mel_mean=(0.0,) * 3, mel_std=(1.0,) * 3)


def _padded_voices(seed=0):
    """Two clips of a tone in noise, one shorter than the clip length (zero padding)."""
    rng = np.random.default_rng(seed)
    t = np.arange(4000) / 8000
    waves = np.stack(
        [np.sin(2 * np.pi * f * t) + 0.1 * rng.standard_normal(4000) for f in (440, 900)]
    )
    waves[1, 2500:] = 0.0  # the loader's padding of a 0.31 s recording
    return waves.astype("float32")


@pytest.mark.parametrize("mode", ["mean", "mean_var"])
def test_utterance_normalisation_matches_numpy_over_the_voiced_frames(mode):
    from kdzoo.data.audio import log_mel_spectrogram

    waves = _padded_voices()
    cfg = AudioConfig.embedded()
    raw = log_mel_spectrogram(waves, cfg).numpy()
    feats = audio_features(waves, AudioConfig(num_samples=4000, utterance_norm=mode)).numpy()
    # Frame f covers samples [128 f, 128 f + 256): clip 1 holds signal up to frame 19.
    voiced = [np.ones(cfg.num_frames, bool), np.arange(cfg.num_frames) * 128 < 2500]
    assert voiced[1].sum() == 20 and not voiced[1].all()
    for clip, keep in zip(range(2), voiced, strict=True):
        frames = raw[clip][keep]
        expected = frames - frames.mean(0)
        if mode == "mean_var":
            expected = expected / np.maximum(frames.std(0), 1e-2)
        np.testing.assert_allclose(feats[clip][keep], expected, atol=1e-4)
        np.testing.assert_array_equal(feats[clip][~keep], 0.0)  # padding: out of the stats
    # A clip of silence has no voiced frame: zeros, not NaN.
    silent = audio_features(
        np.zeros((1, 4000), "float32"), AudioConfig(num_samples=4000, utterance_norm=mode)
    )
    np.testing.assert_array_equal(silent.numpy(), 0.0)


def test_utterance_normalisation_removes_the_clips_gain_and_feeds_the_split_statistics():
    waves = _padded_voices()
    cmvn = AudioConfig(num_samples=4000, utterance_norm="mean_var")
    loud, quiet = audio_features(10 * waves, cmvn), audio_features(2.5 * waves, cmvn)
    # -12 dB is a constant shift of every log-mel bin (up to the log offset): CMVN undoes it.
    np.testing.assert_allclose(loud.numpy(), quiet.numpy(), atol=1e-2)
    plain = AudioConfig(num_samples=4000)
    shift = audio_features(10 * waves, plain) - audio_features(2.5 * waves, plain)
    np.testing.assert_allclose(shift[0], np.log(16), atol=1e-2)  # without it: 12 dB in every bin
    # The split statistics are those of the utterance-normalised features.
    rng = np.random.default_rng(1)
    train = (rng.uniform(0.05, 1, (32, 1)) * rng.standard_normal((32, 4000))).astype("float32")
    fitted = cmvn.with_normalization(train)
    assert fitted.utterance_norm == "mean_var"
    feats = audio_features(train, fitted).numpy().reshape(-1, cmvn.num_mel_bins)
    np.testing.assert_allclose(feats.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(feats.std(0), 1, atol=1e-3)
    assert AudioConfig.from_dict(fitted.to_dict()) == fitted
    old = {k: v for k, v in plain.to_dict().items() if k != "utterance_norm"}
    assert AudioConfig.from_dict(old).utterance_norm == "none"  # bundles saved before it
    with pytest.raises(ValueError, match="utterance_norm must be one of"):
        AudioConfig(utterance_norm="cmvn")


def test_utterance_normalisation_compiles_with_xla_to_the_same_features():
    waves = tf.constant(_padded_voices())
    cfg = AudioConfig(num_samples=4000, utterance_norm="mean_var")
    xla = tf.function(lambda w: audio_features(w, cfg), jit_compile=True)
    np.testing.assert_allclose(xla(waves).numpy(), audio_features(waves, cfg).numpy(), atol=1e-4)


def test_text_vocabulary_is_built_from_train_only_and_saved(tmp_path):
    data = datasets.load("sst2", batch_size=32, cache_dir=tmp_path)
    assert data.num_examples == {"train": 6920, "validation": 872, "test": 1821}
    vocab = open(data.vocabulary_path, encoding="utf-8").read().split("\n")
    assert vocab[0] == "[PAD]" and data.vocabulary_path.startswith(str(tmp_path))
    train_tokens = {t for s in data.arrays["train"]["text"] for t in s.lower().split()}
    test_only = {t for s in data.arrays["test"]["text"] for t in s.lower().split()} - train_tokens
    assert test_only and not test_only & set(vocab)  # nothing leaked from test
    reloaded = TextVectorizer.load(data.vocabulary_path, data.text_vectorizer.sequence_length)
    sample = tf.constant(data.arrays["test"]["text"][:50])
    np.testing.assert_array_equal(reloaded(sample), data.text_vectorizer(sample))
    x, y = next(iter(data.splits["train"]))
    assert x["text"].shape == (32, 56) and x["text"].dtype == tf.int32
    assert set(np.unique(y)) <= {0, 1}


def test_whitespace_tokeniser_workaround_keeps_tokens_valid_utf8():
    vec = TextVectorizer.adapt(["caf\u00e9\u00a0bar \u00c9T\u00c9 ok"], 10, 4)
    assert set(vec.vocabulary) == {"[PAD]", "café", "bar", "été", "ok"}
    ids = vec(tf.constant(["CAFÉ bar"])).numpy()[0]
    assert ids[0] == vec.vocabulary.index("café") and ids[1] == vec.vocabulary.index("bar")


def test_sms_spam_split_is_stratified_and_seeded():
    a = datasets.sms_spam.load_arrays(seed=0)
    b = datasets.sms_spam.load_arrays(seed=0)
    c = datasets.sms_spam.load_arrays(seed=1)
    sizes = {s: len(v["label"]) for s, v in a.items()}
    assert sum(sizes.values()) == 5574 and sizes["test"] == pytest.approx(0.2 * 5574, abs=2)
    for split in a.values():
        assert split["label"].mean() == pytest.approx(747 / 5574, abs=0.005)
    np.testing.assert_array_equal(a["test"]["text"], b["test"]["text"])
    assert not np.array_equal(a["test"]["text"], c["test"]["text"])


def test_drop_remainder_gives_static_shapes_for_every_modality(tmp_path):
    data = datasets.load(
        "embedded",
        batch_size=64,
        drop_remainder=True,
        num_examples=300,
        modalities=("image", "audio", "text"),
        cache_dir=tmp_path,
    )
    x_spec, y_spec = data.splits["train"].element_spec
    assert all(spec.shape.is_fully_defined() for spec in x_spec.values())
    assert y_spec.shape == (64,)
    assert x_spec["text"].shape == (64, 16)


def test_for_model_routes_by_name_where_keras_would_match_by_position():
    import keras
    import tensorflow as tf

    from kdzoo.data import for_model

    # A model on "image" alone; the batch also holds "audio" of the same shape, first.
    image = keras.Input((3,), name="image")
    model = keras.Model({"image": image}, keras.layers.Dense(1, use_bias=False)(image))
    model.set_weights([np.ones((3, 1), np.float32)])
    x = {"audio": np.full((4, 3), 100.0, np.float32), "image": np.ones((4, 3), np.float32)}
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(4, np.float32))).batch(2)
    routed = for_model(ds, model)
    features, labels = next(iter(routed))
    assert set(features) == {"image"} and labels.shape == (2,)
    np.testing.assert_allclose(model.predict(routed, verbose=0), np.full((4, 1), 3.0))
    model.compile(optimizer="sgd", loss="mse")
    assert np.isfinite(model.fit(routed, epochs=1, verbose=0).history["loss"][0])
    text = keras.Input((2,), name="text")
    with pytest.raises(KeyError, match=r"no key\(s\) \['text'\] that the model 'reader' reads"):
        for_model(ds, keras.Model({"text": text}, keras.layers.Dense(1)(text), name="reader"))


def test_pipelines_run_without_tfdata_autotuning_model_and_give_the_same_batches(monkeypatch):
    # With the model on, deleting an iterator can wait for its thread (kdzoo/data/options.py).
    from kdzoo.data.options import AUTOTUNE_ENV
    from kdzoo.recipe.batching import epoch_batches

    arrays, cfg = _arrays(), AudioConfig.embedded()

    def build(training):
        return from_arrays(
            arrays, ("image", "audio"), batch_size=8, training=training, seed=1, audio_config=cfg
        )

    monkeypatch.delenv(AUTOTUNE_ENV, raising=False)
    off = build(training=True)
    batches, steps = epoch_batches(build(training=False).unbatch(), 24, 8, 0, 0, 2)
    assert off.options().autotune.enabled is False
    assert batches.options().autotune.enabled is False
    policy = tf.data.experimental.AutoShardPolicy.DATA  # the shard policy is kept beside it
    assert batches.options().experimental_distribute.auto_shard_policy == policy
    assert steps == 3 and len(list(batches)) == 6
    monkeypatch.setenv(AUTOTUNE_ENV, "1")
    on = build(training=True)
    assert on.options().autotune.enabled is True
    first_off = _epoch(off)
    for key, values in _epoch(on).items():  # same rows, same order: the model tunes speed only
        np.testing.assert_array_equal(values, first_off[key])
    monkeypatch.setenv(AUTOTUNE_ENV, "yes")
    with pytest.raises(ValueError, match="KDZOO_TFDATA_AUTOTUNE='yes': use 1"):
        build(training=True)
