"""Cached teacher outputs: offline distillation at nearly the student's own speed.

:func:`cache_teacher_outputs` runs the frozen teacher once over an *ordered, unaugmented*
pipeline and stores its logits (and, optionally, named ``Feature`` outputs) as NumPy files
under a cache directory, with the labels it saw and a ``manifest.json``.
:func:`with_teacher_outputs` turns that directory into per-row arrays under the batch key
``TEACHER_OUTPUTS``, for ``kdzoo.data.from_arrays(..., extras=...)`` (or
``LoadedDataset.pipeline(..., extras=...)``), which attaches each row's outputs before
shuffling, so they travel with their example; the ``Distiller`` then skips the teacher::

    ds = kdzoo.data.from_arrays(
        arrays, ("audio",), training=True,
        extras=with_teacher_outputs(cache_dir, labels=arrays["label"]),
    )

Without tf.data (NumPy arrays, any Keras backend), :func:`arrays_with_teacher_outputs`
computes the same outputs batch by batch and returns the inputs with them attached, for
``Distiller.fit(x, y)``::

    x = arrays_with_teacher_outputs(distiller.ensemble, {"image": ..., "audio": ...})
    distiller.fit(x, y, batch_size=64)

The batch key is named in ``kdzoo.distillation.keys`` (re-exported here): pipelines carry
generic per-row arrays and never import distillation. Only ``cache_teacher_outputs``, which
reads a tf.data pipeline, needs TensorFlow.

Augmentation makes cached outputs stale: the teacher saw the un-augmented example while
the student sees an augmented one, so the soft targets no longer describe the student's
input. :func:`cache_teacher_outputs` therefore refuses an augmented (or shuffled) pipeline
unless told otherwise, and the stored labels catch a cache paired with other rows.

Layout of a cache directory (written to a temporary sibling, then renamed, so a crash
never leaves a half-written cache)::

    manifest.json        outputs, shapes, dtypes, count, the teacher's name, parameter count
                         and a SHA-256 of its weights, the input keys it read and their
                         row shapes
    labels.npy           the labels in row order (alignment check)
    inputs.npy           a 64-bit digest of each row's value of each input key the teacher
                         read, ``[rows, keys]`` (the input check)
    <output>.npy         one array per output: "logits", and each requested feature
    .kdzoo-owned         the marker that lets ``overwrite=True`` replace the folder

``overwrite=True`` replaces only a cache kdzoo wrote (or an empty folder), and only while
it holds the files above alone: any other folder, or a file a user put in the cache, is
refused before the teacher runs.

What is checked when a cache is read: the row count, the labels row by row (a cache made
from other rows or another order), that every value is finite; given the ``teacher``, that
its weights are those that made the cache (the manifest records a SHA-256 of them); and,
given the ``inputs`` (the ordered pipeline the cache was made from, rebuilt, or the
model-ready arrays it yields), that each row's input values are those the teacher read,
which catches new preprocessing or rows permuted within a class (same labels, other
inputs). Without ``inputs`` the inputs are not checked. The check is exact: numbers by
value (float32, float64 and int of one value agree, -0.0 equals 0.0, NaN equals NaN),
strings byte for byte, ragged rows by their nested values; a pipeline run on another
machine or TensorFlow version may differ in a last bit, and then fails it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil

import keras
import numpy as np

from kdzoo.backend import is_tensorflow
from kdzoo.data.routing import input_names, select_inputs
from kdzoo.distillation.keys import TEACHER_OUTPUTS
from kdzoo.distillation.teachers import TeacherEnsemble
from kdzoo.files import (
    MARKER,
    check_own_files,
    check_replaceable,
    make_sibling_tmp,
    remove_stale_tmps,
    replace_dir,
)
from kdzoo.models.layers import feature_model

MANIFEST = "manifest.json"
INPUTS = "inputs.npy"
FORMAT_VERSION = 1
KIND = "teacher-cache"  # the ownership marker's kind


def _teacher_keys(teacher):
    return list(input_names(teacher))


def cache_teacher_outputs(
    teacher,
    dataset,
    cache_dir,
    *,
    features=(),
    allow_augmented=False,
    allow_shuffled=False,
    overwrite=False,
) -> str:
    """Runs ``teacher`` (``training=False``) once over ``dataset`` and stores its outputs.

    Args:
        teacher: a built Keras model whose inputs are named by the batch keys it reads.
        dataset: a ``tf.data.Dataset`` of batches ``(features, label[, weight])`` in a
            fixed row order, e.g. a pipeline built with ``training=False`` from the same
            arrays as the student's.
        cache_dir: directory to create.
        features: names of the teacher's ``Feature`` layers to store besides ``"logits"``
            (those the Distiller's feature terms read).
        allow_augmented: accept an augmented pipeline (the outputs will be stale).
        allow_shuffled: accept a shuffled pipeline (rows will not line up unless the
            caller re-pairs them).
        overwrite: replace an existing cache. Only a cache this function wrote (or an
            empty folder) is replaced; any other folder raises
            ``kdzoo.files.NotOwnedError`` before the teacher runs.

    Returns:
        ``cache_dir``.
    """
    import tensorflow as tf

    from kdzoo.data.pipeline import is_augmented, is_shuffled

    cache_dir = os.fspath(cache_dir)
    if is_augmented(dataset) and not allow_augmented:
        raise ValueError(
            "The dataset is augmented: cached teacher outputs would describe inputs the "
            "student never sees. Cache from a pipeline built with augment=None, or pass "
            "allow_augmented=True if stale targets are intended."
        )
    if is_shuffled(dataset) and not allow_shuffled:
        raise ValueError(
            "The dataset shuffles, so cached outputs could not be matched to their rows. "
            "Cache from a pipeline built with training=False (same arrays, same order)."
        )
    if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError(
            "The dataset repeats forever (.repeat() without a count): caching would never "
            "end. Cache from the pipeline of one pass over the rows."
        )
    check_replaceable(cache_dir, KIND, "cache_dir")
    if os.path.exists(cache_dir) and not overwrite:
        raise FileExistsError(f"Teacher cache {cache_dir!r} exists; pass overwrite=True.")
    check_own_files(cache_dir, _own_files(cache_dir), "cache_dir", "overwriting")
    tap = feature_model(teacher, features)
    keys = _teacher_keys(teacher)
    taken = sorted({"labels", "inputs"} & set(tap.output))
    if taken:
        raise ValueError(
            f"The teacher's output(s) {taken} would be stored as {taken[0]}.npy, which the "
            "cache keeps for itself; rename the Feature layer."
        )

    def run(x):
        return tap({k: x[k] for k in keys}, training=False)

    if is_tensorflow():
        run = tf.function(run)
    else:  # another backend's ops take the batches' NumPy values, not tf.data's tensors
        run_on_arrays = run

        def run(x):
            return run_on_arrays({k: np.asarray(x[k]) for k in keys})

    outputs = {name: [] for name in tap.output}
    labels, digests, shapes = [], [], None
    for batch in dataset:
        x, y = batch[0], batch[1]
        if not isinstance(x, dict):
            raise TypeError("Batches must be (dict of inputs, label[, weight]).")
        missing = [k for k in keys if k not in x]
        if missing:
            raise KeyError(
                f"The dataset has no key(s) {missing} that the teacher {teacher.name!r} reads; "
                f"batch keys: {sorted(x)}."
            )
        for name, value in run(x).items():
            outputs[name].append(keras.ops.convert_to_numpy(value))
        labels.append(np.asarray(y))
        digests.append(_batch_digests(x, keys))
        shapes = shapes or _input_shapes(x, keys)
    if not labels:
        raise ValueError("The dataset is empty; nothing to cache.")
    arrays = {name: np.concatenate(parts) for name, parts in outputs.items()}
    for name, value in arrays.items():
        if not np.isfinite(value).all():
            raise ValueError(f"Teacher output {name!r} has non-finite values; not caching.")
    manifest = {
        "format_version": FORMAT_VERSION,
        "teacher": teacher.name,
        "teacher_params": int(teacher.count_params()),
        "teacher_weights_sha256": weights_digest(teacher),
        "count": int(len(np.concatenate(labels))),
        "inputs": keys,
        "input_shapes": shapes,
        "outputs": {
            n: {"shape": list(v.shape[1:]), "dtype": str(v.dtype)} for n, v in arrays.items()
        },
    }
    remove_stale_tmps(os.path.dirname(os.path.abspath(cache_dir)))
    tmp = os.fspath(make_sibling_tmp(os.path.abspath(cache_dir), "teacher-cache"))
    try:
        # In their own dtype: regression targets are floats, unlabelled ones NaN.
        np.save(os.path.join(tmp, "labels.npy"), np.concatenate(labels))
        np.save(os.path.join(tmp, INPUTS), np.concatenate(digests))
        for name, value in arrays.items():
            np.save(os.path.join(tmp, f"{name}.npy"), value)
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
        own = _own_files(cache_dir)  # a file put there meanwhile is refused, not deleted
        replace_dir(tmp, cache_dir, KIND, "cache_dir", own=own, action="overwriting")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cache_dir


def _own_files(cache_dir) -> set:
    """The names of the files a cache kdzoo wrote at ``cache_dir`` holds: the fixed ones and
    each output its manifest lists (without a readable manifest, only the fixed ones)."""
    ours = {MANIFEST, "labels.npy", INPUTS, MARKER}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        with open(os.path.join(cache_dir, MANIFEST), encoding="utf-8") as f:
            ours |= {f"{name}.npy" for name in json.load(f)["outputs"]}
    return ours


def _rows(value):
    """``value``'s rows, and their shape past the first axis (``None`` for ragged rows): a
    NumPy array, or a tf.data batch's ``tf.Tensor``, ``tf.RaggedTensor`` or
    ``tf.SparseTensor``."""
    kind = type(value).__name__
    if kind == "RaggedTensor":  # rows of other lengths: each a nested list
        return value.to_list(), None
    if kind == "SparseTensor":
        import tensorflow as tf

        value = tf.sparse.to_dense(value)
    value = np.asarray(value)
    if value.ndim == 0:
        raise ValueError(f"a scalar ({value!r}), not one value per row")
    return value, tuple(value.shape[1:])


def _canonical(value) -> np.ndarray:
    """Numbers as they compare by value: float64 (exact for float32 and for integers up to
    2**53, so float32, float64 and int of one value agree), with -0.0 as 0.0 and one NaN;
    larger integers as int64."""
    if value.dtype.kind in "iu" and value.size and np.abs(value).max() > 2**53:
        return value.astype(np.int64)
    value = value.astype(np.float64) + 0.0  # -0.0 + 0.0 is 0.0
    value[np.isnan(value)] = np.nan
    return value


def _row_digests(value) -> np.ndarray:
    """A 64-bit BLAKE2b digest of each row of ``value`` (``uint64 [rows]``): numbers by
    value (``_canonical``) with the row's shape, strings byte for byte (``str`` as UTF-8;
    NumPy ``S``/``U`` arrays drop trailing NULs), a ragged row by its nested values."""
    rows, shape = _rows(value)
    if shape is None:
        digests = [hashlib.blake2b(repr(row).encode(), digest_size=8) for row in rows]
        return np.array([int.from_bytes(d.digest(), "little") for d in digests], np.uint64)
    strings = rows.dtype.kind in "OSU"
    if not strings:
        rows = _canonical(rows)
    header = f"{'str' if strings else rows.dtype.name}{shape};".encode()
    out = np.empty(len(rows), np.uint64)
    for i, row in enumerate(rows):
        digest = hashlib.blake2b(header, digest_size=8)
        if strings:  # np.ravel would turn bytes into NumPy S, which drops trailing NULs
            for item in row.ravel().tolist() if isinstance(row, np.ndarray) else [row]:
                data = item if isinstance(item, bytes) else str(item).encode("utf-8")
                digest.update(len(data).to_bytes(8, "little") + data)
        else:
            digest.update(np.ascontiguousarray(row).tobytes())
        out[i] = int.from_bytes(digest.digest(), "little")
    return out


def _input_shapes(x, keys) -> dict:
    """``{key: row shape}`` of a batch (``None``: ragged), for the manifest."""
    out = {}
    for key in keys:
        shape = _rows(x[key])[1]
        out[key] = None if shape is None else list(shape)
    return out


def _batch_digests(x, keys, where="the dataset") -> np.ndarray:
    """``uint64 [rows, keys]``: each row's digest of each input ``key`` of a batch."""
    columns = []
    for key in keys:
        try:
            columns.append(_row_digests(x[key]))
        except ValueError as err:
            raise ValueError(f"{where}: input {key!r} is {err}.") from None
    lengths = {key: len(c) for key, c in zip(keys, columns, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{where}: the inputs have other numbers of rows: {lengths}.")
    return np.stack(columns, axis=1)


def _input_digests(inputs, keys, cache, count) -> np.ndarray:
    """The digests of ``inputs`` (a pipeline of ``(features, label[, weight])`` batches in
    row order, or ``{key: array}``) under the cache's input ``keys``; a pipeline is read
    only as far as ``count`` rows and one more batch."""
    if isinstance(inputs, dict):
        missing = [k for k in keys if k not in inputs]
        if missing:
            raise KeyError(
                f"`inputs` has no key(s) {missing} that made teacher cache {cache!r}; it has "
                f"{sorted(inputs)}."
            )
        return _batch_digests(inputs, keys, "`inputs`")
    import tensorflow as tf

    from kdzoo.data.pipeline import is_augmented, is_shuffled

    if not isinstance(inputs, tf.data.Dataset):
        raise TypeError(
            "`inputs` must be the tf.data pipeline the cache was made from (rebuilt) or a "
            f"dict {{key: array}} of the model-ready values; got {type(inputs).__name__}."
        )
    refused = (
        "is augmented" if is_augmented(inputs) else "shuffles" if is_shuffled(inputs) else None
    )
    if refused:
        raise ValueError(
            f"`inputs` {refused}, so its rows cannot be matched to the cache's; pass the "
            "pipeline the cache was made from (training=False, augment=None: same arrays, "
            "same order)."
        )
    parts, rows = [], 0
    for batch in inputs:
        x = batch[0]
        missing = [k for k in keys if k not in x]
        if missing:
            raise KeyError(
                f"`inputs` batches have no key(s) {missing} that made teacher cache "
                f"{cache!r}; batch keys: {sorted(x)}."
            )
        parts.append(_batch_digests(x, keys, "`inputs`"))
        rows += len(parts[-1])
        if rows > count:  # more rows than the cache: enough to say so (and ends .repeat())
            break
    return np.concatenate(parts) if parts else np.zeros((0, len(keys)), np.uint64)


def _recorded(manifest, key, cache, what, given):
    """``manifest[key]``, or a ``ValueError``: a cache of an older kdzoo records no such
    digest, so it cannot be checked against the ``given`` teacher or inputs."""
    value = manifest.get(key)
    if value is None:
        raise ValueError(
            f"Teacher cache {cache!r} records no digest of {what} (written by an older "
            f"kdzoo), so it cannot be checked against {given}; make it again."
        )
    return value


def _check_inputs(manifest, cache, inputs) -> None:
    keys = _recorded(manifest, "inputs", cache, "its inputs", "these inputs")
    path = os.path.join(cache, INPUTS)
    if not os.path.exists(path):
        raise ValueError(f"Teacher cache {cache!r} is missing {INPUTS}; make it again.")
    recorded = np.load(path)
    if isinstance(inputs, dict):  # a shape the teacher did not read says more than digests
        shapes = manifest.get("input_shapes") or {}
        for key in keys:
            want, value = shapes.get(key), inputs.get(key)
            got = None if value is None else list(np.shape(value)[1:])
            if want is not None and got is not None and got != want:
                raise ValueError(
                    f"`inputs`[{key!r}] has rows of shape {tuple(got)}; the teacher of cache "
                    f"{cache!r} read {tuple(want)}: pass the model-ready values (the "
                    "pipeline's features), not the raw arrays."
                )
    got = _input_digests(inputs, keys, cache, len(recorded))
    if len(got) != len(recorded):
        more = "at least " if len(got) > len(recorded) else ""  # read no further
        raise ValueError(
            f"Teacher cache {cache!r} holds {len(recorded)} rows but `inputs` has {more}{len(got)}."
        )
    differ = np.argwhere(got != recorded)
    if len(differ):
        row, column = (int(i) for i in differ[0])
        rows = len(np.unique(differ[:, 0]))
        raise ValueError(
            f"Teacher cache {cache!r} was made from other inputs: {keys[column]!r} of row "
            f"{row} is not the value the teacher read ({rows} of {len(got)} rows differ): new "
            "preprocessing, other rows with the same labels, or a pipeline computed on "
            "another machine or TensorFlow version (the check is exact). Make the cache "
            "again from these inputs."
        )


def weights_digest(model) -> str:
    """A SHA-256 of ``model``'s weights (every variable's values, in order, and shapes)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{weight.path}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def load_teacher_outputs(cache, labels=None, teacher=None, inputs=None) -> dict:
    """The cached outputs as ``{name: array}`` (memory-mapped), in row order.

    Args:
        cache: a cache directory, or a dict of arrays (returned as is after checks).
        labels: the rows' labels; if given they must equal the labels the teacher saw,
            which catches a cache paired with other rows or another order.
        teacher: the teacher the outputs stand for; if given (with a cache directory), its
            weights must be those that made the cache, which catches a cache of another
            teacher or of the same one before more training.
        inputs: the teacher's inputs, as the pipeline the cache was made from (rebuilt:
            ordered, ``(features, label[, weight])`` batches) or ``{key: array}`` of the
            model-ready values it yields; if given (with a cache directory), each row's
            value of each key the teacher read must be the one it read, which catches a
            cache of other preprocessing or of rows permuted within a class.
    """
    if isinstance(cache, dict):
        if inputs is not None:
            raise ValueError(
                "`inputs` checks a cache directory against its recorded input digests; "
                "outputs given as arrays record none."
            )
        outputs = {k: np.asarray(v) for k, v in cache.items()}
        cached_labels = None
    else:
        cache = os.fspath(cache)
        path = os.path.join(cache, MANIFEST)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"No teacher cache at {cache!r} (missing {MANIFEST}); create it with "
                "kdzoo.distillation.cache_teacher_outputs."
            )
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: unsupported format_version {manifest.get('format_version')}."
            )
        if teacher is not None:
            _check_teacher(manifest, teacher, cache)
        if inputs is not None:
            _check_inputs(manifest, cache, inputs)
        outputs = {
            name: np.load(os.path.join(cache, f"{name}.npy"), mmap_mode="r")
            for name in manifest["outputs"]
        }
        cached_labels = np.load(os.path.join(cache, "labels.npy"))
    where = f"Teacher cache {cache!r}" if isinstance(cache, str) else "Teacher outputs (arrays)"
    for name, value in outputs.items():
        if np.issubdtype(value.dtype, np.number) and not np.isfinite(value).all():
            row = int(np.flatnonzero(~np.isfinite(value).reshape(len(value), -1).all(axis=1))[0])
            raise ValueError(f"{where}: {name!r} is not finite at row {row} ({value[row]}).")
    counts = {name: len(v) for name, v in outputs.items()}
    if labels is not None:
        labels = np.asarray(labels)
        if set(counts.values()) != {len(labels)}:
            raise ValueError(
                f"Teacher cache {cache if isinstance(cache, str) else '(arrays)'} holds "
                f"{counts} rows but the dataset has {len(labels)}."
            )
        if cached_labels is not None and cached_labels.shape != labels.shape:
            raise ValueError(
                f"Teacher cache {cache!r} holds labels of shape {cached_labels.shape[1:]} per "
                f"row; the dataset's are {labels.shape[1:]}."
            )
        differ = _differing_rows(cached_labels, labels) if cached_labels is not None else []
        if len(differ):
            row = int(differ[0])
            raise ValueError(
                f"Teacher cache {cache!r} was made from other rows or another order: label "
                f"{cached_labels[row]} at row {row}, the dataset has {labels[row]}."
            )
    return {name: np.asarray(v) for name, v in outputs.items()}


def _check_teacher(manifest, teacher, cache) -> None:
    what = "its teacher's weights"
    recorded = _recorded(manifest, "teacher_weights_sha256", cache, what, "this teacher")
    if recorded != weights_digest(teacher):
        raise ValueError(
            f"Teacher cache {cache!r} was made by other weights ({manifest.get('teacher')!r}, "
            f"{manifest.get('teacher_params')} parameters) than the teacher given "
            f"({teacher.name!r}, {teacher.count_params()}): another teacher, or this one "
            "trained further. Make the cache again from this teacher."
        )


def _differing_rows(cached, labels):
    """The rows where two label arrays differ (any column; NaN, an unlabelled row's mark,
    equals NaN)."""
    same = cached == labels
    if np.issubdtype(cached.dtype, np.floating) and np.issubdtype(labels.dtype, np.floating):
        same |= np.isnan(cached) & np.isnan(labels)
    return np.flatnonzero(~np.asarray(same).reshape(len(labels), -1).all(axis=1))


def with_teacher_outputs(cache, labels=None, teacher=None, inputs=None) -> dict:
    """Cached teacher outputs as pipeline extras: ``{TEACHER_OUTPUTS: {name: array}}``.

    Pass the result as ``kdzoo.data.from_arrays(..., extras=...)`` (or
    ``LoadedDataset.pipeline(split, extras=...)``): each row's outputs then ride in its
    batch under ``features["teacher_outputs"]``, shuffled with their rows, and the
    ``Distiller`` skips the teacher's forward pass.

    Args:
        cache: a cache directory written by ``cache_teacher_outputs``, or a dict of arrays.
        labels: the rows' labels, in the order the pipeline reads them; if given they must
            equal the labels the teacher saw (see ``load_teacher_outputs``).
        teacher: the teacher the outputs stand for; if given, its weights must be those
            that made the cache (see ``load_teacher_outputs``).
        inputs: the ordered pipeline the cache was made from (rebuilt), or the model-ready
            ``{key: array}`` it yields; if given, each row's inputs must be those the
            teacher read (see ``load_teacher_outputs``).

    Returns:
        ``{"teacher_outputs": {name: array}}``, one row per example.
    """
    outputs = load_teacher_outputs(cache, labels=labels, teacher=teacher, inputs=inputs)
    return {TEACHER_OUTPUTS: outputs}


def arrays_with_teacher_outputs(teacher, x, *, features=(), batch_size=32) -> dict:
    """``x`` with the teachers' outputs under ``x["teacher_outputs"]``, as NumPy arrays.

    The counterpart of ``cache_teacher_outputs`` + ``with_teacher_outputs`` for NumPy inputs,
    on any Keras backend and without TensorFlow: the teachers run once (``training=False``,
    ``batch_size`` rows at a time, through ``predict``), and their outputs are keyed as the
    ``Distiller`` reads them (``TeacherEnsemble.raw_outputs``). ``Distiller.fit(x, y)`` then
    slices them with their rows, shuffled or not, and skips the teachers' forward passes.

    Args:
        teacher: a built ``keras.Model`` (outputs ``"logits"`` and the named ``features``),
            or a ``TeacherEnsemble``, e.g. ``distiller.ensemble``: each of its teachers'
            logits and the features its Distiller's terms read, under
            ``"<teacher name>/<output>"`` when there are several teachers.
        x: ``{key: array}``, one row per example, holding the keys the teachers read (and
            any others, e.g. the student's, which are passed through).
        features: with a model, the names of its ``Feature`` layers to add to
            ``"logits"`` (those the feature terms read). Defaults to none.
        batch_size: rows per teacher call. Defaults to 32.

    Returns:
        A new dict: ``x``'s entries and ``"teacher_outputs"``, ``{name: array}`` with one
        row per example.

    Raises:
        ValueError: ``x`` is not a dict, already holds ``"teacher_outputs"``, or a teacher
            output is not finite; ``features`` given with an ensemble, or not features of
            the model.
        TypeError: ``teacher`` is neither a built model nor an ensemble.
        kdzoo.data.MissingInputError: ``x`` lacks a key a teacher reads.

    Example:

    >>> x = arrays_with_teacher_outputs(teacher, {"image": images, "audio": audio})
    >>> distiller.fit(x, labels, batch_size=64)  # the teacher does not run again
    """
    if not isinstance(x, dict):
        raise ValueError(
            f"`x` must be a dict {{batch key: array}} naming the teachers' inputs; got "
            f"{type(x).__name__}."
        )
    if TEACHER_OUTPUTS in x:
        raise ValueError(
            f"`x` already holds {TEACHER_OUTPUTS!r}; pass the inputs without it to compute "
            "them again."
        )
    if isinstance(teacher, TeacherEnsemble):
        if features:
            raise ValueError(
                "`features` applies to a single model; a TeacherEnsemble outputs the features "
                "its Distiller's terms read (pass `distiller.ensemble`)."
            )
        taps = teacher.output_taps()
    elif isinstance(teacher, keras.Model) and teacher.built:
        taps = [("", feature_model(teacher, features), tuple(_teacher_keys(teacher)))]
    else:
        raise TypeError(
            f"`teacher` must be a built keras.Model or a TeacherEnsemble; got {teacher!r}."
        )
    outputs = {}
    for prefix, tap, keys in taps:
        reader = f"teacher {prefix[:-1]!r}" if prefix else "teacher"
        inputs = select_inputs(x, keys, reader)
        values = tap.predict(inputs, batch_size=batch_size, verbose=0)
        for name, value in values.items():
            value = np.asarray(value)
            if not np.isfinite(value).all():
                raise ValueError(
                    f"Teacher output {prefix + name!r} has non-finite values; not attaching it."
                )
            outputs[prefix + name] = value
    return {**x, TEACHER_OUTPUTS: outputs}
