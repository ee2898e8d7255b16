"""The recipe: teacher -> tuned scratch student -> distilled candidates -> the scratch student
unless a distilled one leads it on validation beyond its noise, compared honestly on test.

``run(teacher, student, data)`` is the one recipe ``distil()``, ``kdzoo distil``,
``kdzoo demo``, the ``kdzoo bench`` studies and the notebooks call:

1. **Validation.** The dataset's validation split, or a stratified, seeded
   ``DEFAULTS.validation_fraction`` of its training split.
2. **Teacher.** Trained once (or taken as given with ``teacher_epochs=0``) under the same
   rules as every student: Adam at ``learning_rate``, halved after ``plateau_patience``
   epochs without a better validation accuracy, stopped after ``patience``, its best epoch
   kept (``phases.Stopping``), within an epoch budget that early stopping ends first.
3. **Teacher outputs, once.** Without per-epoch augmentation the teacher's logits (and the
   features a candidate compares) are computed once over the training rows and travel with
   them, so each distillation candidate costs about one student-only training. With
   augmentation the teacher runs online on the same augmented batch as the student.
4. **Scratch, tuned.** The student from its initial weights, trained on the labels, with as
   many tries (``candidates.scratch_tries``: label smoothing, learning rate) as there are
   distillation candidates: the same budget and the same number of tries.
5. **Distillation candidates.** The same initial weights, distilled with each candidate's
   terms (``DEFAULTS.candidates``; ``Candidate.parse`` reads a spec). With an unlabelled
   transfer set (``kdzoo.datasets.with_transfer``) they train on the training rows followed
   by the transfer rows: the teacher terms on every row, the label terms on labelled ones.
   The teacher and the scratch tries never see the transfer rows.
6. **Selection on validation.** The tuned scratch student is the scratch try with the best
   validation accuracy (the first of equals). The best distillation candidate replaces it
   only if it is better on validation by more than ``distil_margin_se`` standard errors of
   the paired difference ``mean(c_d - c_s)`` over the validation examples (``c``: 1 where
   a model is right): the one-standard-error rule (Breiman et al. 1984; Hastie et al.,
   ESL §7.10), which prefers the simpler model, the one that needs no teacher, unless the
   evidence is clear. A maximum over six candidates on a few hundred examples picks noise
   otherwise: on kdzoo's own benchmarks a candidate ahead by 0.2 points on one speaker lost
   14 on the next. So the recipe never returns a student that is worse than tuned scratch on
   validation, and returns a distilled one only when validation says so beyond its noise
   (``RecipeResult.selection`` says how it decided).
7. **Test, last.** The test split is read only now, for every model, for the report.

Example:

>>> data = kdzoo.datasets.load("embedded", validation_fraction=0.1)
>>> teacher, student = kdzoo.models.build_pair("av_to_audio", data.num_classes, ...)
>>> result = kdzoo.recipe.run(teacher, student, data, student_inputs=("audio",))
>>> result.table          # teacher, scratch (tuned), the recipe's student, on test
>>> result.candidates     # every student tried: validation and test, params, time
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import keras
import numpy as np
import pandas as pd

from kdzoo.backend import is_tensorflow, require_tensorflow
from kdzoo.data.routing import select_inputs
from kdzoo.datasets.arrays import TRAIN_AND_TRANSFER, TRANSFER, ArrayDataset
from kdzoo.defaults import DEFAULTS
from kdzoo.distillation.keys import TEACHER_OUTPUTS
from kdzoo.recipe import phases
from kdzoo.recipe.callbacks import EpochLog, load_weights_npz, save_weights_npz
from kdzoo.recipe.candidates import Candidate, parse_candidates, scratch_tries
from kdzoo.recipe.phases import RECIPE, SCRATCH, TEACHER

log = logging.getLogger("kdzoo")
_DONE = "phase_done.json"
_FINAL = "final.weights.npz"


@dataclasses.dataclass(frozen=True)
class Selection:
    """How the recipe chose between the tuned scratch student and its best distillation
    candidate on validation (``kdzoo.defaults.Defaults.distil_margin_se``).

    Attributes:
        scratch, distilled: the settings of the best scratch try and of the best
            distillation candidate on validation.
        gain: validation accuracy of ``distilled`` minus that of ``scratch``.
        standard_error: the standard error of ``gain``: the sample standard deviation of
            the per-example differences ``c_d - c_s`` (``c``: 1 where a model is right) over
            the square root of the number of validation examples.
        margin_se: how many standard errors ``gain`` had to exceed.
        chose_distilled: whether the distilled candidate is the recipe's student.
        metric: the validation metric compared (``"accuracy"``, or a task's selection
            metric such as ``"mse"`` or ``"macro_roc_auc"``); ``gain`` is how much better
            ``distilled`` is on it (for an error such as MSE: scratch's minus distilled's).
    """

    scratch: str
    distilled: str
    gain: float
    standard_error: float
    margin_se: float
    chose_distilled: bool
    metric: str = "accuracy"

    def describe(self) -> str:
        """One line, e.g. ``"ce:0.5,kd:0.5 (τ=4) vs scratch (ls=0.1) on validation: +0.80
        points, 1 SE 0.55: distilled chosen (> 1 SE)"``."""
        verdict = "distilled chosen" if self.chose_distilled else "scratch kept"
        if self.metric == "accuracy":
            gain = f"{100 * self.gain:+.2f} points, 1 SE {100 * self.standard_error:.2f}"
        else:
            word = "better" if self.gain >= 0 else "worse"
            gain = f"{self.metric} {word} by {abs(self.gain):.4g}, 1 SE {self.standard_error:.4g}"
        return (
            f"{self.distilled} vs {self.scratch} on validation: {gain}: {verdict} (the rule: > "
            f"{self.margin_se:g} SE)"
        )


