"""``Distiller``: a ``keras.Model`` that trains a student against a frozen teacher."""

from __future__ import annotations

import logging

import keras
import tensorflow as tf
from keras import ops

from kdzoo.distribute import scale_for_replicas, unscale_for_replicas
from kdzoo.losses import (
    FeatureCosine,
    FeatureMSE,
    HardLabelCrossentropy,
    SoftTargetKLDivergence,
    teacher_with_labels,
)
from kdzoo.models.layers import feature_model
from kdzoo.terms import LossTerm

log = logging.getLogger("kdzoo")

#: Batch key under which precomputed teacher outputs (``{"logits": ..., <feature>: ...}``)
#: may travel; when present the teacher's forward pass is skipped.
TEACHER_OUTPUTS = "teacher_outputs"

_FEATURE_LOSSES = {"mse": FeatureMSE, "cosine": FeatureCosine}


def _input_names(model: keras.Model) -> tuple[str, ...]:
    return tuple(t.name for t in model.inputs)


def _resolve_inputs(model, keys, role):
    names = _input_names(model)
    if keys is None:
        return names
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if sorted(keys) != sorted(names):
        raise ValueError(
            f"`{role}_inputs={keys}` does not match the {role} model {model.name!r}, whose "
            f"inputs are {names}. Build the {role} over exactly the keys it should read."
        )
    return names


