"""Target-aware logit losses that split the target class from the others: decoupled KD
(Zhao et al. 2022) and non-target-class KD (as in C2KD, Huo et al. 2024).

They need the labels as well as the teacher's logits. Their ``y_true`` is the dict
``{"teacher": teacher_logits, "labels": labels}`` (``teacher_with_labels``); the class
attribute ``needs_labels = True`` tells the Distiller to build it for a ``target="teacher"``
term. Labels are integer class ids, ``[batch]`` or ``[batch, 1]``, in ``[0, classes)``; any
other label is refused rather than becoming an all-zero one-hot row (see ``_check_labels``):
on TensorFlow with ``tf.errors.InvalidArgumentError``, as sparse cross-entropy does on CPU;
on other backends with ``ValueError`` when the labels are concrete, and with a NaN loss for
those examples inside ``jax.jit``, where nothing can raise.
"""

from __future__ import annotations

import keras
from keras import ops

from kdzoo.losses._labels import _check_labels, _nan_where_invalid
from kdzoo.losses.logits import TemperatureMixin, _check_same_shape, _temperature_tensor

#: Stands in for ``−∞`` on the masked target logit: finite, so ``0 · (log p − log q)`` is 0
#: rather than NaN, and ``exp`` of it underflows to exactly 0 in float32.
_MASKED_LOGIT = -1e9


def teacher_with_labels(teacher_logits, labels):
    """The ``y_true`` of a loss with ``needs_labels``: ``{"teacher": ..., "labels": ...}``."""
    return {"teacher": teacher_logits, "labels": labels}


def _unpack(y_true, what):
    if not isinstance(y_true, dict) or set(y_true) != {"teacher", "labels"}:
        got = sorted(y_true) if isinstance(y_true, dict) else type(y_true).__name__
        raise ValueError(
            f"{what}: `y_true` must be the dict {{'teacher': teacher_logits, 'labels': "
            f"labels}} (see kdzoo.losses.teacher_with_labels); got {got}."
        )
    return y_true["teacher"], y_true["labels"]


def _check_weight(value, name):
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"`{name}` must be a number >= 0; got {value!r}.")
    return float(value)


def _prepare(teacher_logits, student_logits, labels, what):
    """Float logits of equal shape, a boolean ``[batch, classes]`` target mask and the
    ``[batch]`` mask of valid labels (see ``_check_labels``)."""
    teacher_logits = ops.convert_to_tensor(teacher_logits, dtype="float32")
    student_logits = ops.convert_to_tensor(student_logits, dtype="float32")
    _check_same_shape(teacher_logits, student_logits, what)
    classes = student_logits.shape[-1]
    if len(student_logits.shape) != 2 or classes is None or classes < 2:
        raise ValueError(
            f"{what}: logits must be [batch, classes] with at least 2 classes; got shape "
            f"{tuple(student_logits.shape)}."
        )
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 1:
        raise ValueError(
            f"{what}: `labels` must be integer class ids of shape [batch] or [batch, 1]; got "
            f"shape {tuple(labels.shape)}."
        )
    labels, valid = _check_labels(labels, classes, what)
    target = ops.one_hot(labels, classes) > 0.5
    return teacher_logits, student_logits, target, valid


def _non_target_log_probs(scaled_logits, target):
    """``log p̂``: log-softmax over the non-target classes only (target entry ≈ −1e9)."""
    return ops.log_softmax(ops.where(target, _MASKED_LOGIT, scaled_logits), axis=-1)


def _non_target_kl(log_p_hat, log_q_hat, target):
    """``Σ_{k≠y} p̂_k (log p̂_k − log q̂_k)``; the target entry is dropped explicitly."""
    terms = ops.exp(log_p_hat) * (log_p_hat - log_q_hat)
    return ops.sum(ops.where(target, 0.0, terms), axis=-1)


def _binary_log_probs(scaled_logits, target):
    """``(log p_y, log(1 − p_y))`` of the target-vs-rest distribution, computed stably."""
    log_all = ops.logsumexp(scaled_logits, axis=-1)
    log_target = ops.sum(ops.where(target, scaled_logits, 0.0), axis=-1) - log_all
    log_rest = ops.logsumexp(ops.where(target, _MASKED_LOGIT, scaled_logits), axis=-1) - log_all
    return log_target, log_rest


