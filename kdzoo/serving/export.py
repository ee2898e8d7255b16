"""Versioned SavedModel exports in the TF Serving layout ``<base_dir>/<name>/<int version>/``.

``export_for_serving`` is the deployment export: a student ``keras.Model`` alone (pass
``distiller.student``; a Distiller is refused, so no teacher is ever inside), raw-input
signatures whose preprocessing is the training pipeline's own code, named outputs, a warmup
file and a ``kdzoo_export.json`` beside the graph. ``export_student`` is the same export
with everything taken from the dataset the student was trained on (preprocessing, warmup
examples, metrics). ``export_saved_model`` is the bare export of a model's own call (model
inputs in, logits out).

Signatures of a serving export:

- ``serving_default``: raw inputs, one per modality the model reads: ``"image"``
  ``tf.string [batch]`` (encoded PNG/JPEG/GIF/BMP), ``"audio"`` ``float32 [batch, samples]``
  (a waveform at the declared sample rate; padded or cropped to the training length),
  ``"text"`` ``tf.string [batch]`` (UTF-8 sentences). Outputs ``"probabilities"``
  ``float32 [batch, classes]``, ``"class_id"`` ``int64 [batch]`` and ``"class_name"``
  ``tf.string [batch]``.
- ``serving_preprocessed``: the model's own inputs (log-mel features, float images, token
  ids), for clients that preprocess themselves; same outputs.

A student of another task kind (``kdzoo.tasks``, recorded as the metadata's ``"task"``)
answers what its task means (``TASK_OUTPUTS``): a binary one ``"probabilities"``
``[batch, 2]`` (negative, positive; one sigmoid), ``"class_id"`` at the task's threshold and
``"class_name"``, as a two-class classifier would; a multi-label one ``"probabilities"``
``float32 [batch, labels]`` (one sigmoid each) and ``"labels"`` ``int64 [batch, labels]``, 1
where a probability is above the threshold; a regression one ``"values"`` ``float32
[batch, targets]`` in the targets' own units (the training standardisation undone in the
graph).
- ``serving_wav_bytes`` (audio models only): as ``serving_default`` with ``"audio"`` the
  bytes of a wav file ``tf.string [batch]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import numbers
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kdzoo import __version__
from kdzoo.backend import require_tensorflow
from kdzoo.evaluation import classification_metrics
from kdzoo.files import atomic_file, make_sibling_tmp, mark_tmp, remove_stale_tmps, unmark
from kdzoo.serving import warmup as warmups
from kdzoo.serving.ops import op_report
from kdzoo.serving.preprocessing import (
    RawPreprocessor,
    ServingPreprocessing,
    model_input_specs,
    raw_examples,
    raw_input_specs,
    raw_keys,
)

SERVING_DEFAULT = "serving_default"
SERVING_PREPROCESSED = "serving_preprocessed"
SERVING_WAV_BYTES = "serving_wav_bytes"
OUTPUT_KEYS = ("probabilities", "class_id", "class_name")
#: The outputs of a student of each task kind beyond single-label classification.
TASK_OUTPUTS = {
    "binary": OUTPUT_KEYS,
    "multi_label": ("probabilities", "labels"),
    "regression": ("values",),
}
METADATA_FILE = "kdzoo_export.json"
METADATA_FORMAT = "kdzoo-serving-export/1"
MAX_WARMUP_EXAMPLES = 4
#: The student's outputs on a few raw inputs, computed at export from the live Keras model
#: and the original preprocessing files; ``check-export`` replays the inputs on the saved
#: graph and compares (a changed asset or variable file, or a runtime that computes
#: otherwise, shows there).
REFERENCE_FILE = "assets.extra/kdzoo_reference.npz"
#: The largest |served - recorded| / max(1, |recorded|) ``check-export`` accepts on a float
#: output (relative above 1: a regression head's values are in the targets' units).
REFERENCE_TOLERANCE = 1e-4
_MAX_VERSION_ATTEMPTS = 100

log = logging.getLogger("kdzoo")


def next_version(model_dir) -> int:
    """The next free integer version under ``model_dir`` (1 if there is none): above every
    entry named by digits (a zero-padded ``007`` is version 7 to TF Serving; a file named
    ``1`` takes the name, so it is counted too)."""
    return max(_taken_versions(model_dir), default=0) + 1


def _taken_versions(model_dir) -> dict:
    """``{version: entry}``: the entries of ``model_dir`` named by digits, by number."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return {}
    return {int(p.name): p for p in model_dir.iterdir() if p.name.isdigit()}


