"""``distil(config)``: the recipe's phases (``kdzoo.recipe.phases``) on a dataset by name,
under any tf.distribute strategy, resumably. ``kdzoo distil`` and the Colab notebook call it.

What it does, in order:

1. ``kdzoo.distribute.select_strategy(config.strategy)`` (first, before any other op), the
   mixed-precision policy, and the seed;
2. loads ``config.dataset`` with static batch shapes (``drop_remainder=True``): batches of
   the *global* batch size, which tf.distribute splits over the replicas, and sharded by
   data (``kdzoo.distribute.with_shard_policy``), so a global batch is the one a single
   process would see;
3. inside ``strategy.scope()``: builds the pair, then runs the phases
   (``train_teacher``, ``train_scratch``, ``distil_student``: ``jit_compile``,
   ``steps_per_execution``), each under a ``ResumableBackup`` (Keras ``BackupAndRestore``)
   in ``<backup_dir>/<phase>``;
4. evaluates the three models on the test split and, on the chief only, exports the
   distilled student with ``kdzoo.serving.export_for_serving`` (raw-input signatures, the
   output ``kdzoo check-export`` validates); then removes the backups it wrote.

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

Resuming repeats no finished epoch and is exact: each epoch's order is a permutation seeded
by ``(seed, epoch number)``, not by how many epochs this process has run, so a run killed
after epoch ``k`` resumes with epoch ``k + 1`` in the order an uninterrupted run would use,
from the same weights and optimizer state. Dropout draws are not in the backup: a phase
that trains with dropout (the teacher's default preset) resumes with fresh draws. The
distillation phase draws none (the teacher runs with ``training=False``; the student
presets have no dropout).
"""

from __future__ import annotations

import logging
import os
import tempfile

import keras
import numpy as np

from kdzoo import distribute
from kdzoo._keras_compat import check_steps_per_execution
from kdzoo.distillation import default_terms
from kdzoo.recipe import phases
from kdzoo.recipe.backup import (
    ResumableBackup,
    claim_backup_dir,
    release_backup_dir,
    resume_epoch,
)
from kdzoo.recipe.batching import epoch_batches
from kdzoo.recipe.callbacks import EpochLog
from kdzoo.recipe.config import DistilConfig, DistilResult, check_config, parse_terms
from kdzoo.serving import export_student