def decoupled_kd(teacher_logits, student_logits, labels, alpha=1.0, beta=8.0, temperature=4.0):
    """Decoupled knowledge distillation, per example.

    ``τ² · (α · TCKD + β · NCKD)`` with, for the label ``y``, ``p = softmax(t/τ)`` and
    ``q = softmax(s/τ)``:

    - ``TCKD = KL(b^T ‖ b^S)`` over the binary target-vs-rest distribution
      ``b = [p_y, 1 − p_y]``;
    - ``NCKD = KL(p̂^T ‖ p̂^S)`` with ``p̂_k = p_k / (1 − p_y)``, ``k ≠ y``: the distribution
      among the non-target classes.

    Classic KD is ``TCKD + (1 − p^T_y) · NCKD``; decoupling lets NCKD, the "dark knowledge",
    be weighted independently of the teacher's confidence (Zhao, Cui, Song, Qiu & Liang 2022,
    "Decoupled Knowledge Distillation", CVPR). The ``τ²`` factor is that of the authors'
    code. Their training-length warm-up of the loss weight is left to a weight schedule.

    Args:
        teacher_logits: ``[batch, classes]``.
        student_logits: ``[batch, classes]``.
        labels: ``[batch]`` or ``[batch, 1]`` integer class ids in ``[0, classes)``; any
            other raises ``tf.errors.InvalidArgumentError`` on TensorFlow, ``ValueError``
            on other backends (under XLA or ``jax.jit``: a NaN loss for that example).
        alpha: weight of TCKD, ``>= 0``. Defaults to 1.0.
        beta: weight of NCKD, ``>= 0``. Defaults to 8.0 (the paper's CIFAR-100 value).
        temperature: ``τ > 0``: a number or a scalar tensor / ``keras.Variable``. Defaults
            to 4.0.

    Returns:
        ``[batch]`` loss values.
    """
    alpha, beta = _check_weight(alpha, "alpha"), _check_weight(beta, "beta")
    temperature = _temperature_tensor(temperature)
    t, s, target, valid = _prepare(teacher_logits, student_logits, labels, "decoupled_kd")
    t, s = t / temperature, s / temperature
    t_target, t_rest = _binary_log_probs(t, target)
    s_target, s_rest = _binary_log_probs(s, target)
    tckd = ops.exp(t_target) * (t_target - s_target) + ops.exp(t_rest) * (t_rest - s_rest)
    nckd = _non_target_kl(
        _non_target_log_probs(t, target), _non_target_log_probs(s, target), target
    )
    return _nan_where_invalid(ops.square(temperature) * (alpha * tckd + beta * nckd), valid)


def non_target_kl_divergence(teacher_logits, student_logits, labels, temperature=4.0):
    """KL between teacher and student over the non-target classes only, per example.

    ``τ² · Σ_{k≠y} p̂_k (log p̂_k − log q̂_k)``, with ``p̂ = softmax over k ≠ y of t_k/τ`` and
    ``q̂`` likewise for the student: both distributions are renormalised without the target
    class ``y``, whose term is dropped. Across modalities the teacher's confidence in the
    target often does not transfer, while the ranking of the other classes does; C2KD
    (Huo et al. 2024, "C2KD: Bridging the Modality Gap for Cross-Modal Knowledge
    Distillation", CVPR) distils only these non-target classes. This is DKD's NCKD term.

    Deviations from the C2KD code, by choice: the target class is removed and the rest
    renormalised (the released code sets the target logit to 0 instead, which keeps a
    data-dependent target probability in both softmaxes); ``τ²`` is applied, as in KD and
    DKD; C2KD's on-the-fly sample selection (by rank correlation) is not part of the loss
    (use sample weights for that).

    Args:
        teacher_logits: ``[batch, classes]``.
        student_logits: ``[batch, classes]``.
        labels: ``[batch]`` or ``[batch, 1]`` integer class ids in ``[0, classes)``; any
            other raises ``tf.errors.InvalidArgumentError`` on TensorFlow, ``ValueError``
            on other backends (under XLA or ``jax.jit``: a NaN loss for that example).
        temperature: ``τ > 0``: a number or a scalar tensor / ``keras.Variable``. Defaults
            to 4.0.

    Returns:
        ``[batch]`` loss values.
    """
    temperature = _temperature_tensor(temperature)
    t, s, target, valid = _prepare(
        teacher_logits, student_logits, labels, "non_target_kl_divergence"
    )
    t, s = t / temperature, s / temperature
    kl = _non_target_kl(_non_target_log_probs(t, target), _non_target_log_probs(s, target), target)
    return _nan_where_invalid(ops.square(temperature) * kl, valid)


