"""Training-only augmentation, applied to batches in the tf.data map (never in the model).

* Images: Keras preprocessing layers (``RandomTranslation``, ``RandomRotation``,
  ``RandomZoom``, ``RandomContrast``).
* Audio waveforms: :class:`WaveformAugment` (additive noise, gain, time shift).
* Log-mel features: :class:`SpecAugment` (time and frequency masks; Park et al. 2019).

All draw from Keras ``SeedGenerator``s, so a pipeline built with the same seed yields the
same augmented epochs, and each epoch differs from the last. Run them in a sequential map
(the pipeline does): a parallel map would draw seeds in a racy order.

Augmentation makes cached teacher outputs stale (the teacher saw other inputs), so
:func:`kdzoo.distillation.cache_teacher_outputs` refuses an augmented pipeline.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; 0 turns a transform off.

    The defaults augment images and apply SpecAugment to *cached* log-mel features. The
    waveform transforms (noise, gain, shift; see :meth:`with_waveform`) are off by default:
    they force the log-mel front end to run again every epoch, which on a 2-core CPU makes
    the audio pipeline slower than a small student's training step
    (``benchmarks/pipeline_throughput.py`` measures both).

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
    noise_stddev: float = 0.0
    gain_db: float = 0.0
    shift_fraction: float = 0.0
    freq_mask: int = 4
    time_mask: int = 8
    num_freq_masks: int = 1
    num_time_masks: int = 1

    @property
    def waveform(self) -> bool:
        """True if any waveform-level transform is on (then log-mel runs every epoch)."""
        return bool(self.noise_stddev or self.gain_db or self.shift_fraction)

    @classmethod
    def with_waveform(cls, noise_stddev=0.05, gain_db=6.0, shift_fraction=0.1, **kwargs):
        """The defaults plus waveform noise, gain and shift."""
        return cls(
            noise_stddev=noise_stddev, gain_db=gain_db, shift_fraction=shift_fraction, **kwargs
        )

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
    """Random gain, time shift and additive white noise on ``[batch, samples]`` waveforms.

    Args:
        noise_stddev: noise standard deviation relative to each clip's RMS. The noise is
            uniform white noise of that standard deviation: on CPU it costs a third of
            Gaussian noise, and an augmentation does not need Gaussian tails.
        gain_db: gain drawn uniformly from ``[-gain_db, gain_db]`` dB per clip.
        max_shift: shift each clip by up to this many samples either way, zero-filled.
        seed: seed of the layer's ``SeedGenerator`` (used when ``call`` gets no ``seed``).

    ``call(waveforms, training=True, seed=None)``: pass a ``[2]`` int seed tensor to draw
    statelessly from it (the pipeline does, one seed per batch, so its map can run in
    parallel and stay deterministic); without it the layer's ``SeedGenerator`` is used.
    """

    def __init__(self, noise_stddev=0.05, gain_db=6.0, max_shift=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.noise_stddev = float(noise_stddev)
        self.gain_db = float(gain_db)
        self.max_shift = int(max_shift)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, waveforms, training=True, seed=None):
        if not training:
            return waveforms
        seeds = _seeds(seed, self.seed_generator, 3)
        batch = tf.shape(waveforms)[0]
        num_samples = waveforms.shape[1]
        out = waveforms
        if self.max_shift:
            shift = tf.random.stateless_uniform(
                [batch], seeds[0], 0, 2 * self.max_shift + 1, dtype=tf.int32
            )
            padded = tf.pad(out, [[0, 0], [self.max_shift, self.max_shift]])
            out = tf.map_fn(
                lambda a: tf.slice(a[0], [a[1]], [num_samples]),
                (padded, shift),
                fn_output_signature=tf.TensorSpec([num_samples], out.dtype),
            )
        if self.gain_db:
            gain_db = tf.random.stateless_uniform([batch, 1], seeds[1], -self.gain_db, self.gain_db)
            out = out * tf.pow(10.0, gain_db / 20.0)
        if self.noise_stddev:
            rms = tf.sqrt(tf.reduce_mean(tf.square(out), axis=1, keepdims=True) + 1e-12)
            half_width = 3.0**0.5  # uniform on [-sqrt(3), sqrt(3)] has unit variance
            noise = tf.random.stateless_uniform(tf.shape(out), seeds[2], -half_width, half_width)
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


def _seeds(seed, seed_generator, count):
    """``count`` stateless seeds: split from ``seed`` if given, else drawn from the generator."""
    if seed is None:
        seed = keras.random.SeedGenerator.next(seed_generator)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)[:2]
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def _band_masks(batch, length, max_width, count, seeds):
    """``[batch, length]`` bool, True inside ``count`` random bands of width 0..max_width."""
    positions = tf.range(length)[None, :]
    masked = tf.zeros((batch, length), tf.bool)
    max_width = min(int(max_width), length)
    for i in range(count):
        width = tf.random.stateless_uniform(
            (batch, 1), seeds[2 * i], 0, max_width + 1, dtype=tf.int32
        )
        fraction = tf.random.stateless_uniform((batch, 1), seeds[2 * i + 1])
        start = tf.cast(fraction * tf.cast(length - width + 1, tf.float32), tf.int32)
        start = tf.minimum(start, length - width)
        masked |= (positions >= start) & (positions < start + width)
    return masked


class SpecAugment(keras.layers.Layer):
    """SpecAugment time and frequency masking (Park et al., Interspeech 2019) on
    ``[batch, frames, mels]`` features. Masked cells are set to ``mask_value`` (0, the mean
    of per-feature-normalised features). Time warping is left out, as in most KWS recipes.
    ``call(features, training=True, seed=None)`` takes an optional stateless seed, as
    :class:`WaveformAugment` does.

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

    def call(self, features, training=True, seed=None):
        if not training:
            return features
        batch = tf.shape(features)[0]
        frames, mels = features.shape[1], features.shape[2]
        masked = tf.zeros_like(features, tf.bool)
        nf, nt = self.num_freq_masks, self.num_time_masks
        seeds = _seeds(seed, self.seed_generator, 2 * (nf + nt) + 1)
        if self.freq_mask and nf:
            freq = _band_masks(batch, mels, self.freq_mask, nf, seeds[: 2 * nf])
            masked |= freq[:, None, :]
        if self.time_mask and nt:
            time = _band_masks(batch, frames, self.time_mask, nt, seeds[2 * nf : -1])
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