log = logging.getLogger("kdzoo")


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
    per_replica = distribute.per_replica_batch_size(config.global_batch_size, strategy)
    log.info(
        "Global batch %d = %d replicas x %d; precision %s",
        config.global_batch_size,
        strategy.num_replicas_in_sync,
        per_replica,
        precision,
    )
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return _distil(config, choice, precision, callbacks or [])
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _distil(config, choice, precision, extra_callbacks):
    from kdzoo import datasets, models

    strategy = choice.strategy
    chief = distribute.is_chief(strategy)
    if config.backup_dir:
        claim_backup_dir(config, chief)
    keras.utils.set_random_seed(config.seed)
    data = datasets.load(
        config.dataset,
        batch_size=256,  # evaluation and preprocessing batches; training batches are below
        seed=config.seed,
        modalities=tuple(dict.fromkeys((*config.teacher_inputs, *config.student_inputs))),
        num_examples=config.num_examples if config.dataset == "embedded" else None,
        normalize_audio=config.normalize_audio,
    )
    if config.train_examples:  # a seeded subset: files are often sorted by class
        train = data.arrays["train"]
        if config.train_examples > len(train["label"]):
            raise ValueError(
                f"DistilConfig.train_examples={config.train_examples}, but {config.dataset} "
                f"has only {len(train['label'])} training examples."
            )
        keep = np.random.default_rng(config.seed).permutation(len(train["label"]))
        keep = np.sort(keep[: config.train_examples])
        data.arrays["train"] = {k: v[keep] for k, v in train.items()}
    # Preprocessed rows, cached once; each phase draws its epochs from them.
    rows = data.pipeline("train", training=False).unbatch()
    num_rows = len(data.arrays["train"]["label"])
    if num_rows < config.global_batch_size:
        raise ValueError(
            f"{config.dataset} has {num_rows} training examples, fewer than "
            f"global_batch_size={config.global_batch_size}."
        )
    shapes = {f"{m}_shape": tuple(spec.shape) for m, spec in data.input_specs.items()}
    history, epochs_run = {}, {}

    def phase(run, name, epochs, *args, **kwargs):
        """Runs one phase on its resumable epochs, under its backup; records what ran."""
        backup = os.path.join(config.backup_dir, name) if config.backup_dir else None
        first = resume_epoch(backup)
        if first > epochs:
            raise ValueError(
                f"{backup} holds a run at epoch {first}, past the {epochs} epochs asked for "
                f"this phase. Ask for at least {first} epochs, or use another backup_dir."
            )
        batches, steps = epoch_batches(
            rows, num_rows, config.global_batch_size, config.seed, first, epochs
        )
        epoch_log = EpochLog()
        callbacks = [ResumableBackup(backup, first, strategy)] if backup else []
        callbacks += [*kwargs.pop("callbacks", ()), epoch_log]
        out = run(
            *args,
            batches,
            epochs=epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            learning_rate=config.learning_rate,
            optimizer=config.optimizer,
            verbose=config.verbose,
            jit_compile=config.jit_compile,
            steps_per_execution=config.steps_per_execution,
            **kwargs,
        )
        fitted = out if isinstance(out, keras.callbacks.History) else out.history
        history[name], epochs_run[name] = dict(fitted.history), epoch_log.epochs
        return out

    with strategy.scope():
        teacher, student = models.build_pair(
            config.pair,
            data.num_classes,
            teacher_overrides=config.teacher_overrides,
            student_overrides=config.student_overrides,
            **shapes,
        )
        distribute.float32_outputs(teacher)
        distribute.float32_outputs(student)
        distilled = phases.same_initial_weights(student)  # scratch and distilled start alike
        if config.teacher_epochs:
            phase(phases.train_teacher, "teacher", config.teacher_epochs, teacher)
        scratch = None
        if config.baseline:
            scratch = student
            phase(phases.train_scratch, "scratch", config.epochs, scratch)
        if config.terms:
            terms = parse_terms(config.terms, config.temperature)
        else:
            terms = default_terms(
                temperature=config.temperature,
                ce_weight=config.ce_weight,
                kd_weight=config.kd_weight,
            )
        distiller = phase(
            phases.distil_student,
            "distil",
            config.epochs,
            teacher,
            distilled,
            terms=terms,
            teacher_inputs=config.teacher_inputs,
            student_inputs=config.student_inputs,
            callbacks=extra_callbacks,
        )
    student = distiller.student

    trained = [(phases.TEACHER, teacher, config.teacher_inputs)]
    if scratch is not None:
        trained.append((phases.SCRATCH, scratch, config.student_inputs))
    trained.append((phases.DISTILLED, student, config.student_inputs))
    table = phases.compare(trained, data.splits["test"])

    export_path = None
    if config.export_dir:
        distilled_row = table.iloc[-1]
        metrics = {f"test_{k}": float(distilled_row[k]) for k in ("accuracy", "macro_f1")}

        def export(base):
            return str(
                export_student(
                    student,
                    base,
                    name=config.export_name,
                    data=data,
                    split="test",
                    metrics=metrics,
                    teacher_name=teacher.name,
                )
            )

        export_path = _write_on_chief(strategy, export, config.export_dir)
    if config.backup_dir and chief:
        release_backup_dir(config.backup_dir)  # every phase finished: nothing to resume
    return DistilResult(
        strategy=str(choice),
        num_replicas=strategy.num_replicas_in_sync,
        is_chief=chief,
        table=table,
        history=history,
        epochs_run=epochs_run,
        teacher=teacher,
        student=student,
        scratch_student=scratch,
        distiller=distiller,
        export_path=export_path,
        precision=precision,
    )