def _checked_version(version) -> int | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, numbers.Integral):
        raise TypeError(f"`version` must be a positive integer or None; got {version!r}.")
    if version <= 0:
        raise ValueError(f"`version` must be a positive integer; got {version}.")
    return int(version)


def _write_version(base_dir, name, version, write, stamp=None) -> Path:
    """Calls ``write(tmp_dir)`` and ``stamp(tmp_dir, version)`` and renames ``tmp_dir`` to
    ``<base_dir>/<name>/<version>``.

    The temporary folder sits beside the versions (same file system, so the rename is
    atomic) under a ``.tmp-*`` name, which TF Serving ignores; a crash leaves no
    half-written version, and an existing version is never overwritten. A killed export's
    temporary is removed by the next export (``kdzoo.files.remove_stale_tmps``: only
    kdzoo's, and only once its process has died). If another export takes the version
    meanwhile, an automatic ``version`` (None) moves on to the next free one (``stamp``
    writes what depends on the number again); a given one raises ``FileExistsError``.
    """
    if not name or os.sep in name or "/" in name or name.startswith("."):
        raise ValueError(f"`name` must be a plain folder name; got {name!r}.")
    if "://" in str(base_dir):  # Path would make gs://b/x the local folder gs:/b/x
        raise ValueError(
            f"{base_dir} is a URL; exports are written to this machine's file system (the "
            "version folder is renamed into place). Export locally, then copy the version "
            "folder (gsutil -m cp -r)."
        )
    version = _checked_version(version)
    model_dir = Path(base_dir) / name
    if model_dir.exists() and not model_dir.is_dir():
        raise NotADirectoryError(
            f"{model_dir} is a file; the model's versions go in a folder of that name. "
            "Choose another name or base folder."
        )
    created = not model_dir.exists()
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmps(model_dir)
    automatic = version is None
    version = next_version(model_dir) if automatic else version
    final = model_dir / str(version)
    taken = _taken_versions(model_dir).get(version)
    if taken is not None:
        raise FileExistsError(
            f"{taken} exists{'' if taken == final else f' (version {version})'}; versions are "
            "never overwritten."
        )
    try:
        tmp = make_sibling_tmp(final, str(version))
    except BaseException:
        _remove_if_empty(model_dir, created)
        raise
    try:
        write(tmp)
        for _ in range(_MAX_VERSION_ATTEMPTS):
            if stamp is not None:
                stamp(tmp, version)
            _readable(tmp)
            unmark(tmp)  # the version must not carry the temporary's marker
            try:
                os.rename(tmp, final)  # atomic; fails rather than replace a non-empty folder
                return final
            except OSError:
                if not final.exists():
                    raise
            if not automatic:
                raise FileExistsError(
                    f"{final} exists; versions are never overwritten (another export wrote "
                    "it meanwhile). Choose another version, or leave it to kdzoo (None)."
                )
            mark_tmp(tmp)
            version = max(version + 1, next_version(model_dir))
            final = model_dir / str(version)
        raise FileExistsError(
            f"{model_dir}: other exports took {_MAX_VERSION_ATTEMPTS} versions in a row "
            "while this one was written; giving up."
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_if_empty(model_dir, created)
        raise


def _remove_if_empty(model_dir, created) -> None:
    """A failed export leaves no model folder behind that it made itself and left empty."""
    if created:
        with contextlib.suppress(OSError):  # rmdir removes only an empty folder
            model_dir.rmdir()


def _readable(folder):
    # mkdtemp makes a 0700 folder and copied assets keep their mode; a TF Serving container
    # running as another user must still read the version.
    os.chmod(folder, 0o755)
    for path in Path(folder).rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def check_student(model, argument="model") -> None:
    """Raises ``TypeError`` unless ``model`` is a plain ``keras.Model``.

    A Distiller (anything with a ``.student``) is refused with a message saying to pass
    ``distiller.student``: exporting or saving it would carry the teacher, and the student
    is what serves.
    """
    if hasattr(model, "student"):
        raise TypeError(
            f"`{argument}` is a {type(model).__name__}; pass its student "
            "(`distiller.student`) and, to record it, `teacher_name=`. Only the student is "
            "exported or saved, never the teacher."
        )
    if not isinstance(model, keras.Model):
        raise TypeError(f"`{argument}` must be a keras.Model; got {type(model).__name__}.")


def export_saved_model(model, base_dir="saved_models", name="model", version=None) -> Path:
    """Exports ``model``'s own call as ``<base_dir>/<name>/<version>/`` with Keras
    ``model.export``: model inputs in, the model's outputs out. For deployment use
    ``export_for_serving``.

    Versions are atomic and never overwritten (``FileExistsError``), as in
    ``export_for_serving``. A model with a NaN or inf weight raises ``ValueError``; a
    Distiller raises ``TypeError`` (pass ``distiller.student``).
    """
    check_student(model)
    check_finite_weights(model)

    def write(path):
        model.export(str(path), format="tf_saved_model", verbose=False)

    return _write_version(base_dir, name, version, write)


def check_finite_weights(model) -> None:
    """Raises ``ValueError`` naming every variable of ``model`` holding NaN or inf."""

    bad = []
    # get_weights reads distributed (Mirrored) variables too.
    for variable, value in zip(model.weights, model.get_weights(), strict=True):
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            bad.append(f"{variable.path} ({int((~np.isfinite(value)).sum())} of {value.size})")
    if bad:
        raise ValueError(
            f"Model {model.name!r} has non-finite weights (NaN or inf) in {', '.join(bad)}; "
            "not exporting it: training diverged or the weights are corrupt. Expected every "
            "weight finite."
        )


def export_for_serving(
    model,
    base_dir="saved_models",
    name="model",
    version=None,
    *,
    preprocessing,
    portable=False,
    teacher_name=None,
    metrics=None,
    warmup_inputs=None,
    from_logits=True,
    warmup=None,
    dataset=None,
) -> Path:
    """Exports a student for TF Serving as ``<base_dir>/<name>/<version>/``, on raw inputs.

    Args:
        model: the student ``keras.Model``. A Distiller raises ``TypeError``: pass
            ``distiller.student`` (and ``teacher_name``).
        base_dir: folder of served models. Defaults to ``"saved_models"``.
        name: the model's folder name, i.e. TF Serving's ``MODEL_NAME``.
        version: integer version; defaults to the next free one. An existing version
            raises ``FileExistsError``; so does one another export takes meanwhile (an
            automatic version then moves on to the next free one).
        preprocessing: a ``kdzoo.serving.ServingPreprocessing``, or the
            ``kdzoo.datasets.LoadedDataset`` the model was trained on.
        portable: tokenise text with core TF ops instead of tensorflow-text, so the export
            loads in any TF runtime. Same token ids (see ``kdzoo.serving.text``). Defaults
            to False. Exports without text are portable either way.
        teacher_name: the teacher's name (or a list of names), recorded in the metadata.
            Defaults to None.
        metrics: evaluation results to record, e.g. ``{"accuracy": 0.93}``.
        warmup_inputs: a few raw examples ``{input: array}`` (as ``serving_default``
            takes them, keyed by ``kdzoo.serving.preprocessing.raw_keys``) for the warmup
            requests; defaults to synthetic ones (a tone, a grey image, the vocabulary's
            first eight words as a sentence,
            the training means and first categories of a table's columns).
        from_logits: the model returns logits (softmax is applied in the graph); False if
            it returns probabilities. Defaults to True.
        warmup: write the warmup file, which needs tensorflow-serving-api
            (``kdzoo[serving]``). None (the default) writes it when that is installed, and
            otherwise exports without one: a warning is logged and the metadata's
            ``warmup.skipped`` says why. True requires it (``MissingExtraError`` before
            anything is written); False writes none.
        dataset: the name of the data the model was trained on, recorded in the metadata
            (``check-export`` replays real examples only of kdzoo's own datasets).

    Returns:
        The version folder.

    Raises:
        TypeError: ``model`` is a Distiller (or not a ``keras.Model``).
        ValueError: a weight of the model is NaN or inf (named in the message).
        kdzoo.optional.MissingExtraError: ``warmup=True`` without tensorflow-serving-api.

    Example:

    >>> data = kdzoo.datasets.load("av_digits", modalities=("image", "audio"))
    >>> export_for_serving(distiller.student, name="audio_student",
    ...                    preprocessing=ServingPreprocessing.from_dataset(data, ["audio"]),
    ...                    teacher_name=distiller.teacher.name)
    PosixPath('saved_models/audio_student/1')
    """
    require_tensorflow("Exporting for TF Serving (kdzoo.serving.export_for_serving)")
    check_student(model)
    check_finite_weights(model)
    if not isinstance(preprocessing, ServingPreprocessing):
        if not hasattr(preprocessing, "modalities") or not hasattr(preprocessing, "class_names"):
            raise TypeError(
                "`preprocessing` must be a ServingPreprocessing or a LoadedDataset; got "
                f"{type(preprocessing).__name__}."
            )
        modalities = [t.name for t in model.inputs]
        preprocessing = ServingPreprocessing.from_dataset(preprocessing, modalities)
    modalities = preprocessing.check_model(model)
    tokenizer = "core" if portable else "tensorflow_text"
    examples, source = _warmup_examples(warmup_inputs, preprocessing, modalities)
    skipped = _warmup_skipped(warmup)

    metadata = {}

    def write(path):
        _write_archive(model, preprocessing, modalities, tokenizer, from_logits, path)
        reference = _write_reference(model, preprocessing, modalities, tokenizer, from_logits,
                                     examples, source, path)  # fmt: skip
        report = _check_ops(path, portable)
        if skipped:
            written = {"file": None, "requests": 0, "inputs": None, "skipped": skipped}
        else:
            requests = _warmup_requests(model, preprocessing, modalities, tokenizer, examples, name)
            warmups.write_warmup(path, requests)  # looked up on the module: tests replace it
            written = {"file": warmups.WARMUP_FILE, "requests": len(requests), "inputs": source}
        metadata.update(_metadata(model, preprocessing, modalities, tokenizer, report, path))
        metadata.update(
            name=name,
            teacher=teacher_name,
            metrics=dict(metrics or {}),
            warmup=written,
            dataset=dataset,
            reference=reference,
        )

    def stamp(path, version):  # the version number is known only at the rename
        with atomic_file(path / METADATA_FILE, "w", encoding="utf-8") as f:
            json.dump({**metadata, "version": version}, f, indent=2, default=_json_default)
            f.write("\n")

    return _write_version(base_dir, name, version, write, stamp)


def _warmup_skipped(wanted) -> str | None:
    """Why no warmup file is written (None: one is), checked before anything is written."""
    from kdzoo.optional import available, require

    if wanted is False:
        return "warmup=False"
    if wanted is True:
        require("tensorflow_serving.apis", "The TF Serving warmup file")
        return None
    if wanted is not None:
        raise TypeError(f"`warmup` must be None, True or False; got {wanted!r}.")
    if available("tensorflow_serving.apis"):
        return None
    reason = (
        "tensorflow-serving-api is not installed (pip install 'kdzoo[serving]'); TF Serving "
        "loads the model without warmup requests"
    )
    log.warning("Exporting without a warmup file: %s.", reason)
    return reason


@dataclasses.dataclass(frozen=True)
class DatasetServing:
    """What a serving export or bundle takes from the dataset a student was trained on.

    Attributes:
        preprocessing: the ``ServingPreprocessing`` of the student's modalities.
        examples: the first raw examples of the split, as ``serving_default`` takes them
            (the warmup requests).
        metrics: the metrics to record, e.g. ``{"test_accuracy": 0.93}``.
    """

    preprocessing: ServingPreprocessing
    examples: dict
    metrics: dict


def serving_from_dataset(student, data, *, split="test", metrics=None) -> DatasetServing:
    """The preprocessing, warmup examples and metrics of ``student`` on ``data``.

    Args:
        student: the trained student ``keras.Model``; its input names are the modalities.
        data: the ``kdzoo.datasets.LoadedDataset`` the student was trained on.
        split: the split the examples (and evaluated metrics) come from. Defaults to
            ``"test"``.
        metrics: the metrics to record. Defaults to None: the student is evaluated on
            ``split`` with ``kdzoo.evaluation.classification_metrics`` (``task_metrics``
            when ``data.task`` is set) and the results are recorded as
            ``"<split>_<metric>"`` (``{}`` records none).

    Raises:
        TypeError: ``student`` is a Distiller (pass ``distiller.student``).
        KeyError: ``data`` has no split ``split``.
    """
    check_student(student, "student")
    if split not in data.arrays or split not in data.splits:
        raise KeyError(f"{data.name} has no split {split!r}; it has {sorted(data.arrays)}.")
    modalities = [t.name for t in student.inputs]
    preprocessing = ServingPreprocessing.from_dataset(data, modalities)
    examples = raw_examples(
        data.arrays[split], modalities, count=MAX_WARMUP_EXAMPLES, tabular=preprocessing.tabular
    )
    if metrics is None and getattr(data, "task", None) is not None:
        from kdzoo.evaluation import task_metrics

        evaluated = task_metrics(student, data.splits[split], data.task)
        metrics = {f"{split}_{k}": v for k, v in evaluated.items()}
    if metrics is None:
        evaluated = classification_metrics(student, data.splits[split])
        metrics = {f"{split}_{k}": v for k, v in evaluated.items()}
    return DatasetServing(preprocessing, examples, {k: float(v) for k, v in metrics.items()})


def export_student(
    student,
    base_dir="saved_models",
    *,
    name,
    data,
    split="test",
    metrics=None,
    teacher_name=None,
    version=None,
    portable=False,
) -> Path:
    """``export_for_serving`` of a trained student with its dataset's preprocessing, warmup
    examples and metrics (``serving_from_dataset``).

    Args:
        student: the trained student ``keras.Model`` (``distiller.student``).
        base_dir: folder of served models. Defaults to ``"saved_models"``.
        name: the model's folder name, i.e. TF Serving's ``MODEL_NAME``.
        data: the ``kdzoo.datasets.LoadedDataset`` the student was trained on.
        split: where the warmup examples and evaluated metrics come from. Defaults to
            ``"test"``.
        metrics: the metrics to record. Defaults to None: evaluated on ``split``.
        teacher_name: the teacher's name (or names), recorded in the metadata.
        version: integer version; defaults to the next free one.
        portable: tokenise text with core TF ops only. Defaults to False.

    Returns:
        The version folder.

    Example:

    >>> export_student(distiller.student, "saved_models", name="audio_student", data=data,
    ...                teacher_name=distiller.teacher.name)
    PosixPath('saved_models/audio_student/1')
    """
    require_tensorflow("Exporting for TF Serving (kdzoo.serving.export_student)")
    served = serving_from_dataset(student, data, split=split, metrics=metrics)
    return export_for_serving(
        student,
        base_dir,
        name=name,
        version=version,
        preprocessing=served.preprocessing,
        portable=portable,
        teacher_name=teacher_name,
        metrics=served.metrics,
        warmup_inputs=served.examples,
        dataset=data.name,
    )


def read_metadata(export_dir) -> dict:
    """The ``kdzoo_export.json`` of an export folder."""
    path = Path(export_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No {METADATA_FILE} in {export_dir}: not a kdzoo serving export (see "
            "kdzoo.serving.export_for_serving)."
        )
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path}: not valid JSON ({err}); expected the metadata export_for_serving "
            "writes. The export is damaged: export it again."
        ) from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: expected a JSON object; got {type(metadata).__name__}.")
    return metadata


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Cannot write {type(value).__name__} to {METADATA_FILE}: {value!r}.")


