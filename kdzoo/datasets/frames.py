"""Your own data: a pandas DataFrame, a CSV or a Parquet file, or a folder of class
folders, as kdzoo pipelines.

``from_dataframe(frame, label="intent", text="utterance")`` maps columns to modalities and
returns the same ``LoadedDataset`` as ``kdzoo.datasets.load``, so the recipe, the
``Distiller`` and the serving export take it unchanged. ``from_csv`` and ``from_parquet``
read the file with pandas and resolve relative file paths against the file's folder.
``from_folder("photos/")`` reads ``photos/<class>/*.png`` (or ``*.wav``), and
``photos/<split>/<class>/...`` for given splits.

Columns:

- ``label``: strings or integers; the class names are ``class_names`` if given (their order
  is the class ids), else the sorted distinct labels of every split.
- ``text``: strings.
- ``image``: paths of image files (PNG, JPEG, BMP, GIF), encoded bytes, or arrays
  ``[H, W(, C)]`` (uint8, or float in [0, 1]). Decoded to uint8 ``[H, W, C]`` (alpha
  dropped; grey images among colour ones become colour); every image must have the first
  one's size unless ``image_size=(H, W)`` resizes them all.
- ``audio``: paths of PCM wav files, or float arrays of samples at ``sample_rate``. The
  channels are averaged; clips are zero-padded to ``clip_seconds`` (default: the longest
  clip), and longer ones are cropped to it, counted and logged.
- ``numeric``, ``categorical``: lists of columns that make the ``"tabular"`` modality
  (``kdzoo.data.tabular``): numbers (a missing or non-numeric cell is a bad row), and
  categories of any type (a missing cell, or one not seen in training, is "unseen"). The
  numbers are standardised and the categories one-hot encoded with statistics and
  vocabularies learnt from the training split.
- ``id``: an example id, kept in the arrays as ``"id"`` (unique), e.g. to read a teacher's
  outputs keyed by id (``kdzoo.distillation.read_teacher_outputs``).
- ``split``: ``"train"``, ``"validation"`` or ``"test"`` per row. Without it, every row is
  training data; ``test_fraction`` and then ``validation_fraction`` of each class are held
  out (stratified, seeded). A given split without ``"validation"`` gets one the same way.

With ``unlabelled=True`` training rows whose label cell is empty are not bad rows: they
become the unlabelled transfer set a teacher labels (``kdzoo.datasets.with_transfer``), and
the held-out splits are drawn from the labelled rows only.

Everything learnt from data (the vocabulary, the audio and numeric statistics, the
categories) is learnt from the
training split only. A bad row (a missing label or class, empty text, a file that is not
there or does not decode, a wav at another sample rate) raises ``BadExampleError`` naming
the file, line (CSV) or row, and the column; with ``skip_bad=True`` it is skipped, counted
(``LoadedDataset.skipped``) and logged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from kdzoo.data.bad_input import BadInputLog
from kdzoo.data.tabular import INPUT_NAME, TabularConfig
from kdzoo.datasets.catalog import DatasetSpec
from kdzoo.datasets.loading import (
    TRANSFER,
    LoadedDataset,
    build_pipelines,
    fit_preprocessing,
    stratified_holdout,
    with_task,
    with_transfer,
)
from kdzoo.defaults import DEFAULTS
from kdzoo.labels import UNLABELLED

log = logging.getLogger("kdzoo.data")

SPLITS = ("train", "validation", "test")


class _Rows:
    """Names a row as the user knows it: a CSV line, a Parquet row, or a DataFrame index."""

    def __init__(self, frame, source):
        self.index = list(frame.index)
        self.source = source
        self.folder = source is not None and Path(source).is_dir()

    def __call__(self, i, column):
        if self.folder:  # ``from_folder``: the index is each file's path in the folder
            return str(Path(self.source) / self.index[i])
        if self.source is None:
            where = f"row {self.index[i]!r}"
        elif str(self.source).endswith(".csv"):
            where = f"{self.source}: line {i + 2}"  # line 1 is the header
        else:
            where = f"{self.source}: row {i}"
        return f"{where}, column {column!r}"


def _missing(value) -> bool:
    """None, NaN, ``pd.NA`` or ``NaT`` (not a list or an array, as an image cell can be)."""
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _label_key(value):
    """A label as text; whole numbers as integers (a column of ints with a gap reads as
    floats: 1.0 is class "1")."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _labels(values, class_names, where, column, bad_log, keep, unlabelled=None):
    """Class ids of ``values`` and the class names; a missing label is a bad row, or
    ``UNLABELLED`` where the mask ``unlabelled`` allows it."""
    names = None if class_names is None else [str(n) for n in class_names]
    if names is None:
        present = {_label_key(v) for v in values if not _missing(v)}
        numeric = all(k.lstrip("-").isdigit() for k in present)
        names = sorted(present, key=int) if numeric and present else sorted(present)
    lookup = {n: i for i, n in enumerate(names)}
    present = {_label_key(v) for v in values if not _missing(v)}
    if class_names is not None and not present & set(lookup):
        # Integer labels with class names given: label k is class_names[k].
        if all(k.isdigit() and int(k) < len(names) for k in present):
            lookup = {str(i): i for i in range(len(names))}
    ids = np.zeros(len(values), np.int32)
    for i, value in enumerate(values):
        if _missing(value) and unlabelled is not None and unlabelled[i]:
            ids[i] = UNLABELLED
        elif _missing(value):
            bad_log.bad(where(i, column), "no label", "label")
            keep[i] = False
        elif _label_key(value) not in lookup:
            bad_log.bad(where(i, column), f"label {value!r} is not a class {names}", "label")
            keep[i] = False
        else:
            ids[i] = lookup[_label_key(value)]
    return ids, tuple(names)


