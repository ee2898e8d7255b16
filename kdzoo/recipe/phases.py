"""The recipe's phases, written once: train a teacher, train the student from scratch,
distil the same student from the same initial weights, and compare them.

``kdzoo.recipe.run`` (the recipe: candidates, selection on validation, the report) calls
these functions; so do ``distil()`` through it, ``kdzoo demo``, the ``kdzoo bench`` studies
and the notebooks. None of them keeps a copy. Every default comes from
``kdzoo.defaults.DEFAULTS``.

Each phase compiles its model with the optimizer named by ``optimizer`` at
``learning_rate`` and fits it with ``RaiseOnNonFinite`` (a NaN loss or weight stops training
with a clear error). Given validation batches, a phase follows ``Stopping``: the rate is
reduced on validation plateaus, training stops when validation accuracy stops improving,
and the best epoch's weights are kept. Without them the rate is cosine-decayed to 0 over a
fixed number of epochs. A plain model reads only its own inputs from the batch (the batch
may carry other modalities for the teacher); the ``Distiller`` routes the keys itself.
"""

from __future__ import annotations

import dataclasses

import keras
import pandas as pd

from kdzoo._keras_compat import enable_multi_worker_fit
from kdzoo.data.routing import for_model, input_names
from kdzoo.defaults import DEFAULTS
from kdzoo.losses import HardLabelCrossentropy
from kdzoo.recipe.callbacks import PlateauSchedule, RaiseOnNonFinite, ValidationStopping

