"""Waveform -> log-mel features, parameterised by one ``AudioConfig``.

The same function runs in the tf.data map during training and inside a serving graph, so
the two cannot drift. It uses only core TF ops (``tf.signal``), so it is XLA-compilable and
needs no custom ops at serving time.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

#: ``AudioConfig.utterance_norm`` values: no per-utterance normalisation, mean removal
#: (CMN) or mean and variance normalisation (CMVN) of each mel bin over a clip's frames.
UTTERANCE_NORMS = ("none", "mean", "mean_var")


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """Audio front-end parameters.

    Attributes:
        sample_rate: expected sample rate in Hz.
        num_samples: clips are padded with zeros or cropped to this many samples.
        frame_length: STFT window length in samples.
        frame_step: STFT hop in samples.
        fft_length: FFT size (>= ``frame_length``).
        num_mel_bins: number of mel bands.
        lower_edge_hertz, upper_edge_hertz: mel filterbank range.
        log_offset: added before the log so silence stays finite.
        utterance_norm: per-utterance normalisation of each mel bin over the clip's frames,
            one of ``UTTERANCE_NORMS``: ``"none"``, ``"mean"`` (cepstral mean
            normalisation, CMN) or ``"mean_var"`` (CMVN). It removes what is constant over a
            clip (the voice's and the microphone's spectral colour), the standard remedy
            when test speakers are not training speakers. Frames of the zero padding added
            by ``num_samples`` are left out of the statistics and set to 0. Applied before
            ``mel_mean``/``mel_std``.
        mel_mean, mel_std: per-mel-bin statistics of the training split's log-mel features
            (``None``: no normalisation). Set them with :meth:`with_normalization`; they are
            part of the config, so a serving export applies the very same normalisation.
    """

    sample_rate: int = 8000
    num_samples: int = 8000
    frame_length: int = 256
    frame_step: int = 128
    fft_length: int = 256
    num_mel_bins: int = 32
    lower_edge_hertz: float = 20.0
    upper_edge_hertz: float = 4000.0
    log_offset: float = 1e-3
    utterance_norm: str = "none"
    mel_mean: tuple | None = None
    mel_std: tuple | None = None

    def __post_init__(self):
        if self.utterance_norm not in UTTERANCE_NORMS:
            raise ValueError(
                f"AudioConfig.utterance_norm must be one of {UTTERANCE_NORMS}, got "
                f"{self.utterance_norm!r}."
            )
        if (self.mel_mean is None) != (self.mel_std is None):
            raise ValueError("AudioConfig.mel_mean and mel_std must be set together.")
        if self.mel_mean is not None:
            object.__setattr__(self, "mel_mean", tuple(float(v) for v in self.mel_mean))
            object.__setattr__(self, "mel_std", tuple(float(v) for v in self.mel_std))
            for name in ("mel_mean", "mel_std"):
                if len(getattr(self, name)) != self.num_mel_bins:
                    raise ValueError(
                        f"AudioConfig.{name} has {len(getattr(self, name))} values; expected "
                        f"num_mel_bins={self.num_mel_bins}."
                    )
            if min(self.mel_std) <= 0:
                raise ValueError("AudioConfig.mel_std values must be > 0.")
        for name in ("sample_rate", "num_samples", "frame_length", "frame_step", "num_mel_bins"):
            if getattr(self, name) <= 0:
                raise ValueError(f"AudioConfig.{name} must be > 0, got {getattr(self, name)}.")
        if self.fft_length < self.frame_length:
            raise ValueError(
                f"AudioConfig.fft_length ({self.fft_length}) must be >= frame_length "
                f"({self.frame_length})."
            )
        if self.num_samples < self.frame_length:
            raise ValueError(
                f"AudioConfig.num_samples ({self.num_samples}) must be >= frame_length "
                f"({self.frame_length})."
            )
        if not 0 <= self.lower_edge_hertz < self.upper_edge_hertz <= self.sample_rate / 2:
            raise ValueError(
                "AudioConfig needs 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate/2; "
                f"got {self.lower_edge_hertz}, {self.upper_edge_hertz}, {self.sample_rate}."
            )

    @classmethod
    def embedded(cls) -> AudioConfig:
        """The front end of the embedded demo dataset: 0.5 s clips at 8 kHz."""
        return cls(num_samples=4000)

    @property
    def num_frames(self) -> int:
        return 1 + (self.num_samples - self.frame_length) // self.frame_step

    @property
    def feature_shape(self) -> tuple[int, int]:
        """Shape of one log-mel example, ``(frames, mel_bins)``."""
        return (self.num_frames, self.num_mel_bins)

    @property
    def normalized(self) -> bool:
        return self.mel_mean is not None

    def with_normalization(self, waveforms, batch_size=256) -> AudioConfig:
        """A copy whose ``mel_mean``/``mel_std`` are the per-mel-bin mean and standard
        deviation of the log-mel features of ``waveforms`` (pass the training split only),
        after the config's ``utterance_norm``."""
        raw = dataclasses.replace(self, mel_mean=None, mel_std=None)
        total = tf.zeros([self.num_mel_bins], tf.float64)
        total_sq = tf.zeros([self.num_mel_bins], tf.float64)
        count = 0
        batches = tf.data.Dataset.from_tensor_slices(waveforms).batch(batch_size)
        for batch in batches:
            feats = tf.reshape(
                tf.cast(audio_features(batch, raw), tf.float64), [-1, self.num_mel_bins]
            )
            total += tf.reduce_sum(feats, 0)
            total_sq += tf.reduce_sum(tf.square(feats), 0)
            count += int(feats.shape[0])
        if not count:
            raise ValueError("`waveforms` is empty; cannot compute normalisation statistics.")
        mean = total / count
        std = tf.sqrt(tf.maximum(total_sq / count - tf.square(mean), 0.0)) + 1e-6
        return dataclasses.replace(
            self, mel_mean=tuple(mean.numpy().tolist()), mel_std=tuple(std.numpy().tolist())
        )

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for name in ("mel_mean", "mel_std"):
            out[name] = None if out[name] is None else list(out[name])
        return out

    @classmethod
    def from_dict(cls, config: dict) -> AudioConfig:
        return cls(**config)


