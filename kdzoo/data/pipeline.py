"""tf.data pipelines over in-memory arrays keyed by modality.

Preprocessing (waveform -> log-mel, text -> ids) runs once per example in a batched map,
then the result is cached; only shuffling and batching repeat each epoch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kdzoo.data.audio import AudioConfig, log_mel_spectrogram

AUTOTUNE = tf.data.AUTOTUNE


def from_arrays(
    arrays,
    modalities,
    *,
    batch_size=64,
    training=False,
    seed=0,
    audio_config: AudioConfig | None = None,
    text_vectorizer=None,
    drop_remainder=False,
    label_key="label",
):
    """Builds ``(features, label)`` batches with ``features = {modality: tensor}``.

    Args:
        arrays: dict of NumPy arrays, one row per example; must hold each modality and
            ``label_key``. ``"audio"`` is a float waveform, ``"text"`` strings, ``"image"``
            float images.
        modalities: keys to keep, e.g. ``("image", "audio")``.
        batch_size: batch size. Defaults to 64.
        training: shuffle (seeded, reshuffled each epoch) if True. Defaults to False.
        seed: shuffle seed. Defaults to 0.
        audio_config: needed when ``"audio"`` is a modality.
        text_vectorizer: a ``kdzoo.data.text.TextVectorizer``; needed for ``"text"``.
        drop_remainder: drop the last partial batch (static shapes, as TPUs need).
    """
    modalities = tuple(modalities)
    missing = [k for k in (*modalities, label_key) if k not in arrays]
    if missing:
        raise KeyError(f"Arrays lack key(s) {missing}; they hold {sorted(arrays)}.")
    if "audio" in modalities and audio_config is None:
        raise ValueError("`audio_config` is required for the 'audio' modality.")
    if "text" in modalities and text_vectorizer is None:
        raise ValueError("`text_vectorizer` is required for the 'text' modality.")
    labels = np.asarray(arrays[label_key]).astype(np.int32)
    features = {}
    for m in modalities:
        value = arrays[m]
        features[m] = np.asarray(value, dtype=str) if m == "text" else np.asarray(value)
    n = len(labels)
    bad = [m for m in modalities if len(features[m]) != n]
    if bad:
        raise ValueError(f"Key(s) {bad} have a different number of rows than {label_key!r} ({n}).")

    def preprocess(x, y):
        out = dict(x)
        if "audio" in out:
            out["audio"] = log_mel_spectrogram(out["audio"], audio_config)
        if "text" in out:
            out["text"] = text_vectorizer(out["text"])
        return out, y

    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    ds = ds.batch(256).map(preprocess, num_parallel_calls=AUTOTUNE).unbatch()
    # unbatch() forgets the length; restoring it lets Keras and schedules know steps/epoch.
    ds = ds.apply(tf.data.experimental.assert_cardinality(n)).cache()
    if training:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)