def _task_targets(frame, columns, task, where, bad_log, keep, separator, allowed=None):
    """The labels of a binary, multi-label or regression ``task`` from ``columns`` of
    ``frame`` (one row each), as ``Task.check_labels`` takes them, and the task with its
    names; a bad cell is a bad row named by row and column.

    - regression: one numeric column per target;
    - binary: one column of 0/1 (or of the task's two names);
    - multi-label: one 0/1 column per label, or one column whose cells list the labels
      (``separator``-joined text, or lists), the labels being the task's names or, without
      them, the sorted distinct ones.

    Where ``allowed`` (a mask, for ``unlabelled=True``) lets a row lack its label, a row
    whose label cells are all empty is unlabelled rather than bad; the third value returned
    marks those rows (their labels are placeholders until ``with_transfer``).
    """
    n = len(frame)
    unlabelled = np.zeros(n, bool)
    if allowed is not None:
        empty = np.ones(n, bool)
        for column in columns:
            empty &= np.array([_missing(cell) for cell in frame[column].tolist()], bool)
        unlabelled = empty & allowed
    values, task = _task_values(frame, columns, task, where, bad_log, keep, separator, unlabelled)
    return values, task, unlabelled


def _binary_key(cell):
    """``_label_key(cell)`` with booleans as ``"0"``/``"1"``; None for a missing cell."""
    key = None if _missing(cell) else _label_key(cell)
    return {"False": "0", "True": "1"}.get(key, key)


def _task_values(frame, columns, task, where, bad_log, keep, separator, unlabelled):
    """``_task_targets`` without the unlabelled rows, which are skipped (not bad)."""
    n = len(frame)
    if task.kind == "regression":
        values = np.zeros((n, len(columns)), np.float64)
        for j, column in enumerate(columns):
            numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
            for i in np.flatnonzero(~np.isfinite(numbers) & keep & ~unlabelled):
                cell = frame[column].iloc[i]
                what = "no target" if _missing(cell) else f"target {cell!r} is not a number"
                bad_log.bad(where(i, column), what, "label")
                keep[i] = False
            values[:, j] = np.where(np.isfinite(numbers), numbers, 0.0)
        names = task.names or tuple(columns)
        return values, dataclasses.replace(task, outputs=len(columns), names=names)
    if task.kind == "binary":
        (column,) = columns
        names = task.names
        ids = np.zeros(n, np.int32)
        for i, cell in enumerate(frame[column].tolist()):
            if unlabelled[i]:
                continue
            key = _binary_key(cell)
            if key in ("0", "1"):
                ids[i] = int(key)
            elif key in names:
                ids[i] = names.index(key)
            else:
                what = "no label" if key is None else f"label {cell!r} is not 0, 1 or {names}"
                bad_log.bad(where(i, column), what, "label")
                keep[i] = False
        return ids, task
    if len(columns) > 1:  # one 0/1 column per label
        values = np.zeros((n, len(columns)), np.int32)
        for j, column in enumerate(columns):
            for i, cell in enumerate(frame[column].tolist()):
                if unlabelled[i]:
                    continue
                key = _binary_key(cell)
                if key in ("0", "1"):
                    values[i, j] = int(key)
                elif keep[i]:
                    bad_log.bad(where(i, column), f"label {cell!r} is not 0 or 1", "label")
                    keep[i] = False
        names = task.names or tuple(columns)
        return values, dataclasses.replace(task, outputs=len(columns), names=names)
    (column,) = columns
    cells = []
    for cell in frame[column].tolist():
        if isinstance(cell, list | tuple | np.ndarray):
            cells.append([str(v).strip() for v in cell])
        elif _missing(cell) or str(cell).strip() == "":
            cells.append([])  # a row with none of the labels
        else:
            cells.append([v.strip() for v in str(cell).split(separator) if v.strip()])
    names = task.names or tuple(sorted({v for row in cells for v in row}))
    if not names:
        raise ValueError(f"{where(0, column).split(',')[0]}: column {column!r} names no labels.")
    lookup = {name: j for j, name in enumerate(names)}
    values = np.zeros((n, len(names)), np.int32)
    for i, row in enumerate(cells):
        unknown = [v for v in row if v not in lookup]
        if unknown:
            bad_log.bad(where(i, column), f"label {unknown[0]!r} is not one of {names}", "label")
            keep[i] = False
            continue
        values[i, [lookup[v] for v in row]] = 1
    return values, dataclasses.replace(task, outputs=len(names), names=names)


