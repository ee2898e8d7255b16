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
  order of ``class_names`` when given) or, given ``class_names``, the class name (names
  first: with digit class names, ``logit_10`` is the class named "10", not index 10).

Probabilities become log-probabilities, which stand in for logits exactly (``softmax(log p)
= p``). They must be non-negative and sum to 1 per row (within 1e-3); each is floored at
``PROBABILITY_FLOOR`` before the log, so that a class given probability 0 gets a large
finite negative logit (log 1e-7 ≈ -16.1) rather than ``-inf``.

For a binary or multi-label task (``task_kind``) the columns are each label's own
(sigmoid) outputs: probabilities in [0, 1] become log-odds, ``log p - log(1 - p)``, and do
not sum to 1. A binary task also takes a two-class file (``logit_0, logit_1`` or
``prob_0, prob_1``, negative then positive), which becomes the positive class's logit
``z_1 - z_0`` (or ``log p_1 - log p_0``): ``sigmoid`` of it is the softmax's ``p_1``. A
regression task's outputs are values, never probabilities.

Checked, with errors (``TeacherOutputsError``) that name the file and the row (CSV: the
line) or id: the format, the id column and each id (empty ids are refused), duplicate ids,
ids of the dataset that the file lacks, the class count, and finiteness in float32 (a value
beyond float32's range would turn into ``inf``). Ids in the file that the dataset does not
ask for are ignored (one file may serve every split). Logit columns that look like
probabilities (every row in [0, 1], summing to 1) are trained on as they are, with a
warning: name such columns ``prob_<k>``.
"""

from __future__ import annotations

import logging
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
#: Tasks whose outputs are each label's own sigmoid (``kdzoo.tasks.Task.kind``).
SIGMOID_TASKS = ("binary", "multi_label")
_FLOAT32_MAX = float(np.finfo(np.float32).max)

log = logging.getLogger("kdzoo")


class TeacherOutputsError(ValueError):
    """A file of teacher outputs that cannot be used as it is: its format, an id, a value
    or the class count. The message names the file and the row (CSV: the line) or id."""


def _is_csv(path) -> bool:
    return os.path.splitext(path)[1].lower() == ".csv"


def _read_table(path, id_column, class_names):
    """``(ids, values, kind)`` of a CSV or Parquet file."""
    try:
        frame = pd.read_csv(path) if _is_csv(path) else pd.read_parquet(path)
    except pd.errors.EmptyDataError as err:
        raise TeacherOutputsError(f"{path}: the file is empty (no header, no rows).") from err
    if frame.empty:
        raise TeacherOutputsError(f"{path}: no rows (only the header).")
    if id_column not in frame.columns:
        raise TeacherOutputsError(
            f"{path}: no id column {id_column!r} (columns: {', '.join(map(str, frame.columns))}"
            f"); the ids go in a column named {id_column!r}, whatever the data's id column is "
            "named (`id_column=` names another)."
        )
    found = {}
    for prefix, kind in _KINDS.items():
        columns = [c for c in frame.columns if str(c).startswith(prefix + "_")]
        if columns:
            found[kind] = (prefix, columns)
    if len(found) != 1:
        raise TeacherOutputsError(
            f"{path}: expected columns logit_<class> or prob_<class> (one kind); "
            f"found {sorted(found) or 'neither'}."
        )
    ((kind, (prefix, columns)),) = found.items()
    keys = [str(c)[len(prefix) + 1 :] for c in columns]
    names = None if class_names is None else [str(n) for n in class_names]
    if names is not None and sorted(keys) == sorted(names):
        # By class name, first: with digit names ("0", "1", "10", "2"...) a column
        # logit_10 is the class named "10", whatever its index.
        wanted = names
    else:  # class indices, in the dataset's class order (class_names[k] is index k)
        wanted = [str(k) for k in range(len(names) if names is not None else len(keys))]
    if sorted(keys) != sorted(wanted):
        by_name = "" if names is None else f" by name {prefix}_{{{', '.join(names)}}} or"
        raise TeacherOutputsError(
            f"{path}: class columns {prefix}_{{{', '.join(keys)}}} do not match the "
            f"dataset's {len(wanted)} classes,{by_name} by index {prefix}_{{{', '.join(wanted)}}}."
        )
    ordered = [f"{prefix}_{k}" for k in wanted]
    values = frame[ordered]
    for column in ordered:
        if not pd.api.types.is_numeric_dtype(values[column]):
            bad = pd.to_numeric(values[column], errors="coerce").isna() & values[column].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise TeacherOutputsError(
                f"{path}: {_row(path, row)}: column {column!r} is not a number: "
                f"{values[column].iloc[row]!r}."
            )
    empty = np.flatnonzero(frame[id_column].isna().to_numpy())
    if len(empty):
        raise TeacherOutputsError(
            f"{path}: {_row(path, int(empty[0]))}: the id ({id_column!r}) is empty "
            f"({len(empty)} row(s) without an id)."
        )
    return frame[id_column].to_numpy(), values.to_numpy(np.float64), kind


def _read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        kinds = [k for k in ("logits", "probabilities") if k in names]
        if "ids" not in names or len(kinds) != 1:
            raise TeacherOutputsError(
                f"{path}: expected arrays 'ids' and one of 'logits' / 'probabilities'; "
                f"found {sorted(names)}."
            )
        try:
            values = np.asarray(archive[kinds[0]], np.float64)
            ids = np.asarray(archive["ids"])
        except ValueError as err:  # an object array: loading it would unpickle
            raise TeacherOutputsError(
                f"{path}: holds an object array, which kdzoo does not unpickle; save ids as "
                "strings or integers (np.asarray(ids, dtype=str)) and outputs as floats."
            ) from err
    if ids.ndim != 1 or values.ndim != 2 or len(values) != len(ids):
        raise TeacherOutputsError(
            f"{path}: '{kinds[0]}' must be [rows, classes] with one row per id; got shape "
            f"{values.shape} for ids of shape {ids.shape} (one id per row, 1-D)."
        )
    if not len(ids):
        raise TeacherOutputsError(f"{path}: no rows ('ids' is empty).")
    return ids, values, kinds[0]


def _row(path, row):
    # A CSV's data row r sits on line r + 2 (line 1 is the header).
    return f"line {row + 2}" if _is_csv(path) else f"row {row}"


def _normalise_ids(ids, where):
    """Ids as comparable Python values (int or str), whatever the file's dtype; ``where``
    names them in errors (the file, or the dataset)."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return [int(i) for i in ids]
    if ids.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(ids) | (ids != np.round(ids)))
        if len(bad):
            raise TeacherOutputsError(
                f"{where}: ids must be integers or strings; row {int(bad[0])} holds "
                f"{ids[bad[0]]} ({len(bad)} such)."
            )
        return [int(i) for i in ids]
    return [i.decode("utf-8") if isinstance(i, bytes) else str(i) for i in ids.tolist()]