def _finite(outputs):
    """The student's logits, checked: a NaN or inf would otherwise be served as a normal
    looking class (argmax over NaN picks class 0)."""
    if isinstance(outputs, dict):
        outputs = outputs["logits"]
    return tf.debugging.assert_all_finite(
        outputs, "the student's outputs hold NaN or inf for this input"
    )


def _head(model, class_names, from_logits, task=None):
    if task is not None:
        return _task_head(model, task)

    def head(features):
        outputs = _finite(model(features, training=False))
        probabilities = tf.nn.softmax(outputs, axis=-1) if from_logits else outputs
        probabilities = tf.cast(probabilities, tf.float32)  # as the signature declares
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        class_name = tf.gather(tf.constant(class_names), class_id)
        return {"probabilities": probabilities, "class_id": class_id, "class_name": class_name}

    return head


def _task_head(model, task):
    """The serving outputs of a binary, multi-label or regression student (``TASK_OUTPUTS``),
    computed in the graph as ``kdzoo.tasks.Task.predict`` / ``probabilities`` compute them."""
    names = tf.constant(task.names or ("negative", "positive"))
    mean = tf.constant(task.target_mean or (0.0,) * task.outputs, tf.float32)
    std = tf.constant(task.target_std or (1.0,) * task.outputs, tf.float32)
    threshold = tf.constant(task.logit_threshold, tf.float32)

    def head(features):
        outputs = tf.cast(_finite(model(features, training=False)), tf.float32)
        if task.kind == "regression":
            return {"values": outputs * std + mean}
        if task.kind == "multi_label":
            return {
                "probabilities": tf.sigmoid(outputs),
                "labels": tf.cast(outputs > threshold, tf.int64),
            }
        positive = tf.sigmoid(outputs)
        class_id = tf.cast(outputs[:, 0] > threshold, tf.int64)
        return {
            "probabilities": tf.concat([1.0 - positive, positive], axis=-1),
            "class_id": class_id,
            "class_name": tf.gather(names, class_id),
        }

    return head


