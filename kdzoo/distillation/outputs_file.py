"""Teacher outputs from a file: offline distillation from a model kdzoo never runs.

A teacher in another framework, behind an API, or a large language model asked for class
scores can hand its outputs over as a table keyed by example id. ``read_teacher_outputs``
reads it, checks it and returns the rows in the order of the dataset's ids. The rows then
ride in each batch beside the student's inputs, and ``file_teacher`` is the teacher that
reads them (a Keras model with no weights: its logits are its input)::

    outputs = read_teacher_outputs("teacher.parquet", ids=train_ids, num_classes=3)
    ds = kdzoo.data.from_arrays(
        arrays, ("text",), training=True, extras={FILE_TEACHER_KEY: outputs["logits"]}
    )
    distiller = kdzoo.Distiller(teacher=file_teacher(3), student=student)
    distiller.compile(optimizer="adam")
    distiller.fit(ds, epochs=...)

Routing keeps the logits away from the student, which reads only its own inputs.

Formats (by extension):

- ``.npz``: an ``ids`` array and a ``logits`` or ``probabilities`` array ``[rows, classes]``;
- ``.csv`` / ``.parquet``: an id column (``id_column``, default ``"id"``) and one column per
  class, ``logit_<k>`` or ``prob_<k>``, where ``<k>`` is the class index ``0..K-1`` (in the
  order of ``class_names`` when given) or, given ``class_names``, the class name.

Probabilities become log-probabilities, which stand in for logits exactly (``softmax(log p)
= p``). They must be non-negative and sum to 1 per row (within 1e-3); each is floored at
``PROBABILITY_FLOOR`` before the log, so that a class given probability 0 gets a large
finite negative logit (log 1e-7 ≈ -16.1) rather than ``-inf``.

Checked, with errors that name the file and the row (CSV: the line) or id: the format, the
id column, duplicate ids, ids of the dataset that the file lacks, the class count, and
finiteness. Ids in the file that the dataset does not ask for are ignored (one file may
serve every split).
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pandas as pd

#: The batch key ``file_teacher`` reads its logits from.
FILE_TEACHER_KEY = "teacher_logits"
#: Probabilities are floored here before the log (see the module docstring).
PROBABILITY_FLOOR = 1e-7
#: How far a row of probabilities may sum from 1.
PROBABILITY_SUM_TOLERANCE = 1e-3
_KINDS = {"logit": "logits", "prob": "probabilities"}


def _read_table(path, id_column, class_names):
    """``(ids, values, kind, row_label)`` of a CSV or Parquet file."""
    frame = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
    if id_column not in frame.columns:
        raise ValueError(
            f"{path}: no id column {id_column!r} (columns: {', '.join(map(str, frame.columns))})."
        )
    found = {}
    for prefix, kind in _KINDS.items():
        columns = [c for c in frame.columns if str(c).startswith(prefix + "_")]
        if columns:
            found[kind] = (prefix, columns)
    if len(found) != 1:
        raise ValueError(
            f"{path}: expected columns logit_<class> or prob_<class> (one kind); "
            f"found {sorted(found) or 'neither'}."
        )
    ((kind, (prefix, columns)),) = found.items()
    keys = [str(c)[len(prefix) + 1 :] for c in columns]
    indices = [str(k) for k in range(len(keys))]
    if class_names is not None and sorted(keys) != sorted(indices):
        wanted = [str(n) for n in class_names]
    else:  # class indices, in the dataset's class order (class_names[k] is index k)
        wanted = [str(k) for k in range(len(class_names) if class_names is not None else len(keys))]
    if sorted(keys) != sorted(wanted):
        raise ValueError(
            f"{path}: class columns {prefix}_{{{', '.join(keys)}}} do not match the "
            f"dataset's {len(wanted)} classes {prefix}_{{{', '.join(wanted)}}}."
        )
    ordered = [f"{prefix}_{k}" for k in wanted]
    values = frame[ordered]
    for column in ordered:
        if not pd.api.types.is_numeric_dtype(values[column]):
            bad = pd.to_numeric(values[column], errors="coerce").isna() & values[column].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise ValueError(
                f"{path}: {_row(path, row)}: column {column!r} is not a number: "
                f"{values[column].iloc[row]!r}."
            )
    return frame[id_column].to_numpy(), values.to_numpy(np.float64), kind


def _read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        kinds = [k for k in ("logits", "probabilities") if k in names]
        if "ids" not in names or len(kinds) != 1:
            raise ValueError(
                f"{path}: expected arrays 'ids' and one of 'logits' / 'probabilities'; "
                f"found {sorted(names)}."
            )
        try:
            values = np.asarray(archive[kinds[0]], np.float64)
            ids = np.asarray(archive["ids"])
        except ValueError as err:  # an object array: loading it would unpickle
            raise ValueError(
                f"{path}: holds an object array, which kdzoo does not unpickle; save ids as "
                "strings or integers (np.asarray(ids, dtype=str)) and outputs as floats."
            ) from err
    if values.ndim != 2 or len(values) != len(ids):
        raise ValueError(
            f"{path}: '{kinds[0]}' must be [rows, classes] with one row per id; got shape "
            f"{values.shape} for {len(ids)} ids."
        )
    return ids, values, kinds[0]


def _row(path, row):
    # A CSV's data row r sits on line r + 2 (line 1 is the header).
    return f"line {row + 2}" if path.endswith(".csv") else f"row {row}"


def _normalise_ids(ids):
    """Ids as comparable Python values (int or str), whatever the file's dtype."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return [int(i) for i in ids]
    if ids.dtype.kind == "f":
        if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
            raise ValueError("ids must be integers or strings; got non-integer numbers.")
        return [int(i) for i in ids]
    return [i.decode("utf-8") if isinstance(i, bytes) else str(i) for i in ids.tolist()]


