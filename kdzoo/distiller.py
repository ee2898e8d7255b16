"""``Distiller``: a ``keras.Model`` that trains a student against one or several frozen teachers.

With several teachers their soft targets are combined, per example, into one teacher
distribution that every logits-based term (``kd``, ``kd_std``, ``dkd``, ``nkd``) consumes
unchanged; see ``Distiller`` and the two combination functions below.
"""

from __future__ import annotations

import logging
import numbers

import keras
import numpy as np
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
from kdzoo.models.layers import feature_model, feature_names
from kdzoo.terms import LossTerm

log = logging.getLogger("kdzoo")

#: Batch key under which precomputed teacher outputs (``{"logits": ..., <feature>: ...}``)
#: may travel; when present the teachers' forward passes are skipped. With several teachers
#: the keys are qualified: ``{"<teacher name>/logits": ..., "<teacher name>/<feature>": ...}``.
TEACHER_OUTPUTS = "teacher_outputs"

#: The ways ``Distiller(teacher=[...], teacher_combination=...)`` weighs several teachers.
TEACHER_COMBINATIONS = ("fixed", "entropy", "gate")

_FEATURE_LOSSES = {"mse": FeatureMSE, "cosine": FeatureCosine}

#: The convenience arguments that build the default objective, and their defaults. ``terms=``
#: replaces them all, so ``Distiller`` refuses any of them next to ``terms``; they default to
#: None ("not given") and take these values only when ``terms`` is not given.
OBJECTIVE_DEFAULTS = {
    "temperature": 4.0,
    "ce_weight": 1.0,
    "kd_weight": 1.0,
    "feature_weight": 0.0,
    "teacher_feature": "embedding",
    "student_feature": "embedding",
    "feature_loss": "mse",
}

#: The arguments of the feature term, meaningless unless ``feature_weight > 0``.
_FEATURE_ARGUMENTS = ("teacher_feature", "student_feature", "feature_loss")


def _resolve_objective(terms, given):
    """The convenience arguments ``given`` (None: not given), resolved against ``terms``.

    Returns the values the Distiller records: all None with ``terms``; else the defaults
    filled in, the feature arguments None when there is no feature term.
    """
    passed = [name for name, value in given.items() if value is not None]
    if terms is not None:
        if passed:
            raise ValueError(
                "`terms` replaces the default objective, so "
                + ", ".join(f"`{name}`" for name in passed)
                + " would be ignored. Pass either `terms` or the convenience arguments "
                f"{list(OBJECTIVE_DEFAULTS)}, not both; put a temperature or a weight in "
                "the LossTerms themselves."
            )
        return dict.fromkeys(given)
    values = {
        name: OBJECTIVE_DEFAULTS[name] if value is None else value for name, value in given.items()
    }
    if not values["feature_weight"]:
        unused = [name for name in _FEATURE_ARGUMENTS if given[name] is not None]
        if unused:
            raise ValueError(
                ", ".join(f"`{name}`" for name in unused)
                + (" configures" if len(unused) == 1 else " configure")
                + " the feature term, which is off: set `feature_weight` > 0 to use "
                f"it (got feature_weight={given['feature_weight']!r})."
            )
        values.update(dict.fromkeys(_FEATURE_ARGUMENTS))
    elif values["feature_loss"] not in _FEATURE_LOSSES:
        raise ValueError(
            f"`feature_loss` must be one of {sorted(_FEATURE_LOSSES)}; "
            f"got {values['feature_loss']!r}."
        )
    return values