def _output_specs(num_classes, task=None) -> dict:
    """``{output: (dtype, shape)}`` of every serving signature (``-1``: any size)."""
    if task is None or task.kind == "binary":
        classes = 2 if task is not None else num_classes
        return {
            "probabilities": ("float32", [-1, classes]),
            "class_id": ("int64", [-1]),
            "class_name": ("string", [-1]),
        }
    if task.kind == "multi_label":
        return {
            "probabilities": ("float32", [-1, task.outputs]),
            "labels": ("int64", [-1, task.outputs]),
        }
    return {"values": ("float32", [-1, task.outputs])}


def _write_archive(model, preprocessing, modalities, tokenizer, from_logits, path):
    """The SavedModel, built with Keras ``ExportArchive`` (whose graphs the TF1 session
    loader of TF Serving and ``saved_model_cli`` can run; ``tf.saved_model.save`` on a
    Keras model gives one they cannot)."""
    raw = RawPreprocessor(preprocessing, modalities, tokenizer)
    task = preprocessing.task
    if task is not None and not from_logits:
        raise ValueError(f"A {task.kind} student is exported from its raw outputs (from_logits).")
    head = _head(model, preprocessing.class_names, from_logits, task)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for resource in raw.resources:
        archive.track(resource)
    tabular = preprocessing.tabular
    endpoints = [
        (SERVING_DEFAULT, raw, raw_input_specs(modalities, tabular=tabular)),
        (SERVING_PREPROCESSED, None, model_input_specs(model)),
    ]
    if "audio" in modalities:
        endpoints.append(
            (
                SERVING_WAV_BYTES,
                raw.from_wav_bytes,
                raw_input_specs(modalities, wav_bytes=True, tabular=tabular),
            )
        )
    outputs = _output_specs(len(preprocessing.class_names), task)
    for name, preprocess, specs in endpoints:
        endpoint = _endpoint(head, preprocess, specs, outputs)
        archive.add_endpoint(name, endpoint, input_signature=[specs])
    archive.write_out(str(path), verbose=False)


