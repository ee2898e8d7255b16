"""``Distiller``: a ``keras.Model`` that trains a student against one or several frozen teachers.

The Distiller is thin: it routes each model's inputs (``kdzoo.data.select_inputs``), gets
the teachers' outputs from its ``TeacherEnsemble`` (out of the gradient), sums the weighted
``LossTerm``s, and lets Keras update the student (and any adapters or teacher gate). The
objective lives in ``compute_loss`` and the metrics in ``compute_metrics``, so Keras' own
train and test steps run it on each backend: TensorFlow (with tf.distribute), JAX and
PyTorch.
"""

from __future__ import annotations

import copy
import logging

import keras
from keras import ops

from kdzoo.backend import scale_for_replicas, unscale_for_replicas
from kdzoo.data.routing import check_input_keys, select_inputs
from kdzoo.distillation.teachers import TeacherEnsemble
from kdzoo.distillation.terms import LossTerm, default_terms
from kdzoo.labels import UNLABELLED, labelled_weights
from kdzoo.losses import teacher_with_labels
from kdzoo.models.layers import feature_model

log = logging.getLogger("kdzoo")

#: The arguments that built the default objective before ``terms`` took their place, and
#: their defaults then. Configs saved by that code hold them; ``from_config`` turns them into
#: ``terms`` with these values where a config lacks one.
LEGACY_OBJECTIVE_DEFAULTS = {
    "temperature": 4.0,
    "ce_weight": 1.0,
    "kd_weight": 1.0,
    "feature_weight": 0.0,
    "teacher_feature": "embedding",
    "student_feature": "embedding",
    "feature_loss": "mse",
}
_FEATURE_ARGUMENTS = ("teacher_feature", "student_feature", "feature_loss")


def _reads_labels(term) -> bool:
    return term.target == "labels" or term.needs_labels


class _Views:
    """Functional views of a model that also return its named features. They share the
    model's layers; held in a plain object so Keras tracks each variable once, through the
    model itself (a tracked view would add its layers to the Distiller a second time)."""

    #: Forward passes kept at most (the oldest goes first). ``compute_loss`` takes each one
    #: back within its step (MirroredStrategy's replica threads switch only at merge calls,
    #: so one is outstanding at a time); ``predict``'s batches need no loss and only these
    #: few of them stay referenced.
    KEPT = 4

    def __init__(self, student):
        self.student = student
        self.outputs = {}

    def keep(self, outputs):
        """Keeps one forward pass's features for the ``compute_loss`` of the same step
        (nothing when the terms read the logits only: ``y_pred`` is all they need)."""
        if len(outputs) == 1:
            return
        while len(self.outputs) >= self.KEPT:
            del self.outputs[next(iter(self.outputs))]
        self.outputs[id(outputs["logits"])] = outputs


def _refuse_objective_arguments(kwargs):
    given = [name for name in LEGACY_OBJECTIVE_DEFAULTS if name in kwargs]
    if given:
        arguments = ", ".join(f"{name}={kwargs[name]!r}" for name in given)
        raise TypeError(
            "Distiller takes its objective as `terms` only; "
            + ", ".join(f"`{name}`" for name in given)
            + f" went to kdzoo.distillation.default_terms: pass "
            f"terms=kdzoo.distillation.default_terms({arguments})."
        )


