"""Losses on logits: soft-target KL (Hinton et al. 2015), its logit-standardised variant
(Sun et al. 2024) and hard-label cross-entropy.

Every function returns one value per example; the ``keras.losses.Loss`` twins reduce them
(with sample weights, and with the 1/num_replicas scaling Keras applies under
tf.distribute), so the Distiller never reduces by hand.

Temperature-based losses keep ``τ`` in a non-trainable ``keras.Variable``, the attribute
``temperature_variable``: a schedule can ``assign`` a new value between (or during) epochs
and the already-traced train step reads it without retracing.
"""

from __future__ import annotations

import keras
from keras import ops

from kdzoo.backend import is_tensorflow
from kdzoo.losses._labels import _check_labels, _nan_where_invalid


def _check_temperature(temperature):
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise ValueError(f"`temperature` must be a number > 0, got {temperature!r}.")
    if not temperature > 0:
        raise ValueError(f"`temperature` must be a number > 0, got {temperature!r}.")
    return float(temperature)


def _temperature_tensor(temperature):
    """A temperature for the per-example functions: a number > 0 (checked here), or a
    scalar tensor / ``keras.Variable`` (read as is, so a schedule can change it)."""
    if isinstance(temperature, keras.Variable) or ops.is_tensor(temperature):
        return ops.cast(temperature, "float32")
    return _check_temperature(temperature)


def _check_same_shape(teacher, student, what):
    if teacher.shape != student.shape:
        raise ValueError(
            f"{what}: teacher shape {tuple(teacher.shape)} and student shape "
            f"{tuple(student.shape)} must match."
        )


class TemperatureMixin:
    """Holds a loss's softmax temperature in ``temperature_variable``.

    ``temperature_variable`` is a scalar, non-trainable float32 ``keras.Variable``; assign
    to it (``loss.temperature_variable.assign(2.0)``, or ``loss.temperature = 2.0``) to change
    ``τ`` inside an already-traced step. Passing a ``keras.Variable`` as ``temperature``
    shares it, so one schedule can drive several losses. ``temperature`` reads the current
    value as a Python float (eagerly); ``get_config`` saves that value.
    """

    def _init_temperature(self, temperature):
        if isinstance(temperature, keras.Variable):
            if tuple(temperature.shape) != ():
                raise ValueError(
                    f"`temperature` must be a scalar Variable; got shape {temperature.shape}."
                )
            _check_temperature(float(ops.convert_to_numpy(temperature)))
            self.temperature_variable = temperature
        else:
            self.temperature_variable = keras.Variable(
                _check_temperature(temperature),
                dtype="float32",
                trainable=False,
                name="temperature",
            )

    @property
    def temperature(self):
        """The current temperature, as a Python float."""
        return float(ops.convert_to_numpy(self.temperature_variable))

    @temperature.setter
    def temperature(self, value):
        self.temperature_variable.assign(_check_temperature(value))


def standardize_logits(logits, epsilon=1e-7):
    """Z-scores each example's logits over the class axis: ``(z − mean(z)) / (std(z) + ε)``.

    The pre-process of logit-standardised KD (Sun et al. 2024, "Logit Standardization in
    Knowledge Distillation", CVPR). ``std`` is the population standard deviation
    ``sqrt(mean_k (z_k − mean(z))²)``, as in the paper; the authors' code uses the unbiased
    one, which only rescales ``τ`` by ``sqrt(K / (K − 1))``.

    Args:
        logits: ``[batch, classes]``.
        epsilon: added to the standard deviation, for constant logits. Defaults to 1e-7.

    Returns:
        ``[batch, classes]`` standardised logits.
    """
    logits = ops.convert_to_tensor(logits, dtype="float32")
    centred = logits - ops.mean(logits, axis=-1, keepdims=True)
    std = ops.sqrt(ops.mean(ops.square(centred), axis=-1, keepdims=True))
    return centred / (std + epsilon)


def soft_target_kl_divergence(teacher_logits, student_logits, temperature=4.0, standardize=False):
    """Hinton's soft-target loss, per example.

    ``τ² · KL(softmax(t/τ) ‖ softmax(s/τ)) = τ² · Σ_k p_k (log p_k − log q_k)``
    with ``p = softmax(t/τ)`` (teacher) and ``q = softmax(s/τ)`` (student), the softmax over
    the last (class) axis. The ``τ²`` factor keeps the gradient's magnitude independent of
    ``τ`` (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

    With ``standardize=True`` each example's teacher and student logits are first z-scored
    separately (``standardize_logits``; Sun et al. 2024): the student then matches the
    teacher's logit *relations* rather than its logit scale.

    Args:
        teacher_logits: ``[batch, classes]``; the target distribution.
        student_logits: ``[batch, classes]``.
        temperature: ``τ > 0``: a number, or a scalar tensor / ``keras.Variable``. Defaults
            to 4.0.
        standardize: z-score the logits before the temperature softmax. Defaults to False.

    Returns:
        ``[batch]`` loss values.
    """
    temperature = _temperature_tensor(temperature)
    teacher_logits = ops.convert_to_tensor(teacher_logits, dtype="float32")
    student_logits = ops.convert_to_tensor(student_logits, dtype="float32")
    _check_same_shape(teacher_logits, student_logits, "soft_target_kl_divergence")
    if standardize:
        teacher_logits = standardize_logits(teacher_logits)
        student_logits = standardize_logits(student_logits)
    log_p = ops.log_softmax(teacher_logits / temperature, axis=-1)
    log_q = ops.log_softmax(student_logits / temperature, axis=-1)
    kl = ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)
    return ops.square(temperature) * kl