def _text(values, where, column, bad_log, keep):
    out = []
    for i, value in enumerate(values):
        if _missing(value) or not str(value).strip():
            bad_log.bad(where(i, column), "empty text", "empty text")
            keep[i] = False
            out.append("")
        else:
            out.append(str(value))
    return np.array(out, dtype=object)


def _existing_file(value, root, what, where, bad_log):
    """The file ``value`` names (relative to ``root``), or None after reporting it missing."""
    path = Path(value)
    path = path if path.is_absolute() or root is None else Path(root) / path
    if path.is_file():
        return path
    bad_log.bad(where, f"no {what} file {str(path)!r}", "missing file")
    return None


def _images(values, where, column, root, image_size, bad_log, keep):
    import tensorflow as tf

    decoded = [None] * len(values)
    for i, value in enumerate(values):
        if not keep[i]:
            continue
        try:
            if isinstance(value, str):
                path = _existing_file(value, root, "image", where(i, column), bad_log)
                if path is None:
                    keep[i] = False
                    continue
                value = path.read_bytes()
            if isinstance(value, bytes):
                image = tf.io.decode_image(value, expand_animations=False).numpy()
            else:
                image = np.asarray(value)
                if image.dtype.kind == "f":
                    image = np.round(np.clip(image, 0, 1) * 255)
                image = image.astype(np.uint8)
                if image.ndim == 2:
                    image = image[..., None]
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            reason = str(err).splitlines()[0][:120]
            bad_log.bad(where(i, column), f"not a decodable image ({reason})", "bad image")
            keep[i] = False
            continue
        if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
            bad_log.bad(where(i, column), f"image of shape {image.shape}", "bad image")
            keep[i] = False
            continue
        # Alpha is dropped: grey+alpha becomes grey, RGBA becomes RGB.
        decoded[i] = image[..., :1] if image.shape[2] == 2 else image[..., :3]
    kept = [img for img in decoded if img is not None]
    if not kept:
        return np.zeros((len(values), 1, 1, 1), np.uint8)
    channels = max(img.shape[2] for img in kept)
    resize = image_size is not None
    size = tuple(image_size) if resize else kept[0].shape[:2]
    out = np.zeros((len(values), *size, channels), np.uint8)
    for i, image in enumerate(decoded):
        if image is None:
            continue
        if image.shape[2] != channels:  # grey among colour: the grey level in R, G and B
            image = np.repeat(image, channels, axis=2)
        if resize and image.shape[:2] != size:
            image = tf.image.resize(image, size, antialias=True).numpy()
            image = np.round(np.clip(image, 0, 255)).astype(np.uint8)
        if image.shape[:2] != size:
            bad_log.bad(
                where(i, column),
                f"image of size {image.shape[:2]}, the first is {size} "
                "(pass image_size=(H, W) to resize them all)",
                "image size",
            )
            keep[i] = False
            continue
        out[i] = image
    return out