def _endpoint(head, preprocess, specs, outputs):
    def empty():
        return {
            key: tf.zeros([0, *shape[1:]], getattr(tf, dtype))
            for key, (dtype, shape) in outputs.items()
        }

    def endpoint(inputs):
        # TF Serving feeds tensors of any shape: without a runtime check a wrong rank fails
        # deep in the graph. (Rank checks would be constant-folded away from the signature's
        # static shape; EnsureShape is not.) Its error names the input and the shape.
        inputs = {k: tf.ensure_shape(v, specs[k].shape) for k, v in inputs.items()}
        # A batch of 0 answers with empty outputs: the model's kernels (batch norm under
        # oneDNN) fail on 0 rows. Inputs of different batch sizes still reach the check.
        rows = tf.reduce_max(tf.stack([tf.shape(v)[0] for v in inputs.values()]))
        return tf.cond(
            rows > 0,
            lambda: head(inputs if preprocess is None else preprocess(inputs)),
            empty,
        )

    return endpoint


def _check_ops(path, portable):
    report = op_report(path)
    if portable and not report.portable:
        raise RuntimeError(
            f"The portable export still uses custom ops {sorted(report.custom_ops)}; "
            "kdzoo has no core-op version of them."
        )
    return report


def _synthetic_examples(preprocessing, modalities):
    out = {}
    if "audio" in modalities:
        cfg = preprocessing.audio
        t = np.arange(cfg.num_samples) / cfg.sample_rate
        out["audio"] = (0.1 * np.sin(2 * np.pi * 440.0 * t))[None].astype(np.float32)
    if "image" in modalities:
        cfg = preprocessing.image
        ramp = np.linspace(0, 255, cfg.height * cfg.width).reshape(cfg.height, cfg.width, 1)
        ramp = np.repeat(ramp, cfg.channels, axis=-1).astype(np.uint8)
        out["image"] = np.array([tf.io.encode_png(ramp).numpy()], dtype=object)
    if "text" in modalities:  # the vocabulary's first words: none of them out of vocabulary
        with tf.io.gfile.GFile(str(preprocessing.vocabulary_path), "r") as f:
            words = [line.rstrip("\n") for _, line in zip(range(9), f, strict=False)][1:]
        sentence = " ".join(words) or "a short example sentence"
        out["text"] = np.array([sentence.encode("utf-8")], dtype=object)
    if "tabular" in modalities:  # the training means, and each column's first category
        cfg = preprocessing.tabular
        for column, mean in zip(cfg.numeric, cfg.mean, strict=True):
            out[column] = np.array([mean], np.float64)
        for column, vocabulary in zip(cfg.categorical, cfg.vocabularies, strict=True):
            out[column] = np.array([(vocabulary or ("",))[0].encode("utf-8")], dtype=object)
    return out