def paired_gain(correct_distilled, correct_scratch) -> tuple[float, float]:
    """``(gain, standard_error)`` of two models' accuracies on the same examples, from
    boolean arrays of where each is right: the mean of the per-example differences and
    its standard error (sample standard deviation over the square root of their number)."""
    a, b = np.asarray(correct_distilled, np.float64), np.asarray(correct_scratch, np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(
            f"paired_gain needs two equal-length 1-D arrays; got {np.shape(correct_distilled)} "
            f"and {np.shape(correct_scratch)}."
        )
    d = a - b
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return float(d.mean()), se


#: Resamples of the paired bootstrap behind the standard error of a metric that is not a
#: mean over examples (ROC and PR AUC, F1, R²).
BOOTSTRAP_RESAMPLES = 200


def paired_metric_gain(task, outputs_distilled, outputs_scratch, labels, seed=0):
    """``(gain, standard_error)`` of two models' ``task.selection`` metric on the same
    validation examples (``kdzoo.tasks.Task``), ``gain`` signed so that positive means
    ``outputs_distilled`` is better.

    A metric that is a mean over examples (accuracy and exact match of binary and
    multi-label tasks; MSE and MAE) gets ``paired_gain`` of the per-example values, as
    accuracy does for classification. Any other (ROC/PR AUC, F1, R²) gets a seeded paired
    bootstrap: ``BOOTSTRAP_RESAMPLES`` resamples of the examples, the standard deviation of
    the difference over them (Efron & Tibshirani 1993, ch. 6).
    """
    metric, lower = task.selection, task.better(0.0, 1.0)
    sign = -1.0 if lower else 1.0
    per_example = _per_example(task, metric)
    if per_example is not None:
        d = per_example(outputs_distilled, labels)
        s = per_example(outputs_scratch, labels)
        gain, se = paired_gain(d, s)
        return sign * gain, se
    labels = np.asarray(labels)

    def value(outputs, rows):
        return task.report(np.asarray(outputs)[rows], labels[rows])[metric]

    every = np.arange(len(labels))
    gain = sign * (value(outputs_distilled, every) - value(outputs_scratch, every))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        rows = rng.integers(0, len(labels), len(labels))
        try:
            draws.append(value(outputs_distilled, rows) - value(outputs_scratch, rows))
        except ValueError:  # a resample with one class only: no AUC
            continue
    se = float(np.std(draws, ddof=1)) if len(draws) > 1 else float("inf")
    return float(gain), se


def _per_example(task, metric):
    """The per-example values whose mean is ``metric``, as a function of ``(outputs,
    labels)``, or None for a metric that is not such a mean."""
    if task.kind == "regression" and metric in ("mse", "mae"):

        def error(outputs, labels):
            diff = task.predict(outputs) - task.check_labels(labels).astype(np.float64)
            values = diff**2 if metric == "mse" else np.abs(diff)
            return values.mean(axis=1)

        return error
    if task.kind in ("binary", "multi_label") and metric in ("accuracy", "exact_match"):

        def right(outputs, labels):
            truth = task.check_labels(labels)
            guess = task.predict(outputs)
            if task.kind == "binary":
                return guess == truth
            same = guess == truth
            return same.mean(axis=1) if metric == "accuracy" else same.all(axis=1)

        return right
    return None


def decide(scratch, distilled, correct_scratch, correct_distilled, margin_se) -> Selection:
    """The recipe's choice between its tuned scratch student and its best distillation
    candidate (named ``scratch`` and ``distilled``), from where each is right on the
    validation examples (boolean arrays in the same order): the distilled one only if its
    gain is positive and above ``margin_se`` standard errors (``paired_gain``). A gain
    within float rounding of 0 is a tie, not a gain: the mean of fractional scores that
    tie (multi-label accuracy in thirds, say) can come out at 1e-17."""
    gain, se = paired_gain(correct_distilled, correct_scratch)
    scale = (
        np.abs(np.asarray(correct_distilled, np.float64)).mean()
        + np.abs(np.asarray(correct_scratch, np.float64)).mean()
    )
    rounding = 1e-12 * max(1.0, float(scale))
    return Selection(
        scratch=scratch,
        distilled=distilled,
        gain=gain,
        standard_error=se,
        margin_se=float(margin_se),
        chose_distilled=bool(gain > rounding and gain > margin_se * se),
    )


@dataclasses.dataclass
class RecipeResult:
    """What ``run`` returns.

    Attributes:
        table: on the test split (validation when there is none): the teacher, the best
            scratch try and the recipe's student, with their validation accuracy.
        candidates: one row per student tried (scratch tries, then distillation
            candidates): its setting, validation and test accuracy and macro-F1, epochs
            run, best epoch, seconds, training examples per epoch (transfer rows
            included), params, and which one was chosen.
        chosen: the ``Candidate`` of the recipe's student.
        teacher, scratch, student: the trained teacher, the best scratch try, and the
            recipe's student (``scratch`` itself when scratch won).
        history: per phase name (``"teacher"``, ``"scratch"``, ``"scratch@ls=0.1"``, a
            distillation candidate's spec...), Keras' history of the epochs run.
        seconds: wall time per phase, plus ``"teacher outputs"`` and ``"total"``.
        models: per candidate name, the trained student.
        distillers: per distillation candidate trained in this process, its ``Distiller``
            (compiled, with its optimizer state).
        epochs_run: per phase, the epoch indices run in this process (a resumed run skips
            the finished ones; a phase finished earlier has none).
        report_dir: where ``write_report`` wrote the report, if anywhere.
        selection: how the best scratch try and the best distillation candidate were
            decided between (None without distillation candidates).
        task: the ``kdzoo.tasks.Task`` of a run beyond single-label classification (its
            tables hold ``task.metric_names()`` where classification has accuracy and
            macro-F1); None for classification.
        evaluated_on: the split ``table``'s metrics come from: ``"test"``, or
            ``"validation"`` when the data has no test split (``candidates``' test columns
            are then empty).
    """

    table: pd.DataFrame
    candidates: pd.DataFrame
    chosen: Candidate
    teacher: keras.Model
    scratch: keras.Model
    student: keras.Model
    history: dict
    seconds: dict
    models: dict
    epochs_run: dict = dataclasses.field(default_factory=dict)
    distillers: dict = dataclasses.field(default_factory=dict)
    evaluated_on: str = "test"
    report_dir: str | None = None
    selection: Selection | None = None
    task: object = None

    @property
    def metric(self) -> str:
        """The metric ``gain`` compares: accuracy, or the task's selection metric."""
        return "accuracy" if self.task is None else self.task.selection

    @property
    def gain(self) -> float:
        """The recipe's student minus tuned scratch on ``evaluated_on``, in ``metric``
        (accuracy; for an error such as MSE a negative gain is an improvement)."""
        values = self.table.set_index("model")[self.metric]
        return float(values[RECIPE] - values[SCRATCH])

    @property
    def validation_gain(self) -> float:
        """The same difference on the validation split (never worse than 0 by
        construction)."""
        values = self.table.set_index("model")[f"validation_{self.metric}"]
        return float(values[RECIPE] - values[SCRATCH])


def with_validation(data, fraction=DEFAULTS.validation_fraction, seed=DEFAULTS.seed):
    """``data`` itself if it has a ``"validation"`` split, else a copy whose training split
    gives a stratified, seeded ``fraction`` of each class to ``"validation"``.

    The preprocessing (vocabulary, normalisation statistics) stays the one fitted on the
    whole training split; load with ``validation_fraction`` to fit it on the rest only.
    """
    from kdzoo.datasets.arrays import carve_validation

    if isinstance(data, ArrayDataset):
        return data.with_validation(fraction, seed)
    if "validation" in data.arrays:
        return data
    arrays = carve_validation(data.arrays, data.name, seed, fraction)
    copy = dataclasses.replace(data, arrays=arrays)
    copy.splits = {**data.splits, **{s: copy.pipeline(s) for s in ("train", "validation")}}
    copy.num_examples = {s: len(a["label"]) for s, a in arrays.items()}
    return copy


def run(
    teacher,
    student,
    data,
    *,
    candidates=None,
    scratch=None,
    teacher_epochs=DEFAULTS.teacher_epochs,
    epochs=DEFAULTS.epochs,
    stopping=None,
    batch_size=DEFAULTS.batch_size,
    learning_rate=DEFAULTS.learning_rate,
    optimizer=DEFAULTS.optimizer,
    seed=DEFAULTS.seed,
    teacher_inputs=None,
    student_inputs=None,
    cache_teacher=True,
    backup_dir=None,
    strategy=None,
    callbacks=(),
    run_dir=None,
    tensorboard=False,
    verbose="auto",
    jit_compile="auto",
    steps_per_execution=1,
    distil_margin_se=DEFAULTS.distil_margin_se,
    task=None,
) -> RecipeResult:
    """The recipe (see the module docstring).

    Args:
        teacher, student: the models; ``student`` is untrained (its weights are every
            student's start). Build them inside ``strategy.scope()`` under a strategy.
        data: a ``kdzoo.datasets.LoadedDataset`` (``kdzoo.datasets.load``, or one built
            from your own arrays), possibly with an unlabelled ``"transfer"`` split
            (``kdzoo.datasets.with_transfer``). Its training pipeline's ``augment`` option
            decides between cached and online teacher outputs. Or an ``ArrayDataset``
            (``kdzoo.datasets.from_numpy``: model-ready NumPy arrays, no augmentation),
            which trains on any Keras backend, without TensorFlow; there, backups,
            ``strategy`` and ``tensorboard`` still need TensorFlow.
        candidates: distillation settings (``Candidate`` or spec strings). Defaults to
            ``DEFAULTS.candidates`` (a binary or multi-label task:
            ``DEFAULTS.multi_label_candidates``; regression: ``regression_candidates``);
            ``()`` trains scratch only.
        scratch: the scratch tries. Defaults to ``scratch_tries(len(candidates))`` (at
            least one; without label smoothing for regression).
        teacher_epochs: the teacher's epoch budget; 0 keeps the teacher as given.
        epochs: each student's epoch budget.
        learning_rate, optimizer: every phase's starting rate and optimizer. Default to
            ``DEFAULTS``'.
        stopping: ``phases.Stopping`` (patience, plateau). Defaults to ``DEFAULTS``'.
        batch_size: the global batch size (split over replicas by tf.distribute).
        seed: the data order of each epoch (``epoch_batches``) and the validation carve.
        teacher_inputs, student_inputs: batch keys of each model. Default: input names.
        cache_teacher: compute the teacher's outputs once when the training data is not
            augmented. Defaults to True.
        backup_dir: a folder for per-phase backups; a killed run resumes where it
            stopped and finished phases are not run again (``distil`` manages it).
        strategy: the tf.distribute strategy the models were built under.
        callbacks: extra Keras callbacks for every distillation candidate.
        run_dir: where ``write_report`` writes the report (tables and figure).
        tensorboard: also write TensorBoard logs to ``<run_dir>/logs/<phase>``.
        verbose, jit_compile, steps_per_execution: for every ``fit``.
        distil_margin_se: the best distillation candidate is the recipe's student only if
            it beats the tuned scratch student on validation by more than this many
            standard errors of the paired difference (step 6). Defaults to
            ``DEFAULTS.distil_margin_se`` (1, the one-standard-error rule); 0 takes any gain.
        task: a ``kdzoo.tasks.Task``. Defaults to ``data.task`` (None: single-label
            classification, selected on accuracy). Binary, multi-label and regression
            tasks train on their label loss, stop on and select by ``task.selection``
            (e.g. macro ROC AUC, MSE), with the standard error of ``paired_metric_gain``,
            and report ``task.report``'s metrics (regression in the targets' own units).

    Returns:
        A ``RecipeResult``.
    """
    on_arrays = isinstance(data, ArrayDataset)
    if not on_arrays:
        require_tensorflow("The recipe on tf.data pipelines (a LoadedDataset)")
    elif strategy is not None:
        raise ValueError(
            "kdzoo.recipe.run on an ArrayDataset trains on one device; under a tf.distribute "
            "strategy pass a LoadedDataset (tf.data pipelines), which it shards."
        )
    elif not is_tensorflow() and (backup_dir or tensorboard):
        require_tensorflow("`backup_dir` and `tensorboard` (tf.io file system, summaries)")
    start = time.perf_counter()
    if on_arrays:
        chief = True
    else:
        import tensorflow as tf

        from kdzoo import distribute

        strategy = strategy or tf.distribute.get_strategy()
        chief = distribute.is_chief(strategy)
    if task is not None and getattr(data, "task", None) not in (None, task):
        raise ValueError(
            f"`task` {task} differs from the data's {data.task}, which its pipelines feed "
            "the labels with; leave `task` out to use the data's."
        )
    task = _recipe_task(task if task is not None else getattr(data, "task", None))
    if candidates is None:
        candidates = default_candidates(task)
    distil_candidates = parse_candidates(candidates)
    for candidate in distil_candidates:  # a term the task cannot train fails before training
        candidate.loss_terms(task)
    if scratch is None:
        smoothing = task is None or task.kind != "regression"
        scratch = scratch_tries(max(1, len(distil_candidates)), learning_rate, smoothing)
    scratch = parse_candidates(scratch)
    bad = [c.name for c in scratch if c.distils] + [
        c.name for c in distil_candidates if not c.distils
    ]
    if bad:
        raise ValueError(
            f"Candidates in the wrong list: {', '.join(bad)} (scratch tries go in `scratch`, "
            "distillation settings in `candidates`)."
        )
    if tensorboard and not run_dir:
        raise ValueError("tensorboard=True writes under run_dir; pass run_dir.")
    margin = distil_margin_se
    if isinstance(margin, bool) or not (isinstance(margin, int | float) and 0 <= margin < 1e9):
        raise ValueError(f"`distil_margin_se` must be a number >= 0; got {distil_margin_se!r}.")
    if run_dir and chief:
        from kdzoo.recipe.report import claim_run_dir

        claim_run_dir(run_dir)
    teacher_inputs = tuple(teacher_inputs or phases.input_names(teacher))
    student_inputs = tuple(student_inputs or phases.input_names(student))
    data = with_validation(data, seed=seed)
    augmented = bool(data.options.get("augment"))
    num_rows = len(data.arrays["train"]["label"])
    if num_rows < batch_size:
        raise ValueError(
            f"{data.name} has {num_rows} training examples, fewer than batch_size={batch_size}."
        )
    # Rows in order: unbatched tf.data rows, or {key: array} for an ArrayDataset.
    rows = _ordered_rows(data, "train")
    validation = data.pipeline("validation", training=False)
    # With a transfer set the candidates distil on the training rows and the unlabelled
    # transfer rows; the teacher and scratch never see rows without a label.
    distil_split = TRAIN_AND_TRANSFER if TRANSFER in data.arrays else "train"
    sizes = {s: len(data.split_arrays(s)["label"]) for s in {"train", distil_split}}
    history, seconds, models, epochs_run, distillers = {}, {}, {}, {}, {}

    def fit_phase(
        name, train_fn, target, *args, rows=rows, split="train", validation=validation, **kwargs
    ):
        """Trains one phase (resumably under ``backup_dir``); ``target`` gets the weights."""
        backup = os.path.join(backup_dir, phase_folder(name)) if backup_dir else None
        done = _read_done(backup)
        if done is not None:  # finished in an earlier run: its final weights, no training
            target.set_weights(load_weights_npz(os.path.join(backup, _FINAL)))
            history[name], seconds[name] = done["history"], done["seconds"]
            epochs_run[name] = []
            return None
        began = time.perf_counter()
        first = 0
        if backup:
            from kdzoo.recipe.backup import ResumableBackup, resume_epoch

            first = resume_epoch(backup)
        budget = kwargs.pop("epochs")
        if augmented:
            batches, steps = data.pipeline(split, training=True, batch_size=batch_size), None
        elif on_arrays:
            from kdzoo.data.batches import ArrayBatches

            x = {k: v for k, v in rows.items() if k != "label"}
            batches = ArrayBatches(
                x, rows["label"], batch_size=batch_size, seed=seed, first_epoch=first, epochs=budget
            )
            steps = batches.steps_per_epoch
        else:
            from kdzoo.recipe.batching import epoch_batches

            batches, steps = epoch_batches(rows, sizes[split], batch_size, seed, first, budget)
        extra = [ResumableBackup(backup, first, strategy)] if backup else []
        if tensorboard and chief:
            extra.append(
                keras.callbacks.TensorBoard(os.path.join(run_dir, "logs", phase_folder(name)))
            )
        epoch_log = EpochLog()
        out = train_fn(
            *args,
            batches,
            epochs=budget,
            steps_per_epoch=steps,
            validation=validation,
            stopping=stopping,
            state_dir=backup,
            is_chief=chief,
            learning_rate=kwargs.pop("learning_rate", learning_rate),
            optimizer=optimizer,
            verbose=verbose,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
            callbacks=[*extra, *kwargs.pop("callbacks", ()), epoch_log],
            **kwargs,
        )
        fitted = out if isinstance(out, keras.callbacks.History) else out.history
        history[name] = {k: [float(v) for v in vs] for k, vs in fitted.history.items()}
        seconds[name] = time.perf_counter() - began
        epochs_run[name] = epoch_log.epochs
        if backup and chief:
            save_weights_npz(os.path.join(backup, _FINAL), target.get_weights())
            _write_done(backup, {"history": history[name], "seconds": seconds[name]})
        return out

    initial = phases.same_initial_weights(student)
    if teacher_epochs:
        fit_phase(
            "teacher",
            phases.train_teacher,
            teacher,
            teacher,
            epochs=teacher_epochs,
            **_task_option(task),
        )
    distil_rows, distil_validation = rows, validation
    if distil_split != "train":
        distil_rows = _ordered_rows(data, distil_split)
    if not (augmented or not cache_teacher or not distil_candidates):
        began = time.perf_counter()
        features = _teacher_features(distil_candidates, task)
        if on_arrays:
            distil_rows = _arrays_with_teacher_outputs(
                distil_rows, teacher, teacher_inputs, features
            )
            distil_validation = data.pipeline(
                "validation",
                training=False,
                batch_size=256,
                extras={
                    TEACHER_OUTPUTS: _arrays_with_teacher_outputs(
                        data.split_arrays("validation"), teacher, teacher_inputs, features
                    )[TEACHER_OUTPUTS]
                },
            )
        else:
            import tensorflow as tf

            distil_rows = _with_teacher_outputs(
                data, distil_split, distil_rows, teacher, teacher_inputs, features
            )
            distil_validation = _with_teacher_outputs(
                data, "validation", validation.unbatch(), teacher, teacher_inputs, features
            )
            batches = -(-len(data.arrays["validation"]["label"]) // 256)
            distil_validation = distil_validation.batch(256).cache()
            # A known length: Keras warns "ran out of data" after a dataset of unknown length.
            distil_validation = distil_validation.apply(
                tf.data.experimental.assert_cardinality(batches)
            )
        seconds["teacher outputs"] = time.perf_counter() - began

    for candidate in scratch:
        model = phases.same_initial_weights(initial)
        fit_phase(
            candidate.name,
            phases.train_supervised,
            model,
            model,
            phase=candidate.name,
            epochs=epochs,
            label_smoothing=candidate.label_smoothing,
            **_rate(candidate),
            **_task_option(task),
        )
        models[candidate.name] = model
    for candidate in distil_candidates:
        model = phases.same_initial_weights(initial)
        distiller = fit_phase(
            candidate.name,
            phases.distil_student,
            model,
            teacher,
            model,
            rows=distil_rows,
            split=distil_split,
            validation=distil_validation,
            phase=f"distil {candidate.name}",
            terms=candidate.loss_terms(task),
            teacher_inputs=teacher_inputs,
            student_inputs=student_inputs,
            epochs=epochs,
            callbacks=callbacks,
            **_rate(candidate),
            **_task_option(task),
        )
        models[candidate.name] = model
        if distiller is not None:
            distillers[candidate.name] = distiller

    # Selection: validation only (step 6).
    from kdzoo.evaluation import metrics_from_logits, predict_with_labels

    tried = [*scratch, *distil_candidates]
    scores, correct, outputs = {}, {}, {}
    for candidate in tried:
        logits, labels = predict_with_labels(models[candidate.name], validation)
        if task is None:
            scores[candidate.name] = metrics_from_logits(logits, labels)
            correct[candidate.name] = np.argmax(logits, axis=-1) == labels
        else:
            labels = task.denormalise(labels)
            scores[candidate.name] = task.report(logits, labels)
            outputs[candidate.name] = logits
    metric = "accuracy" if task is None else task.selection
    best_scratch = _best(scratch, scores, task)
    chosen, selection = best_scratch, None
    if distil_candidates:
        best_distil = _best(distil_candidates, scores, task)
        if task is None:
            selection = decide(
                best_scratch.describe(),
                best_distil.describe(),
                correct[best_scratch.name],
                correct[best_distil.name],
                distil_margin_se,
            )
        else:
            gain, se = paired_metric_gain(
                task, outputs[best_distil.name], outputs[best_scratch.name], labels, seed
            )
            selection = Selection(
                scratch=best_scratch.describe(),
                distilled=best_distil.describe(),
                gain=gain,
                standard_error=se,
                margin_se=float(distil_margin_se),
                # A margin of 0 takes any gain, even where the standard error is unknown.
                chose_distilled=bool(gain > 0 and (not distil_margin_se or gain > margin * se)),
                metric=metric,
            )
        chosen = best_distil if selection.chose_distilled else best_scratch
    teacher_validation = _metrics(teacher, validation, task)

    # Test, last: read for the first time here.
    split = "test" if "test" in data.arrays else "validation"
    final = data.pipeline(split, training=False)
    rows_out = []
    reported = ("accuracy", "macro_f1") if task is None else task.metric_names()
    for candidate in tried:
        metrics = _metrics(models[candidate.name], final, task) if split == "test" else {}
        name = candidate.name
        rows_out.append(
            {
                "candidate": name,
                "kind": "distil" if candidate.distils else "scratch",
                "setting": candidate.describe(),
                "chosen": candidate is chosen,
                **{f"validation_{m}": scores[name][m] for m in reported},
                **{f"test_{m}": metrics.get(m, np.nan) for m in reported},
                "epochs": len(history[name].get("loss", ())),
                "best_epoch": _best_epoch(history[name], phases.monitor(task)),
                "seconds": seconds[name],
                "train_examples": sizes[distil_split if candidate.distils else "train"],
                "params": models[name].count_params(),
            }
        )
    table = phases.compare(
        [
            (TEACHER, teacher, teacher_inputs),
            (SCRATCH, models[best_scratch.name], student_inputs),
            (RECIPE, models[chosen.name], student_inputs),
        ],
        final,
        data.num_classes,
        task=task,
    )
    table.insert(
        3,
        f"validation_{metric}",
        [
            teacher_validation[metric],
            scores[best_scratch.name][metric],
            scores[chosen.name][metric],
        ],
    )
    table.insert(4, "setting", ["", best_scratch.describe(), chosen.describe()])
    seconds["total"] = time.perf_counter() - start
    result = RecipeResult(
        table=table,
        candidates=pd.DataFrame(rows_out),
        chosen=chosen,
        teacher=teacher,
        scratch=models[best_scratch.name],
        student=models[chosen.name],
        history=history,
        seconds=seconds,
        models=models,
        epochs_run=epochs_run,
        distillers=distillers,
        evaluated_on=split,
        selection=selection,
        task=task,
    )
    log.info(
        "Recipe: chose %s (validation %s %.4f).%s",
        chosen.describe(),
        metric,
        scores[chosen.name][metric],
        f" {selection.describe()}." if selection else "",
    )
    if run_dir and chief:
        from kdzoo.recipe.report import write_report

        result.report_dir = str(write_report(result, run_dir, data=data, split=split))
    return result


def _rate(candidate):
    return {} if candidate.learning_rate is None else {"learning_rate": candidate.learning_rate}


def _recipe_task(task):
    """The run's task (``run``'s ``task``, else the data's); None for single-label
    classification, which the recipe selects on accuracy."""
    if task is None or task.kind != "classification":
        return task
    if task.selection != "accuracy":
        raise ValueError(
            f"The recipe selects classification students on accuracy; the task asks for "
            f"{task.selection!r}."
        )
    return None


def default_candidates(task):
    """The recipe's default candidate specs for ``task`` (None: single-label
    classification): ``DEFAULTS.candidates``, ``.regression_candidates`` or
    ``.multi_label_candidates``."""
    if task is None:
        return DEFAULTS.candidates
    if task.kind == "regression":
        return DEFAULTS.regression_candidates
    return DEFAULTS.multi_label_candidates


def _task_option(task):
    return {} if task is None else {"task": task}


def phase_folder(name) -> str:
    """A folder name for phase ``name`` (a candidate spec may hold ``:``, ``@``, ``,``)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    if safe == name:
        return safe
    import hashlib

    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _read_done(backup):
    if not backup:
        return None
    import tensorflow as tf

    path = os.path.join(backup, _DONE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        try:
            return json.load(f)
        except ValueError as err:
            from kdzoo.recipe.backup import BackupError

            raise BackupError(
                f"{path} is not a finished-phase record ({err}); remove {backup} to run this "
                "phase again."
            ) from err


def _write_done(backup, record):
    import tensorflow as tf

    path = os.path.join(backup, _DONE)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write(json.dumps(record))
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def _teacher_features(candidates, task=None) -> tuple:
    names = []
    for candidate in candidates:
        for term in candidate.loss_terms(task):
            if term.target == "teacher" and term.teacher_output != "logits":
                names.append(term.teacher_output)
    return tuple(dict.fromkeys(names))


def _ordered_rows(data, split):
    """``split``'s rows in order: ``{key: array}`` of an ``ArrayDataset``, or the unbatched
    tf.data pipeline of a ``LoadedDataset``."""
    if isinstance(data, ArrayDataset):
        return data.split_arrays(split)
    return data.pipeline(split, training=False).unbatch()


def _arrays_with_teacher_outputs(rows, teacher, teacher_inputs, features):
    """``rows`` (``{key: array}``) with the teacher's outputs under ``TEACHER_OUTPUTS``,
    computed once: ``kdzoo.distillation.arrays_with_teacher_outputs`` on any backend."""
    from kdzoo.distillation.cache import arrays_with_teacher_outputs

    x = {k: v for k, v in rows.items() if k != "label"}
    inputs = select_inputs(x, teacher_inputs, "teacher")
    cached = arrays_with_teacher_outputs(teacher, inputs, features=features, batch_size=256)
    # float32, as the tf.data route caches them (a mixed-precision teacher's features).
    outputs = {k: np.asarray(v, np.float32) for k, v in cached[TEACHER_OUTPUTS].items()}
    return {**rows, TEACHER_OUTPUTS: outputs}


def _with_teacher_outputs(data, split, rows, teacher, teacher_inputs, features):
    """``rows`` (split ``split``'s, unbatched, in order) with the teacher's outputs
    (``TEACHER_OUTPUTS``) computed once, riding with each row."""
    import tensorflow as tf

    from kdzoo.models.layers import feature_model

    tap = feature_model(teacher, features)
    parts = {}
    for x, *_ in data.pipeline(split, training=False):  # once: eager calls are enough
        for name, value in tap(select_inputs(x, teacher_inputs), training=False).items():
            parts.setdefault(name, []).append(np.asarray(value, dtype=np.float32))
    cached = {name: np.concatenate(values) for name, values in parts.items()}
    for name, value in cached.items():
        if not np.isfinite(value).all():
            raise ValueError(f"The teacher's {name!r} has non-finite values on {split} rows.")
    extra = tf.data.Dataset.from_tensor_slices(cached)

    @tf.autograph.experimental.do_not_convert
    def attach(row, teacher_outputs):
        x, *rest = row
        return ({**x, TEACHER_OUTPUTS: teacher_outputs}, *rest)

    return tf.data.Dataset.zip(rows, extra).map(attach)


def _metrics(model, dataset, task=None):
    """Classification metrics of ``model`` on ``dataset`` (it reads its own input keys), or
    the ``task``'s report."""
    from kdzoo.evaluation import classification_metrics, task_metrics

    if task is None:
        return classification_metrics(model, dataset)
    return task_metrics(model, dataset, task)


def _best(candidates, scores, task=None):
    best = candidates[0]
    for candidate in candidates[1:]:
        if task is None:
            if scores[candidate.name]["accuracy"] > scores[best.name]["accuracy"]:
                best = candidate
        elif task.better(scores[candidate.name][task.selection], scores[best.name][task.selection]):
            best = candidate
    return best


def _best_epoch(history, monitor="val_accuracy"):
    from kdzoo.recipe.callbacks import _mode

    values = history.get(monitor)
    if not values:
        return None
    return int(np.argmin(values) if _mode(monitor) == "min" else np.argmax(values)) + 1