def _audio(values, where, column, root, sample_rate, clip_samples, bad_log, keep):
    import tensorflow as tf

    waves = [None] * len(values)
    for i, value in enumerate(values):
        if not keep[i]:
            continue
        if isinstance(value, str):
            path = _existing_file(value, root, "wav", where(i, column), bad_log)
            if path is None:
                keep[i] = False
                continue
            try:
                audio, rate = tf.audio.decode_wav(tf.io.read_file(str(path)), desired_channels=-1)
            except tf.errors.InvalidArgumentError as err:
                reason = str(err).splitlines()[0][:120]
                bad_log.bad(where(i, column), f"not a PCM wav file ({reason})", "bad audio")
                keep[i] = False
                continue
            if int(rate) != sample_rate:
                bad_log.bad(
                    where(i, column),
                    f"{str(path)!r} is {int(rate)} Hz; the dataset's sample_rate is "
                    f"{sample_rate} (resample the files, or pass sample_rate={int(rate)})",
                    "sample rate",
                )
                keep[i] = False
                continue
            wave = audio.numpy().mean(axis=1)
        else:
            wave = np.asarray(value, np.float32)
            if wave.ndim != 1 or not len(wave):
                bad_log.bad(where(i, column), f"samples of shape {wave.shape}", "bad audio")
                keep[i] = False
                continue
        if not np.isfinite(wave).all():
            bad_log.bad(where(i, column), "non-finite samples", "bad audio")
            keep[i] = False
            continue
        waves[i] = wave.astype(np.float32)
    kept = [w for w in waves if w is not None]
    length = clip_samples or (max(len(w) for w in kept) if kept else 1)
    out = np.zeros((len(values), length), np.float32)
    cropped = 0
    for i, wave in enumerate(waves):
        if wave is not None:
            cropped += len(wave) > length
            out[i, : min(len(wave), length)] = wave[:length]
    if cropped:
        log.warning(
            "Column %r: %d clip(s) longer than %d samples were cropped to it.",
            column,
            cropped,
            length,
        )
    return out


def _numbers(frame, columns, where, bad_log, keep):
    """The numeric columns as float64 ``[n, len(columns)]``; a missing, non-numeric or
    infinite cell is a bad row."""
    out = np.zeros((len(frame), len(columns)), np.float64)
    for j, column in enumerate(columns):
        values = frame[column].tolist()
        for i, value in enumerate(values):
            if _missing(value):
                bad_log.bad(where(i, column), "no value (a missing number)", "missing number")
                keep[i] = False
                continue
            if isinstance(value, bool | np.bool_):
                out[i, j] = float(value)
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                bad_log.bad(where(i, column), f"{value!r} is not a number", "not a number")
                keep[i] = False
                continue
            if not np.isfinite(number):
                bad_log.bad(where(i, column), f"{value!r} is not finite", "not a number")
                keep[i] = False
                continue
            out[i, j] = number
    return out


def _tabular_columns(numeric, categorical, roles):
    """The numeric and categorical column lists, checked against each other and against the
    columns of other roles (``{role: column}``: the label, the id, the split, a modality)."""
    numeric = [numeric] if isinstance(numeric, str) else list(numeric or ())
    categorical = [categorical] if isinstance(categorical, str) else list(categorical or ())
    both = set(numeric) & set(categorical)
    if both:
        raise ValueError(f"Column(s) {sorted(both)} are both numeric= and categorical=.")
    for role, column in roles.items():
        if column is not None and column in (*numeric, *categorical):
            kind = "numeric" if column in numeric else "categorical"
            why = (
                f"a feature that is the {role} would leak it into the model"
                if role in ("label", "id", "split")
                else f"it is read as {role} already"
            )
            raise ValueError(
                f"Column {column!r} is the {role} column and a {kind} feature; {why}. "
                f"Drop it from {kind}=."
            )
    unservable = [
        str(c)
        for c in (*numeric, *categorical)
        if not INPUT_NAME.fullmatch(str(c)) or str(c) in ("image", "audio", "text")
    ]
    if unservable:
        log.warning(
            "Tabular column(s) %s cannot name serving inputs (a letter, then letters, digits "
            "or '_', and not a modality's name): a model trained on them trains and "
            "evaluates, but its serving export will be refused. Rename them before training "
            "to export it.",
            unservable,
        )
    for kind, columns in (("numeric", numeric), ("categorical", categorical)):
        if len(set(columns)) != len(columns):
            raise ValueError(f"`{kind}` names a column twice: {columns}.")
    return numeric, categorical


def _fit_tabular(parts, transfer, numeric, categorical, name):
    """Fits the tabular front end on the training rows (and the transfer rows, which are
    training inputs) and replaces the raw columns of every split with its encoded matrix."""
    fitted = [parts["train"]] + ([transfer] if transfer is not None else [])
    train_numbers = np.concatenate([p["_numeric"] for p in fitted])
    train_categories = np.concatenate([p["_categorical"] for p in fitted])
    config = TabularConfig.fit(
        {c: train_numbers[:, j] for j, c in enumerate(numeric)},
        {c: train_categories[:, j] for j, c in enumerate(categorical)},
    )
    for split, arrays in [*parts.items(), ("transfer", transfer)]:
        if arrays is None:
            continue
        numbers, categories = arrays.pop("_numeric"), arrays.pop("_categorical")
        arrays["tabular"], unseen = config.encode(
            {c: numbers[:, j] for j, c in enumerate(numeric)},
            {c: categories[:, j] for j, c in enumerate(categorical)},
        )
        counts = {c: k for c, k in unseen.items() if k}
        if counts and split != "train":
            log.info(
                "%s: %s rows with a category unseen in training (or missing), per column: %s",
                name,
                split,
                counts,
            )
        elif counts:
            log.info("%s: train rows with a missing category, per column: %s", name, counts)
    return config