@keras.saving.register_keras_serializable(package="kdzoo")
class Distiller(keras.Model):
    """Distils a frozen ``teacher`` into ``student``, possibly across modalities.

    The objective is a sum of weighted ``LossTerm``s. By default:

    ``L = ce_weight · CE(y, s) + kd_weight · τ² · KL(softmax(t/τ) ‖ softmax(s/τ))
    + feature_weight · feature_loss(t_feat, adapter(s_feat))``

    with ``s``, ``t`` the student and teacher logits. The teacher runs outside the gradient
    tape with ``training=False`` and ``trainable=False``; ``call``/``predict`` return the
    student's logits. Each model reads only its own input keys from the batch dict, so a
    teacher on ``{"image", "audio"}`` can teach a student on ``{"audio"}`` from one dataset.

    Args:
        teacher: a built ``keras.Model`` returning logits. Keyword-only (so the two models
            cannot be swapped by position).
        student: a built ``keras.Model`` returning logits of the same shape.
        teacher_inputs, student_inputs: the batch keys each model reads. Default: the
            model's own input names. A mismatch with the model's inputs raises.
        temperature: softmax temperature ``τ > 0`` of the KD term. Defaults to 4.0.
        ce_weight: weight of hard-label cross-entropy. Defaults to 1.0.
        kd_weight: weight of the soft-target term. Defaults to 1.0.
        feature_weight: weight of the feature term; 0 disables it. Defaults to 0.0.
        teacher_feature, student_feature: ``Feature`` names compared by the feature term.
            Defaults to ``"embedding"``.
        feature_loss: ``"mse"`` or ``"cosine"``. Defaults to ``"mse"``.
        terms: a list of ``LossTerm`` that replaces the terms above entirely.

    Example:

    >>> teacher, student = kdzoo.models.build_pair("av_to_audio")
    >>> distiller = kdzoo.Distiller(teacher=teacher, student=student, temperature=4.0)
    >>> distiller.compile(optimizer="adam", metrics=["accuracy"])
    >>> distiller.fit(train_ds, epochs=5)   # batches: ({"image":…, "audio":…}, label)
    >>> distiller.student.save("student.keras")
    """

    def __init__(
        self,
        *,
        teacher,
        student,
        teacher_inputs=None,
        student_inputs=None,
        temperature=4.0,
        ce_weight=1.0,
        kd_weight=1.0,
        feature_weight=0.0,
        teacher_feature="embedding",
        student_feature="embedding",
        feature_loss="mse",
        terms=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, keras.Model) or not model.built:
                raise TypeError(f"`{role}` must be a built keras.Model; got {model!r}.")
        if teacher is student:
            raise ValueError("`teacher` and `student` must be different models.")
        if student.count_params() > teacher.count_params():
            log.warning(
                "The student (%d params) is larger than the teacher (%d params): check that "
                "teacher= and student= are not swapped.",
                student.count_params(),
                teacher.count_params(),
            )
        if feature_loss not in _FEATURE_LOSSES:
            raise ValueError(
                f"`feature_loss` must be one of {sorted(_FEATURE_LOSSES)}; got {feature_loss!r}."
            )
        self.teacher = teacher
        self.teacher.trainable = False
        self.student = student
        self.teacher_inputs = _resolve_inputs(teacher, teacher_inputs, "teacher")
        self.student_inputs = _resolve_inputs(student, student_inputs, "student")
        self.temperature = temperature
        self.ce_weight = ce_weight
        self.kd_weight = kd_weight
        self.feature_weight = feature_weight
        self.teacher_feature = teacher_feature
        self.student_feature = student_feature
        self.feature_loss = feature_loss
        self._custom_terms = terms is not None
        if terms is None:
            terms = [
                LossTerm(HardLabelCrossentropy(), ce_weight, target="labels", name="ce"),
                LossTerm(SoftTargetKLDivergence(temperature), kd_weight, name="kd"),
            ]
            if feature_weight:
                terms.append(
                    LossTerm(
                        _FEATURE_LOSSES[feature_loss](),
                        feature_weight,
                        teacher_output=teacher_feature,
                        student_output=student_feature,
                        name="feature",
                    )
                )
        terms = list(terms)
        names = [t.name for t in terms]
        if not terms or len(set(names)) != len(names):
            raise ValueError(f"`terms` must be a non-empty list with unique names; got {names}.")
        # Not `_losses`: that name belongs to Keras internals.
        object.__setattr__(self, "loss_terms", terms)

        # Functional views of each model that also return the named features the terms read.
        # They share the models' layers; set without tracking so each variable has one owner.
        teacher_tap = feature_model(teacher, [t.teacher_output for t in terms if t.teacher_output])
        student_tap = feature_model(student, [t.student_output for t in terms])
        object.__setattr__(self, "_teacher_tap", teacher_tap)
        object.__setattr__(self, "_student_tap", student_tap)

        self.adapters = {}
        for term in terms:
            if term.target != "teacher":
                continue
            t_shape = tuple(teacher_tap.output[term.teacher_output].shape)
            s_shape = tuple(student_tap.output[term.student_output].shape)
            if t_shape == s_shape or not term.needs_adapter:
                continue
            if "logits" in (term.teacher_output, term.student_output) or (
                len(t_shape) != len(s_shape) or t_shape[1:-1] != s_shape[1:-1]
            ):
                raise ValueError(
                    f"Term {term.name!r}: teacher {term.teacher_output!r} has shape {t_shape} "
                    f"and student {term.student_output!r} has shape {s_shape}; only the last "
                    "(channel) axis of a feature may differ."
                )
            # FitNets regressor: a linear map of the student's channels to the teacher's.
            adapter = keras.layers.Dense(t_shape[-1], name=f"{term.name}_adapter")
            adapter.build(s_shape)
            self.adapters[term.name] = adapter

        # Weights are variables so that schedules can change them without retracing.
        self.term_weights = [
            keras.Variable(t.weight, dtype="float32", trainable=False, name=f"{t.name}_weight")
            for t in terms
        ]
        self.term_trackers = [keras.metrics.Mean(name=f"{t.name}_loss") for t in terms]
        self.built = True

    # ------------------------------------------------------------------ routing
    @staticmethod
    def _route(x, keys, role):
        if not isinstance(x, dict):
            if len(keys) == 1:
                return {keys[0]: x}
            raise ValueError(f"The {role} reads keys {keys}; pass the batch as a dict.")
        missing = [k for k in keys if k not in x]
        if missing:
            raise ValueError(
                f"The batch has no key(s) {missing} that the {role} reads; batch keys: {sorted(x)}."
            )
        return {k: x[k] for k in keys}

    def teacher_outputs(self, x):
        """Teacher logits and features for batch ``x``: cached ones if the batch carries
        ``x["teacher_outputs"]``, else a forward pass with ``training=False``."""
        if isinstance(x, dict) and TEACHER_OUTPUTS in x:
            cached = x[TEACHER_OUTPUTS]
            missing = [k for k in self._teacher_tap.output if k not in cached]
            if missing:
                raise ValueError(
                    f"Cached teacher outputs lack {missing}; they hold {sorted(cached)}."
                )
            return {k: cached[k] for k in self._teacher_tap.output}
        outputs = self._teacher_tap(self._route(x, self.teacher_inputs, "teacher"), training=False)
        return {k: ops.stop_gradient(v) for k, v in outputs.items()}

    def call(self, inputs, training=None):
        return self.student(self._route(inputs, self.student_inputs, "student"), training=training)

    # ------------------------------------------------------------------ objective
    def _objective(self, y, teacher_out, student_out, sample_weight):
        """Returns ``(total, [term values])``; each value is replica-scaled by Keras."""
        values = []
        for term in self.loss_terms:
            prediction = student_out[term.student_output]
            if term.name in self.adapters:
                prediction = self.adapters[term.name](prediction)
            if term.target == "labels":
                if y is None:
                    raise ValueError(f"Loss term {term.name!r} needs labels; the batch has none.")
                target = y
            else:
                target = teacher_out[term.teacher_output]
                if term.needs_labels:
                    if y is None:
                        raise ValueError(
                            f"Loss term {term.name!r} needs labels; the batch has none."
                        )
                    target = teacher_with_labels(target, y)
            values.append(term.loss(target, prediction, sample_weight=sample_weight))
        total = ops.sum(ops.stack([w * v for w, v in zip(self.term_weights, values, strict=True)]))
        if self.student.losses:  # weight regularisers of the student
            total = total + scale_for_replicas(ops.sum(self.student.losses))
        return total, values

    def _report(self, x, y, logits, total, values, sample_weight):
        batch_size = ops.shape(logits)[0]
        if self._loss_tracker is not None:
            self._loss_tracker.update_state(unscale_for_replicas(total), sample_weight=batch_size)
        for tracker, value in zip(self.term_trackers, values, strict=True):
            tracker.update_state(unscale_for_replicas(value), sample_weight=batch_size)
        if y is not None and self._compile_metrics is not None:
            self._compile_metrics.update_state(y, logits, sample_weight)
        return self.get_metrics_result()

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher_out = self.teacher_outputs(x)
        student_x = self._route(x, self.student_inputs, "student")
        with tf.GradientTape() as tape:
            student_out = self._student_tap(student_x, training=True)
            total, values = self._objective(y, teacher_out, student_out, sample_weight)
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return self._report(x, y, student_out["logits"], total, values, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher_out = self.teacher_outputs(x)
        student_out = self._student_tap(
            self._route(x, self.student_inputs, "student"), training=False
        )
        total, values = self._objective(y, teacher_out, student_out, sample_weight)
        return self._report(x, y, student_out["logits"], total, values, sample_weight)

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Like ``keras.Model.compile``; ``metrics`` are computed on the student's logits.

        The loss is defined by the constructor (so it is saved with the model), never here.
        """
        if loss is not None:
            raise ValueError(
                "Distiller.compile() takes no `loss`: set temperature, weights or `terms` in "
                "the Distiller constructor so they are saved with the model."
            )
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for models that override compile(); ours only rejects `loss`, so
        # restore the optimizer and metrics (and the optimizer's slots) when loading.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        self.optimizer.build(self.trainable_variables)

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "teacher_inputs": list(self.teacher_inputs),
            "student_inputs": list(self.student_inputs),
            "temperature": self.temperature,
            "ce_weight": self.ce_weight,
            "kd_weight": self.kd_weight,
            "feature_weight": self.feature_weight,
            "teacher_feature": self.teacher_feature,
            "student_feature": self.student_feature,
            "feature_loss": self.feature_loss,
            "terms": None,
        }
        if self._custom_terms:
            config["terms"] = [keras.saving.serialize_keras_object(t) for t in self.loss_terms]
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for role in ("teacher", "student"):
            config[role] = keras.saving.deserialize_keras_object(
                config[role], custom_objects=custom_objects
            )
        if config.get("terms") is not None:
            config["terms"] = [
                keras.saving.deserialize_keras_object(t, custom_objects=custom_objects)
                for t in config["terms"]
            ]
        return cls(**config)
