"""Feature-matching losses (FitNets hints: Romero et al. 2015, "FitNets: Hints for Thin Deep
Nets"). The student feature is first mapped to the teacher's width by a trainable adapter,
which the Distiller owns (see ``kdzoo.distillation.terms``)."""

from __future__ import annotations

import keras
from keras import ops


def _flatten_pair(teacher, student, what):
    teacher = ops.convert_to_tensor(teacher, dtype="float32")
    student = ops.convert_to_tensor(student, dtype="float32")
    if teacher.shape[1:] != student.shape[1:]:
        raise ValueError(
            f"{what}: teacher feature shape {tuple(teacher.shape)} and student feature shape "
            f"{tuple(student.shape)} differ; map the student through an adapter first."
        )
    return ops.reshape(teacher, (ops.shape(teacher)[0], -1)), ops.reshape(
        student, (ops.shape(student)[0], -1)
    )


def feature_mse(teacher_features, student_features):
    """Per-example mean squared error ``mean_j (t_j − s_j)²`` over all feature axes.

    FitNets' hint loss (Romero et al. 2015).
    """
    t, s = _flatten_pair(teacher_features, student_features, "feature_mse")
    return ops.mean(ops.square(t - s), axis=-1)


def feature_cosine(teacher_features, student_features, epsilon=1e-12):
    """Per-example cosine distance ``1 − t·s / (‖t‖ ‖s‖)`` over the flattened features.

    A scale-free variant of the FitNets hint, useful when teacher and student activations
    have different magnitudes.
    """
    t, s = _flatten_pair(teacher_features, student_features, "feature_cosine")
    t = t / ops.sqrt(ops.maximum(ops.sum(ops.square(t), axis=-1, keepdims=True), epsilon))
    s = s / ops.sqrt(ops.maximum(ops.sum(ops.square(s), axis=-1, keepdims=True), epsilon))
    return 1.0 - ops.sum(t * s, axis=-1)


@keras.saving.register_keras_serializable(package="kdzoo")
class FeatureMSE(keras.losses.Loss):
    """``mean_j (t_j − s_j)²`` between teacher and (adapted) student features (FitNets 2015).

    Called as ``loss(teacher_features, student_features)``.
    """

    compares = "features"

    def __init__(self, reduction="sum_over_batch_size", name="feature_mse", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return feature_mse(y_true, y_pred)


@keras.saving.register_keras_serializable(package="kdzoo")
class FeatureCosine(keras.losses.Loss):
    """``1 − cos(t, s)`` between teacher and (adapted) student features, per example.

    Called as ``loss(teacher_features, student_features)``.
    """

    compares = "features"

    def __init__(self, reduction="sum_over_batch_size", name="feature_cosine", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return feature_cosine(y_true, y_pred)