def from_dataframe(
    frame: pd.DataFrame,
    *,
    label,
    text: str | None = None,
    image: str | None = None,
    audio: str | None = None,
    numeric=None,
    categorical=None,
    id: str | None = None,  # noqa: A002 - the column's role, as the user names it
    split: str | None = None,
    class_names=None,
    validation_fraction: float = DEFAULTS.validation_fraction,
    test_fraction: float = 0.0,
    image_size=None,
    sample_rate: int = 16_000,
    clip_seconds: float | None = None,
    max_tokens: int | None = None,
    sequence_length: int | None = None,
    batch_size: int = DEFAULTS.batch_size,
    seed: int = DEFAULTS.seed,
    skip_bad: bool = False,
    unlabelled: bool = False,
    name: str = "dataframe",
    root=None,
    cache_dir=None,
    source=None,
    task=None,
    label_separator: str = "|",
) -> LoadedDataset:
    """Your DataFrame as a ``LoadedDataset`` (see the module docstring for the columns).

    Args:
        frame: one row per example.
        label: the label column; with a ``task``, a list of columns may be given (one per
            regression target or per multi-label label).
        text, image, audio: the column of each modality the examples have (at least one
            modality).
        numeric, categorical: the columns of the ``"tabular"`` modality (lists of names):
            numbers, and categories.
        id: an id column (unique values), kept as ``arrays[split]["id"]``.
        split: a column of ``"train"`` / ``"validation"`` / ``"test"``.
        class_names: the classes in id order; labels are matched to them by name, or, if
            the labels are the integers ``0..K-1``, by position. Defaults to the sorted
            distinct labels.
        validation_fraction: share of each class of train held out for validation when no
            validation rows are given. Defaults to ``DEFAULTS.validation_fraction`` (0.1).
        test_fraction: share of each class held out for test when no ``split`` column is
            given. Defaults to 0 (no test split).
        image_size: ``(height, width)`` every image is resized to. Defaults to None: all
            images must have the first one's size.
        sample_rate: the audio's sample rate in Hz (wav files must have it). Defaults to
            16,000.
        clip_seconds: the clip length; shorter clips are zero-padded, longer ones cropped.
            Defaults to the longest clip.
        max_tokens, sequence_length: the text vocabulary size and padded length. Default:
            ``DEFAULTS.text_max_tokens`` and ``DEFAULTS.text_sequence_length``.
        batch_size, seed: of the pipelines (and of the held-out splits).
        skip_bad: skip, count and log bad rows instead of raising.
        unlabelled: training rows without a label (an empty cell) become the unlabelled
            transfer set (``kdzoo.datasets.with_transfer``) instead of bad rows; a
            validation or test row without one is still bad. With a task, a row is
            unlabelled when all of its label cells are empty (a regression row missing
            some targets is bad); a multi-label task then needs one 0/1 column per label.
            Defaults to False.
        name: the dataset's name (a Python identifier), used in messages and file names.
        root: the folder relative file paths are read from. Defaults to the working folder.
        cache_dir: where the vocabulary file goes (``kdzoo.datasets.load``'s).
        source: the file the frame was read from, for messages (set by ``from_csv``).
        task: a ``kdzoo.tasks.Task`` (or its kind as a string: ``"binary"``,
            ``"multi_label"``, ``"regression"``) when the labels are not one class out of
            K: numeric targets (regression, standardised on the training rows), 0/1
            (binary), or several labels per row (multi-label: 0/1 columns, or one column
            listing them). Its names default to the label columns (or the distinct labels
            listed). The result's ``task`` is it (``kdzoo.datasets.with_task``). Defaults
            to None: classification.
        label_separator: multi-label, one column: what separates the labels of a cell
            (``"rock|pop"``). Defaults to ``"|"``.

    Returns:
        A ``LoadedDataset`` with a pipeline per split.

    Raises:
        ValueError: a named column is missing, no modality is given, an id repeats, the
            frame has no rows, or a classification label column holds a single class.
        kdzoo.data.bad_input.BadExampleError: a bad row, named by file and line or row, and column.
    """
    task = _frame_task(task, label, unlabelled, class_names)
    label_columns = [label] if isinstance(label, str) else list(label)
    if task is None and len(label_columns) != 1:
        raise ValueError(f"`label` must be one column without a task; got {label_columns}.")
    label = label_columns[0]
    columns = {"text": text, "image": image, "audio": audio}
    roles = {"label": label, "id": id, "split": split, **columns}
    numeric, categorical = _tabular_columns(numeric, categorical, roles)
    modalities = tuple(m for m, c in columns.items() if c is not None)
    if numeric or categorical:
        modalities += ("tabular",)
    if not modalities:
        raise ValueError(
            "Give at least one of text=, image=, audio= (the column of each), or numeric= / "
            "categorical= (lists of columns)."
        )
    wanted = {"label": label, **{m: c for m, c in columns.items() if c}, "id": id, "split": split}
    tabular_columns = [*numeric, *categorical]
    leaking = [c for c in label_columns[1:] if c in tabular_columns]
    if leaking:
        raise ValueError(f"Label column(s) {leaking} are also features: they would leak.")
    absent = [c for c in wanted.values() if c is not None and c not in frame.columns]
    absent += [c for c in label_columns[1:] if c not in frame.columns]
    absent += [c for c in tabular_columns if c not in frame.columns]
    if absent:
        where = f"{source}: " if source else ""
        raise ValueError(
            f"{where}no column(s) {absent}; the columns are {[str(c) for c in frame.columns]}."
        )
    if not name.isidentifier():
        raise ValueError(f"`name` must be a Python identifier; got {name!r}.")
    if frame.empty:
        raise ValueError(f"{_named(name, source)} has its header but no rows: nothing to load.")
    where = _Rows(frame, source)
    bad_log = BadInputLog(skip_bad)
    n = len(frame)
    keep = np.ones(n, bool)

    if split is not None:
        splits = frame[split].astype(str).to_numpy()
        for i in np.flatnonzero(~np.isin(splits, SPLITS)):
            bad_log.bad(where(i, split), f"split {splits[i]!r} is not one of {SPLITS}", "split")
            keep[i] = False
    allowed = None
    if unlabelled:  # training rows may lack a label: they become the transfer set
        allowed = np.ones(n, bool) if split is None else splits == "train"
    if task is None:
        labels, names = _labels(
            frame[label].tolist(), class_names, where, label, bad_log, keep, allowed
        )
        arrays = {"label": labels}
    else:  # a placeholder class until with_task makes the targets the labels
        targets, task, no_label = _task_targets(
            frame, label_columns, task, where, bad_log, keep, label_separator, allowed
        )
        names, arrays = _PLACEHOLDER_CLASSES, {"label": np.zeros(n, np.int32), _TARGETS: targets}
    if text is not None:
        arrays["text"] = _text(frame[text].tolist(), where, text, bad_log, keep)
    if image is not None:
        arrays["image"] = _images(
            frame[image].tolist(), where, image, root, image_size, bad_log, keep
        )
    if audio is not None:
        clip = None if clip_seconds is None else int(round(clip_seconds * sample_rate))
        arrays["audio"] = _audio(
            frame[audio].tolist(), where, audio, root, sample_rate, clip, bad_log, keep
        )
    if numeric or categorical:
        arrays["_numeric"] = _numbers(frame, numeric, where, bad_log, keep)
        arrays["_categorical"] = frame[categorical].to_numpy(dtype=object).reshape(n, -1)
    if id is not None:
        ids = frame[id].to_numpy()
        seen = {}
        for i, value in enumerate(ids.tolist()):
            if value in seen:
                raise ValueError(
                    f"{where(i, id)}: id {value!r} repeats {where(seen[value], id).split(',')[0]}."
                )
            seen[value] = i
        arrays["id"] = ids
    bad_log.summarize(name)
    if not keep.any():
        raise ValueError(f"{name}: no rows left ({bad_log.count} bad).")
    arrays = {k: v[keep] for k, v in arrays.items()}
    if task is None:
        _check_classes(arrays["label"], names, label, _named(name, source))
    if split is not None:
        assigned = splits[keep]
    else:
        assigned = np.full(keep.sum(), "train", dtype=object)
    if task is None:
        assigned[arrays["label"] == UNLABELLED] = TRANSFER
    elif unlabelled:
        assigned[no_label[keep]] = TRANSFER
    # Held-out rows keep the class balance: of the classes, or of a binary task's 0/1.
    strata = arrays[_TARGETS] if task is not None and task.kind == "binary" else arrays["label"]
    if split is None and test_fraction:
        labelled = np.flatnonzero(assigned == "train")
        held = stratified_holdout(strata[labelled], test_fraction, seed)
        assigned[labelled[held]] = "test"
    if "validation" not in set(assigned) and validation_fraction:
        train = np.flatnonzero(assigned == "train")
        held = stratified_holdout(strata[train], validation_fraction, seed)
        assigned[train[held]] = "validation"
    parts = {
        s: {k: v[assigned == s] for k, v in arrays.items()}
        for s in (*SPLITS, TRANSFER)
        if (assigned == s).any()
    }
    if "train" not in parts:
        raise ValueError(f"{name}: no labelled training rows.")
    transfer = parts.pop(TRANSFER, None)
    if transfer is not None:
        log.info(
            "%s: %d training rows without a label are the transfer set.",
            name,
            len(transfer["label"]),
        )

    tabular = None
    if "tabular" in modalities:
        tabular = _fit_tabular(parts, transfer, numeric, categorical, name)

    spec = DatasetSpec(
        name=name,
        modalities=modalities,
        class_names=names,
        splits=tuple(parts),
        reader="kdzoo.datasets.frames:from_dataframe",
        sample_rate=sample_rate if audio else None,
        clip_samples=arrays["audio"].shape[1] if audio else None,
        image_shape=tuple(arrays["image"].shape[1:]) if image else None,
        max_tokens=max_tokens or DEFAULTS.text_max_tokens,
        sequence_length=sequence_length or DEFAULTS.text_sequence_length,
        source=str(source or "a pandas DataFrame"),
    )
    # The inputs of unlabelled training rows are training inputs: the vocabulary and the
    # audio statistics are learnt from them too (never from validation or test rows).
    fitted = parts["train"]
    if transfer is not None:
        fitted = {m: np.concatenate([fitted[m], transfer[m]]) for m in modalities}
    preprocessing = fit_preprocessing(spec, fitted, modalities, cache_dir=cache_dir)
    preprocessing = dataclasses.replace(preprocessing, tabular_config=tabular)
    options = {"batch_size": batch_size, "seed": seed, "drop_remainder": False, "augment": None}
    data = build_pipelines(spec, parts, modalities, preprocessing, list(parts), options)
    data.skipped = bad_log.count
    if task is not None:
        data = with_task(data, task, _TARGETS, keep_class_label=False)
    if transfer is None:
        return data
    if task is not None:  # placeholders: with_transfer marks the rows as the task does
        transfer = {k: v for k, v in transfer.items() if k not in ("label", _TARGETS)}
    return with_transfer(data, transfer)