def _to_logits(path, values, kind, file_ids, task_kind, num_classes):
    """The file's values as the logits the task's teacher would output (module docstring)."""
    if task_kind == "regression":
        if kind == "probabilities":
            raise TeacherOutputsError(
                f"{path}: a regression task's teacher outputs are values (logit_<k> columns "
                "or a 'logits' array), not probabilities."
            )
        return values
    sigmoid = task_kind in SIGMOID_TASKS
    two_class = task_kind == "binary" and num_classes == 1 and values.shape[1] == 2
    if kind == "probabilities":
        negative = np.flatnonzero((values < 0).any(axis=1) | (sigmoid & (values > 1).any(axis=1)))
        sums = values.sum(axis=1)
        off = []
        if not sigmoid or two_class:
            off = np.flatnonzero(np.abs(sums - 1) > PROBABILITY_SUM_TOLERANCE)
        if len(negative) or len(off):
            row = int(negative[0]) if len(negative) else int(off[0])
            if len(negative):
                what = (
                    "a negative probability" if (values[row] < 0).any() else "a probability above 1"
                )
                problem = f"has {what} ({_shown(values[row])})"
            else:
                problem = f"sums to {sums[row]:.6g}, not a probability distribution"
            raise TeacherOutputsError(
                f"{path}: {_row(path, row)} (id {file_ids[row]!r}) {problem}."
            )
        if sigmoid and not two_class:  # each label's own probability: its log-odds
            floored = np.clip(values, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
            return np.log(floored) - np.log1p(-floored)
        values = np.log(np.maximum(values, PROBABILITY_FLOOR))
    elif not sigmoid and values.shape[1] > 1:
        rows = np.all((values >= 0) & (values <= 1), axis=1) & (
            np.abs(values.sum(axis=1) - 1) <= PROBABILITY_SUM_TOLERANCE
        )
        if rows.all():
            log.warning(
                "%s: every row of its logit columns lies in [0, 1] and sums to 1: these look "
                "like probabilities, which kdzoo would read as logits (nearly uniform soft "
                "targets). If they are, name the columns prob_<k> (or save 'probabilities').",
                path,
            )
    if two_class:  # softmax over [negative, positive] -> the positive class's logit
        return values[:, 1:] - values[:, :1]
    return values


def _shown(row) -> str:
    return ", ".join(f"{v:.6g}" for v in row[:8]) + (", ..." if len(row) > 8 else "")


def read_teacher_outputs(
    path, ids, *, num_classes=None, class_names=None, id_column="id", task_kind=None
) -> dict:
    """A teacher's outputs for the examples ``ids``, read from a file.

    Args:
        path: an ``.npz``, ``.csv`` or ``.parquet`` file (see the module docstring).
        ids: the dataset's example ids, in the order its pipeline reads the rows.
        num_classes: the dataset's class count; checked against the file. Defaults to
            ``len(class_names)`` when those are given.
        class_names: the dataset's class names; CSV/Parquet columns may then be named by
            class (``logit_<name>``) and are put in this order.
        id_column: the id column of a CSV or Parquet file. Defaults to ``"id"``.
        task_kind: the task's ``kdzoo.tasks.Task.kind``; None is single-label
            classification. ``"binary"`` and ``"multi_label"`` read probabilities as each
            label's own (to log-odds), ``"regression"`` refuses them (module docstring).

    Returns:
        ``{"logits": float32 [len(ids), classes]}``: logits, or log-probabilities for a file
        of probabilities. Pass it to ``with_teacher_outputs``.

    Raises:
        FileNotFoundError: no file at ``path``.
        TeacherOutputsError: (a ``ValueError``) the file is malformed, lacks some of
            ``ids``, repeats an id or leaves one empty, has another class count, or holds a
            value that is not finite in float32 (or, for probabilities, not a
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
        raise TeacherOutputsError(
            f"{path}: unsupported format {extension!r}; use .npz, .csv or .parquet."
        )
    file_ids = _normalise_ids(file_ids, path)
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    two_class = task_kind == "binary" and num_classes == 1 and values.shape[1] == 2
    if num_classes is not None and values.shape[1] != num_classes and not two_class:
        raise TeacherOutputsError(
            f"{path}: {values.shape[1]} classes per row, but the dataset has {num_classes}."
        )

    # float32 is what trains: a finite float64 beyond its range would become inf there.
    bad_rows, bad_cols = np.nonzero(~np.isfinite(values) | (np.abs(values) > _FLOAT32_MAX))
    if len(bad_rows):
        row, col = int(bad_rows[0]), int(bad_cols[0])
        value = values[row, col]
        beyond = " (beyond float32's range)" if np.isfinite(value) else ""
        raise TeacherOutputsError(
            f"{path}: {_row(path, row)} (id {file_ids[row]!r}): {kind} of class {col} is "
            f"{value}{beyond} ({len(set(bad_rows.tolist()))} row(s) not finite in float32)."
        )
    values = _to_logits(path, values, kind, file_ids, task_kind, num_classes)

    position = {}
    for row, key in enumerate(file_ids):
        if key in position:
            raise TeacherOutputsError(
                f"{path}: id {key!r} appears twice ({_row(path, position[key])} and "
                f"{_row(path, row)})."
            )
        position[key] = row
    wanted = _normalise_ids(ids, "the dataset's ids")
    missing = [key for key in wanted if key not in position]
    if missing:
        shown = ", ".join(map(repr, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise TeacherOutputsError(
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
