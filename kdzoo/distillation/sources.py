"""A teacher from wherever it lives: a ``keras.Model``, a ``.keras`` file, a TensorFlow
SavedModel folder (a model kdzoo did not build, even one exported from another Keras or TF
program), or a KerasHub text classifier (a task object or a preset folder), which reads raw
sentences through its own preprocessor (``kdzoo.distillation.hub``).

``load_teacher(source)`` returns a ``keras.Model`` whose inputs are named, so the
``Distiller`` and the recipe route batch keys to it by name (``kdzoo.data.for_model``), and
whose output is the teacher's logits. A SavedModel runs through ``keras.layers.TFSMLayer``
inside ``fit``; a model whose output is softmax probabilities (``outputs="probabilities"``)
is given their logarithm (floored at 1e-7), which has the same softmax at every temperature
as the logits would, and one whose outputs are independent sigmoid probabilities (a binary
teacher's one column, or a multi-label teacher's; ``outputs="sigmoid_probabilities"``) is
given their log-odds ``log p - log(1 - p)``, which are its logits. A teacher known only by
its outputs (another framework, an API, a large language model) is
``kdzoo.distillation.read_teacher_outputs`` plus ``file_teacher``.

A ``.keras`` file is loaded with Keras' safe mode: a file with a ``Lambda`` layer (arbitrary
code) is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from kdzoo import backend

OUTPUTS = ("logits", "probabilities", "sigmoid_probabilities")
_FLOOR = 1e-7


class TeacherLoadError(ValueError):
    """A teacher that cannot be loaded or does not fit the task; names the source."""


@keras.saving.register_keras_serializable(package="kdzoo")
class LogOfProbabilities(keras.layers.Layer):
    """``log(max(p, 1e-7))``: a probability output as logits (same softmax at any τ)."""

    def call(self, probabilities):
        return keras.ops.log(keras.ops.maximum(probabilities, _FLOOR))


@keras.saving.register_keras_serializable(package="kdzoo")
class LogOddsOfProbabilities(keras.layers.Layer):
    """``log p - log(1 - p)``, ``p`` clipped to ``[1e-7, 1 - 1e-7]``: independent sigmoid
    probabilities (binary, multi-label) as the logits whose sigmoid they are."""

    def call(self, probabilities):
        p = keras.ops.clip(probabilities, _FLOOR, 1.0 - _FLOOR)
        return keras.ops.log(p) - keras.ops.log1p(-p)


def _name(source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return getattr(source, "name", None) or type(source).__name__


def _from_saved_model(path: Path, endpoint: str | None, output: str | None) -> keras.Model:
    if not backend.is_tensorflow():
        raise TeacherLoadError(
            f"{path}: a SavedModel teacher runs through keras.layers.TFSMLayer, which needs "
            f"the TensorFlow backend; Keras runs on {backend.name()!r} here. Save the "
            "teacher as a .keras file (model.save('teacher.keras')) to use it on this backend."
        )
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    endpoints = sorted(loaded.signatures)
    if endpoint is None:
        preferred = [
            e for e in ("serve", "serving_preprocessed", "serving_default") if e in endpoints
        ]
        if not preferred:
            raise TeacherLoadError(f"{path}: pick an endpoint (endpoint=...); it has {endpoints}.")
        endpoint = preferred[0]
    if endpoint not in endpoints:
        raise TeacherLoadError(f"{path}: no endpoint {endpoint!r}; it has {endpoints}.")
    signature = loaded.signatures[endpoint]
    _, specs = signature.structured_input_signature
    outputs = signature.structured_outputs
    if output is None:
        if len(outputs) != 1:
            raise TeacherLoadError(
                f"{path}: endpoint {endpoint!r} returns {sorted(outputs)}; pick the logits "
                "with output=..."
            )
        output = next(iter(outputs))
    if output not in outputs:
        raise TeacherLoadError(f"{path}: endpoint {endpoint!r} has no output {output!r}.")
    inputs = {
        name: keras.Input(shape=spec.shape[1:], dtype=spec.dtype.name, name=name)
        for name, spec in specs.items()
    }
    layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoint, name="saved_model")
    result = layer(inputs)
    result = result[output] if isinstance(result, dict) else result
    return keras.Model(inputs, result, name=path.name or "saved_model_teacher")


def load_teacher(
    source,
    *,
    num_classes: int | None = None,
    outputs: str = "logits",
    endpoint: str | None = None,
    output: str | None = None,
) -> keras.Model:
    """The teacher ``source`` names, as a ``keras.Model`` with named inputs and logits out.

    Args:
        source: a ``keras.Model``; a ``.keras`` file; a SavedModel folder (holding
            ``saved_model.pb``); a KerasHub task with its preprocessor, or a KerasHub
            preset folder (``metadata.json`` with ``keras_hub_version``), which becomes a
            teacher reading raw sentences under ``"raw_text"`` (``hub_teacher``).
        num_classes: the task's class count; the teacher's last output dimension must
            match it.
        outputs: ``"logits"`` (default); ``"probabilities"``, a softmax's (their log
            becomes the logits); or ``"sigmoid_probabilities"``, independent per column,
            as a binary teacher's one column or a multi-label teacher's (their log-odds
            become the logits).
        endpoint: a SavedModel's signature. Defaults to ``serve`` (``model.export``),
            ``serving_preprocessed`` (a kdzoo export: log-mel and pixels in) or
            ``serving_default``, the first it has.
        output: the signature output holding the logits when it returns several.

    Raises:
        TeacherLoadError: the source is missing, of an unknown kind, unsafe, or its outputs
            do not fit ``num_classes``; the message names it.
    """
    if outputs not in OUTPUTS:
        raise TeacherLoadError(f"outputs must be one of {OUTPUTS}, got {outputs!r}.")
    from kdzoo.distillation import hub

    name = _name(source)
    given = isinstance(source, keras.Model)
    if given and hub.is_hub_task(source):
        model = hub.hub_teacher(source)
    elif given:
        model = source
    elif isinstance(source, str | os.PathLike):
        import kdzoo.models  # noqa: F401 - registers kdzoo's layers for loading

        path = Path(source)
        if not path.exists():
            raise TeacherLoadError(f"{path}: no such file or folder.")
        if path.is_file() and path.suffix == ".keras":
            try:
                model = keras.saving.load_model(path, compile=False, safe_mode=True)
            except ValueError as err:
                raise TeacherLoadError(f"{path}: cannot load it safely ({err}).") from err
        elif path.is_dir() and (path / "saved_model.pb").is_file():
            model = _from_saved_model(path, endpoint, output)
        elif path.is_dir() and hub.is_hub_preset(path):
            try:
                task = hub.load_hub_task(path)
            except ValueError as err:
                raise TeacherLoadError(f"{path}: not a KerasHub text classifier ({err}).") from err
            model = hub.hub_teacher(task, name=path.name or None)
        else:
            raise TeacherLoadError(
                f"{path}: not a .keras file, a SavedModel folder (a folder with "
                "saved_model.pb) or a KerasHub preset folder (with metadata.json). A file of "
                "teacher outputs goes through kdzoo.distillation.read_teacher_outputs."
            )
    else:
        raise TeacherLoadError(
            "A teacher is a keras.Model, a .keras path, a SavedModel folder or a KerasHub "
            f"preset folder; got {source!r}."
        )
    shape = tuple(model.outputs[0].shape) if getattr(model, "outputs", None) else None
    if shape is None or len(model.outputs) != 1 or len(shape) != 2:
        raise TeacherLoadError(
            f"{name}: the teacher must have one output [batch, classes]; it has "
            f"{[tuple(o.shape) for o in getattr(model, 'outputs', None) or []]}."
        )
    if num_classes is not None and shape[-1] != num_classes:
        raise TeacherLoadError(
            f"{name}: the teacher predicts {shape[-1]} classes; the data has {num_classes}."
        )
    if outputs == "probabilities" and shape[-1] == 1:  # a softmax over one column is 1
        raise TeacherLoadError(
            f"{name}: the teacher has one probability column, which a softmax cannot give; "
            "for a binary teacher's P(positive) pass outputs='sigmoid_probabilities'."
        )
    if outputs != "logits":
        layer = (
            LogOfProbabilities(name="log_probabilities")
            if outputs == "probabilities"
            else LogOddsOfProbabilities(name="log_odds")
        )
        model = keras.Model(model.inputs, layer(model.outputs[0]), name=model.name)
    elif not given:
        model.trainable = False  # a loaded teacher; yours is left as you gave it
    return model


__all__ = ["LogOddsOfProbabilities", "LogOfProbabilities", "TeacherLoadError", "load_teacher"]
