"""MNIST images: train from ``mnist/mnist_5k.csv.gz`` (5,000 training-set images, 500 per
class), test from the official 10k IDX files. Images are float32 ``[n, 28, 28, 1]`` in
[0, 1], labels int32."""

from __future__ import annotations

import gzip
import re
import zlib

import numpy as np

from kdzoo.data.bad_input import BadExampleError, BadInputLog
from kdzoo.datasets.catalog import CATALOG
from kdzoo.datasets.root import require

SPEC = CATALOG.get("mnist")
SOURCE = SPEC.source
TRAIN_CSV = SPEC.files["train"]
TEST_IMAGES = SPEC.files["test_images"]
TEST_LABELS = SPEC.files["test_labels"]


COLUMNS = 785  # 784 pixels, then the label
_INT = re.compile(r"[ \t]*[-+]?[0-9]+[ \t]*")  # what np.loadtxt parses as an integer


def _read_gzip(path) -> bytes:
    """The decompressed bytes of ``path``; raises naming the file if it is not (complete)
    gzip data, instead of a bare gzip/zlib error."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        raise BadExampleError(
            f"{path}: not gzip data (starts with {raw[:4]!r}; expected the gzip magic "
            "b'\\x1f\\x8b')"
        )
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise BadExampleError(
            f"{path}: truncated or corrupt gzip ({err}; expected a complete gzip file)"
        ) from None


def _read_idx(path, magic, dims, what):
    data = _read_gzip(path)
    size = 4 * (1 + dims)
    if len(data) < size:
        raise BadExampleError(
            f"{path}: {len(data)} bytes, too short for an IDX header (expected {size} bytes)"
        )
    header = np.frombuffer(data[:size], dtype=">u4")
    if header[0] != magic:
        raise BadExampleError(
            f"{path}: not an IDX file with magic {magic:#x} (got {header[0]:#x})."
        )
    shape = tuple(int(d) for d in header[1:])
    body = np.frombuffer(data[size:], dtype=np.uint8)
    if body.size != int(np.prod(shape)):
        raise BadExampleError(
            f"{path}: {body.size} bytes of {what} after the header (expected "
            f"{int(np.prod(shape))} for shape {shape}; is the file truncated?)"
        )
    return body.reshape(shape)


def _row_problem(fields, row):
    """``(reason, kind)`` of the first problem of one CSV row's fields, or ``None``."""
    if len(fields) != COLUMNS:
        reason = f"{len(fields)} columns (expected {COLUMNS}: 784 pixels, then the label)"
        return reason, "columns"
    for column, field in enumerate(fields, start=1):
        if not _INT.fullmatch(field):
            expected = "a label 0..9" if column == COLUMNS else "a pixel 0..255"
            return (
                f"column {column} is not an integer: {field!r} (expected {expected})",
                "not a number",
            )
        value = int(field)
        if column < COLUMNS and not 0 <= value <= 255:
            reason = f"pixel {value} in column {column} is outside 0..255 (expected 8-bit grey)"
            return reason, "pixel out of range"
        if column == COLUMNS and not 0 <= value <= 9:
            return f"label out of range 0..9 at row {row}: {value}", "label"
    return None


#: A character no integer row has. NumPy < 2 parses "1.5" or "1e3" as an int64 by way of a
#: float (1, 1000) with only a DeprecationWarning, so such rows never reach np.loadtxt.
_NOT_INTEGER = re.compile(r"[^0-9+\-, \t]")


def _parse_rows(lines):
    """The integer rows of ``lines``, or ``None`` if one is not ``COLUMNS`` integers."""
    if any(_NOT_INTEGER.search(line) for line in lines):
        return None
    try:
        rows = np.loadtxt(lines, delimiter=",", dtype=np.int64, comments=None, ndmin=2)
    except ValueError:  # a non-integer value, or rows of different lengths
        return None
    return rows if rows.shape == (len(lines), COLUMNS) else None


def _read_csv(path, bad_log):
    """Parses ``pixel,...,pixel,label`` rows; a row with another number of columns, a value
    that is not an integer, a pixel outside 0..255 or a label outside 0..9 is reported to
    ``bad_log`` as ``<file>:<line>``."""
    # latin-1 maps every byte to one character, so a stray byte is reported, not decoded.
    text = _read_gzip(path).decode("latin-1")
    numbered = []  # (line number, data row, text) of each non-blank line
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            numbered.append((number, len(numbered), line.strip()))
    if not numbered:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int32)
    rows = _parse_rows([line for *_, line in numbered])
    if rows is None:  # find and report the malformed rows (slow path, bad files only)
        kept = []
        for number, row, line in numbered:
            problem = _row_problem(line.split(","), row)
            if problem:
                bad_log.bad(f"{path}:{number}", *problem)
            else:
                kept.append((number, row, line))
        numbered = kept
        if not numbered:
            return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int32)
        rows = _parse_rows([line for *_, line in numbered])
        if rows is None:  # cannot happen if _INT matches what np.loadtxt parses; never silent
            raise BadExampleError(f"{path}: rows of integers that np.loadtxt cannot parse")
    in_range = ((rows[:, :-1] >= 0) & (rows[:, :-1] <= 255)).all(axis=1)
    in_range &= (rows[:, -1] >= 0) & (rows[:, -1] <= 9)
    for i in np.flatnonzero(~in_range):
        number, row, line = numbered[i]
        bad_log.bad(f"{path}:{number}", *_row_problem(line.split(","), row))
    rows = rows[in_range]
    return rows[:, :-1].astype(np.uint8).reshape(-1, 28, 28), rows[:, -1]


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

    A bad example raises ``BadExampleError`` naming the file and line (CSV) or row (IDX), or
    with ``skip_bad=True`` is skipped, counted and logged: a label outside 0..9, and in the
    CSV a pixel outside 0..255 (never wrapped around through uint8), a non-integer value or
    a row without 785 columns. A file that is not gzip data, or a truncated one, raises
    naming the file (a whole file is never skipped)."""
    bad_log = bad_log or BadInputLog(skip_bad)
    if split == "train":
        (path,) = require("mnist", [TRAIN_CSV], SOURCE, root)
        images, labels = _read_csv(path, bad_log)
        return _to_arrays(images, labels, path, bad_log)
    if split == "test":
        images_path, labels_path = require("mnist", [TEST_IMAGES, TEST_LABELS], SOURCE, root)
        images = _read_idx(images_path, 0x803, 3, "pixels")
        labels = _read_idx(labels_path, 0x801, 1, "labels")
        if len(images) != len(labels):
            raise BadExampleError(
                f"{images_path}: {len(images)} images but {len(labels)} labels in "
                f"{labels_path.name} (expected one label per image)"
            )
        return _to_arrays(images, labels, labels_path, bad_log)
    raise ValueError(f"MNIST `split` must be 'train' or 'test'; got {split!r}.")


def read_splits(root=None, seed=0, bad_log: BadInputLog | None = None) -> dict:
    """The catalog's reader: ``{"train": ..., "test": ...}`` (``seed`` is unused)."""
    del seed
    return {split: load_arrays(split, root=root, bad_log=bad_log) for split in SPEC.splits}