def _warmup_examples(warmup_inputs, preprocessing, modalities):
    """Checks and normalises the raw warmup examples; returns them and their source."""
    if warmup_inputs is None:
        return _synthetic_examples(preprocessing, modalities), "synthetic"
    keys, wanted = sorted(warmup_inputs), raw_keys(modalities, preprocessing.tabular)
    if keys != sorted(wanted):
        raise ValueError(f"`warmup_inputs` has keys {keys}; the model reads {sorted(wanted)}.")
    out = {k: warmups.proto_array(warmup_inputs[k])[:MAX_WARMUP_EXAMPLES] for k in wanted}
    sizes = {m: len(v) for m, v in out.items()}
    if len(set(sizes.values())) != 1 or not min(sizes.values()):
        raise ValueError(f"`warmup_inputs` needs the same number (>= 1) of rows per key; {sizes}.")
    for column in preprocessing.tabular.numeric if "tabular" in modalities else ():
        out[column] = np.asarray(out[column], np.float64)
    if "audio" in out:
        out["audio"] = np.asarray(out["audio"], np.float32)
        if out["audio"].ndim != 2:
            raise ValueError(
                "`warmup_inputs['audio']` must be float waveforms [batch, samples]; got shape "
                f"{out['audio'].shape}."
            )
    return out, "given"