def downmix(audio: tf.Tensor) -> tf.Tensor:
    """Decoded wav samples ``[samples, channels]`` -> mono ``[samples]``, the mean of the
    channels (so a recording on the right channel only is not silence)."""
    return tf.reduce_mean(tf.cast(audio, tf.float32), axis=-1)


def fix_length(waveform: tf.Tensor, num_samples: int) -> tf.Tensor:
    """Zero-pads or crops the last axis of ``waveform`` to ``num_samples``."""
    waveform = waveform[..., :num_samples]
    pad = num_samples - tf.shape(waveform)[-1]
    paddings = tf.concat([tf.zeros([tf.rank(waveform) - 1, 2], tf.int32), [[0, pad]]], axis=0)
    return tf.pad(waveform, paddings)


def _log_mel(waveform: tf.Tensor, config: AudioConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """Log-mel features ``[..., frames, mels]`` and which frames hold any signal
    ``[..., frames]`` (False for frames of exact zeros: the padding ``fix_length`` adds)."""
    waveform = fix_length(tf.cast(waveform, tf.float32), config.num_samples)
    stft = tf.signal.stft(
        waveform,
        frame_length=config.frame_length,
        frame_step=config.frame_step,
        fft_length=config.fft_length,
    )
    power = tf.math.square(tf.abs(stft))
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=config.num_mel_bins,
        num_spectrogram_bins=config.fft_length // 2 + 1,
        sample_rate=config.sample_rate,
        lower_edge_hertz=config.lower_edge_hertz,
        upper_edge_hertz=config.upper_edge_hertz,
    )
    mel = tf.tensordot(power, mel_matrix, axes=1)
    return tf.math.log(mel + config.log_offset), tf.reduce_max(power, axis=-1) > 0


def log_mel_spectrogram(waveform: tf.Tensor, config: AudioConfig) -> tf.Tensor:
    """Maps float waveforms ``[..., samples]`` to log-mel features ``[..., frames, mels]``.

    The waveform is padded or cropped to ``config.num_samples`` first, so the output shape is
    static: ``config.feature_shape`` per example. No normalisation (``audio_features``
    applies the config's).
    """
    return _log_mel(waveform, config)[0]


def utterance_normalize(features: tf.Tensor, voiced: tf.Tensor, mode: str) -> tf.Tensor:
    """Per-utterance normalisation of log-mel ``features`` ``[..., frames, mels]``: each mel
    bin minus its mean over the clip's ``voiced`` frames (``[..., frames]``, bool), divided
    by their standard deviation too for ``"mean_var"``. Unvoiced frames become 0; a clip
    with no voiced frame becomes all zeros. ``"none"`` returns ``features`` unchanged."""
    if mode not in UTTERANCE_NORMS:
        raise ValueError(f"utterance_norm must be one of {UTTERANCE_NORMS}, got {mode!r}.")
    if mode == "none":
        return features
    weight = tf.cast(voiced, features.dtype)[..., None]
    count = tf.maximum(tf.reduce_sum(weight, axis=-2, keepdims=True), 1.0)
    mean = tf.reduce_sum(features * weight, axis=-2, keepdims=True) / count
    centred = (features - mean) * weight
    if mode == "mean_var":
        variance = tf.reduce_sum(tf.square(centred), axis=-2, keepdims=True) / count
        # A floor keeps a bin that hardly moves over the clip from being blown up.
        centred = centred / tf.maximum(tf.sqrt(variance), 1e-2)
    return centred


def normalize_features(features: tf.Tensor, config: AudioConfig) -> tf.Tensor:
    """Per-mel-bin standardisation with the config's statistics (identity if it has none)."""
    if not config.normalized:
        return features
    mean = tf.constant(config.mel_mean, features.dtype)
    std = tf.constant(config.mel_std, features.dtype)
    return (features - mean) / std


def audio_features(waveform: tf.Tensor, config: AudioConfig) -> tf.Tensor:
    """The model's audio input: log-mel features of ``waveform``, normalised per utterance
    (``config.utterance_norm``) and then per mel bin when ``config`` carries statistics.
    Training pipelines and serving graphs both call this one function."""
    features, voiced = _log_mel(waveform, config)
    features = utterance_normalize(features, voiced, config.utterance_norm)
    return normalize_features(features, config)
