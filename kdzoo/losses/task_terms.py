"""Distillation losses for tasks beyond one label out of K: multi-label classification
(independent sigmoids) and regression, and the logit MSE that also serves classification.

- ``MultiLabelKLDivergence``: per-label binary KL between the teacher's and the student's
  tempered sigmoids, ``τ²``-scaled (Hinton's soft targets, one Bernoulli per label).
- ``LogitMSE``: mean squared difference of the logits (Tang et al. 2019, "Distilling
  Task-Specific Knowledge from BERT into Simple Neural Networks"; Ba & Caruana 2014), for
  classification beside or instead of KL.
- ``RegressionToTeacher``: MSE or Huber from the student's prediction to the teacher's.
- ``TeacherBoundedRegression``: Chen et al.'s (2017) teacher-bounded regression loss: the
  student pays a squared error to the ground truth only where it is not better than the
  teacher by a margin.

As in ``kdzoo.losses.logits``, every function returns one value per example and its
``keras.losses.Loss`` twin reduces them (sample weights, and the 1/num_replicas scaling
Keras applies under tf.distribute). Per example, each loss *averages* over its labels or
targets (Keras' ``binary_crossentropy`` and ``mean_squared_error`` do the same), where the
papers' squared norms sum: the two differ by the constant number of outputs ``K``, which
rescales a term's weight (and the teacher-bounded loss's margin: the paper's ``m`` over
``K`` targets is ``m / K`` here), and averaging keeps one default weight sensible at any
width. Every function takes ``[batch, outputs]`` tensors (one output: ``[batch, 1]``).
"""

from __future__ import annotations

import keras
from keras import ops

from kdzoo.losses.decoupled import _unpack
from kdzoo.losses.logits import (
    TemperatureMixin,
    _check_same_shape,
    _temperature_tensor,
)

#: ``RegressionToTeacher``'s per-output penalties.
REGRESSION_KINDS = ("mse", "huber")


def _floats(what, *tensors):
    """The tensors as float32, each ``[batch, outputs]`` (a ``[batch]`` tensor would make
    the mean over outputs a mean over the batch)."""
    out = [ops.convert_to_tensor(t, dtype="float32") for t in tensors]
    for tensor in out:
        if len(tensor.shape) < 2:
            raise ValueError(
                f"{what}: expected [batch, outputs] tensors; got shape {tuple(tensor.shape)} "
                "(one output: [batch, 1])."
            )
    return out


def _check_non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"`{name}` must be a number >= 0; got {value!r}.")
    return float(value)


def multi_label_kl_divergence(teacher_logits, student_logits, temperature=4.0):
    """Multi-label soft-target loss, per example.

    ``τ² · mean_j KL(Bern(p_j) ‖ Bern(q_j))`` with ``p_j = σ(t_j/τ)`` (teacher) and
    ``q_j = σ(s_j/τ)`` (student), each label ``j`` an independent sigmoid:
    ``KL = p (log p − log q) + (1 − p) (log(1 − p) − log(1 − q))``, computed from
    ``log σ`` for stability. The ``τ²`` factor keeps the gradient's scale independent of
    ``τ``, as in Hinton et al.'s softmax version.

    Args:
        teacher_logits: ``[batch, labels]``; the target probabilities, as logits.
        student_logits: ``[batch, labels]``.
        temperature: ``τ > 0``: a number, or a scalar tensor / ``keras.Variable``. Defaults
            to 4.0.

    Returns:
        ``[batch]`` loss values.
    """
    temperature = _temperature_tensor(temperature)
    teacher_logits, student_logits = _floats(
        "multi_label_kl_divergence", teacher_logits, student_logits
    )
    _check_same_shape(teacher_logits, student_logits, "multi_label_kl_divergence")
    t, s = teacher_logits / temperature, student_logits / temperature
    log_p, log_not_p = ops.log_sigmoid(t), ops.log_sigmoid(-t)
    log_q, log_not_q = ops.log_sigmoid(s), ops.log_sigmoid(-s)
    kl = ops.exp(log_p) * (log_p - log_q) + ops.exp(log_not_p) * (log_not_p - log_not_q)
    return ops.square(temperature) * ops.mean(kl, axis=-1)


