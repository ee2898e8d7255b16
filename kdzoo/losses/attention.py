"""Attention transfer on spatial feature maps (Zagoruyko & Komodakis 2017, "Paying More
Attention to Attention: Improving the Performance of Convolutional Neural Networks via
Attention Transfer", ICLR).

The channel axis is summed out, so teacher and student maps may have different channel
counts and need no adapter (``needs_adapter = False`` tells the Distiller so); their
spatial axes must match.
"""

from __future__ import annotations

import keras
from keras import ops


def _check_power(power):
    if isinstance(power, bool) or not isinstance(power, int | float) or power < 1:
        raise ValueError(f"`power` must be a number >= 1; got {power!r}.")
    return float(power)


def _safe_sqrt(x):
    """``sqrt(x)`` for ``x >= 0`` with a zero (not infinite) gradient at 0."""
    positive = x > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, x, 1.0)), 0.0)


def attention_map(feature_map, power=2.0, epsilon=1e-12):
    """The spatial attention vector of a feature map, per example.

    ``Q = vec(Σ_c |A_c|^p)`` over the channels ``c``, then ``Q / ‖Q‖₂`` (Zagoruyko &
    Komodakis 2017, eq. 1-2).

    Args:
        feature_map: ``[batch, *spatial, channels]``, e.g. ``[batch, H, W, C]`` (channels
            last) or ``[batch, T, C]``.
        power: ``p >= 1``. Defaults to 2.0 (the paper's choice).
        epsilon: lower bound on ``‖Q‖₂``, for all-zero maps. Defaults to 1e-12.

    Returns:
        ``[batch, prod(spatial)]`` unit-norm attention vectors.
    """
    power = _check_power(power)
    x = ops.convert_to_tensor(feature_map, dtype="float32")
    if len(x.shape) < 3:
        raise ValueError(
            f"attention_map: `feature_map` must be [batch, *spatial, channels] (rank >= 3); "
            f"got shape {tuple(x.shape)}."
        )
    q = ops.sum(ops.power(ops.abs(x), power), axis=-1)
    q = ops.reshape(q, (ops.shape(q)[0], -1))
    norm = ops.sqrt(ops.sum(ops.square(q), axis=-1, keepdims=True))
    return q / ops.maximum(norm, epsilon)


def attention_transfer(teacher_maps, student_maps, power=2.0):
    """Attention-transfer distance, per example: ``‖Q_S/‖Q_S‖₂ − Q_T/‖Q_T‖₂‖₂``.

    ``Q = vec(Σ_c |A_c|^p)`` (``attention_map``). This is the paper's formulation (eq. 2,
    with ``p = 2`` and the L2 norm of the difference); its ``β/2`` is the term's weight. The
    authors' code instead averages the *squared* difference over positions,
    ``‖·‖₂² / (H·W)``, with ``β = 1000``: a different (smoother) penalty, not a rescaling.

    Args:
        teacher_maps: ``[batch, *spatial, C_t]``.
        student_maps: ``[batch, *spatial, C_s]``; the same spatial shape as the teacher's,
            any channel count.
        power: ``p >= 1`` of the attention map. Defaults to 2.0.

    Returns:
        ``[batch]`` loss values in ``[0, √2]``.
    """
    teacher_maps = ops.convert_to_tensor(teacher_maps, dtype="float32")
    student_maps = ops.convert_to_tensor(student_maps, dtype="float32")
    if (
        len(teacher_maps.shape) != len(student_maps.shape)
        or teacher_maps.shape[1:-1] != student_maps.shape[1:-1]
    ):
        raise ValueError(
            f"attention_transfer: teacher map shape {tuple(teacher_maps.shape)} and student "
            f"map shape {tuple(student_maps.shape)} must have the same spatial axes (only the "
            "last, channel axis may differ); resize or pick a feature with the same "
            "resolution."
        )
    difference = attention_map(student_maps, power) - attention_map(teacher_maps, power)
    return _safe_sqrt(ops.sum(ops.square(difference), axis=-1))


@keras.saving.register_keras_serializable(package="kdzoo")
class AttentionTransfer(keras.losses.Loss):
    """Attention transfer: ``‖Q_S/‖Q_S‖₂ − Q_T/‖Q_T‖₂‖₂`` with ``Q = vec(Σ_c |A_c|^p)``.

    Zagoruyko & Komodakis 2017 (ICLR); see ``attention_transfer``. Called as
    ``loss(teacher_maps, student_maps)`` on ``[batch, H, W, C]`` feature maps with equal
    ``H, W``; the channel counts may differ, so the Distiller adds no adapter.

    Args:
        power: exponent ``p >= 1`` of the attention map. Defaults to 2.0.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"attention_transfer"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).

    Example:

    >>> loss = AttentionTransfer()
    >>> loss(teacher_maps, student_maps)  # [B, 7, 8, 64] and [B, 7, 8, 16]
    """

    compares = "features"
    #: Teacher and student channels may differ: the Distiller must not insert an adapter.
    needs_adapter = False

    def __init__(
        self, power=2.0, reduction="sum_over_batch_size", name="attention_transfer", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.power = _check_power(power)

    def call(self, y_true, y_pred):
        return attention_transfer(y_true, y_pred, self.power)

    def get_config(self):
        return {**super().get_config(), "power": self.power}
