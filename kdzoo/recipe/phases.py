"""The recipe's phases, written once: train a teacher, train the student from scratch,
distil the same student from the same initial weights, and compare them.

``distil()`` (any tf.distribute strategy, resumable), ``kdzoo demo``, the ``kdzoo bench``
studies, the CLI and the notebooks call these functions; none of them keeps a copy. Every
default comes from ``kdzoo.defaults.DEFAULTS``.

Each phase compiles its model with the optimizer named by ``optimizer`` at ``learning_rate``,
cosine-decayed to 0 over the phase (the final weights then do not depend on where a noisy
last epoch ends), and fits it with ``RaiseOnNonFinite`` (a NaN loss or weight stops training
with a clear error). A plain model reads only its own inputs from the batch (the batch may
carry other modalities for the teacher); the ``Distiller`` routes the keys itself.

Example:

>>> result = kdzoo.recipe.run(teacher, student, data.splits["train"], data.splits["test"])
>>> result.table                    # teacher, student (scratch), student (distilled)
"""

from __future__ import annotations

import dataclasses

import keras
import pandas as pd

from kdzoo._keras_compat import enable_multi_worker_fit
from kdzoo.data.routing import select_inputs
from kdzoo.defaults import DEFAULTS
from kdzoo.recipe.callbacks import RaiseOnNonFinite

#: Row labels of ``compare``'s table, in the recipe's order.
TEACHER, SCRATCH, DISTILLED = "teacher", "student (scratch)", "student (distilled)"


def input_names(model) -> tuple[str, ...]:
    """The batch keys ``model`` reads (its named inputs)."""
    return tuple(t.name for t in model.inputs)


def compile_phase(
    model,
    *,
    epochs,
    steps_per_epoch,
    learning_rate=DEFAULTS.learning_rate,
    optimizer=DEFAULTS.optimizer,
    loss=None,
    jit_compile="auto",
    steps_per_execution=1,
):
    """Compiles ``model`` for one phase: ``optimizer`` at ``learning_rate``, cosine-decayed to
    0 over ``epochs * steps_per_epoch`` steps, and the accuracy metric."""
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, epochs * steps_per_epoch)
    )
    model.compile(
        optimizer=keras.optimizers.get(
            {"class_name": optimizer, "config": {"learning_rate": schedule}}
        ),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    enable_multi_worker_fit(model)  # kdzoo/_keras_compat.py: remove when Keras fixes it
    return model


def _steps(train, steps_per_epoch):
    if steps_per_epoch is not None:
        return int(steps_per_epoch)
    steps = int(train.cardinality())
    if steps < 1:
        raise ValueError(
            "The training dataset's length is unknown or 0; pass steps_per_epoch (the "
            "learning-rate schedule is sized by it)."
        )
    return steps


def _fit(model, train, *, phase, epochs, steps_per_epoch, callbacks, verbose):
    return model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=[RaiseOnNonFinite(phase), *callbacks],
        shuffle=False,  # pipelines shuffle themselves; fit cannot shuffle a tf.data Dataset
        verbose=verbose,
    )


