"""Losses on logits: soft-target KL (Hinton et al. 2015) and hard-label cross-entropy.

Every function returns one value per example; the ``keras.losses.Loss`` twins reduce them
(with sample weights, and with the 1/num_replicas scaling Keras applies under
tf.distribute), so the Distiller never reduces by hand.
"""

from __future__ import annotations

import keras
from keras import ops


def _check_temperature(temperature):
    if not isinstance(temperature, int | float) or not temperature > 0:
        raise ValueError(f"`temperature` must be a number > 0, got {temperature!r}.")
    return float(temperature)


def _check_same_shape(teacher, student, what):
    if teacher.shape != student.shape:
        raise ValueError(
            f"{what}: teacher shape {tuple(teacher.shape)} and student shape "
            f"{tuple(student.shape)} must match."
        )


def soft_target_kl_divergence(teacher_logits, student_logits, temperature=4.0):
    """Hinton's soft-target loss, per example.

    ``τ² · KL(softmax(t/τ) ‖ softmax(s/τ)) = τ² · Σ_k p_k (log p_k − log q_k)``
    with ``p = softmax(t/τ)`` (teacher) and ``q = softmax(s/τ)`` (student), the softmax over
    the last (class) axis. The ``τ²`` factor keeps the gradient's magnitude independent of
    ``τ`` (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

    Args:
        teacher_logits: ``[batch, classes]``; the target distribution.
        student_logits: ``[batch, classes]``.
        temperature: ``τ > 0``. Defaults to 4.0.

    Returns:
        ``[batch]`` loss values.
    """
    temperature = _check_temperature(temperature)
    teacher_logits = ops.convert_to_tensor(teacher_logits, dtype="float32")
    student_logits = ops.convert_to_tensor(student_logits, dtype="float32")
    _check_same_shape(teacher_logits, student_logits, "soft_target_kl_divergence")
    log_p = ops.log_softmax(teacher_logits / temperature, axis=-1)
    log_q = ops.log_softmax(student_logits / temperature, axis=-1)
    kl = ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)
    return (temperature**2) * kl


def hard_label_crossentropy(labels, student_logits):
    """Cross-entropy with integer labels, per example: ``−log softmax(s)_y``.

    Args:
        labels: ``[batch]`` (or ``[batch, 1]``) integer class ids.
        student_logits: ``[batch, classes]``.
    """
    return keras.losses.sparse_categorical_crossentropy(
        labels, ops.cast(student_logits, "float32"), from_logits=True
    )


@keras.saving.register_keras_serializable(package="kdzoo")
class SoftTargetKLDivergence(keras.losses.Loss):
    """``τ² · KL(softmax(t/τ) ‖ softmax(s/τ))`` (Hinton et al. 2015).

    Called as ``loss(teacher_logits, student_logits)``: the teacher is ``y_true`` (the
    target), the student ``y_pred``, as in every Keras loss.

    Args:
        temperature: softmax temperature ``τ > 0``. Defaults to 4.0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"soft_target_kl_divergence"``.

    Example:

    >>> loss = SoftTargetKLDivergence(temperature=2.0)
    >>> loss([[2.0, 0.0]], [[0.0, 2.0]])
    """

    def __init__(
        self,
        temperature=4.0,
        reduction="sum_over_batch_size",
        name="soft_target_kl_divergence",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = _check_temperature(temperature)

    def call(self, y_true, y_pred):
        return soft_target_kl_divergence(y_true, y_pred, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="kdzoo")
class HardLabelCrossentropy(keras.losses.Loss):
    """``−log softmax(s)_y``: plain cross-entropy on integer labels and student logits.

    Args:
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"hard_label_crossentropy"``.
    """

    def __init__(self, reduction="sum_over_batch_size", name="hard_label_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return hard_label_crossentropy(y_true, y_pred)