def mix_teacher_probabilities(teacher_logits, log_weights):
    """Log of a per-example mixture of the teachers' class distributions.

    ``log p`` with ``p = Σ_i w_i · softmax(t_i)``, computed as
    ``logsumexp_i(log w_i + log_softmax(t_i))`` so that no probability is formed (a
    confident teacher's tiny probabilities neither underflow nor give ``log 0``). Since ``p``
    sums to 1, ``softmax(log p) = p`` exactly: ``log p`` can stand in for teacher logits.

    Args:
        teacher_logits: a list of ``N`` tensors ``[batch, classes]``, one per teacher.
        log_weights: ``[batch, N]`` (or ``[N]``) log mixture weights ``log w_i``, the weights
            summing to 1 over the teachers; ``-inf`` drops a teacher.

    Returns:
        ``[batch, classes]`` log-probabilities of the mixture.
    """
    log_probs = ops.stack(
        [ops.log_softmax(ops.cast(t, "float32"), axis=-1) for t in teacher_logits], axis=1
    )  # [batch, N, classes]
    log_weights = ops.cast(log_weights, "float32")
    if len(log_weights.shape) == 1:
        log_weights = log_weights[None, :]
    return ops.logsumexp(log_probs + log_weights[:, :, None], axis=1)


def entropy_teacher_log_weights(teacher_logits, temperature=1.0):
    """Per-example confidence weights of ``N`` teachers, as log-weights ``[batch, N]``.

    ``w_i = softmax_i(−H_i / T)`` over the teachers, with ``H_i = −Σ_k p_ik log p_ik`` the
    entropy of teacher ``i``'s own prediction ``p_i = softmax(t_i)`` (temperature 1) and
    ``T > 0`` the ``temperature``: a confident (low-entropy) teacher gets more weight on
    that example; ``T → ∞`` gives the plain mean, ``T → 0`` picks the most confident
    teacher. Labels are not used, so the weights exist at evaluation and on unlabelled data.

    Entropy as a per-example measure of which teacher to trust is the idea of Kwon et al.,
    "Adaptive Knowledge Distillation Based on Entropy", ICASSP 2020; confidence-aware
    multi-teacher KD (CA-MKD; Zhang, Chen & Wang, "Confidence-Aware Multi-Teacher Knowledge
    Distillation", ICASSP 2022) weighs teachers per example in the same spirit, by their
    cross-entropy with the labels instead.

    Args:
        teacher_logits: a list of ``N`` tensors ``[batch, classes]``.
        temperature: ``T > 0``. Defaults to 1.0.

    Returns:
        ``[batch, N]`` values ``log w_i``.
    """
    log_probs = ops.stack(
        [ops.log_softmax(ops.cast(t, "float32"), axis=-1) for t in teacher_logits], axis=1
    )
    entropy = -ops.sum(ops.exp(log_probs) * log_probs, axis=-1)  # [batch, N]
    return ops.log_softmax(-entropy / temperature, axis=-1)


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


def _positive_number(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"`{what}` must be a number > 0; got {value!r}.")
    return float(value)


def _fixed_teacher_weights(weights, names):
    """Normalised fixed weights (uniform when ``weights`` is None)."""
    if weights is None:
        return np.full(len(names), 1.0 / len(names))
    values = list(weights) if isinstance(weights, list | tuple | np.ndarray) else None
    if (
        values is None
        or len(values) != len(names)
        or not all(isinstance(w, numbers.Real) and not isinstance(w, bool) for w in values)
        or min(values) < 0
        or sum(values) <= 0
    ):
        raise ValueError(
            f"`teacher_weights` must hold {len(names)} numbers >= 0 with a positive sum, one "
            f"per teacher {names}; got {weights!r}."
        )
    values = np.asarray(values, dtype="float64")
    return values / values.sum()