@keras.saving.register_keras_serializable(package="kdzoo")
class DecoupledKD(TemperatureMixin, keras.losses.Loss):
    """Decoupled KD: ``τ² · (α · TCKD + β · NCKD)`` (Zhao et al. 2022, CVPR).

    See ``decoupled_kd`` for the formula. Called as
    ``loss({"teacher": teacher_logits, "labels": labels}, student_logits)``; in a Distiller
    a ``target="teacher"`` term gets the labels automatically (``needs_labels``). ``τ`` lives
    in ``temperature_variable`` (see ``TemperatureMixin``).

    Args:
        alpha: weight of the target-class term TCKD, ``>= 0``. Defaults to 1.0.
        beta: weight of the non-target-class term NCKD, ``>= 0``. Defaults to 8.0.
        temperature: ``τ > 0``, or a scalar ``keras.Variable`` to share. Defaults to 4.0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"decoupled_kd"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).

    Example:

    >>> loss = DecoupledKD(alpha=1.0, beta=8.0, temperature=4.0)
    >>> loss({"teacher": [[3.0, 1.0, 0.0]], "labels": [0]}, [[1.0, 0.0, 1.0]])
    """

    compares = "logits"
    #: ``y_true`` is ``{"teacher": ..., "labels": ...}``; the Distiller builds it.
    needs_labels = True

    def __init__(
        self,
        alpha=1.0,
        beta=8.0,
        temperature=4.0,
        reduction="sum_over_batch_size",
        name="decoupled_kd",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = _check_weight(alpha, "alpha")
        self.beta = _check_weight(beta, "beta")
        self._init_temperature(temperature)

    def call(self, y_true, y_pred):
        teacher, labels = _unpack(y_true, self.name)
        return decoupled_kd(
            teacher, y_pred, labels, self.alpha, self.beta, self.temperature_variable
        )

    def get_config(self):
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "beta": self.beta,
            "temperature": self.temperature,
        }


@keras.saving.register_keras_serializable(package="kdzoo")
class NonTargetKLDivergence(TemperatureMixin, keras.losses.Loss):
    """Non-target-class KD: ``τ² · KL(p̂^T ‖ p̂^S)`` over the classes ``k ≠ y`` (C2KD-style).

    See ``non_target_kl_divergence`` for the formula and the deviations from C2KD (Huo et
    al. 2024, CVPR). Not to be confused with "normalized KD" (Yang et al. 2023), also
    abbreviated NKD elsewhere. Called as
    ``loss({"teacher": teacher_logits, "labels": labels}, student_logits)``; in a Distiller
    the labels come automatically (``needs_labels``). ``τ`` lives in
    ``temperature_variable`` (see ``TemperatureMixin``).

    Args:
        temperature: ``τ > 0``, or a scalar ``keras.Variable`` to share. Defaults to 4.0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"non_target_kl_divergence"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).
    """

    compares = "logits"
    #: ``y_true`` is ``{"teacher": ..., "labels": ...}``; the Distiller builds it.
    needs_labels = True

    def __init__(
        self,
        temperature=4.0,
        reduction="sum_over_batch_size",
        name="non_target_kl_divergence",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._init_temperature(temperature)

    def call(self, y_true, y_pred):
        teacher, labels = _unpack(y_true, self.name)
        return non_target_kl_divergence(teacher, y_pred, labels, self.temperature_variable)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