def read_teacher_outputs(path, ids, *, num_classes=None, class_names=None, id_column="id") -> dict:
    """A teacher's outputs for the examples ``ids``, read from a file.

    Args:
        path: an ``.npz``, ``.csv`` or ``.parquet`` file (see the module docstring).
        ids: the dataset's example ids, in the order its pipeline reads the rows.
        num_classes: the dataset's class count; checked against the file. Defaults to
            ``len(class_names)`` when those are given.
        class_names: the dataset's class names; CSV/Parquet columns may then be named by
            class (``logit_<name>``) and are put in this order.
        id_column: the id column of a CSV or Parquet file. Defaults to ``"id"``.

    Returns:
        ``{"logits": float32 [len(ids), classes]}``: logits, or log-probabilities for a file
        of probabilities. Pass it to ``with_teacher_outputs``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is malformed, lacks some of ``ids``, repeats an id, has another
            class count, or holds a value that is not finite (or, for probabilities, not a
            distribution). The message names the file, and the row or id.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No teacher outputs file at {path!r}.")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npz":
        file_ids, values, kind = _read_npz(path)
    elif extension in (".csv", ".parquet"):
        file_ids, values, kind = _read_table(path, id_column, class_names)
    else:
        raise ValueError(f"{path}: unsupported format {extension!r}; use .npz, .csv or .parquet.")
    file_ids = _normalise_ids(file_ids)
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if num_classes is not None and values.shape[1] != num_classes:
        raise ValueError(
            f"{path}: {values.shape[1]} classes per row, but the dataset has {num_classes}."
        )

    bad_rows, bad_cols = np.nonzero(~np.isfinite(values))
    if len(bad_rows):
        row, col = int(bad_rows[0]), int(bad_cols[0])
        raise ValueError(
            f"{path}: {_row(path, row)} (id {file_ids[row]!r}): {kind} of class {col} is "
            f"{values[row, col]} ({len(set(bad_rows.tolist()))} row(s) not finite)."
        )
    if kind == "probabilities":
        negative = np.flatnonzero((values < 0).any(axis=1))
        sums = values.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1) > PROBABILITY_SUM_TOLERANCE)
        if len(negative) or len(off):
            row = int(negative[0]) if len(negative) else int(off[0])
            problem = "has a negative probability" if len(negative) else f"sums to {sums[row]:.6g}"
            raise ValueError(
                f"{path}: {_row(path, row)} (id {file_ids[row]!r}) {problem}, not a "
                "probability distribution."
            )
        values = np.log(np.maximum(values, PROBABILITY_FLOOR))

    position = {}
    for row, key in enumerate(file_ids):
        if key in position:
            raise ValueError(
                f"{path}: id {key!r} appears twice ({_row(path, position[key])} and "
                f"{_row(path, row)})."
            )
        position[key] = row
    wanted = _normalise_ids(ids)
    missing = [key for key in wanted if key not in position]
    if missing:
        shown = ", ".join(map(repr, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise ValueError(
            f"{path}: no outputs for {len(missing)} of the dataset's {len(wanted)} ids ({shown})."
        )
    return {"logits": values[[position[key] for key in wanted]].astype(np.float32)}


def file_teacher(num_classes, *, key=FILE_TEACHER_KEY, name="file_teacher") -> keras.Model:
    """The teacher of outputs read from a file: a model with no weights whose logits are its
    input ``key`` (``[batch, num_classes]``), for the ``Distiller`` like any teacher.

    The batch carries the rows of ``read_teacher_outputs`` under ``key`` (pass them as the
    pipeline's ``extras``); the student reads only its own inputs.
    """
    logits = keras.Input((num_classes,), name=key, dtype="float32")
    return keras.Model({key: logits}, keras.layers.Identity(name="logits")(logits), name=name)
