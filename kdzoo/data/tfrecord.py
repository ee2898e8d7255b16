"""Sharded TFRecord files of multimodal examples, written from NumPy and read as ``tf.data``.

``write_tfrecords(arrays, prefix, num_shards)`` turns a dict of NumPy arrays (one row per
example; keys such as ``"image"``, ``"audio"``, ``"text"``, ``"label"``) into
``tf.train.Example`` records in files ``<prefix>-00000-of-00004.tfrecord`` ..., plus a JSON
spec ``<prefix>.spec.json`` (keys, dtypes, per-example shapes, counts). ``read_tfrecords``
returns a ``tf.data.Dataset`` of dicts with the same keys, dtypes and static per-example
shapes.

How each value is stored (chosen so that every value round-trips bit-exactly):

- ``raw``: numeric arrays (float16/32/64, int8/16/32/64, uint8/16, bool), e.g. an image
  ``[n, H, W, C]`` or a waveform ``[n, samples]``. Each example's values are stored as one
  little-endian byte string (``ndarray.tobytes``) and restored with ``tf.io.decode_raw``
  plus a reshape to the shape in the spec. This is a plain memory copy, so every bit is kept:
  ``-0.0``, subnormals such as ``1e-38``, NaN payloads, ``inf``. (``float_list`` would also
  carry float32 exactly, but not float64, and TF may flush subnormals in float ops; raw bytes
  need no argument.) ``uint32``/``uint64`` arrays are refused: ``decode_raw`` cannot
  produce them; cast first.
- ``int64``: integer scalars per example (labels), as ``int64_list`` so that other tools
  can read them, cast back to the written dtype (int8..int64, uint8..uint32; exact).
- ``bytes``: byte strings (``dtype=object`` holding ``bytes``, or NumPy ``S``), e.g. encoded
  PNG/JPEG images, as ``bytes_list``; read back as ``tf.string``. Pass binary data as
  ``dtype=object``: NumPy's ``S`` dtype itself drops trailing NUL bytes.
- ``utf8``: text (NumPy ``U`` or ``object`` holding ``str``), UTF-8 encoded in
  ``bytes_list``; read back as ``tf.string`` holding the UTF-8 bytes (``.decode("utf-8")``
  gives the original ``str``).

Bytes and text may also have a fixed per-example shape (e.g. ``[n, 3]`` strings).

Shard ``i`` holds a contiguous block of examples (``np.array_split`` order), so reading the
shards one after another (the default, ``num_parallel_reads=None``) gives back the written
order. Each shard is written under a hidden temporary name and renamed into place once all
are written, then the spec is written through ``kdzoo.files.atomic_gfile``, so a crash
never leaves a partial file under a final name. (``tf.io.TFRecordWriter`` writes to a path,
not to an open file, hence the shards' own temporaries.) ``overwrite=True`` first renames
the previous write's spec and shards aside and puts them back if anything fails, so a
prefix never shows its spec over a mix of old and new shards; files under the prefix that
no kdzoo spec lists are never replaced (``kdzoo.files.NotOwnedError``).

The spec lists each shard's record count, and reading checks it: a shard that ends early
or holds more records (truncated, or copied from another write) is an error naming it.

``read_tfrecords`` builds from a dataset of file names interleaved into
``tf.data.TFRecordDataset``, so ``tf.data.experimental.AutoShardPolicy.FILE`` (the
tf.distribute default for multi-worker input) gives each worker whole files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from kdzoo.files import NotOwnedError, atomic_gfile

SPEC_SUFFIX = ".spec.json"
FORMAT = "kdzoo-tfrecord"
VERSION = 1
_SHARD = re.compile(r"^(?P<prefix>.*)-(?P<index>\d{5})-of-(?P<total>\d{5})\.tfrecord$")
_RAW_DTYPES = (
    "float16 float32 float64 int8 int16 int32 int64 uint8 uint16 bool".split()  # decode_raw
)
_INT64_DTYPES = "int8 int16 int32 int64 uint8 uint16 uint32".split()
_COMPRESSIONS = (None, "GZIP", "ZLIB")
#: The dtypes each encoding can restore (``read_spec`` refuses any other pairing).
_ENCODING_DTYPES = {
    "raw": _RAW_DTYPES,
    "int64": _INT64_DTYPES,
    "bytes": ("bytes",),
    "utf8": ("str",),
}


def shard_path(path_prefix, index: int, num_shards: int) -> str:
    """The file name of shard ``index`` of ``num_shards``: ``<prefix>-00002-of-00004.tfrecord``."""
    return f"{os.fspath(path_prefix)}-{index:05d}-of-{num_shards:05d}.tfrecord"


def spec_path(path_prefix) -> str:
    """The JSON spec written beside the shards: ``<prefix>.spec.json``."""
    return f"{os.fspath(path_prefix)}{SPEC_SUFFIX}"


# ----------------------------------------------------------------------------------------
# Writing


def _as_array(key, value) -> np.ndarray:
    if isinstance(value, (list, tuple)) and not value:
        raise ValueError(
            f"write_tfrecords: '{key}' is an empty list, which has no dtype; pass a NumPy "
            "array of the dtype to store, e.g. np.array([], dtype=str)."
        )
    if isinstance(value, (list, tuple)) and isinstance(value[0], (bytes, str)):
        return np.array(value, dtype=object)  # not "S": NumPy would drop trailing NULs
    return np.asarray(value)


def _feature_spec(key: str, array: np.ndarray) -> dict:
    """How ``array`` (all examples of ``key``) is stored: encoding, dtype, per-example shape."""
    if array.ndim == 0:
        raise ValueError(f"'{key}': expected one row per example, got a scalar.")
    shape = [int(d) for d in array.shape[1:]]
    kind = array.dtype.kind
    if kind == "U":
        return {"encoding": "utf8", "dtype": "str", "shape": shape}
    if kind == "S":
        return {"encoding": "bytes", "dtype": "bytes", "shape": shape}
    if kind == "O":
        types = {type(v) for v in array.ravel()}
        if types and types <= {bytes}:
            return {"encoding": "bytes", "dtype": "bytes", "shape": shape}
        if types and types <= {str}:
            return {"encoding": "utf8", "dtype": "str", "shape": shape}
        names = ", ".join(sorted(t.__name__ for t in types)) or "nothing"
        raise TypeError(
            f"'{key}': an object array must hold only bytes (encoded images) or only str "
            f"(text); it holds {names}."
        )
    name = array.dtype.name
    if kind in "iu" and not shape and name in _INT64_DTYPES:
        return {"encoding": "int64", "dtype": name, "shape": shape}
    if name in _RAW_DTYPES:
        return {"encoding": "raw", "dtype": name, "shape": shape}
    raise TypeError(
        f"'{key}': dtype {array.dtype} is not supported; use one of {', '.join(_RAW_DTYPES)} "
        "(uint32 is allowed for scalar labels only), bytes or str."
    )


def _bytes_feature(values) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _encode(spec: dict, row) -> tf.train.Feature:
    encoding = spec["encoding"]
    if encoding == "raw":
        little = np.ascontiguousarray(row, dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
        return _bytes_feature([little.tobytes()])
    if encoding == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row)]))
    flat = np.asarray(row, dtype=object).ravel().tolist()
    if encoding == "utf8":
        return _bytes_feature([v.encode("utf-8") for v in flat])
    return _bytes_feature([bytes(v) for v in flat])


def _encoded(key: str, spec: dict, values: np.ndarray, row) -> tf.train.Feature:
    try:
        return _encode(spec, values[row])
    except UnicodeEncodeError as err:  # e.g. a lone surrogate in a str
        raise ValueError(f"write_tfrecords: '{key}', row {int(row)}: {err}.") from err


def _commit(previous: list[str], temps: list[str], finals: list[str], spec_file: str, text):
    """Moves the new shards (written to ``temps``) into place and writes their spec.

    The previous write's files (spec first) are first renamed aside, to hidden ``.old``
    names, so that no moment shows its spec over a mix of old and new shards; if anything
    fails, the new files are removed and the old ones renamed back before the error is
    raised. A crash in between leaves no spec under the prefix (reading it is an error that
    says so) and the previous files under their ``.old`` names.
    """
    moved, placed = [], []
    try:
        for old in previous:
            backup = _temp_name(old, "old")
            tf.io.gfile.rename(old, backup)
            moved.append((backup, old))
        for temp, final in zip(temps, finals, strict=True):
            tf.io.gfile.rename(temp, final)
            placed.append(final)
        with atomic_gfile(spec_file, "w") as f:
            f.write(text)
    except BaseException:
        for final in placed:
            _remove_quietly(final)
        for backup, old in reversed(moved):
            with contextlib.suppress(tf.errors.OpError):
                tf.io.gfile.rename(backup, old, overwrite=True)
        raise
    for backup, _ in moved:
        _remove_quietly(backup)


def _remove_quietly(path: str) -> None:
    """Best-effort cleanup of a temporary file (an error here must not hide the first one)."""
    with contextlib.suppress(tf.errors.OpError):
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)


def _temp_name(final: str, suffix: str = "tmp") -> str:
    folder, name = os.path.split(final)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.{suffix}")


def _glob_escape(text: str) -> str:
    """``text`` as a ``tf.io.gfile.glob`` pattern that matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _path_key(path: str) -> str:
    """``path`` in one spelling (glob gives ``./a-...`` for the prefix ``a``); URLs as is."""
    return path if "://" in path else os.path.normpath(path)