def hard_label_crossentropy(labels, student_logits):
    """Cross-entropy with integer labels, per example: ``−log softmax(s)_y``.

    A label outside ``[0, classes)`` is an error, never a silent 0: TensorFlow's sparse
    cross-entropy raises on CPU (NaN under XLA); on other backends, whose one-hot of such a
    label is all zero, the labels are checked as DKD's are (``ValueError`` when concrete,
    a NaN loss inside ``jax.jit``).

    Args:
        labels: ``[batch]`` (or ``[batch, 1]``) integer class ids.
        student_logits: ``[batch, classes]``.
    """
    student_logits = ops.cast(student_logits, "float32")
    if is_tensorflow():
        return keras.losses.sparse_categorical_crossentropy(
            labels, student_logits, from_logits=True
        )
    if len(labels.shape) == len(student_logits.shape) and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    labels, valid = _check_labels(labels, student_logits.shape[-1], "hard_label_crossentropy")
    loss = keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
    return _nan_where_invalid(loss, valid)


@keras.saving.register_keras_serializable(package="kdzoo")
class SoftTargetKLDivergence(TemperatureMixin, keras.losses.Loss):
    """``τ² · KL(softmax(t/τ) ‖ softmax(s/τ))`` (Hinton et al. 2015).

    Called as ``loss(teacher_logits, student_logits)``: the teacher is ``y_true`` (the
    target), the student ``y_pred``, as in every Keras loss. ``τ`` lives in
    ``temperature_variable`` (see ``TemperatureMixin``).

    Args:
        temperature: softmax temperature ``τ > 0``, or a scalar ``keras.Variable`` to share.
            Defaults to 4.0.
        standardize: z-score each example's teacher and student logits before the softmax
            (Sun et al. 2024; see ``LogitStandardizedKLDivergence``). Defaults to False.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"soft_target_kl_divergence"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).

    Example:

    >>> loss = SoftTargetKLDivergence(temperature=2.0)
    >>> loss([[2.0, 0.0]], [[0.0, 2.0]])
    """

    compares = "logits"

    def __init__(
        self,
        temperature=4.0,
        standardize=False,
        reduction="sum_over_batch_size",
        name="soft_target_kl_divergence",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._init_temperature(temperature)
        if not isinstance(standardize, bool):
            raise ValueError(f"`standardize` must be True or False; got {standardize!r}.")
        self.standardize = standardize

    def call(self, y_true, y_pred):
        return soft_target_kl_divergence(
            y_true, y_pred, self.temperature_variable, standardize=self.standardize
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "standardize": self.standardize,
        }


@keras.saving.register_keras_serializable(package="kdzoo")
class LogitStandardizedKLDivergence(SoftTargetKLDivergence):
    """Logit-standardised KD: ``τ² · KL(softmax(Z(t)/τ) ‖ softmax(Z(s)/τ))``.

    ``Z(z) = (z − mean(z)) / std(z)`` per example, over the classes (Sun et al. 2024, "Logit
    Standardization in Knowledge Distillation", CVPR). Plain KD with a shared ``τ`` asks the
    student to match the teacher's logit range as well as its class relations; after the
    z-score only the relations remain. That helps when the two logit scales differ, which is
    typical across modalities (e.g. an image+audio teacher and an audio-only student).
    Equivalent to ``SoftTargetKLDivergence(temperature, standardize=True)``.

    Args:
        temperature: base temperature ``τ > 0`` (or a scalar ``keras.Variable``). Since the
            standardised logits have unit variance, ``τ`` is smaller than for plain KD; the
            paper's CIFAR-100 runs use 2 (with a KD weight of 9). Defaults to 2.0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"logit_standardized_kl_divergence"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).

    Example:

    >>> loss = LogitStandardizedKLDivergence(temperature=2.0)
    >>> loss([[20.0, 0.0, 10.0]], [[2.0, 0.0, 1.0]])  # same relations, different scale: 0
    """

    def __init__(
        self,
        temperature=2.0,
        reduction="sum_over_batch_size",
        name="logit_standardized_kl_divergence",
        dtype=None,
    ):
        super().__init__(temperature, standardize=True, reduction=reduction, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["standardize"]
        return config


@keras.saving.register_keras_serializable(package="kdzoo")
class HardLabelCrossentropy(keras.losses.Loss):
    """``−log softmax(s)_y``: cross-entropy on integer labels and student logits, with
    optional label smoothing.

    With ``label_smoothing=ε`` the target is ``(1 − ε)·onehot(y) + ε/K``, as in
    ``keras.losses.CategoricalCrossentropy(label_smoothing=ε)`` (which needs one-hot labels;
    Keras' sparse cross-entropy has no smoothing): ``(1 − ε)·(−log p_y) + ε·mean_k(−log p_k)``.

    Args:
        label_smoothing: ``ε`` in ``[0, 1)``. Defaults to 0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"hard_label_crossentropy"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).
    """

    compares = "labels"

    def __init__(
        self,
        label_smoothing=0.0,
        reduction="sum_over_batch_size",
        name="hard_label_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(label_smoothing, bool) or not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1); got {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        loss = hard_label_crossentropy(y_true, y_pred)
        if self.label_smoothing:
            uniform = -ops.mean(ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1), axis=-1)
            loss = (1.0 - self.label_smoothing) * loss + self.label_smoothing * uniform
        return loss

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