def logit_mse(teacher_logits, student_logits):
    """``mean_k (s_k − t_k)²`` per example: the student regresses the teacher's logits
    (Tang et al. 2019; their ``‖z_t − z_s‖²`` sums over the classes).

    Args:
        teacher_logits, student_logits: ``[batch, classes]`` (or any ``[batch, ...]``
            pair of one shape; the mean is over the last axis).
    """
    teacher_logits, student_logits = _floats("logit_mse", teacher_logits, student_logits)
    _check_same_shape(teacher_logits, student_logits, "logit_mse")
    return ops.mean(ops.square(student_logits - teacher_logits), axis=-1)


def _huber(error, delta):
    """``0.5 e²`` where ``|e| ≤ δ``, else ``δ (|e| − 0.5 δ)`` (Keras' ``Huber``)."""
    absolute = ops.abs(error)
    return ops.where(absolute <= delta, 0.5 * ops.square(error), delta * (absolute - 0.5 * delta))


def regression_to_teacher(teacher_predictions, student_predictions, kind="mse", delta=1.0):
    """The student's prediction against the teacher's, per example, averaged over targets:
    ``mean_k (s_k − t_k)²`` (``kind="mse"``) or ``mean_k huber_δ(s_k − t_k)``
    (``kind="huber"``: quadratic within ``δ``, linear beyond, so a teacher's outliers pull
    less).

    Args:
        teacher_predictions, student_predictions: ``[batch, targets]``.
        kind: ``"mse"`` or ``"huber"``. Defaults to ``"mse"``.
        delta: Huber's ``δ > 0``. Defaults to 1.0.
    """
    kind, delta = _check_regression(kind, delta)
    teacher_predictions, student_predictions = _floats(
        "regression_to_teacher", teacher_predictions, student_predictions
    )
    _check_same_shape(teacher_predictions, student_predictions, "regression_to_teacher")
    error = student_predictions - teacher_predictions
    if kind == "mse":
        return ops.mean(ops.square(error), axis=-1)
    return ops.mean(_huber(error, delta), axis=-1)


def _check_regression(kind, delta):
    if kind not in REGRESSION_KINDS:
        raise ValueError(f"`kind` must be one of {list(REGRESSION_KINDS)}; got {kind!r}.")
    if not _check_non_negative(delta, "delta") > 0:
        raise ValueError(f"`delta` must be a number > 0; got {delta!r}.")
    return kind, float(delta)


def _targets_like(targets, predictions, what):
    """Regression targets as ``[batch, targets]`` float32: ``[batch]`` becomes a column."""
    targets = ops.convert_to_tensor(targets, dtype="float32")
    if len(targets.shape) == 1 and len(predictions.shape) == 2 and predictions.shape[-1] == 1:
        targets = ops.expand_dims(targets, -1)
    if targets.shape != predictions.shape:
        raise ValueError(
            f"{what}: targets of shape {tuple(targets.shape)} do not match predictions of "
            f"shape {tuple(predictions.shape)}."
        )
    return targets


def teacher_bounded_regression(teacher_predictions, student_predictions, targets, margin=0.0):
    """Chen et al.'s (2017, "Learning Efficient Object Detection Models with Knowledge
    Distillation", eq. 4) teacher-bounded regression loss, per example:

    ``e_s = mean_k (s_k − y_k)²`` if ``e_s + m > e_t``, else 0, with
    ``e_t = mean_k (t_k − y_k)²`` (the paper's squared norms sum over the ``K`` targets, so
    its margin is ``K · m`` here; one target: the same).

    The teacher is an upper bound, not a target: the student pays its squared error to the
    ground truth ``y`` until it is better than the teacher by the margin ``m``, then nothing
    (no gradient), so a teacher that is wrong never pulls the student away from the truth.
    The paper adds it to a plain regression loss on the labels (a separate term here).

    Args:
        teacher_predictions, student_predictions: ``[batch, targets]``.
        targets: the ground truth, ``[batch, targets]`` (or ``[batch]`` for one target).
        margin: ``m >= 0``. Defaults to 0.

    Returns:
        ``[batch]`` loss values.
    """
    margin = _check_non_negative(margin, "margin")
    teacher_predictions, student_predictions = _floats(
        "teacher_bounded_regression", teacher_predictions, student_predictions
    )
    _check_same_shape(teacher_predictions, student_predictions, "teacher_bounded_regression")
    targets = _targets_like(targets, student_predictions, "teacher_bounded_regression")
    student_error = ops.mean(ops.square(student_predictions - targets), axis=-1)
    teacher_error = ops.mean(ops.square(teacher_predictions - targets), axis=-1)
    active = student_error + margin > teacher_error
    return ops.where(active, student_error, ops.zeros_like(student_error))


