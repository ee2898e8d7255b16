"""Free Spoken Digit Dataset (FSDD v1.0.10): 3,000 wav clips, 8 kHz mono, 6 speakers x 10
digits x 50 takes, files ``fsdd/recordings/{digit}_{speaker}_{index}.wav``.

Splits: ``"official"`` puts takes 0-4 of every speaker and digit in test (300 clips);
``"speaker:<name>"`` leaves that speaker out as test. Wavs are decoded with TF ops; a
multi-channel wav is downmixed to mono (the mean of its channels). A clip at another sample
rate is an error naming the file (no silent resampling): FSDD is 8 kHz. So is a clip with
no samples.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from kdzoo.data.audio import AudioConfig, downmix, fix_length
from kdzoo.data.bad_input import BadExampleError, BadInputLog
from kdzoo.datasets.catalog import CATALOG
from kdzoo.datasets.root import require

SPEC = CATALOG.get("fsdd")
SOURCE = SPEC.source
FOLDER = SPEC.files["recordings"]
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def list_clips(root=None) -> list[tuple[str, int, str, int]]:
    """Returns ``(path, digit, speaker, take)`` for every clip, sorted by file name."""
    (folder,) = require("fsdd", [FOLDER], SOURCE, root)
    clips = []
    for path in sorted(folder.glob("*.wav")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: name is not '{{digit}}_{{speaker}}_{{take}}.wav'.")
        clips.append((str(path), int(match[1]), match[2], int(match[3])))
    if not clips:
        raise FileNotFoundError(f"No .wav files in {folder}.")
    return clips


def _read_wav(path: str, config: AudioConfig):
    """``(waveform, None, None)``, or ``(None, reason, kind)`` if the wav is unusable."""
    try:
        audio, rate = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=-1)
    except tf.errors.OpError as err:
        return None, f"cannot decode wav ({err.message})", "corrupt wav"
    if int(rate) != config.sample_rate:
        reason = (
            f"sample rate {int(rate)} Hz, expected {config.sample_rate} Hz "
            "(kdzoo does not resample silently)"
        )
        return None, reason, "sample rate"
    if audio.shape[0] == 0 or audio.shape[1] == 0:
        reason = f"the wav has no samples ({audio.shape[1]} channel(s); expected >= 1 sample)"
        return None, reason, "empty wav"
    return fix_length(downmix(audio), config.num_samples).numpy(), None, None


def decode_wav(path: str, config: AudioConfig) -> np.ndarray:
    """Decodes one wav with ``tf.audio.decode_wav`` and pads/crops it to
    ``config.num_samples``.

    A multi-channel wav is downmixed to mono, the mean of its channels, so no channel is
    dropped. Raises ``BadExampleError`` naming the file if the wav is corrupt, at another
    sample rate, or has no samples (an empty clip is not silence to score)."""
    audio, reason, _ = _read_wav(path, config)
    if audio is None:
        raise BadExampleError(f"{path}: {reason}.")
    return audio


def _is_test(split, speaker, take):
    return take < 5 if split == "official" else speaker == split.split(":", 1)[1]


def load_arrays(
    split="official",
    root=None,
    config: AudioConfig | None = None,
    skip_bad=False,
    bad_log: BadInputLog | None = None,
) -> dict:
    """Returns ``{"train": {...}, "test": {...}}``, each with ``"audio"`` float32 waveforms
    ``[n, config.num_samples]``, ``"label"`` int32 digits and ``"speaker"`` strings.

    Stereo clips are downmixed to the mean of their channels. A corrupt or truncated wav,
    one at another sample rate or one with no samples raises ``BadExampleError`` naming the
    file; with ``skip_bad=True`` it is skipped, counted and logged instead."""
    bad_log = bad_log or BadInputLog(skip_bad)
    if not isinstance(split, str) or (split != "official" and not split.startswith("speaker:")):
        raise ValueError(f"FSDD `split` must be 'official' or 'speaker:<name>'; got {split!r}.")
    config = config or AudioConfig(sample_rate=SPEC.sample_rate, num_samples=SPEC.clip_samples)
    clips = list_clips(root)
    speakers = sorted({c[2] for c in clips})
    if split.startswith("speaker:") and split.split(":", 1)[1] not in speakers:
        raise ValueError(f"Unknown FSDD speaker in {split!r}; speakers: {', '.join(speakers)}.")
    parts = {"train": [], "test": []}
    for clip in clips:
        parts["test" if _is_test(split, clip[2], clip[3]) else "train"].append(clip)
    out = {}
    for name, items in parts.items():
        waves, kept = [], []
        for clip in items:
            audio, reason, kind = _read_wav(clip[0], config)
            if audio is None:
                bad_log.bad(clip[0], reason, kind)
                continue
            waves.append(audio)
            kept.append(clip)
        out[name] = {
            "audio": np.stack(waves).astype(np.float32)
            if waves
            else np.zeros((0, config.num_samples), np.float32),
            "label": np.array([d for _, d, _, _ in kept], dtype=np.int32),
            "speaker": np.array([s for _, _, s, _ in kept]),
        }
    bad_log.summarize("fsdd")
    return out


def read_splits(root=None, seed=0, bad_log: BadInputLog | None = None, fsdd_split="official"):
    """The catalog's reader: ``load_arrays(fsdd_split)`` (``seed`` is unused: the split is
    fixed by ``fsdd_split``)."""
    del seed
    return load_arrays(fsdd_split, root=root, bad_log=bad_log)
