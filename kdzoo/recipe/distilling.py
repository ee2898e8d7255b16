"""``distil(config)``: the recipe (``kdzoo.recipe.run``) on a dataset by name or on your own
``LoadedDataset``, with a zoo pair or your own teacher (a ``keras.Model``, ``.keras`` file or
SavedModel) and student, under any tf.distribute strategy, resumably. ``kdzoo distil`` and
the Colab notebook call it.

What it does, in order:

1. ``kdzoo.distribute.select_strategy(config.strategy)`` (first, before any other op), the
   mixed-precision policy, and the seed;
2. loads ``config.dataset``, with a stratified ``validation_fraction`` of the training
   split held out when the dataset has no validation split. Training batches are of the
   *global* batch size (``drop_remainder=True``), which tf.distribute splits over the
   replicas, sharded by data (``kdzoo.distribute.with_shard_policy``), so a global batch is
   the one a single process would see;
3. inside ``strategy.scope()``: builds the pair (or loads the given teacher, which is used
   as it is and not trained; the models' input names route the batch keys), then runs the
   recipe: the teacher, the
   scratch tries and the distillation candidates, each under validation-driven early
   stopping and a ``ResumableBackup`` (Keras ``BackupAndRestore``) in
   ``<backup_dir>/<phase>``, and picks the tuned scratch student unless a distilled one
   leads it on validation by more than ``distil_margin_se`` standard errors;
4. evaluates on the test split and, on the chief only, exports the recipe's student with
   ``kdzoo.serving.export_for_serving`` (raw-input signatures, the output
   ``kdzoo check-export`` validates); then removes the backups it wrote.

Nothing is lost and nothing passes silently:

- ``backup_dir`` may hold other files: ``distil`` writes only ``<backup_dir>/<phase>/`` and
  a ``kdzoo_backup.json`` marker, and removes only those (and ``backup_dir`` itself only if
  it created it and it is then empty). Backup and export folders may not overlap.
- A backup records a fingerprint of the settings that decide the weights; a rerun with other
  settings on it is refused (``BackupMismatchError``) instead of resuming the old run.
- A backup whose files are missing, truncated or garbled raises ``BackupError`` naming the
  file; after a kill between Keras' two writes (weights, then metadata) the consistent
  previous pair (``.bkp``) is used, so the resumed run still equals the uninterrupted one.
- A non-finite loss stops training with ``NonFiniteLossError`` (not exit code 0 with NaN
  weights).
- A phase that finished (early stopping included) is not trained again on a rerun: its
  final weights and history are read back from its backup folder.

Resuming repeats no finished epoch and is exact: each epoch's order is a permutation seeded
by ``(seed, epoch number)``, not by how many epochs this process has run, so a run killed
after epoch ``k`` resumes with epoch ``k + 1`` in the order an uninterrupted run would use,
from the same weights and optimizer state. Dropout draws are not in the backup: a phase
that trains with dropout (the teacher's default preset) resumes with fresh draws. The
distillation phase draws none (the teacher runs with ``training=False``; the student
presets have no dropout).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import logging
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from kdzoo import distribute, families, models
from kdzoo._keras_compat import check_steps_per_execution
from kdzoo.backend import require_tensorflow
from kdzoo.determinism import seed_everything
from kdzoo.distillation.hub import RAW_TEXT, with_raw_text
from kdzoo.distillation.sources import load_teacher
from kdzoo.models.registry import get_pair
from kdzoo.recipe.backup import claim_backup_dir, release_backup_dir
from kdzoo.recipe.candidates import parse_candidates, scratch_tries
from kdzoo.recipe.config import (
    DataConfigError,
    DistilConfig,
    DistilResult,
    auto_batch_size,
    check_config,
)
from kdzoo.recipe.phases import Stopping
from kdzoo.recipe.selection import RECIPE, phase_folder, run
from kdzoo.serving import export_student

log = logging.getLogger("kdzoo")
#: The pair ``DistilConfig.pair=None`` builds for image with audio (the cross-modal default).
DEFAULT_PAIR = "av_to_audio"


def _write_on_chief(strategy, write, final_dir):
    """``write(folder)`` into ``final_dir`` on the chief; other workers write into a
    temporary folder that is deleted (saving may need collectives every worker joins)."""
    if distribute.is_chief(strategy):
        return write(final_dir)
    with tempfile.TemporaryDirectory(prefix="kdzoo-worker-") as tmp:
        write(tmp)
    return None


def distil(config: DistilConfig | None = None, callbacks=None, strategy=None) -> DistilResult:
    """Trains the teacher, the scratch baseline and the distilled student under a strategy.

    Args:
        config: a ``DistilConfig``. Defaults to ``DistilConfig()``.
        callbacks: extra Keras callbacks for the distillation phase (after the backup).
        strategy: a ``kdzoo.distribute.StrategyChoice`` (or a ``tf.distribute.Strategy``)
            already made, e.g. by a notebook that shows it first; then ``config.strategy``
            and ``config.tpu`` are not used. A process makes one multi-worker or TPU
            strategy. Defaults to None: ``select_strategy(config.strategy)``.

    Returns:
        A ``DistilResult``.

    Example:

    >>> result = kdzoo.recipe.distil(DistilConfig(strategy="auto", backup_dir="/tmp/kd"))
    >>> print(result.strategy)
    >>> result.table
    """
    require_tensorflow("The recipe (kdzoo.recipe.distil, kdzoo distil)")
    config = config or DistilConfig()
    check_config(config)
    if strategy is None:
        choice = distribute.select_strategy(config.strategy, tpu=config.tpu)  # before any op
    elif isinstance(strategy, distribute.StrategyChoice):
        choice = strategy
    else:
        kind = distribute.strategy_kind(strategy)
        choice = distribute.StrategyChoice(strategy, kind, "given to distil()")
    strategy = choice.strategy
    check_steps_per_execution(strategy, config.steps_per_execution)
    precision = distribute.resolve_precision(config.mixed_precision, choice.kind)
    if config.global_batch_size is not None:  # None: sized for the data once it is loaded
        distribute.per_replica_batch_size(config.global_batch_size, strategy)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return _distil(config, choice, precision, callbacks or [])
    finally:
        keras.config.set_dtype_policy(previous_policy)


#: A ``DistilConfig.teacher`` path with one of these suffixes is a file of teacher outputs.
OUTPUT_FILE_SUFFIXES = (".npz", ".csv", ".parquet")


def is_outputs_file(source) -> bool:
    """Whether ``source`` names a file of teacher outputs (logits or probabilities keyed by
    example id; ``kdzoo.distillation.read_teacher_outputs``)."""
    return (
        isinstance(source, str | os.PathLike)
        and Path(source).suffix.lower() in OUTPUT_FILE_SUFFIXES
    )


def with_file_outputs(data, path):
    """``data`` whose every pipeline carries the teacher's logits read from ``path`` for
    its rows (by id, checked: every id present, the classes, finiteness), under
    ``FILE_TEACHER_KEY``, where ``file_teacher`` reads them."""
    from kdzoo.datasets.loading import TRAIN_AND_TRANSFER, TRANSFER, LoadedDataset
    from kdzoo.distillation.outputs_file import (
        FILE_TEACHER_KEY,
        TeacherOutputsError,
        read_teacher_outputs,
    )

    lacking = [s for s, arrays in data.arrays.items() if "id" not in arrays]
    if lacking:
        raise TeacherOutputsError(
            f"A file of teacher outputs ({os.fspath(path)}) is matched to the examples by id; "
            f"{data.name} has no ids in {lacking}. Load it with an id column (id=...)."
        )
    logits = {
        split: read_teacher_outputs(path, ids=arrays["id"], **_output_columns(data))["logits"]
        for split, arrays in data.arrays.items()
    }
    if TRANSFER in logits:  # the rows LoadedDataset.split_arrays puts together
        logits[TRAIN_AND_TRANSFER] = np.concatenate([logits["train"], logits[TRANSFER]])

    class WithFileOutputs(type(data)):
        def pipeline(self, split, training=None, extras=None, **overrides):
            extras = {**(extras or {}), FILE_TEACHER_KEY: logits[split]}
            return LoadedDataset.pipeline(self, split, training, extras, **overrides)

    out = object.__new__(WithFileOutputs)
    out.__dict__.update(data.__dict__)
    out.splits = {split: out.pipeline(split) for split in out.arrays}
    return out


def _pair_for(config, data=None):
    """``config.pair``, or (None) the pair of the data (``data``, a ``LoadedDataset``, or
    the catalog's ``config.dataset``): its one modality's family, or ``"av_to_audio"`` for
    image with audio (``kdzoo.families``, the rule ``kdzoo distil --data`` and experiment
    files follow)."""
    if config.pair is not None or (config.teacher is not None and config.student is not None):
        return config.pair
    if data is None:
        from kdzoo.datasets.catalog import CATALOG

        name, modalities = config.dataset, set(CATALOG.get(config.dataset).modalities)
        if {"image", "audio"} <= modalities:  # the AV sets (embedded has text beside)
            return DEFAULT_PAIR
    else:
        name, modalities = data.name, tuple(data.input_specs)
    try:
        return families.family_for(modalities) or DEFAULT_PAIR
    except ValueError:
        raise DataConfigError(
            f"DistilConfig.pair: {name} gives {' and '.join(sorted(modalities))}, which no "
            "one family reads; name the models: pair=NAME (kdzoo.models.list_pairs(), "
            "list_models()), or teacher=T and student=S."
        ) from None


def _warn_unseen_classes(data) -> None:
    """Warns of a class the validation split (which chooses the student) or the training
    split has no example of: e.g. a class of one row, which lands in training only. A
    binary task's two classes are its negatives and positives (its validation ROC AUC is
    undefined without both); multi-label and regression tasks are not checked."""
    task = getattr(data, "task", None)
    if task is not None and task.kind != "binary":
        return
    names = tuple(data.class_names) if task is None else tuple(task.names)
    metric = (
        "accuracy"
        if task is None
        else task.selection.replace("_", " ").replace("roc auc", "ROC AUC")
    )
    counts = {}
    for split in ("train", "validation"):
        labels = np.asarray(data.arrays[split]["label"]).astype(np.int64).ravel()
        counts[split] = np.bincount(labels[labels >= 0], minlength=len(names))
    for split, count in counts.items():
        absent = [name for name, n in zip(names, count, strict=True) if n == 0]
        if absent:
            others = "validation" if split == "train" else "train"
            log.warning(
                "%s: %s %s no %s example (%s in %s), so %s.",
                data.name,
                "class" if len(absent) == 1 else "classes",
                ", ".join(map(repr, absent)) + (" has" if len(absent) == 1 else " have"),
                split,
                ", ".join(str(counts[others][names.index(n)]) for n in absent),
                others,
                "no student learns it from labels"
                if split == "train"
                else f"the validation {metric} that chooses the student cannot see it",
            )


def _check_servable(config, data, student_inputs) -> None:
    """Refuses, before anything trains, an ``export_dir`` run whose student reads table
    columns that cannot name a serving input (the export would refuse them after training)."""
    tabular = getattr(data, "tabular_config", None)
    if not config.export_dir or tabular is None or "tabular" not in student_inputs:
        return
    problem = families.unservable_message(tabular.columns, student_inputs)
    if problem:
        raise DataConfigError(
            f"{data.name}: export_dir: {problem} in the data, or leave out export_dir."
        )


def _sides(config, data=None):
    """The teacher and the student to use: a zoo ``(family, preset)`` (from the pair, as
    ``_pair_for`` picks it for ``data``, or a ``"family/preset"`` string), or what ``config``
    gives (a model, or a teacher's path)."""
    pair_name = _pair_for(config, data)
    pair = None
    if config.teacher is None or config.student is None:
        if pair_name in models.list_pairs():
            spec = get_pair(pair_name)
            pair = (spec.teacher, spec.student)
        else:
            pair = ((pair_name, "teacher"), (pair_name, "student"))
    teacher = config.teacher if config.teacher is not None else pair[0]
    student = config.student if config.student is not None else pair[1]
    if isinstance(student, str):
        family, _, preset = student.partition("/")
        student = (family, preset or "student")
    return teacher, student


def _reads(side) -> tuple:
    """The batch keys a side reads: a zoo family's modalities, or a model's input names."""
    if isinstance(side, tuple):
        return tuple(models.get_spec(side[0]).modalities)
    if is_outputs_file(side):
        from kdzoo.distillation.outputs_file import FILE_TEACHER_KEY

        return (FILE_TEACHER_KEY,)
    return tuple(t.name for t in side.inputs)


def _model(side, data, shapes, overrides, role, inputs=None):
    """A zoo ``(family, preset)`` built for ``data``, or the given model, checked against
    the class count. A family that takes ``modalities`` (the fusion families) is built for
    the batch keys it reads, ``inputs``, e.g. ``("text", "tabular")``."""
    if isinstance(side, tuple):
        family, preset = side
        builder = models.get_spec(family).builder
        accepted = set(inspect.signature(builder).parameters)
        kwargs = {k: v for k, v in shapes.items() if k in accepted}
        if inputs and "modalities" in accepted:
            kwargs["modalities"] = tuple(inputs)
        kwargs.update(overrides or {})
        return models.build(family, preset, num_classes=_outputs(data), **kwargs)
    if overrides:
        raise ValueError(f"DistilConfig.{role}_overrides builds a zoo model; {role} is given.")
    classes = side.outputs[0].shape[-1]
    task = getattr(data, "task", None)
    if task is not None and classes != task.outputs:
        raise ValueError(
            f"The {role} {side.name} has {classes} outputs; the {task.kind} task has "
            f"{task.outputs}."
        )
    if task is None and classes != data.num_classes:
        raise ValueError(
            f"The {role} {side.name} predicts {classes} classes; the data has "
            f"{data.num_classes} ({', '.join(data.class_names)})."
        )
    return side


def _output_columns(data) -> dict:
    """How a teacher-outputs file's columns are checked and read: by the class names, or by
    the task's output width (a binary task's one logit, a regression task's targets) and
    kind (a binary or multi-label task's probabilities are each label's own)."""
    task = getattr(data, "task", None)
    if task is None:
        return {"class_names": data.class_names}
    return {"num_classes": task.outputs, "task_kind": task.kind}


def _outputs(data) -> int:
    """The output width a model of ``data`` needs: its classes, or its task's outputs."""
    task = getattr(data, "task", None)
    return data.num_classes if task is None else task.outputs


def _digest(parts) -> str:
    """16 hex digits of a sequence of arrays (strings encoded), in order."""
    digest = hashlib.sha256()
    for part in parts:
        part = np.asarray(part)
        if part.dtype == object:
            part = np.array([str(v) for v in part.ravel()], dtype="U")
        digest.update(str((part.dtype.str, part.shape)).encode() + part.tobytes())
    return digest.hexdigest()[:16]


def _as_recorded(config, data, teacher):
    """``config`` as its backups record it: your data and models by name, size and a digest
    of their contents, so a rerun on other data or another teacher of the same shape is
    refused instead of resuming the old run."""
    own = not isinstance(config.dataset, str)
    changes = {"pair": _pair_for(config, data if own else None)}  # None: the one it picks
    if own:
        arrays = [a[k] for _, a in sorted(data.arrays.items()) for k in sorted(a)]
        changes["dataset"] = f"{data.name}: {data.num_examples}, data {_digest(arrays)}"
    if is_outputs_file(config.teacher):
        path = Path(config.teacher)
        content = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        changes["teacher"] = f"outputs file {path.name}: {content}"
    elif config.teacher is not None:
        changes["teacher"] = f"{teacher.name}: weights {_digest(teacher.get_weights())}"
    if isinstance(config.student, keras.Model):
        student = config.student
        changes["student"] = f"{student.name}: weights {_digest(student.get_weights())}"
    return dataclasses.replace(config, **changes)


def phase_names(config, task=None) -> list[str]:
    """The phases ``distil`` runs for ``config`` on data of ``task`` (None:
    classification), in order: ``"teacher"`` (if trained), the scratch tries, the
    distillation candidates."""
    from kdzoo.recipe.selection import default_candidates

    specs = config.candidates if config.candidates is not None else default_candidates(task)
    candidates = parse_candidates(specs)
    scratch = config.scratch
    if scratch is None:
        smoothing = task is None or task.kind != "regression"
        scratch = scratch_tries(max(1, len(candidates)), config.learning_rate, smoothing)
    names = ["teacher"] if config.teacher_epochs and config.teacher is None else []
    return names + [c.name for c in (*parse_candidates(scratch), *candidates)]


def _distil(config, choice, precision, extra_callbacks):
    from kdzoo import datasets
    from kdzoo.datasets.catalog import CATALOG

    strategy = choice.strategy
    chief = distribute.is_chief(strategy)
    folders = [phase_folder(name) for name in phase_names(config)]
    seed_everything(
        config.seed, op_determinism=config.op_determinism, jit_compile=config.jit_compile
    )
    data = None
    if not isinstance(config.dataset, str):  # loaded first: it may decide the models
        data = config.dataset() if callable(config.dataset) else config.dataset
        if not isinstance(data, datasets.LoadedDataset):
            raise ValueError(
                f"DistilConfig.dataset returned {type(data).__name__}, not a LoadedDataset."
            )
        if "validation" not in data.arrays:
            raise DataConfigError(f"{data.name} has no validation split to select on.")
    teacher_side, student_side = _sides(config, data)
    outputs_file = teacher_side if is_outputs_file(teacher_side) else None
    with strategy.scope():  # a given teacher's variables belong to the strategy
        if not isinstance(teacher_side, tuple) and outputs_file is None:
            teacher_side = load_teacher(teacher_side)
    teacher_inputs = tuple(config.teacher_inputs or _reads(teacher_side))
    student_inputs = tuple(config.student_inputs or _reads(student_side))
    read = student_inputs if outputs_file else (*teacher_inputs, *student_inputs)
    # A KerasHub teacher reads the raw sentences of the "text" column (hub.with_raw_text).
    raw_text = RAW_TEXT in read
    modalities = tuple(dict.fromkeys("text" if key == RAW_TEXT else key for key in read))
    if config.backup_dir and isinstance(config.dataset, str):  # before loading anything
        claim_backup_dir(_as_recorded(config, None, teacher_side), chief, folders)
    if isinstance(config.dataset, str):
        has_validation = "validation" in CATALOG.get(config.dataset).splits
        data = datasets.load(
            config.dataset,
            batch_size=256,  # evaluation and preprocessing batches; training batches below
            seed=config.seed,
            modalities=modalities,
            num_examples=config.num_examples if config.dataset == "embedded" else None,
            normalize_audio=config.normalize_audio,
            utterance_norm=config.utterance_norm,
            validation_fraction=0.0 if has_validation else config.validation_fraction,
        )
    else:
        missing = sorted(set(modalities) - set(data.input_specs))
        if missing:
            raise DataConfigError(
                f"The models read {missing}, which DistilConfig.dataset ({data.name}) does not "
                f"have; it has {sorted(data.input_specs)}. Name models that read it: "
                "pair=NAME, or teacher=T and student=S, or, for a fusion family, the "
                "inputs each side reads: teacher_inputs=(...) and student_inputs=(...)."
            )
        task = getattr(data, "task", None)
        folders = [phase_folder(name) for name in phase_names(config, task)]
    loaded = data  # as given: what a backup records
    if config.train_examples:  # a seeded subset: files are often sorted by class
        train = data.arrays["train"]
        if config.train_examples > len(train["label"]):
            raise DataConfigError(
                f"DistilConfig.train_examples={config.train_examples}, but {data.name} "
                f"has only {len(train['label'])} training examples."
            )
        keep = np.random.default_rng(config.seed).permutation(len(train["label"]))
        keep = np.sort(keep[: config.train_examples])
        data = copy.copy(data)  # your LoadedDataset stays as you gave it
        data.arrays = {**data.arrays, "train": {k: v[keep] for k, v in train.items()}}
    if outputs_file is not None:
        data = with_file_outputs(data, outputs_file)
    if raw_text:
        data = with_raw_text(data)
    num_rows = len(data.arrays["train"]["label"])
    replicas = strategy.num_replicas_in_sync  # a global batch splits evenly over them
    batch = config.global_batch_size or auto_batch_size(num_rows, replicas)
    log.info(
        "Global batch %d = %d replicas x %d (%s); precision %s",
        batch,
        replicas,
        batch // replicas,
        "given" if config.global_batch_size else f"auto, for {num_rows} training examples",
        precision,
    )
    if num_rows < batch:
        fits = num_rows // replicas
        smaller = replicas * 2 ** int(np.log2(fits)) if fits else 0
        raise DataConfigError(
            f"{data.name} has {num_rows} training examples, fewer than one global batch "
            f"(global_batch_size={batch})"
            + (
                f"; give global_batch_size={smaller} or less."
                if smaller
                else f", and fewer than the {replicas} replicas."
            )
        )
    _warn_unseen_classes(data)
    _check_servable(config, data, student_inputs)
    if config.backup_dir and not isinstance(config.dataset, str):  # a refused run claims nothing
        claim_backup_dir(_as_recorded(config, loaded, teacher_side), chief, folders)
    shapes = data.model_shapes()
    with strategy.scope():
        if outputs_file is not None:
            from kdzoo.distillation.outputs_file import file_teacher

            teacher_side = file_teacher(
                _outputs(data), name=f"file_teacher_{Path(outputs_file).stem}"
            )
        teacher = _model(
            teacher_side, data, shapes, config.teacher_overrides, "teacher", teacher_inputs
        )
        student = _model(
            student_side, data, shapes, config.student_overrides, "student", student_inputs
        )
        distribute.float32_outputs(teacher)
        distribute.float32_outputs(student)
        result = run(
            teacher,
            student,
            data,
            candidates=config.candidates,
            scratch=config.scratch,
            distil_margin_se=config.distil_margin_se,
            teacher_epochs=0 if config.teacher is not None else config.teacher_epochs,
            epochs=config.epochs,
            stopping=Stopping(
                patience=config.patience,
                plateau_patience=config.plateau_patience,
                plateau_factor=config.plateau_factor,
            ),
            batch_size=batch,
            learning_rate=config.learning_rate,
            optimizer=config.optimizer,
            seed=config.seed,
            teacher_inputs=teacher_inputs,
            student_inputs=student_inputs,
            backup_dir=config.backup_dir,
            strategy=strategy,
            callbacks=extra_callbacks,
            run_dir=config.run_dir,
            tensorboard=config.tensorboard,
            verbose=config.verbose,
            jit_compile=config.jit_compile,
            steps_per_execution=config.steps_per_execution,
        )
    student = result.student

    export_path = None
    if config.export_dir:
        row = result.table.set_index("model").loc[RECIPE]
        split = result.evaluated_on
        task = getattr(data, "task", None)
        reported = ("accuracy", "macro_f1") if task is None else task.metric_names()
        metrics = {f"{split}_{k}": float(row[k]) for k in reported}

        export_name = config.export_name or (
            f"{'_'.join(student_inputs)}_student"
            if isinstance(config.dataset, str)
            else f"{data.name}_student"
        )

        def export(base):
            return str(
                export_student(
                    student,
                    base,
                    name=export_name,
                    data=data,
                    split=split,
                    metrics=metrics,
                    teacher_name=teacher.name,
                    portable=config.portable,
                )
            )

        export_path = _write_on_chief(strategy, export, config.export_dir)
    if config.backup_dir and chief:
        release_backup_dir(config.backup_dir, folders)  # every phase finished
    return DistilResult(
        strategy=str(choice),
        num_replicas=strategy.num_replicas_in_sync,
        is_chief=chief,
        table=result.table,
        candidates=result.candidates,
        chosen=result.chosen,
        history=result.history,
        epochs_run=result.epochs_run,
        teacher=teacher,
        student=student,
        scratch_student=result.scratch,
        recipe=result,
        distiller=result.distillers.get(
            result.chosen.name, next(iter(result.distillers.values()), None)
        ),
        export_path=export_path,
        precision=precision,
        global_batch_size=batch,
    )