@keras.saving.register_keras_serializable(package="kdzoo")
class Distiller(keras.Model):
    """Distils one or several frozen teachers into ``student``, possibly across modalities.

    The objective is a sum of weighted ``LossTerm``s, by default ``default_terms()``:

    ``L = 0.5 · CE(y, s) + 0.5 · τ² · KL(softmax(t/τ) ‖ softmax(s/τ))``,  ``τ = 4``

    with ``s``, ``t`` the student and teacher logits. The teachers run with ``training=False``
    and ``trainable=False``, their outputs out of the gradient (``stop_gradient``);
    ``call``/``predict`` return the student's logits. Keras' own ``train_step`` and
    ``test_step`` drive it through ``compute_loss``/``compute_metrics`` on every backend.
    Each model reads only its own input keys from the batch dict, so a teacher on
    ``{"image", "audio"}`` can teach a student on ``{"audio"}`` from one dataset.

    **Several teachers.** Pass ``teacher=[t_1, ..., t_N]`` (distinct names; each reads its
    own input keys), or a ``TeacherEnsemble``. Their class distributions are mixed per
    example, ``p = Σ_i w_i · softmax(t_i)``, and the teacher ``"logits"`` become ``log p``,
    so every logits term consumes the mixture unchanged; the weights come from
    ``teacher_combination`` (see ``TeacherEnsemble``). With ``"gate"`` the gate
    (``distiller.teacher_gate``, saved with the Distiller, never part of the student) is
    trained by its own loss ``gate_weight · CE(y, log p)``, reported as ``"gate_loss"`` and
    included in ``"loss"``.

    A term's ``teacher_output`` names a feature of one teacher as ``"<teacher name>/<feature>"``
    (``"<teacher name>/logits"`` is that teacher's own logits); plain ``"logits"`` is the
    mixture; a plain feature name is accepted when exactly one teacher has it. Cached
    outputs (``x["teacher_outputs"]``, see ``kdzoo.distillation.with_teacher_outputs``) then
    hold each teacher's outputs under the qualified names.

    Args:
        teacher: a built ``keras.Model`` returning logits, a list of them (several teachers,
            all with logits of one shape), or a ``TeacherEnsemble``. Keyword-only (so
            teacher and student cannot be swapped by position).
        student: a built ``keras.Model`` returning logits of the same shape.
        terms: a list of ``LossTerm``. Defaults to None: ``default_terms()``.
        teacher_inputs, student_inputs: the batch keys each model reads. Default: the
            model's own input names. A mismatch with the model's inputs raises. With several
            teachers, ``teacher_inputs`` holds one entry (a key or tuple of keys) per teacher.
        teacher_combination: ``"fixed"``, ``"entropy"`` or ``"gate"``; several teachers only.
            Defaults to ``"fixed"``.
        teacher_weights: with ``"fixed"``, one weight ``>= 0`` per teacher (normalised to sum
            1). Defaults to None (uniform).
        confidence_temperature: ``T > 0`` of the ``"entropy"`` weights. Defaults to 1.0.
        gate_weight: weight ``>= 0`` of the ``"gate"``'s cross-entropy. Defaults to 1.0.
        task: a ``kdzoo.tasks.Task`` (or its ``to_dict()``): what the labels and outputs
            are. It decides which rows count as unlabelled (``kdzoo.labels``: a negative
            class id, a negative multi-label entry, a NaN regression target), the default
            ``terms`` (``default_terms(task=...)``) and the checks of the student's output
            width. Defaults to None: single-label classification, as before tasks existed.
            Several teachers and a teacher gate mix class distributions, so they need a
            classification task.

    Example:

    >>> teacher, student = kdzoo.models.build_pair("av_to_audio")
    >>> distiller = kdzoo.Distiller(
    ...     teacher=teacher,
    ...     student=student,
    ...     terms=kdzoo.distillation.default_terms(temperature=4.0, ce_weight=0.5, kd_weight=0.5),
    ... )
    >>> distiller.compile(optimizer="adam", metrics=["accuracy"])
    >>> distiller.fit(train_ds, epochs=5)   # batches: ({"image":…, "audio":…}, label)
    >>> distiller.student.save("student.keras")

    Two single-modality teachers and a learned gate:

    >>> distiller = kdzoo.Distiller(
    ...     teacher=[image_teacher, audio_teacher],
    ...     student=kdzoo.models.build("audio_crnn", "student"),
    ...     teacher_combination="gate",
    ... )
    >>> distiller.teacher_weights_for(x)   # [batch, 2]
    """

    def __init__(
        self,
        *,
        teacher,
        student,
        terms=None,
        teacher_inputs=None,
        student_inputs=None,
        teacher_combination="fixed",
        teacher_weights=None,
        confidence_temperature=1.0,
        gate_weight=1.0,
        task=None,
        **kwargs,
    ):
        _refuse_objective_arguments(kwargs)
        super().__init__(**kwargs)
        task = _task(task)
        ensemble = self._validate_teachers(
            teacher,
            student,
            inputs=teacher_inputs,
            combination=teacher_combination,
            weights=teacher_weights,
            confidence_temperature=confidence_temperature,
            gate_weight=gate_weight,
        )
        terms = self._validate_terms(terms, task)
        _check_task(task, ensemble, student)
        _check_terms_for_task(terms, task)
        self.task = task
        self.ensemble = ensemble
        # Tracked in this order (teachers, student, adapters, gate): the weights file of a
        # .keras archive is laid out by it, and archives saved before keep loading.
        self.teachers = ensemble.teachers
        self.student = student
        self.student_inputs = check_input_keys(student, student_inputs, "student")
        self.loss_terms = terms
        sources = ensemble.read_outputs(terms)
        self._views = _Views(feature_model(student, [t.student_output for t in terms]))
        self.adapters = self._build_adapters(terms, sources)
        self.teacher_gate = ensemble.gate
        self.gate_tracker = keras.metrics.Mean(name="gate_loss") if ensemble.gate else None
        # Weights are variables so that schedules can change them without retracing.
        self.term_weights = [
            keras.Variable(t.weight, dtype="float32", trainable=False, name=f"{t.name}_weight")
            for t in terms
        ]
        self.term_trackers = [keras.metrics.Mean(name=f"{t.name}_loss") for t in terms]
        # The losses' own variables (the temperatures a schedule assigns), tracked so that
        # every backend's step reads them as state: JAX's compiled step would otherwise
        # keep the value they had when it was traced. Never trained, and not in the weights
        # file (``save_own_variables``): the terms' configs hold them.
        self.loss_variables = _untrainable([v for t in terms for v in _variables_of(t.loss)])
        self.built = True

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _validate_teachers(teacher, student, **ensemble_arguments):
        if not isinstance(student, keras.Model) or not student.built:
            raise TypeError(f"`student` must be a built keras.Model; got {student!r}.")
        if isinstance(teacher, TeacherEnsemble):
            given = [k for k, v in ensemble_arguments.items() if v != _ENSEMBLE_DEFAULTS[k]]
            if given:
                raise ValueError(
                    f"`teacher` is a TeacherEnsemble, which already holds "
                    f"{', '.join(f'`{_ENSEMBLE_ARGUMENTS[k]}`' for k in given)}; set them on "
                    "the ensemble."
                )
            ensemble = teacher
        else:
            models = teacher if isinstance(teacher, list | tuple) else [teacher]
            if any(t is student for t in models):
                raise ValueError("`teacher` and `student` must be different models.")
            ensemble = TeacherEnsemble(teacher, **ensemble_arguments)
        if any(t is student for t in ensemble.teachers):
            raise ValueError("`teacher` and `student` must be different models.")
        largest = max(t.count_params() for t in ensemble.teachers)
        if largest and student.count_params() > largest:  # 0: a file_teacher
            log.warning(
                "The student (%d params) is larger than the teacher (%d params): check that "
                "teacher= and student= are not swapped.",
                student.count_params(),
                largest,
            )
        return ensemble

    @staticmethod
    def _validate_terms(terms, task=None):
        terms = default_terms(task=task) if terms is None else list(terms)
        bad = [t for t in terms if not isinstance(t, LossTerm)]
        if bad:
            raise TypeError(f"`terms` must be a list of kdzoo.LossTerm; got {bad[0]!r}.")
        names = [t.name for t in terms]
        if not terms or len(set(names)) != len(names):
            raise ValueError(f"`terms` must be a non-empty list with unique names; got {names}.")
        return terms

    def _build_adapters(self, terms, sources):
        """FitNets regressors (linear maps of the student's channels to the teacher's) for
        the terms whose feature widths differ."""
        adapters = {}
        for term in terms:
            if term.target != "teacher":
                continue
            source = sources[term.teacher_output]
            output = "logits" if source is None else source[1]
            t_shape = self.ensemble.output_shape(source)
            s_shape = tuple(self._views.student.output[term.student_output].shape)
            if t_shape == s_shape or not term.needs_adapter:
                continue
            if "logits" in (output, term.student_output) or (
                len(t_shape) != len(s_shape) or t_shape[1:-1] != s_shape[1:-1]
            ):
                raise ValueError(
                    f"Term {term.name!r}: teacher {term.teacher_output!r} has shape {t_shape} "
                    f"and student {term.student_output!r} has shape {s_shape}; only the last "
                    "(channel) axis of a feature may differ."
                )
            adapter = keras.layers.Dense(t_shape[-1], name=f"{term.name}_adapter")
            adapter.build(s_shape)
            adapters[term.name] = adapter
        return adapters

    # ------------------------------------------------------------------ the ensemble's settings
    @property
    def teacher(self):
        """The teacher model, or the list of teachers."""
        return list(self.teachers) if self.ensemble.multi else self.teachers[0]

    @property
    def teacher_inputs(self):
        """The keys the teacher reads; with several teachers, one tuple per teacher."""
        return self.ensemble.inputs if self.ensemble.multi else self.ensemble.inputs[0]

    @property
    def teacher_combination(self):
        return self.ensemble.combination

    @property
    def teacher_weights(self):
        return self.ensemble.weights

    @property
    def confidence_temperature(self):
        return self.ensemble.confidence_temperature

    @property
    def gate_weight(self):
        return self.ensemble.gate_weight

    # ------------------------------------------------------------------ teachers
    def _teacher_raw(self, x):
        return self.ensemble.raw_outputs(x, route=self._route)

    def teacher_outputs(self, x):
        """Teacher logits and features for batch ``x``, keyed as the terms read them:
        cached ones if the batch carries ``x["teacher_outputs"]``, else forward passes with
        ``training=False``. With several teachers ``"logits"`` is the mixture ``log p``."""
        return self.ensemble.combine(self._teacher_raw(x))[0]

    def teacher_weights_for(self, x):
        """The per-example teacher weights ``w`` for batch ``x``, as a NumPy array.

        Args:
            x: a batch dict (or cached outputs under ``"teacher_outputs"``), as for ``fit``.

        Returns:
            ``[batch, num_teachers]``, rows summing to 1, columns in the order of
            ``distiller.teachers``; ones ``[batch, 1]`` for a single teacher.
        """
        logits = [r["logits"] for r in self._teacher_raw(x)]
        return ops.convert_to_numpy(ops.exp(self.ensemble.log_weights(logits)))

    # ------------------------------------------------------------------ routing
    def _route(self, x, keys, reader):
        return select_inputs(x, keys, reader)

    def call(self, inputs, training=None):
        """The student's logits. The features the terms read, from the same forward pass,
        are kept for ``compute_loss`` (keyed by the logits, so replicas do not mix them)."""
        outputs = self._views.student(
            self._route(inputs, self.student_inputs, "student"), training=training
        )
        self._views.keep(outputs)
        return outputs["logits"]

    # ------------------------------------------------------------------ objective
    def _objective(self, y, teacher_raw, student_out, sample_weight):
        """Returns ``(total, [term values], gate loss or None, labels)``; each value is
        replica-scaled by Keras.

        ``labels`` is ``kdzoo.labels.labelled_weights(y, sample_weight)`` (None without
        ``y``): the terms that read labels weigh ``UNLABELLED`` rows 0, the teacher terms
        weigh every row. Every term is averaged over the whole batch, so the objective is a
        per-example one and splits over replicas exactly as sample weights do.
        """
        teacher_out, mixture = self.ensemble.combine(teacher_raw)
        kind = "classification" if self.task is None else self.task.kind
        labels = None if y is None else labelled_weights(y, sample_weight, kind)
        values = []
        for term in self.loss_terms:
            prediction = student_out[term.student_output]
            if term.name in self.adapters:
                prediction = self.adapters[term.name](prediction)
            if _reads_labels(term) and labels is None:
                raise ValueError(
                    f"Loss term {term.name!r} needs labels; the batch has none (mark the "
                    f"rows without a label with kdzoo.labels.UNLABELLED = {UNLABELLED})."
                )
            if term.target == "labels":
                target = labels[0]
            else:
                target = teacher_out[term.teacher_output]
                if term.needs_labels:
                    target = teacher_with_labels(target, labels[0])
            weight = labels[1] if _reads_labels(term) else sample_weight
            values.append(term.loss(target, prediction, sample_weight=weight))
        total = ops.sum(ops.stack([w * v for w, v in zip(self.term_weights, values, strict=True)]))
        gate_loss = None
        if self.ensemble.gate is not None:
            if labels is None:
                raise ValueError(
                    "teacher_combination='gate' trains its gate on the labels; the batch has none."
                )
            gate_loss = self.ensemble.gate_loss(labels[0], mixture, sample_weight=labels[1])
            total = total + self.ensemble.gate_weight * gate_loss
        if self.student.losses:  # weight regularisers of the student
            total = total + scale_for_replicas(ops.sum(self.student.losses))
        return total, values, gate_loss, labels

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The objective for one batch, and the per-term trackers' update.

        Keras' own ``train_step``/``test_step`` call it on every backend (TensorFlow's
        ``GradientTape``, JAX's ``jax.value_and_grad`` of a stateless step, PyTorch's
        autograd), inside the differentiated function: the teachers run here, with
        ``training=False`` and their outputs out of the gradient, then the terms and any gate.
        ``y_pred`` is ``call``'s student logits; the student's features from that same forward
        pass are reused, so the student runs once per step. Keras then scales the returned
        total for mixed precision and updates the ``"loss"`` tracker, per example.
        """
        student_out = self._student_outputs(x, y_pred, training)
        total, values, gate_loss, labels = self._objective(
            y, self._teacher_raw(x), student_out, sample_weight
        )
        self._track_terms(ops.shape(y_pred)[0], values, gate_loss, labels)
        return total

    def _student_outputs(self, x, y_pred, training):
        """The student's outputs (logits and the terms' features) of the forward pass that
        returned ``y_pred``, or a fresh pass when ``y_pred`` came from elsewhere."""
        if len(self._views.student.outputs) == 1:  # the terms read the logits only
            return {"logits": y_pred}
        outputs = self._views.outputs.pop(id(y_pred), None)
        if outputs is not None and outputs["logits"] is y_pred:
            return outputs
        student_x = self._route(x, self.student_inputs, "student")
        return self._views.student(student_x, training=training)

    def _track_terms(self, batch_size, values, gate_loss, labels):
        """Updates the term trackers: the teacher terms per row, the terms that read labels
        (and the gate's loss) per labelled row. Each value is replica-scaled by Keras."""
        batch_size = ops.cast(batch_size, "float32")
        if labels is not None:
            per_labelled = batch_size / ops.maximum(labels[2], 1.0)
        for term, tracker, value in zip(self.loss_terms, self.term_trackers, values, strict=True):
            if _reads_labels(term):
                tracker.update_state(
                    unscale_for_replicas(value) * per_labelled, sample_weight=labels[2]
                )
            else:
                tracker.update_state(unscale_for_replicas(value), sample_weight=batch_size)
        if gate_loss is not None:
            self.gate_tracker.update_state(
                unscale_for_replicas(gate_loss) * per_labelled, sample_weight=labels[2]
            )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The compiled metrics on the student's logits, over the labelled rows only
        (``kdzoo.labels.labelled_weights``); a batch without labels updates none."""
        compiled = self._compile_metrics
        if y is not None and compiled is not None:
            kind = "classification" if self.task is None else self.task.kind
            labels = labelled_weights(y, sample_weight, kind)
            compiled.update_state(labels[0], y_pred, labels[1])
        if compiled is None or compiled.built:
            return self.get_metrics_result()
        # Data without labels never builds the compiled metrics (Keras builds them from a
        # first batch's labels): report the losses only.
        return {m.name: m.result() for m in self.metrics if m is not compiled}

    def compile(self, optimizer="adam", loss=None, metrics=None, weighted_metrics=None, **kwargs):
        """Like ``keras.Model.compile``; ``metrics`` are computed on the student's logits.

        Every metric is weighted: Keras passes sample weights to ``weighted_metrics`` only,
        and the Distiller's sample weights are what leave rows without a label out
        (``kdzoo.labels``), so ``metrics`` join ``weighted_metrics``.

        The loss is defined by the constructor's ``terms`` (so it is saved with the model),
        never here.
        """
        if loss is not None:
            raise ValueError(
                "Distiller.compile() takes no `loss`: pass `terms` (e.g. "
                "kdzoo.distillation.default_terms(temperature=..., ce_weight=...)) to the "
                "Distiller constructor so they are saved with the model."
            )
        weighted = [*(metrics or ()), *(weighted_metrics or ())]
        super().compile(optimizer=optimizer, weighted_metrics=weighted or None, **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for models that override compile(); ours only rejects `loss`, so
        # restore the optimizer and metrics (and the optimizer's slots) when loading.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        self.optimizer.build(self.trainable_variables)

    # ------------------------------------------------------------------ serialisation
    def _without_loss_variables(self, variables):
        skip = {id(v) for v in self.loss_variables}
        return [v for v in variables if id(v) not in skip]

    def _saved_variables(self):
        """The Distiller's own variables in its weights file: all but ``loss_variables``,
        whose values the terms' configs hold (so files saved before they were tracked
        load, and the values cannot disagree)."""
        return self._without_loss_variables(
            self._trainable_variables + self._non_trainable_variables
        )

    def set_weights(self, weights):
        """Like ``keras.Model.set_weights``, and also takes the list of a Distiller made
        before ``loss_variables`` were tracked (one entry short per temperature, e.g. a
        recipe backup's best weights): the temperatures then keep their values."""
        legacy = self._without_loss_variables(self.weights)
        if len(weights) == len(self.weights) or len(weights) != len(legacy):
            return super().set_weights(weights)
        for variable, value in zip(legacy, weights, strict=True):
            if tuple(variable.shape) != tuple(value.shape):
                raise ValueError(
                    f"Weight {variable.path!r} has shape {tuple(variable.shape)}; got "
                    f"{tuple(value.shape)}."
                )
            variable.assign(value)
        return None

    def save_own_variables(self, store):
        for i, variable in enumerate(self._saved_variables()):
            store[f"{i}"] = variable

    def load_own_variables(self, store):
        variables = self._saved_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Distiller {self.name!r} holds {len(variables)} variables of its own (the "
                f"term weights); the weights file has {len(store.keys())}."
            )
        for i, variable in enumerate(variables):
            variable.assign(store[f"{i}"])

    def get_config(self):
        config = super().get_config()
        ensemble = self.ensemble.get_config()
        config.update(
            {
                "trainable": self.trainable,
                "teacher": ensemble["teachers"],
                "student": keras.saving.serialize_keras_object(self.student),
                "terms": [keras.saving.serialize_keras_object(t) for t in self.loss_terms],
                "teacher_inputs": ensemble["inputs"],
                "student_inputs": list(self.student_inputs),
                "teacher_combination": ensemble["combination"],
                "teacher_weights": ensemble["weights"],
                "confidence_temperature": ensemble["confidence_temperature"],
                "gate_weight": ensemble["gate_weight"],
                "task": None if self.task is None else self.task.to_dict(),
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Builds a Distiller from ``get_config()``, or from a config saved by older kdzoo
        (with ``temperature``, ``ce_weight``... and no ``terms``, or with both): those
        arguments become ``terms``, so the model loads with the objective it was trained
        with."""
        # Keras' deserialisation consumes the nested configs: work on a copy.
        config = _terms_from_legacy_config(copy.deepcopy(config))

        def load(obj):
            if not isinstance(obj, dict):  # already an object (terms from a legacy config)
                return obj
            return keras.saving.deserialize_keras_object(obj, custom_objects=custom_objects)

        teacher = config["teacher"]
        config["teacher"] = (
            [load(t) for t in teacher] if isinstance(teacher, list) else load(teacher)
        )
        config["student"] = load(config["student"])
        if config.get("terms") is not None:
            config["terms"] = [load(t) for t in config["terms"]]
        return cls(**config)


def _variables_of(loss):
    """The ``keras.Variable`` attributes of a loss (e.g. ``temperature_variable``)."""
    return [v for v in vars(loss).values() if isinstance(v, keras.Variable)]


def _untrainable(variables):
    """``variables``, each set ``trainable=False``: a temperature shared as a plain
    ``keras.Variable(4.0)`` is trainable by default, and the student's optimizer must not
    move it."""
    for variable in variables:
        if variable.trainable:
            log.warning(
                "Loss variable %r is trainable; the Distiller sets trainable=False so the "
                "optimizer leaves it to its schedule (create it with trainable=False).",
                variable.path,
            )
            variable.trainable = False
    return variables


def _task(task):
    """``task`` as a ``kdzoo.tasks.Task`` (from itself or its ``to_dict()``), or None."""
    if task is None:
        return None
    from kdzoo.tasks import Task

    if isinstance(task, dict):
        return Task.from_dict(task)
    if not isinstance(task, Task):
        raise TypeError(f"`task` must be a kdzoo.tasks.Task or None; got {task!r}.")
    return task


def _check_task(task, ensemble, student):
    """The student's output width against ``task``; several teachers and a gate need a
    classification task."""
    if task is None:
        return
    if task.kind != "classification" and (ensemble.multi or ensemble.gate is not None):
        raise ValueError(
            f"Several teachers are mixed as class distributions; a {task.kind} task takes "
            "one teacher."
        )
    width = student.output_shape[-1] if not isinstance(student.output_shape, list) else None
    if width is not None and width != task.outputs:
        raise ValueError(
            f"The student returns {width} outputs per example; the {task.kind} task has "
            f"{task.outputs}."
        )


def _registry_name(loss):
    """The ``kdzoo.losses.get`` name of ``loss`` (of its nearest registered class), or None
    for a loss from outside the registry (e.g. a task's ``label_loss()``)."""
    from kdzoo import losses

    if isinstance(loss, losses.RegressionToTeacher):
        return f"teacher_{loss.kind}"
    # Classes, not instances: ``losses.get`` would create the temperature variables.
    by_class = {cls: name for name, cls in losses._BY_NAME.items() if isinstance(cls, type)}
    return next((by_class[c] for c in type(loss).__mro__ if c in by_class), None)


def _check_terms_for_task(terms, task):
    """Refuses a kdzoo loss on the student's outputs that ``task``'s kind cannot train
    (``kdzoo.tasks.TERMS_BY_KIND``): a softmax over a binary task's one logit is
    constant, so ``kd`` and the sparse ``ce`` are 0 and teach nothing, and independent labels
    or regression values are no class distribution. Feature losses, and losses from
    outside the registry (the task's ``label_loss()``), are not checked. Classification
    (``task=None`` too) keeps every term."""
    if task is None or task.kind == "classification":
        return
    from kdzoo.tasks import LABEL, TERMS_BY_KIND

    allowed = TERMS_BY_KIND[task.kind]
    for term in terms:
        name = _registry_name(term.loss)
        if name is None or getattr(term.loss, "compares", "logits") == "features":
            continue
        # Beyond classification the table's "ce" is the task's label loss, not this one.
        if name in allowed and name != "ce":
            continue
        kinds = [kind for kind, names in TERMS_BY_KIND.items() if name in names]
        kinds = ["classification"] if name == "ce" else kinds
        instead = [n for n in allowed if n not in (LABEL, "ce")]
        raise ValueError(
            f"Loss term {term.name!r} ({name!r}) trains {' or '.join(kinds)} students, not "
            f"a {task.kind} task's: use {', '.join(repr(n) for n in instead)} against the "
            f"teacher and task.label_loss() ({LABEL!r}) against the labels "
            "(kdzoo.tasks.TERMS_BY_KIND), as "
            "kdzoo.distillation.default_terms(task=task) does."
        )


_ENSEMBLE_DEFAULTS = {
    "inputs": None,
    "combination": "fixed",
    "weights": None,
    "confidence_temperature": 1.0,
    "gate_weight": 1.0,
}
_ENSEMBLE_ARGUMENTS = {
    "inputs": "teacher_inputs",
    "combination": "teacher_combination",
    "weights": "teacher_weights",
    "confidence_temperature": "confidence_temperature",
    "gate_weight": "gate_weight",
}


def _terms_from_legacy_config(config):
    """A config saved before ``terms`` became the only way to give the objective, as one
    with ``terms``.

    Such configs hold the seven convenience arguments (``LEGACY_OBJECTIVE_DEFAULTS``): with
    ``terms=None`` they built the objective, and they become ``default_terms(...)`` with the
    old defaults where one is missing or None (ce/kd weights 1.0/1.0, not today's
    0.5/0.5); next to ``terms`` the old constructor ignored them, so they are dropped, and a
    value other than the old default is logged.
    """
    legacy = {name: config.pop(name) for name in list(config) if name in LEGACY_OBJECTIVE_DEFAULTS}
    if not legacy:
        return config
    if config.get("terms") is not None:
        unusual = {
            k: v for k, v in legacy.items() if v is not None and v != LEGACY_OBJECTIVE_DEFAULTS[k]
        }
        if unusual:
            log.warning(
                "Distiller config %r: %s were ignored when this model was built (`terms` "
                "replaced them) and are dropped; the objective is unchanged.",
                config.get("name"),
                ", ".join(f"{k}={v!r}" for k, v in unusual.items()),
            )
        return config
    values = {
        name: LEGACY_OBJECTIVE_DEFAULTS[name] if legacy.get(name) is None else legacy[name]
        for name in LEGACY_OBJECTIVE_DEFAULTS
    }
    if not values["feature_weight"]:
        unusual = {
            k: legacy[k]
            for k in _FEATURE_ARGUMENTS
            if legacy.get(k) is not None and legacy[k] != LEGACY_OBJECTIVE_DEFAULTS[k]
        }
        if unusual:
            log.warning(
                "Distiller config %r: %s were ignored when this model was built (no feature "
                "term) and are dropped; the objective is unchanged.",
                config.get("name"),
                ", ".join(f"{k}={v!r}" for k, v in unusual.items()),
            )
        for name in _FEATURE_ARGUMENTS:
            values[name] = None
    config["terms"] = default_terms(**values)
    return config