def _previous_write(path_prefix: str) -> list[str]:
    """The files of an earlier ``write_tfrecords`` with this prefix: its spec first, then the
    shards the spec lists.

    Raises:
        kdzoo.files.NotOwnedError: a file under this prefix that kdzoo did not write: a spec
            that is not a kdzoo spec, or a shard-named file that no spec lists.
    """
    spec_file = spec_path(path_prefix)
    owned = []
    if tf.io.gfile.exists(spec_file):
        try:
            spec = read_spec(spec_file)
        except ValueError as err:
            raise NotOwnedError(
                f"write_tfrecords: {spec_file} is not a spec that kdzoo wrote ({err}); kdzoo "
                "does not replace it: move it, or use another prefix."
            ) from err
        folder = os.path.dirname(path_prefix)
        owned = [spec_file] + [
            path
            for path in (os.path.join(folder, s["file"]) for s in spec.get("shards", []))
            if tf.io.gfile.exists(path)
        ]
    shards = tf.io.gfile.glob(f"{_glob_escape(path_prefix)}-?????-of-?????.tfrecord")
    listed = {_path_key(path) for path in owned}
    foreign = sorted(path for path in shards if _path_key(path) not in listed)
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise NotOwnedError(
            f"write_tfrecords: {foreign[0]}{more} has the name of a shard of prefix "
            f"{path_prefix!r}, but no kdzoo spec ({spec_file}) lists it; kdzoo does not "
            "replace files it did not write: move them, or use another prefix."
        )
    return owned