#: Row labels of ``kdzoo.recipe.RecipeResult.table``, in the recipe's order.
TEACHER, SCRATCH, RECIPE = "teacher", "student (scratch, tuned)", "student (recipe)"


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
    decay=True,
    metrics=None,
):
    """Compiles ``model`` for one phase: ``optimizer`` at ``learning_rate`` and ``metrics``
    (default: accuracy; a task's ``keras_metrics()`` otherwise). With ``decay`` the rate is
    cosine-decayed to 0 over ``epochs * steps_per_epoch`` steps; without it, it stays a
    variable that ``PlateauSchedule`` reduces."""
    schedule = float(learning_rate)
    if decay:
        schedule = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(1, epochs * steps_per_epoch)
        )
    model.compile(
        optimizer=keras.optimizers.get(
            {"class_name": optimizer, "config": {"learning_rate": schedule}}
        ),
        loss=loss,
        metrics=["accuracy"] if metrics is None else metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    enable_multi_worker_fit(model)  # kdzoo/_keras_compat.py: remove when Keras fixes it
    return model


def _steps(train, steps_per_epoch):
    if steps_per_epoch is not None:
        return int(steps_per_epoch)
    steps = int(train.cardinality()) if hasattr(train, "cardinality") else len(train)
    if steps < 1:
        raise ValueError(
            "The training dataset's length is unknown or 0; pass steps_per_epoch (the "
            "learning-rate schedule is sized by it)."
        )
    return steps


@dataclasses.dataclass(frozen=True)
class Stopping:
    """The validation rules every phase of the recipe trains under.

    Attributes:
        patience: epochs without a better validation accuracy before the phase stops; its
            best epoch's weights are restored (``ValidationStopping``).
        plateau_patience, plateau_factor: epochs without a better validation accuracy
            before the learning rate is multiplied by ``plateau_factor``
            (``PlateauSchedule``).
        min_lr_fraction: the rate is not reduced below this fraction of the starting one.
    """

    patience: int = DEFAULTS.patience
    plateau_patience: int = DEFAULTS.plateau_patience
    plateau_factor: float = DEFAULTS.plateau_factor
    min_lr_fraction: float = 1 / 64


def _classifies(task) -> bool:
    return task is None or task.kind == "classification"


def monitor(task=None) -> str:
    """The validation metric a phase stops and reduces its rate on: ``"val_accuracy"``, or
    ``"val_<task.selection>"`` (e.g. ``val_mse``, ``val_macro_roc_auc``) where Keras logs
    it, else ``"val_loss"`` (a selection metric such as F1 that ``keras_metrics`` lacks)."""
    if _classifies(task):
        return "val_accuracy"
    logged = [m.name for m in task.keras_metrics()]
    return f"val_{task.selection}" if task.selection in logged else "val_loss"


def _stopping_callbacks(stopping, learning_rate, state_dir, is_chief, task=None):
    stopping = stopping or Stopping()
    return [
        PlateauSchedule(
            stopping.plateau_patience,
            stopping.plateau_factor,
            min_lr=learning_rate * stopping.min_lr_fraction,
            monitor=monitor(task),
            state_dir=state_dir,
            is_chief=is_chief,
        ),
        # Last: restores the best weights after every other callback has run.
        ValidationStopping(
            stopping.patience, monitor=monitor(task), state_dir=state_dir, is_chief=is_chief
        ),
    ]


def _fit(model, train, *, phase, epochs, steps_per_epoch, callbacks, verbose, validation=None):
    return model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
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
    validation=None,
    stopping=None,
    label_smoothing=0.0,
    state_dir=None,
    is_chief=True,
    task=None,
):
    """Trains ``model`` on the labels of ``train`` (cross-entropy on its logits, or the
    ``task``'s label loss).

    Args:
        model: a Keras model with named inputs that returns logits.
        train: a ``tf.data.Dataset`` or ``kdzoo.data.ArrayBatches`` of
            ``(inputs dict, labels)`` batches (other keys are dropped for this model).
        phase: named in errors and logs (``"teacher"``, ``"scratch"``).
        epochs: epochs to train, or with ``validation`` the epoch budget (a
            ``BackupAndRestore`` callback may start later).
        learning_rate, optimizer: the starting rate and the optimizer's name. Default to
            ``DEFAULTS``'.
        steps_per_epoch: batches per epoch. Defaults to ``train``'s length.
        callbacks: more Keras callbacks, run before the stopping ones.
        verbose, jit_compile, steps_per_execution: passed to ``fit`` and ``compile``.
        validation: validation batches. With them the phase follows ``stopping``;
            without them the rate is cosine-decayed over ``epochs``.
        stopping: a ``Stopping`` (plateau learning-rate reduction, early stopping, the
            best epoch's weights), read only with ``validation``. Defaults to
            ``Stopping()`` (``DEFAULTS``' rules).
        label_smoothing: of the cross-entropy (``kdzoo.losses.HardLabelCrossentropy``).
        state_dir, is_chief: where the stopping state is kept for a resumed run, and
            whether this process writes it.
        task: a ``kdzoo.tasks.Task``; None is single-label classification. Another kind
            trains on its ``label_loss``, logs its ``keras_metrics`` and follows ``stopping``
            on its selection metric (``monitor``).

    Returns:
        The Keras ``History``.
    """
    steps = _steps(train, steps_per_epoch)
    metrics = None
    if not _classifies(task):
        loss, metrics = task.label_loss(label_smoothing), task.keras_metrics()
    elif label_smoothing:
        loss = HardLabelCrossentropy(label_smoothing=label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    compile_phase(
        model,
        epochs=epochs,
        steps_per_epoch=steps,
        learning_rate=learning_rate,
        optimizer=optimizer,
        loss=loss,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
        decay=validation is None,
        metrics=metrics,
    )
    train = for_model(train, model)
    if validation is not None:
        validation = for_model(validation, model)
        callbacks = [
            *callbacks,
            *_stopping_callbacks(stopping, learning_rate, state_dir, is_chief, task),
        ]
    return _fit(
        model,
        train,
        phase=phase,
        epochs=epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
        validation=validation,
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
    validation=None,
    stopping=None,
    state_dir=None,
    is_chief=True,
    phase="distil",
    task=None,
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
        epochs, learning_rate, optimizer, steps_per_epoch, callbacks, verbose,
            jit_compile, steps_per_execution: as for ``train_supervised``; ``epochs``
            defaults to ``DEFAULTS.epochs``.
        validation, stopping, state_dir, is_chief: as for ``train_supervised`` (validation
            batches carry the teacher's keys too: its loss terms are reported on them).
        phase: named in errors and logs. Defaults to ``"distil"``.
        task: a ``kdzoo.tasks.Task`` (the Distiller's, which decides the unlabelled rows);
            its metrics and selection metric as for ``train_supervised``.

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
        task=task,
    )
    compile_phase(
        distiller,
        epochs=epochs,
        steps_per_epoch=steps,
        learning_rate=learning_rate,
        optimizer=optimizer,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
        decay=validation is None,
        metrics=None if _classifies(task) else task.keras_metrics(),
    )
    if validation is not None:
        callbacks = [
            *callbacks,
            *_stopping_callbacks(stopping, learning_rate, state_dir, is_chief, task),
        ]
    _fit(
        distiller,
        train,
        phase=phase,
        epochs=epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
        validation=validation,
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


def compare(models, dataset, num_classes=None, task=None) -> pd.DataFrame:
    """Phase 4: one row per ``(label, model)``: its inputs, parameters and classification
    metrics (or the ``task``'s ``report``) on ``dataset`` (each model reads its own keys
    from the batches).

    Args:
        models: ``[(label, model), ...]``, e.g. ``[("teacher", teacher), ...]``; a third
            item names the inputs in the order to show (default: the model's).
        dataset: evaluation batches (``(inputs dict, labels)``).
        num_classes: passed to ``kdzoo.evaluation.classification_metrics``.
        task: a ``kdzoo.tasks.Task`` other than classification: ``task_metrics`` instead.
    """
    from kdzoo.evaluation import classification_metrics, task_metrics

    def measure(model):
        if _classifies(task):
            return classification_metrics(model, dataset, num_classes)
        return task_metrics(model, dataset, task)

    rows = []
    for label, model, *inputs in models:
        rows.append(
            {
                "model": label,
                "inputs": "+".join(inputs[0] if inputs else input_names(model)),
                "params": model.count_params(),
                **measure(model),
            }
        )
    return pd.DataFrame(rows)