def _warmup_requests(model, preprocessing, modalities, tokenizer, examples, name):
    """One request per signature, plus a batch-1 one for ``serving_default``."""
    predict_request = warmups.predict_request
    first = {m: v[:1] for m, v in examples.items()}
    requests = [predict_request(first, name, SERVING_DEFAULT)]
    if len(next(iter(examples.values()))) > 1:
        requests.append(predict_request(examples, name, SERVING_DEFAULT))
    raw = RawPreprocessor(preprocessing, modalities, tokenizer)
    features = raw({k: tf.constant(v) for k, v in examples.items()})
    requests.append(
        predict_request({m: v.numpy() for m, v in features.items()}, name, SERVING_PREPROCESSED)
    )
    if "audio" in modalities:
        rate = preprocessing.audio.sample_rate
        wav = tf.audio.encode_wav(tf.constant(first["audio"][0])[:, None], rate).numpy()
        requests.append(predict_request({**first, "audio": [wav]}, name, SERVING_WAV_BYTES))
    return requests


def pack_strings(values) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as ``(bytes, offsets)``: their concatenation (``uint8``) and where each
    ends (``int64``), so that ``np.save`` keeps them exactly without pickles (NumPy's ``S``
    dtype drops trailing NUL bytes). ``kdzoo/serving/fresh_check.py`` unpacks them."""
    values = [bytes(v) for v in np.asarray(values, dtype=object).ravel().tolist()]
    offsets = np.cumsum([len(v) for v in values], dtype=np.int64)
    return np.frombuffer(b"".join(values), dtype=np.uint8), offsets


def _write_reference(model, preprocessing, modalities, tokenizer, from_logits, examples,
                     source, path) -> dict:  # fmt: skip
    """Writes ``REFERENCE_FILE``: the raw ``examples`` and the student's outputs on them,
    computed eagerly by this process (the live model, the preprocessing's own files) on
    the CPU in full float32 (no TF32 matrix multiplies, which a GPU would use by default);
    returns the metadata's ``"reference"`` entry."""
    raw = RawPreprocessor(preprocessing, modalities, tokenizer)
    head = _head(model, preprocessing.class_names, from_logits, preprocessing.task)
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        with tf.device("/CPU:0"):
            outputs = head(raw({k: tf.constant(v) for k, v in examples.items()}))
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
    names = sorted(examples)
    arrays = {}
    for i, key in enumerate(names):
        value = examples[key]
        if value.dtype.kind in "OS":
            arrays[f"input_{i}"], arrays[f"input_{i}_offsets"] = pack_strings(value)
        else:
            arrays[f"input_{i}"] = value
    compared = [k for k, v in outputs.items() if v.dtype.is_floating]
    for key in compared:
        arrays[f"output_{key}"] = outputs[key].numpy()
    with atomic_file(Path(path) / REFERENCE_FILE, "wb") as f:  # creates assets.extra/
        np.savez(f, **arrays)
    return {
        "file": REFERENCE_FILE,
        "signature": SERVING_DEFAULT,
        "rows": len(next(iter(examples.values()))),
        "inputs": names,
        "examples": source,
        "outputs": compared,
        "tolerance": REFERENCE_TOLERANCE,
    }


def _spec_dict(spec):
    return {
        "dtype": spec.dtype.name,
        "shape": [-1 if d is None else int(d) for d in spec.shape],
    }


def _signatures(model, modalities, num_classes, tabular=None, task=None):
    outputs = {
        key: {"dtype": dtype, "shape": shape}
        for key, (dtype, shape) in _output_specs(num_classes, task).items()
    }
    inputs = {
        SERVING_DEFAULT: raw_input_specs(modalities, tabular=tabular),
        SERVING_PREPROCESSED: model_input_specs(model),
    }
    if "audio" in modalities:
        inputs[SERVING_WAV_BYTES] = raw_input_specs(modalities, wav_bytes=True, tabular=tabular)
    return {
        name: {"inputs": {k: _spec_dict(s) for k, s in specs.items()}, "outputs": outputs}
        for name, specs in inputs.items()
    }


def _metadata(model, preprocessing, modalities, tokenizer, report, path):
    vocabulary_file = None
    prep = preprocessing.to_dict()
    if "text" in modalities:
        vocabulary_file = f"assets/{Path(preprocessing.vocabulary_path).name}"
        if not (Path(path) / vocabulary_file).is_file():
            raise RuntimeError(f"The vocabulary asset {vocabulary_file} is missing from {path}.")
        prep = preprocessing.to_dict(vocabulary_file=vocabulary_file)
        prep["text"]["serving_tokenizer"] = tokenizer
    prep = {k: v for k, v in prep.items() if k in ("class_names", "task") or k in modalities}
    # The version folder (graph, variables, assets, assets.extra) without this metadata file.
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return {
        "format": METADATA_FORMAT,
        "name": None,
        "version": None,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kdzoo_version": __version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "model": model.name,
        "params": int(model.count_params()),
        "teacher": None,
        "class_names": list(preprocessing.class_names),
        "modalities": list(modalities),
        "task": None if preprocessing.task is None else preprocessing.task.to_dict(),
        "signatures": _signatures(
            model,
            modalities,
            len(preprocessing.class_names),
            preprocessing.tabular,
            preprocessing.task,
        ),
        "preprocessing": prep,
        "portable": report.portable,
        "custom_ops": report.custom_ops,
        "requires": report.requires,
        "metrics": {},
        "warmup": None,
        "saved_model_bytes": size,
    }
