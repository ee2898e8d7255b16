"""AV digits: each FSDD clip paired with an MNIST image of the same digit.

This is a *label-paired* dataset, the construction AV-MNIST uses: the image and the sound
of an example share only their digit, not a recording. It is not natively multimodal, so
cross-modal results on it measure transfer through the label structure, not through
co-occurring signals. Train pairs use only the FSDD and MNIST train splits, test pairs only
the test splits; the pairing is deterministic given ``seed``.
"""

from __future__ import annotations

import numpy as np

from kdzoo.data.audio import AudioConfig
from kdzoo.data.bad_input import BadInputLog
from kdzoo.datasets import fsdd, mnist
from kdzoo.datasets.catalog import CATALOG

SPEC = CATALOG.get("av_digits")


def pair_by_label(labels, image_labels, rng) -> np.ndarray:
    """For each label, the index of an image with that label: each class's images are
    shuffled and used in turn (cycling if there are more clips than images)."""
    out = np.empty(len(labels), dtype=np.int64)
    for digit in np.unique(labels):
        pool = rng.permutation(np.flatnonzero(image_labels == digit))
        if pool.size == 0:
            raise ValueError(f"No image with label {digit} to pair with.")
        rows = np.flatnonzero(labels == digit)
        out[rows] = pool[np.arange(rows.size) % pool.size]
    return out


def load_arrays(
    seed=0,
    fsdd_split="official",
    root=None,
    config: AudioConfig | None = None,
    skip_bad=False,
    bad_log: BadInputLog | None = None,
):
    """Returns ``{"train": {...}, "test": {...}}`` with ``"image"`` ``[n, 28, 28, 1]``,
    ``"audio"`` waveforms, ``"label"`` and ``"speaker"``; one example per FSDD clip."""
    bad_log = bad_log or BadInputLog(skip_bad)
    audio = fsdd.load_arrays(fsdd_split, root=root, config=config, bad_log=bad_log)
    rng = np.random.default_rng(seed)
    out = {}
    for split in ("train", "test"):
        images = mnist.load_arrays(split, root=root, bad_log=bad_log)
        index = pair_by_label(audio[split]["label"], images["label"], rng)
        out[split] = {**audio[split], "image": images["image"][index]}
    return out


def read_splits(root=None, seed=0, bad_log: BadInputLog | None = None, fsdd_split="official"):
    """The catalog's reader: ``load_arrays(seed, fsdd_split)``."""
    return load_arrays(seed=seed, fsdd_split=fsdd_split, root=root, bad_log=bad_log)