def _named(name, source) -> str:
    """The data as errors name it: its file, or the DataFrame's ``name``."""
    return str(source) if source else f"DataFrame {name!r}"


def _check_classes(ids, names, column, named) -> None:
    """Refuses classification labels (the rows kept) that hold a single class: the model
    would have nothing to tell apart. Unlabelled rows do not count; none at all is left to
    the "no labelled training rows" error."""
    present = np.unique(ids[ids != UNLABELLED])
    if len(present) == 1:
        raise ValueError(
            f"{named} has only {names[present[0]]!r} in its label column {column!r}; a "
            "classifier needs two classes or more (a number to predict is task='regression')."
        )


#: Where ``from_dataframe`` keeps a task's labels until ``with_task`` moves them, and the
#: class names of the placeholder class labels they replace (a catalog entry needs two).
_TARGETS = "_targets"
_PLACEHOLDER_CLASSES = ("placeholder", "unused")


def _frame_task(task, label, unlabelled, class_names):
    """``task`` as a ``kdzoo.tasks.Task`` (a kind string gives an unnamed one), or None for
    classification, after refusing what does not go with it."""
    if task is None:
        return None
    from kdzoo.tasks import KINDS, Task

    if isinstance(task, str):
        if task not in KINDS:
            raise ValueError(f"`task` must be one of {list(KINDS)} or a Task; got {task!r}.")
        count = 1 if isinstance(label, str) else len(label)
        task = None if task == "classification" else Task(task, count if task != "binary" else 1)
        if task is None:
            return None
    if not isinstance(task, Task):
        raise TypeError(f"`task` must be a kdzoo.tasks.Task or a kind; got {task!r}.")
    if task.kind == "classification":
        return None
    columns = [label] if isinstance(label, str) else list(label)
    if unlabelled and task.kind == "multi_label" and len(columns) == 1:
        raise ValueError(
            "`unlabelled` with a multi-label task needs one 0/1 column per label: in one "
            "column listing the labels, an empty cell means a row with none of them."
        )
    if class_names is not None:
        raise ValueError(f"`class_names` are for classification; a {task.kind} task names "
                         "its labels or targets itself.")  # fmt: skip
    return task