@keras.saving.register_keras_serializable(package="kdzoo")
class MultiLabelKLDivergence(TemperatureMixin, keras.losses.Loss):
    """``τ² · mean_j KL(σ(t_j/τ) ‖ σ(s_j/τ))``: soft targets for multi-label tasks, one
    binary KL per label (``multi_label_kl_divergence``).

    Called as ``loss(teacher_logits, student_logits)``. ``τ`` lives in
    ``temperature_variable`` (``TemperatureMixin``), so a schedule can change it.

    Args:
        temperature: ``τ > 0``, or a scalar ``keras.Variable`` to share. Defaults to 4.0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"multi_label_kl_divergence"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).
    """

    compares = "logits"

    def __init__(
        self,
        temperature=4.0,
        reduction="sum_over_batch_size",
        name="multi_label_kl_divergence",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._init_temperature(temperature)

    def call(self, y_true, y_pred):
        return multi_label_kl_divergence(y_true, y_pred, self.temperature_variable)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="kdzoo")
class LogitMSE(keras.losses.Loss):
    """``mean_k (s_k − t_k)²`` between the teacher's and the student's logits (Tang et al.
    2019). Called as ``loss(teacher_logits, student_logits)``.

    Args:
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"logit_mse"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).
    """

    compares = "logits"

    def __init__(self, reduction="sum_over_batch_size", name="logit_mse", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return logit_mse(y_true, y_pred)


@keras.saving.register_keras_serializable(package="kdzoo")
class RegressionToTeacher(keras.losses.Loss):
    """The student's regression output against the teacher's: MSE, or Huber with ``δ``
    (``regression_to_teacher``). Called as ``loss(teacher_predictions,
    student_predictions)``.

    Args:
        kind: ``"mse"`` or ``"huber"``. Defaults to ``"mse"``.
        delta: Huber's ``δ > 0`` (ignored by ``"mse"``). Defaults to 1.0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"regression_to_teacher"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).
    """

    compares = "logits"

    def __init__(
        self,
        kind="mse",
        delta=1.0,
        reduction="sum_over_batch_size",
        name="regression_to_teacher",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.kind, self.delta = _check_regression(kind, delta)

    def call(self, y_true, y_pred):
        return regression_to_teacher(y_true, y_pred, self.kind, self.delta)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "delta": self.delta}


@keras.saving.register_keras_serializable(package="kdzoo")
class TeacherBoundedRegression(keras.losses.Loss):
    """Chen et al.'s (2017) teacher-bounded regression loss
    (``teacher_bounded_regression``): the student's squared error to the ground truth,
    paid only while it is not better than the teacher's by ``margin``.

    It reads the labels (the regression targets) beside the teacher's predictions:
    ``y_true`` is ``{"teacher": teacher_predictions, "labels": targets}``
    (``kdzoo.losses.teacher_with_labels``), as for ``DecoupledKD``.

    Args:
        margin: ``m >= 0``. Defaults to 0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"teacher_bounded_regression"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).
    """

    compares = "logits"
    needs_labels = True

    def __init__(
        self,
        margin=0.0,
        reduction="sum_over_batch_size",
        name="teacher_bounded_regression",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = _check_non_negative(margin, "margin")

    def call(self, y_true, y_pred):
        teacher, targets = _unpack(y_true, self.name)
        return teacher_bounded_regression(teacher, y_pred, targets, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}