def write_tfrecords(
    arrays: Mapping[str, object],
    path_prefix,
    num_shards: int = 1,
    *,
    compression: str | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Writes one ``tf.train.Example`` per row of ``arrays`` into ``num_shards`` TFRecord files.

    Args:
        arrays: Feature name -> array with one row per example, all of the same length, e.g.
            ``{"image": uint8 [n, 28, 28, 1] or encoded PNG bytes (object) [n],
            "audio": float32 [n, samples], "text": str [n], "label": int32 [n]}``. The module
            docstring says how each kind is stored.
        path_prefix: Shards are ``<prefix>-00000-of-0000N.tfrecord``; the spec is
            ``<prefix>.spec.json``. Its folder is created if missing.
        num_shards: Number of files; shard ``i`` holds a contiguous block of rows (shards may
            be empty when ``num_shards`` exceeds the number of rows).
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``; recorded in the spec.
        overwrite: Replace an earlier ``write_tfrecords`` with the same prefix (its spec and
            the shards it lists are removed, also when their number differed). Without it,
            existing outputs are an error. Files that kdzoo did not write are never
            replaced: a spec that is not kdzoo's, or a shard-named file that no spec lists.

    Returns:
        The shard paths, in order.

    Raises:
        ValueError: Empty ``arrays``, rows of different lengths, a bad ``num_shards`` or
            ``compression``.
        TypeError: A dtype that cannot be stored exactly.
        FileExistsError: Outputs with this prefix exist and ``overwrite`` is False.
        kdzoo.files.NotOwnedError: (a ``FileExistsError``) files under this prefix that
            kdzoo did not write, with or without ``overwrite``.
    """
    path_prefix = os.fspath(path_prefix)
    if not arrays:
        raise ValueError("write_tfrecords: `arrays` is empty; give at least one feature.")
    if not isinstance(num_shards, int) or num_shards < 1 or num_shards > 99999:
        raise ValueError(f"write_tfrecords: `num_shards` must be 1..99999, got {num_shards!r}.")
    if compression not in _COMPRESSIONS:
        raise ValueError(f"write_tfrecords: `compression` must be one of {_COMPRESSIONS}.")
    data = {}
    for key in sorted(arrays):
        if not isinstance(key, str) or not key:
            raise ValueError(f"write_tfrecords: feature names must be non-empty str, got {key!r}.")
        data[key] = _as_array(key, arrays[key])
    lengths = {k: (len(v) if v.ndim else None) for k, v in data.items()}
    features = {k: _feature_spec(k, v) for k, v in data.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"write_tfrecords: features differ in number of rows: {lengths}.")
    count = next(iter(lengths.values()))
    existing = _previous_write(path_prefix)
    if existing and not overwrite:
        raise FileExistsError(
            f"write_tfrecords: {existing[0]} exists (prefix {path_prefix!r}); pass "
            "overwrite=True to replace it, or use another prefix."
        )
    folder = os.path.dirname(path_prefix)
    if folder:
        tf.io.gfile.makedirs(folder)

    bounds = np.array_split(np.arange(count), num_shards)
    finals = [shard_path(path_prefix, i, num_shards) for i in range(num_shards)]
    temps = []
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    try:
        for rows in bounds:
            temp = _temp_name(finals[len(temps)])
            temps.append(temp)
            with tf.io.TFRecordWriter(temp, options) as writer:
                for row in rows:
                    feature = {k: _encoded(k, features[k], data[k], row) for k in data}
                    example = tf.train.Example(features=tf.train.Features(feature=feature))
                    writer.write(example.SerializeToString())
        spec = {
            "format": FORMAT,
            "version": VERSION,
            "count": int(count),
            "compression": compression,
            "shards": [
                {"file": os.path.basename(f), "count": len(r)}
                for f, r in zip(finals, bounds, strict=True)
            ],
            "features": features,
        }
        spec_text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
        _commit(existing, temps, finals, spec_path(path_prefix), spec_text)
        temps = []
    finally:
        for temp in temps:
            _remove_quietly(temp)
    return finals


# ----------------------------------------------------------------------------------------
# Reading


def read_spec(path) -> dict:
    """Loads and checks a spec written by ``write_tfrecords`` (its path, or a shard prefix)."""
    path = os.fspath(path)
    if not path.endswith(SPEC_SUFFIX) and not tf.io.gfile.exists(path):
        path = spec_path(path)  # a prefix
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"TFRecord spec {path} not found; write_tfrecords writes it beside the shards "
            "(pass spec= to read_tfrecords if it lives elsewhere)."
        )
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            spec = json.load(f)
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: not a JSON TFRecord spec ({err}).") from err
    return _checked_spec(spec, path)


def _checked_spec(spec, where: str) -> dict:
    """``spec`` after checking every field ``read_tfrecords`` uses; errors name ``where``
    and the field."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: a spec is a JSON object; got {type(spec).__name__}.")
    if spec.get("format") != FORMAT or spec.get("version") != VERSION:
        raise ValueError(
            f"{where}: not a {FORMAT} v{VERSION} spec (format={spec.get('format')!r}, "
            f"version={spec.get('version')!r})."
        )
    if spec.get("compression") not in _COMPRESSIONS:
        raise ValueError(
            f"{where}: `compression` is {spec.get('compression')!r}; one of {_COMPRESSIONS}."
        )
    features = spec.get("features")
    if not isinstance(features, dict) or not features:
        raise ValueError(f"{where}: `features` must be a non-empty object; got {features!r}.")
    for key, feature in features.items():
        encoding = feature.get("encoding") if isinstance(feature, dict) else None
        if encoding not in _ENCODING_DTYPES:
            raise ValueError(f"{where}: feature '{key}' has unknown encoding {feature!r}.")
        if feature.get("dtype") not in _ENCODING_DTYPES[encoding]:
            raise ValueError(
                f"{where}: feature '{key}': dtype {feature.get('dtype')!r} cannot be read "
                f"from the {encoding} encoding; one of {', '.join(_ENCODING_DTYPES[encoding])}."
            )
        shape = feature.get("shape")
        if not (isinstance(shape, list) and all(_count(d) for d in shape)):
            raise ValueError(
                f"{where}: feature '{key}': `shape` must be a list of sizes >= 0 (the "
                f"per-example shape); got {shape!r}."
            )
        if encoding == "int64" and shape:
            raise ValueError(f"{where}: feature '{key}': int64 values are scalars; got {shape}.")
    shards = spec.get("shards", [])
    if not isinstance(shards, list) or not all(
        isinstance(s, dict)
        and isinstance(s.get("file"), str)
        and s["file"] == os.path.basename(s["file"]) != ""
        and _count(s.get("count"))
        for s in shards
    ):
        raise ValueError(
            f'{where}: `shards` must list {{"file": <name in the spec\'s folder>, '
            f'"count": <records>}}; got {shards!r}.'
        )
    return spec


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _resolve_files(pattern_or_paths) -> tuple[list[str], str | None]:
    """Returns the shard files and, when a prefix was given, its spec path."""
    if isinstance(pattern_or_paths, (str, os.PathLike)):
        pattern = os.fspath(pattern_or_paths)
        if _has_glob(pattern):
            files = sorted(tf.io.gfile.glob(pattern))
            if not files:
                raise FileNotFoundError(f"read_tfrecords: no files match the pattern {pattern!r}.")
            return files, None
        if tf.io.gfile.exists(pattern) and not tf.io.gfile.isdir(pattern):
            return [pattern], None
        if tf.io.gfile.exists(spec_path(pattern)):
            spec = read_spec(pattern)
            folder = os.path.dirname(pattern)
            files = [os.path.join(folder, s["file"]) for s in spec["shards"]]
            missing = [f for f in files if not tf.io.gfile.exists(f)]
            if missing:
                raise FileNotFoundError(
                    f"read_tfrecords: shard(s) listed in {spec_path(pattern)} are missing: "
                    f"{', '.join(missing)}."
                )
            return files, spec_path(pattern)
        raise FileNotFoundError(
            f"read_tfrecords: {pattern!r} is not a file, a glob pattern that matches files, "
            f"or a prefix with a spec {spec_path(pattern)}."
        )
    if isinstance(pattern_or_paths, Sequence) and pattern_or_paths:
        files = [os.fspath(p) for p in pattern_or_paths]
        missing = [f for f in files if not tf.io.gfile.exists(f)]
        if missing:
            raise FileNotFoundError(f"read_tfrecords: file(s) not found: {', '.join(missing)}.")
        return files, None
    raise ValueError(
        "read_tfrecords: give a shard path, a glob pattern, a write prefix or a non-empty "
        f"list of paths; got {pattern_or_paths!r}."
    )


