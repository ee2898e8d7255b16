"""Training-only augmentation, applied to batches in the tf.data map (never in the model).

* Images: Keras preprocessing layers (``RandomTranslation``, ``RandomRotation``,
  ``RandomZoom``, ``RandomContrast``).
* Audio waveforms: :class:`WaveformAugment` (additive noise, gain, time shift).
* Log-mel features: :class:`SpecAugment` (time and frequency masks; Park et al. 2019).

All draw from Keras ``SeedGenerator``s, so a pipeline built with the same seed yields the
same augmented epochs, and each epoch differs from the last. Run them in a sequential map
(the pipeline does): a parallel map would draw seeds in a racy order.

Augmentation makes cached teacher outputs stale (the teacher saw other inputs), so
:func:`kdzoo.data.cache_teacher_outputs` refuses an augmented pipeline.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; 0 turns a transform off.

    Attributes:
        translation: image shift, fraction of height/width.
        rotation: image rotation, fraction of a full turn.
        zoom: image zoom range (fraction).
        contrast: image contrast factor range.
        noise_stddev: waveform Gaussian noise, times each clip's RMS (0.1 is 20 dB SNR).
        gain_db: waveform gain drawn uniformly in [-gain_db, +gain_db] dB.
        shift_fraction: waveform time shift, up to this fraction of the clip, zero-filled.
        freq_mask: SpecAugment F, the widest frequency mask in mel bins.
        time_mask: SpecAugment T, the widest time mask in frames.
        num_freq_masks, num_time_masks: masks of each kind per example.
    """

    translation: float = 0.1
    rotation: float = 0.05
    zoom: float = 0.1
    contrast: float = 0.2
    noise_stddev: float = 0.05
    gain_db: float = 6.0
    shift_fraction: float = 0.1
    freq_mask: int = 4
    time_mask: int = 8
    num_freq_masks: int = 1
    num_time_masks: int = 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def image_augmenter(config: AugmentConfig, seed: int = 0) -> keras.Sequential:
    """The image augmentation stack: Keras random layers, each seeded from ``seed``."""
    layers = []
    if config.translation:
        layers.append(
            keras.layers.RandomTranslation(config.translation, config.translation, seed=seed)
        )
    if config.rotation:
        layers.append(keras.layers.RandomRotation(config.rotation, seed=seed + 1))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, seed=seed + 2))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, seed=seed + 3))
    return keras.Sequential(layers, name="image_augment")


class WaveformAugment(keras.layers.Layer):
    """Random gain, time shift and additive Gaussian noise on ``[batch, samples]`` waveforms.

    Args:
        noise_stddev: noise standard deviation relative to each clip's RMS.
        gain_db: gain drawn uniformly from ``[-gain_db, gain_db]`` dB per clip.
        max_shift: shift each clip by up to this many samples either way, zero-filled.
        seed: seed of the layer's ``SeedGenerator``.
    """

    def __init__(self, noise_stddev=0.05, gain_db=6.0, max_shift=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.noise_stddev = float(noise_stddev)
        self.gain_db = float(gain_db)
        self.max_shift = int(max_shift)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, waveforms, training=True):
        if not training:
            return waveforms
        batch = tf.shape(waveforms)[0]
        num_samples = tf.shape(waveforms)[1]
        out = waveforms
        if self.max_shift:
            shift = keras.random.randint(
                (batch, 1), -self.max_shift, self.max_shift + 1, seed=self.seed_generator
            )
            source = tf.range(num_samples)[None, :] - shift
            valid = (source >= 0) & (source < num_samples)
            gathered = tf.gather(out, tf.clip_by_value(source, 0, num_samples - 1), batch_dims=1)
            out = tf.where(valid, gathered, tf.zeros_like(gathered))
        if self.gain_db:
            gain_db = keras.random.uniform(
                (batch, 1), -self.gain_db, self.gain_db, seed=self.seed_generator
            )
            out = out * tf.pow(10.0, gain_db / 20.0)
        if self.noise_stddev:
            rms = tf.sqrt(tf.reduce_mean(tf.square(out), axis=1, keepdims=True) + 1e-12)
            noise = keras.random.normal(tf.shape(out), seed=self.seed_generator)
            out = out + self.noise_stddev * rms * noise
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "noise_stddev": self.noise_stddev,
            "gain_db": self.gain_db,
            "max_shift": self.max_shift,
            "seed": self.seed,
        }


def _band_masks(batch, length, max_width, count, seed_generator):
    """``[batch, length]`` bool, True inside ``count`` random bands of width 0..max_width."""
    positions = tf.range(length)[None, :]
    masked = tf.zeros((batch, length), tf.bool)
    max_width = min(int(max_width), length)
    for _ in range(count):
        width = keras.random.randint((batch, 1), 0, max_width + 1, seed=seed_generator)
        fraction = keras.random.uniform((batch, 1), 0.0, 1.0, seed=seed_generator)
        start = tf.cast(fraction * tf.cast(length - width + 1, tf.float32), tf.int32)
        start = tf.minimum(start, length - width)
        masked |= (positions >= start) & (positions < start + width)
    return masked


class SpecAugment(keras.layers.Layer):
    """SpecAugment time and frequency masking (Park et al., Interspeech 2019) on
    ``[batch, frames, mels]`` features. Masked cells are set to ``mask_value`` (0, the mean
    of per-feature-normalised features). Time warping is left out, as in most KWS recipes.

    Args:
        freq_mask: widest frequency mask F (mel bins); a width is drawn from ``[0, F]``.
        time_mask: widest time mask T (frames).
        num_freq_masks, num_time_masks: masks per example.
        mask_value: value written into masked cells.
        seed: seed of the layer's ``SeedGenerator``.
    """

    def __init__(
        self,
        freq_mask=4,
        time_mask=8,
        num_freq_masks=1,
        num_time_masks=1,
        mask_value=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.freq_mask = int(freq_mask)
        self.time_mask = int(time_mask)
        self.num_freq_masks = int(num_freq_masks)
        self.num_time_masks = int(num_time_masks)
        self.mask_value = float(mask_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, features, training=True):
        if not training:
            return features
        batch = tf.shape(features)[0]
        frames, mels = features.shape[1], features.shape[2]
        masked = tf.zeros_like(features, tf.bool)
        if self.freq_mask and self.num_freq_masks:
            freq = _band_masks(
                batch, mels, self.freq_mask, self.num_freq_masks, self.seed_generator
            )
            masked |= freq[:, None, :]
        if self.time_mask and self.num_time_masks:
            time = _band_masks(
                batch, frames, self.time_mask, self.num_time_masks, self.seed_generator
            )
            masked |= time[:, :, None]
        return tf.where(masked, tf.cast(self.mask_value, features.dtype), features)

    def get_config(self):
        return {
            **super().get_config(),
            "freq_mask": self.freq_mask,
            "time_mask": self.time_mask,
            "num_freq_masks": self.num_freq_masks,
            "num_time_masks": self.num_time_masks,
            "mask_value": self.mask_value,
            "seed": self.seed,
        }
