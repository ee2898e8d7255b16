"""``TeacherEnsemble``: one or several frozen teachers and how their soft targets combine.

With several teachers their class distributions are mixed per example into one teacher
distribution that every logits-based term (``kd``, ``kd_std``, ``dkd``, ``nkd``) consumes
unchanged; see ``TeacherEnsemble`` and the two combination functions below. The
``Distiller`` holds one ensemble (a single teacher is an ensemble of one, never mixed).
"""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import ops

from kdzoo.data.routing import check_input_keys, select_inputs
from kdzoo.distillation.keys import TEACHER_OUTPUTS
from kdzoo.losses import HardLabelCrossentropy
from kdzoo.models.layers import feature_model, feature_names

#: The ways several teachers are weighed (``teacher_combination``).
TEACHER_COMBINATIONS = ("fixed", "entropy", "gate")


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
class TeacherEnsemble:
    """Frozen teachers, the batch keys each reads, and how their soft targets combine.

    Several teachers' class distributions are mixed per example,

    ``p = Σ_i w_i · softmax(t_i)``,  and the teacher ``"logits"`` become ``log p``

    (``mix_teacher_probabilities``), so ``softmax("logits") = p`` and every logits term
    consumes the mixture unchanged. The weights ``w_i`` (``[batch, N]``, see
    ``log_weights``) come from ``combination``:

    - ``"fixed"``: ``weights`` normalised to sum 1 (default: uniform ``1/N``);
    - ``"entropy"``: ``w = softmax_i(−H(softmax(t_i)) / confidence_temperature)``
      (``entropy_teacher_log_weights``; Kwon et al. ICASSP 2020);
    - ``"gate"``: ``w = softmax(Dense([t_1, ..., t_N]))``, a linear gate on the concatenated
      teacher logits, initialised to zero (uniform weights) and trained by its own loss,
      ``gate_weight · CE(y, log p)`` (``gate_loss``). The terms read ``stop_gradient(log p)``.

    A single teacher (``teachers`` a model, not a list) is never mixed: its outputs are the
    terms' targets as they are, and ``combination`` must stay ``"fixed"``.

    Teachers run with ``training=False`` and are set ``trainable=False``. The Distiller
    tracks the teachers and the gate as its own layers (so they are saved with it).

    Args:
        teachers: a built ``keras.Model`` returning logits, or a list of them with distinct
            names and logits of one shape.
        inputs: the batch keys each teacher reads: with one teacher a key or a tuple of keys,
            with several one such entry per teacher. Defaults to the models' input names.
        combination: ``"fixed"``, ``"entropy"`` or ``"gate"``; several teachers only.
            Defaults to ``"fixed"``.
        weights: with ``"fixed"``, one weight ``>= 0`` per teacher (normalised to sum 1).
            Defaults to None (uniform).
        confidence_temperature: ``T > 0`` of the ``"entropy"`` weights. Defaults to 1.0.
        gate_weight: weight ``>= 0`` of the ``"gate"``'s cross-entropy. Defaults to 1.0.

    Example:

    >>> ensemble = TeacherEnsemble([image_teacher, audio_teacher], combination="entropy")
    >>> kdzoo.Distiller(teacher=ensemble, student=student)
    """

    def __init__(
        self,
        teachers,
        inputs=None,
        combination="fixed",
        weights=None,
        confidence_temperature=1.0,
        gate_weight=1.0,
    ):
        multi = isinstance(teachers, list | tuple)
        models = tuple(teachers) if multi else (teachers,)
        if not models:
            raise ValueError("`teacher` is an empty list; pass a model or a list of models.")
        for i, model in enumerate(models):
            if not isinstance(model, keras.Model) or not model.built:
                role = f"teacher[{i}]" if multi else "teacher"
                raise TypeError(f"`{role}` must be a built keras.Model; got {model!r}.")
        names = [t.name for t in models]
        if len(set(names)) != len(names):
            raise ValueError(
                f"The teachers must be distinct models with distinct names (features are "
                f"addressed as '<teacher name>/<feature>'); got names {names}."
            )
        if combination not in TEACHER_COMBINATIONS:
            raise ValueError(
                f"`teacher_combination` must be one of {TEACHER_COMBINATIONS}; got {combination!r}."
            )
        if not multi and (combination != "fixed" or weights is not None):
            raise ValueError(
                "`teacher_combination` and `teacher_weights` combine several teachers; pass "
                "`teacher` as a list of models to use them."
            )
        if weights is not None and combination != "fixed":
            raise ValueError(
                "`teacher_weights` applies to teacher_combination='fixed' only; "
                f"got teacher_combination={combination!r}."
            )
        fixed = _fixed_teacher_weights(weights, names)
        confidence_temperature = _positive_number(confidence_temperature, "confidence_temperature")
        if isinstance(gate_weight, bool) or not isinstance(gate_weight, int | float):
            raise ValueError(f"`gate_weight` must be a number >= 0; got {gate_weight!r}.")
        if gate_weight < 0:
            raise ValueError(f"`gate_weight` must be a number >= 0; got {gate_weight!r}.")
        if multi:
            per_teacher = [None] * len(models) if inputs is None else inputs
            per_teacher = [per_teacher] if isinstance(per_teacher, str) else list(per_teacher)
            if len(per_teacher) != len(models):
                raise ValueError(
                    f"`teacher_inputs` must hold one entry (a key or a tuple of keys) per "
                    f"teacher, {len(models)} for {names}; got {inputs!r}."
                )
            keys = tuple(
                check_input_keys(t, k, "teacher") for t, k in zip(models, per_teacher, strict=True)
            )
        else:
            keys = (check_input_keys(teachers, inputs, "teacher"),)
        shapes = [tuple(t.output.shape) for t in models]
        if len(set(shapes)) != 1:
            raise ValueError(
                "The teachers' logits must have one shape to be combined; got "
                + ", ".join(f"{n}: {s}" for n, s in zip(names, shapes, strict=True))
                + "."
            )
        for model in models:
            model.trainable = False

        self.teachers = models
        self.multi = multi
        self.inputs = keys
        self.combination = combination
        self.weights = None if weights is None else [float(w) for w in weights]
        self.confidence_temperature = confidence_temperature
        self.gate_weight = float(gate_weight)
        with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf: the teacher drops
            self._fixed_log_weights = np.log(fixed).astype("float32")
        self.gate = None
        self._gate_loss = None
        if combination == "gate":
            classes = shapes[0][-1]
            if classes is None:
                raise ValueError("teacher_combination='gate' needs teachers with a known width.")
            # Zero-initialised: training starts from the plain mean of the teachers.
            self.gate = keras.layers.Dense(
                len(models), kernel_initializer="zeros", name="teacher_gate"
            )
            self.gate.build((None, len(models) * classes))
            # −log p_y via sparse CE on log p (softmax(log p) = p), reduced by Keras like the
            # terms: sample weights and the 1/num_replicas scaling under tf.distribute.
            self._gate_loss = HardLabelCrossentropy(name="gate_crossentropy")
        self._sources = {}
        self._taps = tuple(feature_model(t) for t in models)

    # ------------------------------------------------------------------ outputs
    def resolve_output(self, key, term_name):
        """``(teacher index, output name)`` that a term's ``teacher_output=key`` reads; None:
        the mixture of several teachers."""
        if key == "logits":
            return None if self.multi else (0, "logits")
        by_name = {t.name: i for i, t in enumerate(self.teachers)}
        head, slash, feature = key.partition("/")
        if slash:
            if head not in by_name:
                raise ValueError(
                    f"Term {term_name!r}: `teacher_output={key!r}` names no teacher; the "
                    f"teachers are {list(by_name)}."
                )
            return by_name[head], feature
        if not self.multi:
            return 0, key  # feature_model raises, listing the features, if there is none
        owners = [t.name for t in self.teachers if key in feature_names(t)]
        if len(owners) == 1:
            return by_name[owners[0]], key
        if owners:
            raise ValueError(
                f"Term {term_name!r}: `teacher_output={key!r}` is ambiguous: teachers "
                f"{owners} all have it. Name one: {[f'{o}/{key}' for o in owners]}."
            )
        qualified = [f"{t.name}/{f}" for t in self.teachers for f in ["logits", *feature_names(t)]]
        raise ValueError(
            f"Term {term_name!r}: no teacher has a feature {key!r}. Teacher outputs: 'logits' "
            f"(the combination of the teachers) or one of {qualified}."
        )

    def read_outputs(self, terms):
        """Prepares the outputs ``terms`` read: resolves each ``teacher_output`` and taps the
        named features. Returns ``{teacher_output: (teacher index, output) or None}``."""
        sources = {}
        for term in terms:
            if term.teacher_output and term.teacher_output not in sources:
                sources[term.teacher_output] = self.resolve_output(term.teacher_output, term.name)
        wanted = [[] for _ in self.teachers]
        for source in sources.values():
            if source is not None:
                wanted[source[0]].append(source[1])
        self._taps = tuple(feature_model(t, w) for t, w in zip(self.teachers, wanted, strict=True))
        self._sources = sources
        return sources

    def output_shape(self, source):
        """The static shape of the output ``source`` (from ``read_outputs``) names."""
        index, output = (0, "logits") if source is None else source
        return tuple(self._taps[index].output[output].shape)

    def output_taps(self):
        """``[(prefix, tap, keys), ...]``, one per teacher: the prefix of its outputs' keys
        in cached outputs (``""`` for a single teacher, ``"<teacher name>/"`` for several),
        the model that computes the outputs the terms read (``{"logits": ..., <feature>:
        ...}``, sharing the teacher's weights) and the batch keys the teacher reads.

        Cached outputs (``x["teacher_outputs"]``) must hold ``prefix + name`` for every
        output of every tap; ``kdzoo.distillation.arrays_with_teacher_outputs`` writes them
        so."""
        prefixes = [f"{t.name}/" for t in self.teachers] if self.multi else [""]
        return list(zip(prefixes, self._taps, self.inputs, strict=True))

    def raw_outputs(self, x, route=select_inputs):
        """Each teacher's outputs ``[{"logits": ..., <feature>: ...}, ...]``, gradient-free:
        cached ones if the batch carries ``x["teacher_outputs"]``, else forward passes with
        ``training=False``, each teacher on its own keys (picked by ``route(x, keys,
        reader)``)."""
        if isinstance(x, dict) and TEACHER_OUTPUTS in x:
            cached = x[TEACHER_OUTPUTS]
            taps = self.output_taps()
            missing = [
                prefix + k
                for prefix, tap, _ in taps
                for k in tap.output
                if prefix + k not in cached
            ]
            if missing:
                hint = ""
                if self.multi:
                    hint = (
                        " With several teachers the cache holds each teacher's outputs under "
                        "'<teacher name>/<output>', so the combination can be recomputed; a "
                        "cache of the combined logits alone is not accepted."
                    )
                raise ValueError(
                    f"Cached teacher outputs lack {missing}; they hold {sorted(cached)}.{hint}"
                )
            return [{k: cached[prefix + k] for k in tap.output} for prefix, tap, _ in taps]
        raw = []
        for model, tap, keys in zip(self.teachers, self._taps, self.inputs, strict=True):
            reader = f"teacher {model.name!r}" if self.multi else "teacher"
            outputs = tap(route(x, keys, reader), training=False)
            raw.append({k: ops.stop_gradient(v) for k, v in outputs.items()})
        return raw

    def log_weights(self, logits):
        """``[batch, N]`` log-weights of the teachers, per ``combination``."""
        if self.combination == "entropy":
            return entropy_teacher_log_weights(logits, self.confidence_temperature)
        if self.combination == "gate":
            gate_in = ops.concatenate([ops.cast(t, "float32") for t in logits], axis=-1)
            return ops.log_softmax(ops.cast(self.gate(gate_in), "float32"), axis=-1)
        fixed = ops.convert_to_tensor(self._fixed_log_weights)
        return ops.broadcast_to(fixed[None, :], (ops.shape(logits[0])[0], len(self.teachers)))

    def combine(self, raw):
        """``(teacher outputs keyed as the terms read them, differentiable mixture log p or
        None)``; a single teacher's outputs also stay under their plain names."""
        outputs = {} if self.multi else dict(raw[0])
        for key, source in self._sources.items():
            if source is not None:
                outputs[key] = raw[source[0]][source[1]]
        if not self.multi:
            return outputs, None
        logits = [r["logits"] for r in raw]
        mixture = mix_teacher_probabilities(logits, self.log_weights(logits))
        # The terms read a constant target: only the gate's own loss trains the gate.
        outputs["logits"] = ops.stop_gradient(mixture)
        return outputs, mixture

    def gate_loss(self, y, mixture, sample_weight=None):
        """The gate's own loss ``CE(y, log p)``, unweighted by ``gate_weight``; None without
        a gate."""
        if self.gate is None:
            return None
        if y is None:
            raise ValueError(
                "teacher_combination='gate' trains its gate on the labels; the batch has none."
            )
        return self._gate_loss(y, mixture, sample_weight=sample_weight)

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "teachers": [serialize(t) for t in self.teachers]
            if self.multi
            else serialize(self.teachers[0]),
            "inputs": [list(k) for k in self.inputs] if self.multi else list(self.inputs[0]),
            "combination": self.combination,
            "weights": self.weights,
            "confidence_temperature": self.confidence_temperature,
            "gate_weight": self.gate_weight,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)

        def load(model_config):
            return keras.saving.deserialize_keras_object(
                model_config, custom_objects=custom_objects
            )

        teachers = config["teachers"]
        config["teachers"] = (
            [load(t) for t in teachers] if isinstance(teachers, list) else load(teachers)
        )
        return cls(**config)

    def __repr__(self):
        return (
            f"TeacherEnsemble({[t.name for t in self.teachers]}, combination={self.combination!r})"
        )