def train_supervised(
    model,
    train,
    *,
    phase,
    epochs,
    learning_rate=DEFAULTS.learning_rate,
    optimizer=DEFAULTS.optimizer,
    steps_per_epoch=None,
    callbacks=(),
    verbose="auto",
    jit_compile="auto",
    steps_per_execution=1,
):
    """Trains ``model`` on the labels of ``train`` (cross-entropy on its logits).

    Args:
        model: a Keras model with named inputs that returns logits.
        train: a ``tf.data.Dataset`` of ``(inputs dict, labels)`` batches (other keys are
            dropped for this model).
        phase: named in errors and logs (``"teacher"``, ``"scratch"``).
        epochs: epochs to train (a ``BackupAndRestore`` callback may start later).
        steps_per_epoch: batches per epoch. Defaults to ``train``'s length.

    Returns:
        The Keras ``History``.
    """
    steps = _steps(train, steps_per_epoch)
    compile_phase(
        model,
        epochs=epochs,
        steps_per_epoch=steps,
        learning_rate=learning_rate,
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    keys = input_names(model)
    train = train.map(lambda x, *rest: (select_inputs(x, keys), *rest))
    return _fit(
        model,
        train,
        phase=phase,
        epochs=epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
    )


def train_teacher(teacher, train, *, epochs=DEFAULTS.teacher_epochs, **options):
    """Phase 1: the teacher on the labels (``train_supervised`` with ``phase="teacher"``)."""
    return train_supervised(teacher, train, phase="teacher", epochs=epochs, **options)


def train_scratch(student, train, *, epochs=DEFAULTS.epochs, **options):
    """Phase 2: the student on the labels alone, the baseline a distilled student must beat
    (``train_supervised`` with ``phase="scratch"``)."""
    return train_supervised(student, train, phase="scratch", epochs=epochs, **options)


def distil_student(
    teacher,
    student,
    train,
    *,
    terms=None,
    teacher_inputs=None,
    student_inputs=None,
    epochs=DEFAULTS.epochs,
    learning_rate=DEFAULTS.learning_rate,
    optimizer=DEFAULTS.optimizer,
    steps_per_epoch=None,
    callbacks=(),
    verbose="auto",
    jit_compile="auto",
    steps_per_execution=1,
):
    """Phase 3: ``student`` distilled from ``teacher`` with a ``Distiller``.

    Args:
        teacher: the trained teacher (or a list of teachers); it is not trained.
        student: the student, usually with the scratch student's initial weights.
        train: batches carrying every key the teacher and the student read.
        terms: the objective's ``LossTerm``s. Defaults to
            ``kdzoo.distillation.default_terms()`` (``DEFAULTS``' τ and weights).
        teacher_inputs, student_inputs: batch keys of each side. Defaults to the models'
            input names.

    Returns:
        The trained ``Distiller`` (``.student`` is ``student``; ``.history`` its history).
    """
    from kdzoo.distillation import Distiller

    steps = _steps(train, steps_per_epoch)
    distiller = Distiller(
        teacher=teacher,
        student=student,
        terms=terms,
        teacher_inputs=teacher_inputs,
        student_inputs=student_inputs,
    )
    compile_phase(
        distiller,
        epochs=epochs,
        steps_per_epoch=steps,
        learning_rate=learning_rate,
        optimizer=optimizer,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    _fit(
        distiller,
        train,
        phase="distil",
        epochs=epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
    )
    return distiller


def same_initial_weights(student) -> keras.Model:
    """A new model of ``student``'s architecture holding ``student``'s current weights, so
    the scratch and the distilled student start from the same point."""
    twin = keras.models.clone_model(student)
    twin.set_weights(student.get_weights())
    for source, target in zip(student.layers, twin.layers, strict=True):
        if source.dtype_policy.name != target.dtype_policy.name:  # e.g. float32 logits
            target.dtype_policy = source.dtype_policy
    return twin


def compare(models, dataset, num_classes=None) -> pd.DataFrame:
    """Phase 4: one row per ``(label, model)``: its inputs, parameters and classification
    metrics on ``dataset`` (each model reads its own keys from the batches).

    Args:
        models: ``[(label, model), ...]``, e.g. ``[("teacher", teacher), ...]``; a third
            item names the inputs in the order to show (default: the model's).
        dataset: evaluation batches (``(inputs dict, labels)``).
        num_classes: passed to ``kdzoo.evaluation.classification_metrics``.
    """
    from kdzoo.evaluation import classification_metrics

    rows = []
    for label, model, *inputs in models:
        rows.append(
            {
                "model": label,
                "inputs": "+".join(inputs[0] if inputs else input_names(model)),
                "params": model.count_params(),
                **classification_metrics(model, dataset, num_classes),
            }
        )
    return pd.DataFrame(rows)


@dataclasses.dataclass
class RecipeResult:
    """What ``run`` returns.

    Attributes:
        table: ``compare``'s table on the evaluation split: teacher, scratch, distilled.
        teacher, scratch, student: the trained models (``student`` is the distilled one).
        distiller: the ``Distiller`` that trained ``student``.
        history: per phase (``"teacher"``, ``"scratch"``, ``"distil"``), Keras' history.
    """

    table: pd.DataFrame
    teacher: keras.Model
    scratch: keras.Model | None
    student: keras.Model
    distiller: keras.Model
    history: dict

    @property
    def gain(self) -> float:
        """Distilled minus scratch accuracy on the evaluation split."""
        accuracy = self.table.set_index("model")["accuracy"]
        return float(accuracy[DISTILLED] - accuracy[SCRATCH])


def run(
    teacher,
    student,
    train,
    evaluate_on,
    *,
    terms=None,
    teacher_epochs=DEFAULTS.teacher_epochs,
    epochs=DEFAULTS.epochs,
    baseline=True,
    teacher_inputs=None,
    student_inputs=None,
    **options,
) -> RecipeResult:
    """The whole recipe: teacher -> scratch student -> the same student distilled -> compare.

    Args:
        teacher, student: untrained models (``teacher_epochs=0`` keeps the teacher as given,
            e.g. one trained before).
        train: training batches carrying every key both models read.
        evaluate_on: the batches of the split the table reports.
        terms: the distillation objective (``default_terms()`` when None).
        baseline: also train the scratch student. Defaults to True.
        **options: ``learning_rate``, ``optimizer``, ``verbose``, ``steps_per_epoch``,
            ``jit_compile``, ``steps_per_execution`` for every phase.
    """
    history = {}
    if teacher_epochs:
        history["teacher"] = train_teacher(teacher, train, epochs=teacher_epochs, **options)
    distilled = same_initial_weights(student)
    scratch = None
    if baseline:
        scratch = student
        history["scratch"] = train_scratch(scratch, train, epochs=epochs, **options)
    distiller = distil_student(
        teacher,
        distilled,
        train,
        terms=terms,
        teacher_inputs=teacher_inputs,
        student_inputs=student_inputs,
        epochs=epochs,
        **options,
    )
    history["distil"] = distiller.history
    shown = {"teacher": teacher_inputs or input_names(teacher)}
    shown["student"] = student_inputs or input_names(student)
    rows = [(TEACHER, teacher, shown["teacher"])]
    if scratch is not None:
        rows.append((SCRATCH, scratch, shown["student"]))
    table = compare([*rows, (DISTILLED, distiller.student, shown["student"])], evaluate_on)
    return RecipeResult(table, teacher, scratch, distiller.student, distiller, history)
