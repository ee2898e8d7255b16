"""MNIST as a multi-view table: several numeric feature sets ("views") of each digit.

The UCI "Multiple Features" set (mfeat; Duin, 1998) describes 2,000 handwritten digits by six
numeric views computed from their images. kdzoo cannot download it, so this module computes
five views of the same kinds from the MNIST digits under the data root (the 5,000 training
images and the 10,000 test images of ``kdzoo.datasets.mnist``):

- ``pix`` (49): average ink in each 4×4 block (mfeat's "pix": 2×3 window averages);
- ``prof`` (56): the ink of each of the 28 rows and 28 columns (profiles, as mfeat's "fac");
- ``fou`` (35): magnitudes of the low 2-D Fourier frequencies, 0..5 × 0..5 without the
  constant term (mfeat's "fou" takes them of the outline);
- ``hog`` (36): histograms of gradient orientation, 9 unsigned bins in each 14×14 quadrant,
  weighted by gradient magnitude and normalised per quadrant (Dalal & Triggs 2005);
- ``mor`` (8): morphology: the ink, its centroid (row, column), spreads and covariance, and
  the bounding box's height and width (mfeat's "mor" has 6 such numbers).

Every feature is a fixed function of one image (nothing is fitted), so computing them for
all splits at once leaks nothing; the standardisation is fitted on train by
``kdzoo.datasets.from_dataframe``. ``views_frame`` returns one row per digit with the columns
``<view>_<i>``, ``label``, ``split`` and ``id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: View name -> its number of features.
VIEWS = {"pix": 49, "prof": 56, "fou": 35, "hog": 36, "mor": 8}


def columns(view: str) -> list[str]:
    """The DataFrame columns of ``view``."""
    if view not in VIEWS:
        raise ValueError(f"Unknown view {view!r}; the views are {', '.join(VIEWS)}.")
    return [f"{view}_{i}" for i in range(VIEWS[view])]


def _pix(images):
    n = len(images)
    return images.reshape(n, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(n, -1)


def _prof(images):
    return np.concatenate([images.sum(axis=2), images.sum(axis=1)], axis=1)


def _fou(images):
    spectrum = np.abs(np.fft.fft2(images))[:, :6, :6] / images[0].size
    return spectrum.reshape(len(images), -1)[:, 1:]


def _hog(images, bins=9):
    gy, gx = np.gradient(images, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation in [0, pi)
    index = np.minimum((angle / np.pi * bins).astype(int), bins - 1)
    out = []
    for rows in (slice(0, 14), slice(14, 28)):
        for cols in (slice(0, 14), slice(14, 28)):
            m = magnitude[:, rows, cols].reshape(len(images), -1)
            k = index[:, rows, cols].reshape(len(images), -1)
            hist = np.stack([(m * (k == b)).sum(axis=1) for b in range(bins)], axis=1)
            out.append(hist / (np.linalg.norm(hist, axis=1, keepdims=True) + 1e-6))
    return np.concatenate(out, axis=1)


def _mor(images):
    n = len(images)
    ink = images.sum(axis=(1, 2))
    mass = np.maximum(ink, 1e-6)
    grid = np.arange(28, dtype=np.float64)
    rows = (images.sum(axis=2) * grid).sum(axis=1) / mass
    cols = (images.sum(axis=1) * grid).sum(axis=1) / mass
    dr = grid[None, :, None] - rows[:, None, None]
    dc = grid[None, None, :] - cols[:, None, None]
    row_var = (images * dr**2).sum(axis=(1, 2)) / mass
    col_var = (images * dc**2).sum(axis=(1, 2)) / mass
    covariance = (images * dr * dc).sum(axis=(1, 2)) / mass
    inked = images > 0.5
    any_row, any_col = inked.any(axis=2), inked.any(axis=1)
    height = np.where(any_row.any(axis=1), 28 - any_row[:, ::-1].argmax(1) - any_row.argmax(1), 0)
    width = np.where(any_col.any(axis=1), 28 - any_col[:, ::-1].argmax(1) - any_col.argmax(1), 0)
    features = [ink, rows, cols, np.sqrt(row_var), np.sqrt(col_var), covariance, height, width]
    return np.stack(features, axis=1).reshape(n, -1)


_FEATURES = {"pix": _pix, "prof": _prof, "fou": _fou, "hog": _hog, "mor": _mor}


def view_features(images) -> dict:
    """``{view: float32 [n, VIEWS[view]]}`` of images ``[n, 28, 28(, 1)]`` in [0, 1]."""
    images = np.asarray(images, np.float64)
    if images.ndim == 4:
        images = images[..., 0]
    if images.shape[1:] != (28, 28):
        raise ValueError(f"MNIST views need 28×28 images; got shape {images.shape}.")
    out = {}
    for view, function in _FEATURES.items():
        values = function(images).astype(np.float32)
        assert values.shape[1] == VIEWS[view], (view, values.shape)
        out[view] = values
    return out


def views_frame(root=None, train_examples: int | None = None, test_examples: int | None = None):
    """One row per MNIST digit: every view's columns, ``label`` (the digit, a string),
    ``split`` (``"train"`` or ``"test"``) and ``id`` (``"<split>-<row>"``, the row in the
    split's file). ``train_examples`` and ``test_examples`` keep a seeded random subset of a
    split, in file order (for small tests: the training file is sorted by digit)."""
    from kdzoo.datasets import mnist

    frames = []
    for split, limit in (("train", train_examples), ("test", test_examples)):
        arrays = mnist.load_arrays(split, root=root)
        rows = np.arange(len(arrays["label"]))
        if limit is not None and limit < len(rows):
            rows = np.sort(np.random.default_rng(0).permutation(len(rows))[:limit])
        images, labels = arrays["image"][rows], arrays["label"][rows]
        views = view_features(images)
        frame = pd.DataFrame(
            {c: values[:, i] for view, values in views.items() for i, c in enumerate(columns(view))}
        )
        frame["label"] = [str(int(d)) for d in labels]
        frame["split"] = split
        frame["id"] = [f"{split}-{i}" for i in rows]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