def default_name(path) -> str:
    """The name ``from_csv``, ``from_parquet`` and ``from_folder`` give the data at ``path``
    unless told otherwise: the file's stem or the folder's name, made a Python identifier
    (``my-data.csv`` -> ``my_data``, ``2024.csv`` -> ``data_2024``)."""
    path = Path(os.fspath(path))
    stem = path.resolve().name if path.is_dir() else path.stem
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    if not name.isidentifier():
        name = f"data_{name}" if name else "data"
    return name


def from_csv(path, **kwargs) -> LoadedDataset:
    """``from_dataframe`` of a CSV file, named after the file; relative file paths are read
    from its folder and bad rows are named by line. ``kwargs``: those of
    ``from_dataframe``."""
    path = os.fspath(path)
    frame = pd.read_csv(path, keep_default_na=True)
    kwargs.setdefault("root", str(Path(path).parent))
    kwargs.setdefault("name", default_name(path))
    return from_dataframe(frame, source=path, **kwargs)


def from_parquet(path, **kwargs) -> LoadedDataset:
    """``from_dataframe`` of a Parquet file (bad rows named by row number)."""
    path = os.fspath(path)
    frame = pd.read_parquet(path)
    kwargs.setdefault("root", str(Path(path).parent))
    kwargs.setdefault("name", default_name(path))
    return from_dataframe(frame, source=path, **kwargs)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
