"""The embedded default dataset: a seeded, synthetic multimodal classification set.

Generative story (all draws from ``numpy.random.default_rng(seed)``; the class geometry
and rendering bases come from a fixed ``world_seed`` so that every sample seed describes
the same world):

1. Class ``c`` is uniform over ``num_classes``. Each class has a mean ``μ_c ∈ R^d``
   (``d = latent_dim``); the example's latent is ``z = μ_c + σ_z·ε``. Classes overlap in
   ``z``, so no view, even a perfect one, reaches 100%: the Bayes ceiling is set by σ_z.
2. **image** (16×16×1): ``Σ_k z_k·B_k`` over fixed smooth random basis images ``B_k``,
   shifted by up to ±2 pixels, plus pixel noise ``σ_image``. It sees all of ``z``.
3. **audio** (0.5 s at 8 kHz): a sum of 8 fixed tones whose amplitudes are
   ``softplus(A z)`` for a fixed random ``A`` (over the first ``audio_dims`` latent
   dimensions; all of them by default), with random phases and gain, a per-example pitch
   factor (0.8-1.2, like speakers), sound in a random window of 50-100% of the clip, and
   heavy white noise ``σ_audio``. It reads the same ``z`` through more noise and more
   nuisance: the weaker modality, and the one that needs the most data to learn.
4. **text** (a 16-token sentence): each token describes one random latent dimension by a
   word for its quantised value (low/mid/high, three synonyms each), or is a filler word.

5. **Two more tasks on the same examples** (``kdzoo.tasks``): ``"target"``, a regression
   target ``y = w·z/‖w‖ + 0.5·tanh(z_0·z_1) + 0.3·ε``, and ``"tags"``, four multi-label tags
   ``1[v_j·z/‖v_j‖ + 0.5·ε_j > b_j]`` with thresholds ``b = (0, 0.5, −0.5, 1)`` (from common
   to rare), for fixed random ``w`` and ``v_j`` (``world_seed + 1``). Select them with
   ``kdzoo.datasets.with_task``. They are drawn after every other value, so the other
   arrays are those of a dataset without them.

Every view is an independent noisy reading of the same ``z``, so fusing views beats any one
of them, and a teacher that sees image+audio estimates ``z``, hence ``p(c | z)``, far better
than audio alone can. Because the decisive information is *shared* by the modalities, the
teacher's soft targets carry knowledge an audio-only student can use: they are a
lower-variance training signal than one-hot labels, which also carry the class-overlap
noise (the "privileged information" view of distillation: Lopez-Paz et al. 2016). An
earlier design in which the image alone saw some decisive dimensions gave no KD gain at
all, as the modality focusing hypothesis predicts (Xue et al. 2023): knowledge that only
the teacher's modality carries does not transfer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kdzoo.data.audio import AudioConfig

FILLER_WORDS = ("the", "a", "of", "and", "it", "this", "is", "was", "so", "then")
LEVELS = ("low", "mid", "high")


@dataclasses.dataclass(frozen=True)
class EmbeddedConfig:
    """Parameters of the generative story (see the module docstring)."""

    num_classes: int = 10
    latent_dim: int = 6
    class_spread: float = 1.0
    latent_noise: float = 0.7
    image_size: int = 16
    image_noise: float = 1.2
    max_shift: int = 2
    audio_dims: int = 6
    num_tones: int = 8
    audio_noise: float = 2.5
    pitch_factors: tuple = (0.8, 0.9, 1.0, 1.1, 1.2)
    min_active: float = 0.5
    sequence_length: int = 16
    filler_rate: float = 0.5
    text_noise: float = 0.8
    world_seed: int = 1234

    def __post_init__(self):
        if not 0 < self.audio_dims <= self.latent_dim:
            raise ValueError(
                f"`audio_dims` must be in 1..latent_dim ({self.latent_dim}); got {self.audio_dims}."
            )
        if not 0 < self.min_active <= 1 or not self.pitch_factors:
            raise ValueError("Need 0 < min_active <= 1 and at least one pitch factor.")
        if self.num_classes < 2 or self.sequence_length < 2:
            raise ValueError("Need num_classes >= 2 and sequence_length >= 2.")

    @property
    def audio(self) -> AudioConfig:
        return AudioConfig.embedded()


def _smooth_basis(rng, count, size):
    """Random smooth images: white noise blurred by a separable Gaussian, unit norm."""
    x = rng.standard_normal((count, size, size))
    k = np.exp(-0.5 * (np.arange(-3, 4) / 1.5) ** 2)
    k /= k.sum()
    for axis in (1, 2):
        x = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), axis, x)
    return x / np.linalg.norm(x.reshape(count, -1), axis=1)[:, None, None] * size / 2


class _World:
    """Everything fixed by ``world_seed``: class means, bases, tones, vocabulary."""

    def __init__(self, cfg: EmbeddedConfig):
        rng = np.random.default_rng(cfg.world_seed)
        self.means = cfg.class_spread * rng.standard_normal((cfg.num_classes, cfg.latent_dim))
        self.image_basis = _smooth_basis(rng, cfg.latent_dim, cfg.image_size)
        sr = cfg.audio.sample_rate
        self.tone_hz = np.geomspace(250.0, 0.4 * sr, cfg.num_tones)
        audio_map = np.zeros((cfg.num_tones, cfg.latent_dim))
        audio_map[:, : cfg.audio_dims] = rng.standard_normal((cfg.num_tones, cfg.audio_dims))
        self.audio_map = audio_map
        self.words = [
            [[f"{chr(ord('a') + d)}{lvl}{syn}" for syn in range(3)] for lvl in LEVELS]
            for d in range(cfg.latent_dim)
        ]


def generate(num_examples: int = 5000, seed: int = 0, config: EmbeddedConfig | None = None):
    """Generates the embedded dataset.

    Args:
        num_examples: number of examples. Defaults to 5000.
        seed: sample seed; the same seed gives identical arrays. Defaults to 0.
        config: an ``EmbeddedConfig``. Defaults to ``EmbeddedConfig()``.

    Returns:
        A dict of NumPy arrays: ``"image"`` float32 ``[n, 16, 16, 1]``, ``"audio"`` float32
        waveforms ``[n, 4000]`` at 8 kHz, ``"text"`` object array of ``str``, ``"label"``
        int32 ``[n]``, ``"target"`` float32 ``[n, 1]`` (regression) and ``"tags"`` int32
        ``[n, 4]`` (multi-label).
    """
    if num_examples <= 0:
        raise ValueError(f"`num_examples` must be > 0, got {num_examples}.")
    cfg = config or EmbeddedConfig()
    world = _World(cfg)
    rng = np.random.default_rng(seed)
    n = num_examples
    label = rng.integers(0, cfg.num_classes, size=n).astype(np.int32)
    z = world.means[label] + cfg.latent_noise * rng.standard_normal((n, cfg.latent_dim))

    # image: linear rendering of z, random shift, pixel noise
    image = np.einsum("nk,khw->nhw", z, world.image_basis)
    shifts = rng.integers(-cfg.max_shift, cfg.max_shift + 1, size=(n, 2))
    for i in range(n):  # np.roll has no per-row shifts; this loop is cheap (5k x 256 px)
        image[i] = np.roll(image[i], tuple(shifts[i]), axis=(0, 1))
    image += cfg.image_noise * rng.standard_normal(image.shape)
    image = image[..., None].astype(np.float32)

    # audio: tones with amplitudes softplus(A z), random phase and gain, white noise
    audio_cfg = cfg.audio
    t = np.arange(audio_cfg.num_samples) / audio_cfg.sample_rate
    amp = np.log1p(np.exp(z @ world.audio_map.T))  # [n, tones]
    phase = rng.uniform(0, 2 * np.pi, size=(n, cfg.num_tones))
    gain = rng.uniform(0.5, 1.5, size=(n, 1))
    # Nuisance, as in real recordings: a per-example pitch factor (one of a few discrete
    # values, so each group is one product) and an active window with silence around it.
    pitch = rng.choice(cfg.pitch_factors, size=n)
    audio = np.empty((n, audio_cfg.num_samples))
    for factor in np.unique(pitch):
        rows = pitch == factor
        # sin(ωt + φ) = cos φ·sin ωt + sin φ·cos ωt: two [rows, tones] x [tones, samples] products
        omega_t = 2 * np.pi * factor * world.tone_hz[:, None] * t[None, :]
        a, ph = amp[rows], phase[rows]
        audio[rows] = (a * np.cos(ph)) @ np.sin(omega_t) + (a * np.sin(ph)) @ np.cos(omega_t)
    samples = audio_cfg.num_samples
    length = (rng.uniform(cfg.min_active, 1.0, size=n) * samples).astype(int)
    start = (rng.uniform(0, 1, size=n) * (samples - length)).astype(int)
    idx = np.arange(samples)[None, :]
    audio *= (idx >= start[:, None]) & (idx < (start + length)[:, None])
    audio *= gain / cfg.num_tones
    audio += cfg.audio_noise * 0.2 * rng.standard_normal(audio.shape)
    audio = audio.astype(np.float32)

    # text: words for noisy quantised latent dimensions, mixed with filler words
    L = cfg.sequence_length
    dims = rng.integers(0, cfg.latent_dim, size=(n, L))
    noisy = np.take_along_axis(z, dims, axis=1) + cfg.text_noise * rng.standard_normal((n, L))
    levels = np.digitize(noisy, [-0.5, 0.5])
    synonyms = rng.integers(0, 3, size=(n, L))
    filler = rng.random((n, L)) < cfg.filler_rate
    filler_ids = rng.integers(0, len(FILLER_WORDS), size=(n, L))
    lengths = rng.integers(L // 2, L + 1, size=n)
    text = np.empty(n, dtype=object)
    for i in range(n):
        words = [
            FILLER_WORDS[filler_ids[i, j]]
            if filler[i, j]
            else world.words[dims[i, j]][levels[i, j]][synonyms[i, j]]
            for j in range(lengths[i])
        ]
        text[i] = " ".join(words)
    target, tags = _task_labels(z, rng, cfg)
    return {
        "image": image,
        "audio": audio,
        "text": text,
        "label": label,
        "target": target,
        "tags": tags,
    }


#: The thresholds of the four multi-label tags, from common to rare.
TAG_THRESHOLDS = (0.0, 0.5, -0.5, 1.0)


def _task_labels(z, rng, cfg):
    """The regression target and the multi-label tags of latents ``z`` (module docstring,
    step 5); their directions come from ``world_seed + 1``, their noise from ``rng``."""
    directions = np.random.default_rng(cfg.world_seed + 1).standard_normal(
        (1 + len(TAG_THRESHOLDS), cfg.latent_dim)
    )
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    n = len(z)
    target = z @ directions[0] + 0.5 * np.tanh(z[:, 0] * z[:, 1])
    target += 0.3 * rng.standard_normal(n)
    scores = z @ directions[1:].T + 0.5 * rng.standard_normal((n, len(TAG_THRESHOLDS)))
    tags = (scores > np.array(TAG_THRESHOLDS)).astype(np.int32)
    return target[:, None].astype(np.float32), tags


def split(arrays: dict, test_fraction: float = 0.2, validation_fraction: float = 0.0):
    """Splits generated arrays (already in random order) into train / [validation] / test."""
    n = len(arrays["label"])
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * validation_fraction))
    n_train = n - n_test - n_val
    if n_train <= 0:
        raise ValueError(f"Fractions leave no training examples out of {n}.")
    parts = {"train": slice(0, n_train), "test": slice(n_train + n_val, n)}
    if n_val:
        parts["validation"] = slice(n_train, n_train + n_val)
    return {name: {k: v[s] for k, v in arrays.items()} for name, s in parts.items()}


def read_splits(root=None, seed=0, bad_log=None, num_examples=None) -> dict:
    """The catalog's reader: ``split(generate(num_examples or 5000, seed))``. ``root`` and
    ``bad_log`` are unused: nothing is read from disk and generated rows are all good."""
    del root, bad_log
    return split(generate(5000 if num_examples is None else num_examples, seed=seed))
