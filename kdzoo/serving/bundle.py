"""A trained student with what a serving export needs: the input of ``kdzoo export``.

A bundle is a folder::

    student.keras      the Keras student (no teacher, no optimizer state needed)
    serving.json       name, class names, preprocessing configs, teacher name, metrics,
                       the dataset's name
    vocabulary.txt     the text vocabulary (text students only)
    examples.npz       a few raw examples, for the warmup requests (optional)
    .kdzoo-owned       the marker that lets a later save replace the folder

A later save replaces a bundle only while it holds these files alone: a file a user put in
the folder is never deleted with it (``NotOwnedError`` names it).

``save_student`` writes one, ``bundle_student`` writes one from the dataset the student was
trained on (the demo does); ``load_student`` reads it back. Raw examples
are stored without pickles: waveforms as float arrays, strings and encoded bytes as one
``uint8`` buffer plus offsets.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import keras
import numpy as np

import kdzoo.models  # noqa: F401  (registers the kdzoo layers for safe loading)
from kdzoo.files import (
    MARKER,
    atomic_file,
    check_own_files,
    check_replaceable,
    make_sibling_tmp,
    remove_stale_tmps,
    replace_dir,
)
from kdzoo.serving.export import check_student, serving_from_dataset
from kdzoo.serving.preprocessing import ServingPreprocessing, raw_keys

MODEL_FILE = "student.keras"
CONFIG_FILE = "serving.json"
VOCABULARY_FILE = "vocabulary.txt"
EXAMPLES_FILE = "examples.npz"
FORMAT = "kdzoo-student/1"
KIND = "student-bundle"  # the ownership marker's kind
_WHAT, _ACTION = "student bundle folder", "saving"  # how refusals word the folder and the act
#: What ``save_student`` writes: a bundle holding anything else is not replaced.
BUNDLE_FILES = frozenset({MODEL_FILE, CONFIG_FILE, VOCABULARY_FILE, EXAMPLES_FILE, MARKER})


@dataclasses.dataclass
class StudentBundle:
    """A loaded bundle: the model plus its serving metadata."""

    model: object
    preprocessing: ServingPreprocessing | None
    name: str
    teacher_name: object = None
    metrics: dict = dataclasses.field(default_factory=dict)
    examples: dict | None = None
    path: Path | None = None
    dataset: str | None = None


def _pack_bytes(values):
    values = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int64)
    return np.frombuffer(b"".join(values), dtype=np.uint8), offsets


def _unpack_bytes(buffer, offsets):
    data = buffer.tobytes()
    return np.array([data[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)], object)


def _save_examples(path, examples):
    arrays = {}
    for key, value in examples.items():
        if key == "audio":  # waveforms
            arrays[key] = np.asarray(value, np.float32)
        elif np.asarray(value).dtype.kind in "fiu":  # a table's numbers, at full precision
            arrays[key] = np.asarray(value, np.float64)
        else:
            arrays[f"{key}.bytes"], arrays[f"{key}.offsets"] = _pack_bytes(list(value))
    np.savez(path, **arrays)


def _load_examples(path):
    with np.load(path, allow_pickle=False) as npz:
        out = {}
        for key in npz.files:
            if key.endswith(".bytes"):
                name = key.removesuffix(".bytes")
                out[name] = _unpack_bytes(npz[key], npz[f"{name}.offsets"])
            elif not key.endswith(".offsets"):  # waveforms, a table's numbers
                out[key] = npz[key]
        return out


def save_student(
    model,
    directory,
    preprocessing: ServingPreprocessing,
    *,
    name,
    teacher_name=None,
    metrics=None,
    examples=None,
    dataset=None,
) -> Path:
    """Writes the student ``model`` and its serving metadata to ``directory``.

    The folder is written beside its destination and swapped in, replacing an older bundle
    only once the new one is complete. Only a bundle kdzoo wrote (marked ``.kdzoo-owned``)
    or an empty folder is replaced; any other existing ``directory`` raises
    ``kdzoo.files.NotOwnedError`` (a ``FileExistsError``) before anything is written.

    Args:
        model: the student ``keras.Model``. A Distiller raises ``TypeError``: pass
            ``distiller.student`` (and ``teacher_name``).
        directory: the bundle folder: new, empty, or a bundle ``save_student`` wrote.
        preprocessing: the ``ServingPreprocessing`` the model was trained with.
        name: the served model's name (default ``--name`` of ``kdzoo export``).
        teacher_name: the teacher's name (or names), recorded for the export metadata.
        metrics: evaluation results to carry into the export metadata.
        examples: a few raw inputs ``{input: values}`` for the warmup requests (keyed by
            ``kdzoo.serving.preprocessing.raw_keys``: the modalities, a table's columns).
        dataset: the name of the data the model was trained on, carried into the export
            metadata by ``kdzoo export`` (``check-export`` replays real examples only of
            kdzoo's own datasets; any other name means the warmup examples).
    """
    check_student(model)
    if dataset is not None and (not isinstance(dataset, str) or not dataset):
        raise ValueError(f"`dataset` must be a non-empty name, got {dataset!r}.")
    directory = Path(directory)
    check_replaceable(directory, KIND, _WHAT)
    check_own_files(directory, BUNDLE_FILES, _WHAT, _ACTION)
    modalities = preprocessing.check_model(model)
    remove_stale_tmps(directory.parent)
    tmp = make_sibling_tmp(directory)
    try:
        model.save(tmp / MODEL_FILE)
        vocabulary = None
        if "text" in modalities:
            shutil.copyfile(preprocessing.vocabulary_path, tmp / VOCABULARY_FILE)
            vocabulary = VOCABULARY_FILE
        if examples is not None:
            keys = raw_keys(modalities, preprocessing.tabular)
            _save_examples(tmp / EXAMPLES_FILE, {k: examples[k] for k in keys})
        config = {
            "format": FORMAT,
            "name": name,
            "teacher": teacher_name,
            "metrics": {k: float(v) for k, v in (metrics or {}).items()},
            "dataset": dataset,
            "preprocessing": preprocessing.to_dict(vocabulary_file=vocabulary),
        }
        with atomic_file(tmp / CONFIG_FILE, "w", encoding="utf-8") as f:
            f.write(json.dumps(config, indent=2) + "\n")
        replace_dir(tmp, directory, KIND, _WHAT, own=BUNDLE_FILES, action=_ACTION)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def bundle_student(
    student, directory, *, name, data, split="test", metrics=None, teacher_name=None
) -> Path:
    """``save_student`` with the preprocessing, raw examples and metrics of the dataset the
    student was trained on (``kdzoo.serving.serving_from_dataset``); the bundle counterpart
    of ``kdzoo.serving.export_student``.

    Args:
        student: the trained student ``keras.Model`` (``distiller.student``).
        directory: the bundle folder: new, empty, or a bundle kdzoo wrote.
        name: the served model's name (default ``--name`` of ``kdzoo export``).
        data: the ``kdzoo.datasets.LoadedDataset`` the student was trained on.
        split: where the examples and evaluated metrics come from. Defaults to ``"test"``.
        metrics: the metrics to record. Defaults to None: evaluated on ``split``.
        teacher_name: the teacher's name (or names), recorded for the export metadata.
    """
    served = serving_from_dataset(student, data, split=split, metrics=metrics)
    return save_student(
        student,
        directory,
        served.preprocessing,
        name=name,
        teacher_name=teacher_name,
        metrics=served.metrics,
        examples=served.examples,
        dataset=data.name,
    )


def load_student(path, preprocessing: ServingPreprocessing | None = None) -> StudentBundle:
    """Reads a bundle folder, or a ``.keras`` file (with ``serving.json`` beside it).

    ``preprocessing``, if given, replaces the bundle's. Without either, the returned
    bundle's ``preprocessing`` is None (give one to export it). Raises
    ``FileNotFoundError`` if there is no model.
    """
    path = Path(path)
    model_path = path / MODEL_FILE if path.is_dir() else path
    folder = model_path.parent
    if not model_path.is_file():
        raise FileNotFoundError(
            f"No student model at {model_path}: pass a bundle folder (with {MODEL_FILE} and "
            f"{CONFIG_FILE}, as kdzoo.serving.save_student writes) or a .keras file."
        )
    config = {}
    config_path = folder / CONFIG_FILE
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{config_path}: not JSON ({err}).") from None
        if not isinstance(config, dict):
            raise ValueError(f"{config_path}: a {type(config).__name__}, not a JSON object.")
        if config.get("format") != FORMAT:
            raise ValueError(
                f"{config_path}: format {config.get('format')!r}, expected {FORMAT!r}."
            )
    dataset = config.get("dataset")
    if dataset is not None and (not isinstance(dataset, str) or not dataset):
        raise ValueError(f'{config_path}: "dataset" is {dataset!r}, not a dataset\'s name.')
    if preprocessing is None and "preprocessing" in config:
        preprocessing = ServingPreprocessing.from_dict(config["preprocessing"], base_dir=folder)
    examples_path = folder / EXAMPLES_FILE
    return StudentBundle(
        model=keras.saving.load_model(model_path),
        preprocessing=preprocessing,
        name=config.get("name") or model_path.stem,
        teacher_name=config.get("teacher"),
        metrics=config.get("metrics", {}),
        examples=_load_examples(examples_path) if examples_path.is_file() else None,
        path=folder,
        dataset=dataset,
    )