AUDIO_SUFFIXES = (".wav",)


def folder_frame(path, modality: str | None = None) -> tuple[pd.DataFrame, str]:
    """The files of a class-folder tree as a DataFrame (index and ``id``: each file's path
    in the folder; ``file``; ``label``: its class folder; ``split`` when the top folders are
    ``train`` / ``validation`` / ``test``) and the modality (``"image"`` or ``"audio"``,
    from the files' suffixes unless given). Other files are counted and logged."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder.")
    tops = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    has_splits = bool(tops) and "train" in tops and set(tops) <= set(SPLITS)
    suffixes = {"image": IMAGE_SUFFIXES, "audio": AUDIO_SUFFIXES}
    if modality is not None and modality not in suffixes:
        raise ValueError(f"modality must be 'image' or 'audio', got {modality!r}.")
    rows, ignored = [], []
    found = [  # os.walk follows symlinked class folders; Path.rglob does not
        Path(folder) / name
        for folder, _, names in os.walk(root, followlinks=True)
        for name in names
    ]
    for file in sorted(found):
        rel = file.relative_to(root)
        parts = rel.parts
        depth = 3 if has_splits else 2
        if any(part.startswith(".") for part in parts):
            continue  # hidden files and folders (.DS_Store, .ipynb_checkpoints)
        if len(parts) != depth:
            ignored.append(rel.as_posix())
            continue
        rows.append(
            {
                "id": rel.as_posix(),
                "file": rel.as_posix(),
                "label": parts[-2],
                **({"split": parts[0]} if has_splits else {}),
                "suffix": file.suffix.lower(),
            }
        )
    frame = pd.DataFrame(rows, columns=["id", "file", "label", "split", "suffix"])
    if modality is None:
        found = {m for m, ends in suffixes.items() if frame["suffix"].isin(ends).any()}
        if len(found) != 1:
            raise ValueError(
                f"{root}: "
                + (
                    "holds both images and wav files; pass modality='image' or 'audio'."
                    if found
                    else "no image (" + ", ".join(IMAGE_SUFFIXES) + ") or wav files in "
                    "<class>/ folders" + (" under train/validation/test." if has_splits else ".")
                )
            )
        modality = found.pop()
    wanted = frame["suffix"].isin(suffixes[modality])
    ignored += list(frame.loc[~wanted, "id"])
    frame = frame[wanted].drop(columns="suffix")
    if not has_splits:
        frame = frame.drop(columns="split")
    if ignored:
        shown = ", ".join(ignored[:5]) + (", ..." if len(ignored) > 5 else "")
        log.warning(
            "%s: ignored %d file(s) that are not %s files in <class>/ folders: %s",
            root,
            len(ignored),
            modality,
            shown,
        )
    if frame.empty:
        raise ValueError(f"{root}: no {modality} files in <class>/ folders.")
    return frame.set_index("id", drop=False), modality


def from_folder(path, *, modality: str | None = None, **kwargs) -> LoadedDataset:
    """A folder of class folders as a ``LoadedDataset``: ``path/<class>/<file>``, or
    ``path/<split>/<class>/<file>`` with ``split`` one of ``train``, ``validation``,
    ``test`` (``train`` required). Images (PNG, JPEG, BMP, GIF) or PCM wav files; the class
    names are the folder names, sorted, unless ``class_names`` gives them. Each example's
    ``id`` is its path in the folder (e.g. ``cat/001.png``), so a teacher's outputs file can
    be keyed by it. Bad files are named by path. ``kwargs``: those of ``from_dataframe``
    (``image_size``, ``sample_rate``, ``validation_fraction``, ``test_fraction``,
    ``skip_bad``...)."""
    frame, modality = folder_frame(path, modality)
    given = {"split": "split"} if "split" in frame.columns else {}
    kwargs.setdefault("name", default_name(path))
    kwargs.setdefault("root", str(path))
    return from_dataframe(
        frame, label="label", id="id", source=str(path), **{modality: "file"}, **given, **kwargs
    )