@keras.saving.register_keras_serializable(package="kdzoo")
class Distiller(keras.Model):
    """Distils one or several frozen teachers into ``student``, possibly across modalities.

    The objective is a sum of weighted ``LossTerm``s. By default:

    ``L = ce_weight · CE(y, s) + kd_weight · τ² · KL(softmax(t/τ) ‖ softmax(s/τ))
    + feature_weight · feature_loss(t_feat, adapter(s_feat))``

    with ``s``, ``t`` the student and teacher logits. The teachers run outside the gradient
    tape with ``training=False`` and ``trainable=False``; ``call``/``predict`` return the
    student's logits. Each model reads only its own input keys from the batch dict, so a
    teacher on ``{"image", "audio"}`` can teach a student on ``{"audio"}`` from one dataset.

    **Several teachers.** Pass ``teacher=[t_1, ..., t_N]`` (distinct names; each reads its
    own input keys). Their class distributions are mixed per example,

    ``p = Σ_i w_i · softmax(t_i)``,  and the teacher ``"logits"`` become ``log p``

    (``mix_teacher_probabilities``), so ``softmax("logits") = p`` and every logits term
    (``kd``, ``kd_std``, ``dkd``, ``nkd``) consumes the mixture unchanged. A term's
    temperature then applies to the mixture: ``kd`` matches ``softmax(log p / τ) ∝ p^(1/τ)``.
    The weights ``w_i`` (``[batch, N]``, see ``teacher_weights_for``) come from
    ``teacher_combination``:

    - ``"fixed"``: ``teacher_weights`` normalised to sum 1 (default: uniform ``1/N``);
    - ``"entropy"``: ``w = softmax_i(−H(softmax(t_i)) / confidence_temperature)``, larger for
      the more confident teacher on each example (``entropy_teacher_log_weights``; Kwon et
      al. ICASSP 2020, in the spirit of CA-MKD, Zhang et al. ICASSP 2022);
    - ``"gate"``: ``w = softmax(Dense([t_1, ..., t_N]))``, a linear gate on the concatenated
      teacher logits, initialised to zero (uniform weights). It is owned by the Distiller
      (``distiller.teacher_gate``, saved with it, never part of the student) and trained by
      its own loss, ``gate_weight · CE(y, log p)`` = ``−gate_weight · log p_y`` (reported as
      ``"gate_loss"`` and included in ``"loss"``), so it learns which teacher is right on
      which example. The KD terms read ``stop_gradient(log p)``: the student cannot move
      the gate towards the teacher it finds easiest to match.

    A term's ``teacher_output`` names a feature of one teacher as ``"<teacher name>/<feature>"``
    (e.g. ``"audio_crnn_teacher/embedding"``; ``"<teacher name>/logits"`` is that teacher's
    own logits); plain ``"logits"`` is the mixture; a plain feature name is accepted when
    exactly one teacher has it, and an ambiguous one raises, listing the qualified names.
    Cached outputs (``x["teacher_outputs"]``) then hold each teacher's outputs under the
    qualified names, e.g. ``{"image_cnn_teacher/logits": ..., "audio_crnn_teacher/logits":
    ...}``, so every combination, the gate included, is recomputed from them; a cache of
    the combined ``"logits"`` alone is refused (it would freeze the weights).

    Args:
        teacher: a built ``keras.Model`` returning logits, or a list of them (several
            teachers, all with logits of one shape). Keyword-only (so teacher and student
            cannot be swapped by position).
        student: a built ``keras.Model`` returning logits of the same shape.
        teacher_inputs, student_inputs: the batch keys each model reads. Default: the
            model's own input names. A mismatch with the model's inputs raises. With several
            teachers, ``teacher_inputs`` holds one entry (a key or tuple of keys) per teacher.
        temperature: softmax temperature ``τ > 0`` of the KD term. Defaults to 4.0.
        ce_weight: weight of hard-label cross-entropy. Defaults to 1.0.
        kd_weight: weight of the soft-target term. Defaults to 1.0.
        feature_weight: weight of the feature term; 0 disables it. Defaults to 0.0.
        teacher_feature, student_feature: ``Feature`` names compared by the feature term;
            only with ``feature_weight > 0``. Defaults to ``"embedding"``.
        feature_loss: ``"mse"`` or ``"cosine"``; only with ``feature_weight > 0``. Defaults
            to ``"mse"``.
        terms: a list of ``LossTerm`` that replaces the terms above entirely. It cannot be
            combined with any of the seven arguments above (``ValueError``): they would be
            ignored. Their defaults (``OBJECTIVE_DEFAULTS``) apply only without ``terms``.
        teacher_combination: ``"fixed"``, ``"entropy"`` or ``"gate"``; several teachers only.
            Defaults to ``"fixed"``.
        teacher_weights: with ``"fixed"``, one weight ``>= 0`` per teacher (normalised to sum
            1). Defaults to None (uniform).
        confidence_temperature: ``T > 0`` of the ``"entropy"`` weights. Defaults to 1.0.
        gate_weight: weight ``>= 0`` of the ``"gate"``'s cross-entropy. Defaults to 1.0.

    Example:

    >>> teacher, student = kdzoo.models.build_pair("av_to_audio")
    >>> distiller = kdzoo.Distiller(teacher=teacher, student=student, temperature=4.0)
    >>> distiller.compile(optimizer="adam", metrics=["accuracy"])
    >>> distiller.fit(train_ds, epochs=5)   # batches: ({"image":…, "audio":…}, label)
    >>> distiller.student.save("student.keras")

    Two single-modality teachers and a learned gate:

    >>> image_teacher = kdzoo.models.build("image_cnn", "teacher", image_shape=(16, 16, 1))
    >>> audio_teacher = kdzoo.models.build("audio_crnn", "teacher")
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
        teacher_inputs=None,
        student_inputs=None,
        temperature=None,
        ce_weight=None,
        kd_weight=None,
        feature_weight=None,
        teacher_feature=None,
        student_feature=None,
        feature_loss=None,
        terms=None,
        teacher_combination="fixed",
        teacher_weights=None,
        confidence_temperature=1.0,
        gate_weight=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        multi = isinstance(teacher, list | tuple)
        teachers = tuple(teacher) if multi else (teacher,)
        if not teachers:
            raise ValueError("`teacher` is an empty list; pass a model or a list of models.")
        for i, model in enumerate(teachers):
            if not isinstance(model, keras.Model) or not model.built:
                role = f"teacher[{i}]" if multi else "teacher"
                raise TypeError(f"`{role}` must be a built keras.Model; got {model!r}.")
        if not isinstance(student, keras.Model) or not student.built:
            raise TypeError(f"`student` must be a built keras.Model; got {student!r}.")
        if any(t is student for t in teachers):
            raise ValueError("`teacher` and `student` must be different models.")
        names = [t.name for t in teachers]
        if len(set(names)) != len(names):
            raise ValueError(
                f"The teachers must be distinct models with distinct names (features are "
                f"addressed as '<teacher name>/<feature>'); got names {names}."
            )
        largest = max(t.count_params() for t in teachers)
        if student.count_params() > largest:
            log.warning(
                "The student (%d params) is larger than the teacher (%d params): check that "
                "teacher= and student= are not swapped.",
                student.count_params(),
                largest,
            )
        objective = _resolve_objective(
            terms,
            {
                "temperature": temperature,
                "ce_weight": ce_weight,
                "kd_weight": kd_weight,
                "feature_weight": feature_weight,
                "teacher_feature": teacher_feature,
                "student_feature": student_feature,
                "feature_loss": feature_loss,
            },
        )
        if teacher_combination not in TEACHER_COMBINATIONS:
            raise ValueError(
                f"`teacher_combination` must be one of {TEACHER_COMBINATIONS}; "
                f"got {teacher_combination!r}."
            )
        if not multi and (teacher_combination != "fixed" or teacher_weights is not None):
            raise ValueError(
                "`teacher_combination` and `teacher_weights` combine several teachers; pass "
                "`teacher` as a list of models to use them."
            )
        if teacher_weights is not None and teacher_combination != "fixed":
            raise ValueError(
                "`teacher_weights` applies to teacher_combination='fixed' only; "
                f"got teacher_combination={teacher_combination!r}."
            )
        fixed_weights = _fixed_teacher_weights(teacher_weights, names)
        confidence_temperature = _positive_number(confidence_temperature, "confidence_temperature")
        if isinstance(gate_weight, bool) or not isinstance(gate_weight, int | float):
            raise ValueError(f"`gate_weight` must be a number >= 0; got {gate_weight!r}.")
        if gate_weight < 0:
            raise ValueError(f"`gate_weight` must be a number >= 0; got {gate_weight!r}.")

        if multi:
            per_teacher = [None] * len(teachers) if teacher_inputs is None else teacher_inputs
            per_teacher = [per_teacher] if isinstance(per_teacher, str) else list(per_teacher)
            if len(per_teacher) != len(teachers):
                raise ValueError(
                    f"`teacher_inputs` must hold one entry (a key or a tuple of keys) per "
                    f"teacher, {len(teachers)} for {names}; got {teacher_inputs!r}."
                )
            keys = tuple(
                _resolve_inputs(t, k, "teacher") for t, k in zip(teachers, per_teacher, strict=True)
            )
            self.teacher = list(teachers)
            self.teacher_inputs = keys
        else:
            keys = (_resolve_inputs(teacher, teacher_inputs, "teacher"),)
            self.teacher = teacher
            self.teacher_inputs = keys[0]
        for model in teachers:
            model.trainable = False
        self.student = student
        self.student_inputs = _resolve_inputs(student, student_inputs, "student")
        # The convenience arguments as resolved: None with `terms` (or, for the feature
        # arguments, without a feature term), so that get_config records no ignored value.
        self.temperature = objective["temperature"]
        self.ce_weight = objective["ce_weight"]
        self.kd_weight = objective["kd_weight"]
        self.feature_weight = objective["feature_weight"]
        self.teacher_feature = objective["teacher_feature"]
        self.student_feature = objective["student_feature"]
        self.feature_loss = objective["feature_loss"]
        self.teacher_combination = teacher_combination
        self.teacher_weights = (
            None if teacher_weights is None else [float(w) for w in teacher_weights]
        )
        self.confidence_temperature = confidence_temperature
        self.gate_weight = float(gate_weight)
        # Plain attributes, not tracked: the teachers are tracked once, as `self.teacher`.
        object.__setattr__(self, "teachers", teachers)
        object.__setattr__(self, "_multi_teacher", multi)
        object.__setattr__(self, "_teacher_keys", keys)
        with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf: the teacher drops
            log_weights = np.log(fixed_weights).astype("float32")
        object.__setattr__(self, "_fixed_log_weights", log_weights)

        self._custom_terms = terms is not None
        if terms is None:
            terms = [
                LossTerm(HardLabelCrossentropy(), self.ce_weight, target="labels", name="ce"),
                LossTerm(SoftTargetKLDivergence(self.temperature), self.kd_weight, name="kd"),
            ]
            if self.feature_weight:
                terms.append(
                    LossTerm(
                        _FEATURE_LOSSES[self.feature_loss](),
                        self.feature_weight,
                        teacher_output=self.teacher_feature,
                        student_output=self.student_feature,
                        name="feature",
                    )
                )
        terms = list(terms)
        term_names = [t.name for t in terms]
        if not terms or len(set(term_names)) != len(term_names):
            raise ValueError(
                f"`terms` must be a non-empty list with unique names; got {term_names}."
            )
        # Not `_losses`: that name belongs to Keras internals.
        object.__setattr__(self, "loss_terms", terms)

        # Which teacher (and which of its outputs) each term's `teacher_output` reads; None:
        # the combination of several teachers.
        sources = {}
        for term in terms:
            if term.teacher_output and term.teacher_output not in sources:
                sources[term.teacher_output] = self._resolve_teacher_output(term)
        object.__setattr__(self, "_teacher_sources", sources)

        # Functional views of each model that also return the named features the terms read.
        # They share the models' layers; set without tracking so each variable has one owner.
        wanted = [[] for _ in teachers]
        for source in sources.values():
            if source is not None:
                wanted[source[0]].append(source[1])
        teacher_taps = tuple(feature_model(t, w) for t, w in zip(teachers, wanted, strict=True))
        student_tap = feature_model(student, [t.student_output for t in terms])
        object.__setattr__(self, "_teacher_taps", teacher_taps)
        object.__setattr__(self, "_student_tap", student_tap)
        logits_shapes = {tuple(tap.output["logits"].shape) for tap in teacher_taps}
        if len(logits_shapes) != 1:
            raise ValueError(
                "The teachers' logits must have one shape to be combined; got "
                + ", ".join(
                    f"{t.name}: {tuple(tap.output['logits'].shape)}"
                    for t, tap in zip(teachers, teacher_taps, strict=True)
                )
                + "."
            )

        self.adapters = {}
        for term in terms:
            if term.target != "teacher":
                continue
            source = self._teacher_sources[term.teacher_output]
            index, output = (0, "logits") if source is None else source
            t_shape = tuple(teacher_taps[index].output[output].shape)
            s_shape = tuple(student_tap.output[term.student_output].shape)
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
            # FitNets regressor: a linear map of the student's channels to the teacher's.
            adapter = keras.layers.Dense(t_shape[-1], name=f"{term.name}_adapter")
            adapter.build(s_shape)
            self.adapters[term.name] = adapter

        self.teacher_gate = None
        self.gate_tracker = None
        if teacher_combination == "gate":
            classes = next(iter(logits_shapes))[-1]
            if classes is None:
                raise ValueError("teacher_combination='gate' needs teachers with a known width.")
            # Zero-initialised: training starts from the plain mean of the teachers.
            self.teacher_gate = keras.layers.Dense(
                len(teachers), kernel_initializer="zeros", name="teacher_gate"
            )
            self.teacher_gate.build((None, len(teachers) * classes))
            self.gate_tracker = keras.metrics.Mean(name="gate_loss")
            # −log p_y via sparse CE on log p (softmax(log p) = p), reduced by Keras like the
            # terms: sample weights and the 1/num_replicas scaling under tf.distribute.
            object.__setattr__(self, "_gate_loss", HardLabelCrossentropy(name="gate_crossentropy"))

        # Weights are variables so that schedules can change them without retracing.
        self.term_weights = [
            keras.Variable(t.weight, dtype="float32", trainable=False, name=f"{t.name}_weight")
            for t in terms
        ]
        self.term_trackers = [keras.metrics.Mean(name=f"{t.name}_loss") for t in terms]
        self.built = True

    # ------------------------------------------------------------------ teachers
    def _resolve_teacher_output(self, term):
        """``(teacher index, output name)`` for ``term.teacher_output``; None: the mixture."""
        key = term.teacher_output
        teachers = self.teachers
        if key == "logits":
            return None if self._multi_teacher else (0, "logits")
        by_name = {t.name: i for i, t in enumerate(teachers)}
        head, slash, feature = key.partition("/")
        if slash:
            if head not in by_name:
                raise ValueError(
                    f"Term {term.name!r}: `teacher_output={key!r}` names no teacher; the "
                    f"teachers are {list(by_name)}."
                )
            return by_name[head], feature
        if not self._multi_teacher:
            return 0, key  # feature_model raises, listing the features, if there is none
        owners = [t.name for t in teachers if key in feature_names(t)]
        if len(owners) == 1:
            return by_name[owners[0]], key
        if owners:
            raise ValueError(
                f"Term {term.name!r}: `teacher_output={key!r}` is ambiguous: teachers "
                f"{owners} all have it. Name one: {[f'{o}/{key}' for o in owners]}."
            )
        qualified = [f"{t.name}/{f}" for t in teachers for f in ["logits", *feature_names(t)]]
        raise ValueError(
            f"Term {term.name!r}: no teacher has a feature {key!r}. Teacher outputs: 'logits' "
            f"(the combination of the teachers) or one of {qualified}."
        )

    def _teacher_raw(self, x):
        """Each teacher's outputs ``[{"logits": ..., <feature>: ...}, ...]``, gradient-free:
        cached ones if the batch carries ``x["teacher_outputs"]``, else forward passes with
        ``training=False``, each teacher on its own keys."""
        if isinstance(x, dict) and TEACHER_OUTPUTS in x:
            cached = x[TEACHER_OUTPUTS]
            prefixes = [f"{t.name}/" for t in self.teachers] if self._multi_teacher else [""]
            missing = [
                prefix + k
                for prefix, tap in zip(prefixes, self._teacher_taps, strict=True)
                for k in tap.output
                if prefix + k not in cached
            ]
            if missing:
                hint = ""
                if self._multi_teacher:
                    hint = (
                        " With several teachers the cache holds each teacher's outputs under "
                        "'<teacher name>/<output>', so the combination can be recomputed; a "
                        "cache of the combined logits alone is not accepted."
                    )
                raise ValueError(
                    f"Cached teacher outputs lack {missing}; they hold {sorted(cached)}.{hint}"
                )
            return [
                {k: cached[prefix + k] for k in tap.output}
                for prefix, tap in zip(prefixes, self._teacher_taps, strict=True)
            ]
        raw = []
        for model, tap, keys in zip(
            self.teachers, self._teacher_taps, self._teacher_keys, strict=True
        ):
            role = f"teacher {model.name!r}" if self._multi_teacher else "teacher"
            outputs = tap(self._route(x, keys, role), training=False)
            raw.append({k: ops.stop_gradient(v) for k, v in outputs.items()})
        return raw

    def _teacher_log_weights(self, logits):
        """``[batch, N]`` log-weights of the teachers, per ``teacher_combination``."""
        if self.teacher_combination == "entropy":
            return entropy_teacher_log_weights(logits, self.confidence_temperature)
        if self.teacher_combination == "gate":
            gate_in = ops.concatenate([ops.cast(t, "float32") for t in logits], axis=-1)
            return ops.log_softmax(ops.cast(self.teacher_gate(gate_in), "float32"), axis=-1)
        fixed = ops.convert_to_tensor(self._fixed_log_weights)
        return ops.broadcast_to(fixed[None, :], (ops.shape(logits[0])[0], len(self.teachers)))

    def _combine(self, raw):
        """``(teacher outputs keyed as the terms read them, differentiable mixture log p or
        None)``; a single teacher's outputs also stay under their plain names."""
        outputs = {} if self._multi_teacher else dict(raw[0])
        for key, source in self._teacher_sources.items():
            if source is not None:
                outputs[key] = raw[source[0]][source[1]]
        if not self._multi_teacher:
            return outputs, None
        logits = [r["logits"] for r in raw]
        mixture = mix_teacher_probabilities(logits, self._teacher_log_weights(logits))
        # The terms read a constant target: only the gate's own loss trains the gate.
        outputs["logits"] = ops.stop_gradient(mixture)
        return outputs, mixture

    def teacher_outputs(self, x):
        """Teacher logits and features for batch ``x``, keyed as the terms read them:
        cached ones if the batch carries ``x["teacher_outputs"]``, else forward passes with
        ``training=False``. With several teachers ``"logits"`` is the mixture ``log p``."""
        return self._combine(self._teacher_raw(x))[0]

    def teacher_weights_for(self, x):
        """The per-example teacher weights ``w`` for batch ``x``, as a NumPy array.

        Args:
            x: a batch dict (or cached outputs under ``"teacher_outputs"``), as for ``fit``.

        Returns:
            ``[batch, num_teachers]``, rows summing to 1, columns in the order of
            ``distiller.teachers``; ones ``[batch, 1]`` for a single teacher.
        """
        logits = [r["logits"] for r in self._teacher_raw(x)]
        return ops.convert_to_numpy(ops.exp(self._teacher_log_weights(logits)))

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

    def call(self, inputs, training=None):
        return self.student(self._route(inputs, self.student_inputs, "student"), training=training)

    # ------------------------------------------------------------------ objective
    def _objective(self, y, teacher_raw, student_out, sample_weight):
        """Returns ``(total, [term values], gate loss or None)``; each value is
        replica-scaled by Keras."""
        teacher_out, mixture = self._combine(teacher_raw)
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
        gate_loss = None
        if self.teacher_gate is not None:
            if y is None:
                raise ValueError(
                    "teacher_combination='gate' trains its gate on the labels; the batch has none."
                )
            gate_loss = self._gate_loss(y, mixture, sample_weight=sample_weight)
            total = total + self.gate_weight * gate_loss
        if self.student.losses:  # weight regularisers of the student
            total = total + scale_for_replicas(ops.sum(self.student.losses))
        return total, values, gate_loss

    def _report(self, x, y, logits, total, values, gate_loss, sample_weight):
        batch_size = ops.shape(logits)[0]
        if self._loss_tracker is not None:
            self._loss_tracker.update_state(unscale_for_replicas(total), sample_weight=batch_size)
        for tracker, value in zip(self.term_trackers, values, strict=True):
            tracker.update_state(unscale_for_replicas(value), sample_weight=batch_size)
        if gate_loss is not None:
            self.gate_tracker.update_state(
                unscale_for_replicas(gate_loss), sample_weight=batch_size
            )
        if y is not None and self._compile_metrics is not None:
            self._compile_metrics.update_state(y, logits, sample_weight)
        return self.get_metrics_result()

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher_raw = self._teacher_raw(x)
        student_x = self._route(x, self.student_inputs, "student")
        with tf.GradientTape() as tape:
            student_out = self._student_tap(student_x, training=True)
            # The teachers' combination is inside the tape: a gate learns from its own loss.
            total, values, gate_loss = self._objective(y, teacher_raw, student_out, sample_weight)
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return self._report(x, y, student_out["logits"], total, values, gate_loss, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher_raw = self._teacher_raw(x)
        student_out = self._student_tap(
            self._route(x, self.student_inputs, "student"), training=False
        )
        total, values, gate_loss = self._objective(y, teacher_raw, student_out, sample_weight)
        return self._report(x, y, student_out["logits"], total, values, gate_loss, sample_weight)

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
        if self._multi_teacher:
            teacher = [keras.saving.serialize_keras_object(t) for t in self.teachers]
            teacher_inputs = [list(k) for k in self._teacher_keys]
        else:
            teacher = keras.saving.serialize_keras_object(self.teachers[0])
            teacher_inputs = list(self._teacher_keys[0])
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "teacher": teacher,
            "student": keras.saving.serialize_keras_object(self.student),
            "teacher_inputs": teacher_inputs,
            "student_inputs": list(self.student_inputs),
            "temperature": self.temperature,
            "ce_weight": self.ce_weight,
            "kd_weight": self.kd_weight,
            "feature_weight": self.feature_weight,
            "teacher_feature": self.teacher_feature,
            "student_feature": self.student_feature,
            "feature_loss": self.feature_loss,
            "terms": None,
            "teacher_combination": self.teacher_combination,
            "teacher_weights": None if self.teacher_weights is None else list(self.teacher_weights),
            "confidence_temperature": self.confidence_temperature,
            "gate_weight": self.gate_weight,
        }
        if self._custom_terms:
            config["terms"] = [keras.saving.serialize_keras_object(t) for t in self.loss_terms]
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)

        def load(model_config):
            return keras.saving.deserialize_keras_object(
                model_config, custom_objects=custom_objects
            )

        if isinstance(config["teacher"], list | tuple):
            config["teacher"] = [load(t) for t in config["teacher"]]
        else:
            config["teacher"] = load(config["teacher"])
        config["student"] = load(config["student"])
        config = _drop_ignored_objective_arguments(config)
        if config.get("terms") is not None:
            config["terms"] = [
                keras.saving.deserialize_keras_object(t, custom_objects=custom_objects)
                for t in config["terms"]
            ]
        return cls(**config)


def _drop_ignored_objective_arguments(config):
    """Configs saved before ``terms`` refused the convenience arguments hold both, with the
    arguments the old constructor ignored: all seven next to ``terms``, the feature ones
    without a feature term. They are dropped, so such a model loads with the objective it
    was trained with; a non-default value among them (given, yet ignored) is logged."""
    if config.get("terms") is not None:
        ignored = list(OBJECTIVE_DEFAULTS)
    elif not config.get("feature_weight"):
        ignored = list(_FEATURE_ARGUMENTS)
    else:
        return config
    config = dict(config)
    dropped = {name: config.pop(name) for name in ignored if config.get(name) is not None}
    unusual = {k: v for k, v in dropped.items() if v != OBJECTIVE_DEFAULTS[k]}
    if unusual:
        log.warning(
            "Distiller config %r: %s were ignored when this model was built (%s) and are "
            "dropped; the objective is unchanged.",
            config.get("name"),
            ", ".join(f"{k}={v!r}" for k, v in unusual.items()),
            "`terms` replaced them" if config.get("terms") is not None else "no feature term",
        )
    return config