def _shard_counts(spec: dict, folder: str) -> dict[str, int]:
    """Shard path -> the number of records ``spec`` lists for it."""
    return {_path_key(os.path.join(folder, s["file"])): s["count"] for s in spec.get("shards", [])}


def _spec_for_files(files: list[str]) -> tuple[dict, dict[str, int]]:
    """Finds the spec of each file from its shard name (all must agree on features), and
    the record counts the specs list."""
    specs, counts = {}, {}
    for path in files:
        match = _SHARD.match(path)
        if not match:
            raise ValueError(
                f"read_tfrecords: cannot find the spec of {path} (not named "
                "'<prefix>-NNNNN-of-NNNNN.tfrecord'); pass spec=."
            )
        where = spec_path(match["prefix"])
        if where not in specs:
            specs[where] = read_spec(where)
            counts.update(_shard_counts(specs[where], os.path.dirname(match["prefix"])))
    (first, spec), *others = specs.items()
    for where, other in others:
        if other["features"] != spec["features"] or other["compression"] != spec["compression"]:
            raise ValueError(
                f"read_tfrecords: the files mix schemas: {first} and {where} differ in features "
                "or compression; read them separately."
            )
    return spec, counts


def _parse_fn(features: dict):
    """A ``(record, path) -> dict`` parser that restores dtypes and static shapes, and fails
    naming the key and the file when a record lacks a key or has the wrong size."""
    parse_spec = {}
    for key, f in features.items():
        dtype = tf.int64 if f["encoding"] == "int64" else tf.string
        parse_spec[key] = tf.io.RaggedFeature(dtype)

    def parse(record, path):
        parsed = tf.io.parse_single_example(record, parse_spec)
        out = {}
        for key, f in features.items():
            values = parsed[key]
            shape = [int(d) for d in f["shape"]]
            size = 1 if f["encoding"] == "raw" else int(np.prod(shape, dtype=np.int64))
            check = tf.debugging.Assert(
                tf.equal(tf.size(values), size),
                [
                    f"kdzoo TFRecord: key `{key}` must have {size} value(s) per record "
                    f"({f['encoding']}, shape {shape}); got",
                    tf.size(values),
                    "(0 means the key is missing) in file",
                    path,
                ],
            )
            with tf.control_dependencies([check]):
                values = tf.identity(values)
            if f["encoding"] == "raw":
                dtype = tf.as_dtype(f["dtype"])
                values = tf.io.decode_raw(values[0], dtype, little_endian=True)
                n = int(np.prod(shape, dtype=np.int64))
                check = tf.debugging.Assert(
                    tf.equal(tf.size(values), n),
                    [
                        f"kdzoo TFRecord: key `{key}` must hold {n} {f['dtype']} value(s) "
                        f"(shape {shape}); got",
                        tf.size(values),
                        "in file",
                        path,
                    ],
                )
                with tf.control_dependencies([check]):
                    values = tf.identity(values)
            elif f["encoding"] == "int64":
                values = tf.cast(values, tf.as_dtype(f["dtype"]))
            out[key] = tf.reshape(values, shape)  # a constant shape: static per example
        return out

    return parse


def read_tfrecords(
    pattern_or_paths,
    *,
    spec=None,
    keys: Sequence[str] | None = None,
    num_parallel_reads: int | None = None,
    deterministic: bool = True,
) -> tf.data.Dataset:
    """Reads TFRecords written by ``write_tfrecords`` as a dataset of feature dicts.

    Args:
        pattern_or_paths: The ``path_prefix`` given to ``write_tfrecords`` (reads every shard
            in its spec), a glob pattern (matches are sorted), one shard path, or a list of
            shard paths (kept in the given order).
        spec: The spec (a dict, or the path of the ``.spec.json``) when it cannot be found
            from the shard names.
        keys: Only these features (default: all in the spec); one name is one key.
        num_parallel_reads: ``None`` or 1 reads the files one after another, which gives the
            written order. ``N > 1`` interleaves ``N`` files, one record from each in turn,
            read in parallel; with ``deterministic=True`` that order is fixed (but is not the
            written order).
        deterministic: Passed to ``interleave`` and ``map``. Keep True for reproducible runs.

    Returns:
        A ``tf.data.Dataset`` of ``{key: tensor}`` with the written dtypes and per-example
        static shapes (text and bytes as ``tf.string``). It is built from a dataset of file
        names, so ``AutoShardPolicy.FILE`` shards it by file under ``tf.distribute``.

    Raises:
        FileNotFoundError: Nothing matches ``pattern_or_paths`` (the message names it), a
            listed file or the spec is missing.
        ValueError: Files with different schemas, an unknown key, or a spec that is not
            valid (the message names the file and the field).

    While reading, a file that holds more or fewer records than its spec lists (a truncated
    shard, or one from another write) is an ``InvalidArgumentError`` naming the file and
    both counts, raised when its end is reached.
    """
    files, prefix_spec = _resolve_files(pattern_or_paths)
    if spec is None and prefix_spec:
        spec = read_spec(prefix_spec)
        counts = _shard_counts(spec, os.path.dirname(prefix_spec))
    elif spec is None:
        spec, counts = _spec_for_files(files)
    else:
        spec = _checked_spec(dict(spec), "spec=") if isinstance(spec, Mapping) else read_spec(spec)
        listed = {s["file"]: s["count"] for s in spec.get("shards", [])}
        counts = {
            _path_key(f): listed[os.path.basename(f)]
            for f in files
            if os.path.basename(f) in listed
        }
    features = spec["features"]
    if isinstance(keys, str):
        keys = [keys]
    if keys is not None:
        unknown = sorted(set(keys) - set(features))
        if unknown:
            raise ValueError(
                f"read_tfrecords: unknown key(s) {unknown}; the spec has {sorted(features)}."
            )
        features = {k: features[k] for k in keys}
    compression = spec.get("compression") or ""
    parse = _parse_fn(features)

    def records(path, expected):
        data = tf.data.TFRecordDataset(path, compression_type=compression)
        # An end marker after the file's last record, so that its count can be checked.
        data = data.map(lambda record: (record, tf.constant(False)))
        end = tf.data.Dataset.from_tensors((tf.constant(b""), tf.constant(True)))

        def count(seen, item):
            record, last = item
            seen += tf.cast(tf.logical_not(last), tf.int64)
            return seen, (record, last, seen)

        def keep(record, last, seen):
            check = tf.debugging.Assert(
                tf.logical_or(
                    tf.logical_not(last), tf.logical_or(expected < 0, tf.equal(seen, expected))
                ),
                [
                    "kdzoo TFRecord: file",
                    path,
                    "holds",
                    seen,
                    "record(s) but its spec lists",
                    expected,
                    "(a truncated file, or one from another write)",
                ],
            )
            with tf.control_dependencies([check]):
                return tf.logical_not(last)

        data = data.concatenate(end).scan(tf.constant(0, tf.int64), count).filter(keep)
        return data.map(lambda record, last, seen: (record, path))

    cycle = 1 if num_parallel_reads is None else int(num_parallel_reads)
    if cycle < 1:
        raise ValueError(f"read_tfrecords: num_parallel_reads must be >= 1, got {cycle}.")
    names = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(files, dtype=tf.string),
            tf.constant([counts.get(_path_key(f), -1) for f in files], dtype=tf.int64),
        )
    )
    if cycle == 1:
        data = names.interleave(records, cycle_length=1, block_length=1)
    else:
        data = names.interleave(
            records,
            cycle_length=cycle,
            block_length=1,
            num_parallel_calls=cycle,
            deterministic=deterministic,
        )
    return data.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
