"""Distillation losses. Each is a ``keras.losses.Loss`` class with a per-example function.

``get(name, **kwargs)`` turns a config/CLI string into a loss object:

========================  ==================================  ==============================
name                      class                               compares
========================  ==================================  ==============================
``ce``                    ``HardLabelCrossentropy``           labels, student logits
``kd``                    ``SoftTargetKLDivergence``          logits (Hinton et al. 2015)
``kd_std``                ``LogitStandardizedKLDivergence``   logits (Sun et al. 2024)
``dkd``                   ``DecoupledKD``                     logits + labels (Zhao 2022)
``nkd``                   ``NonTargetKLDivergence``           logits + labels (C2KD, 2024)
``feature_mse``           ``FeatureMSE``                      features (FitNets 2015)
``feature_cosine``        ``FeatureCosine``                   features
``at``                    ``AttentionTransfer``               feature maps (Zagoruyko 2017)
``rkd_distance``          ``RKDDistance``                     embeddings, in-batch (Park 2019)
``rkd_angle``             ``RKDAngle``                        embeddings, in-batch (Park 2019)
``logit_mse``             ``LogitMSE``                        logits (Tang et al. 2019)
``kd_multi_label``        ``MultiLabelKLDivergence``          logits, one sigmoid per label
``teacher_mse``           ``RegressionToTeacher("mse")``      regression outputs
``teacher_huber``         ``RegressionToTeacher("huber")``    regression outputs
``teacher_bounded``       ``TeacherBoundedRegression``        outputs + labels (Chen 2017)
========================  ==================================  ==============================

The last four are for the task kinds beyond single-label classification (``kdzoo.tasks``):
binary and multi-label tasks (``kd_multi_label``) and regression (``teacher_*``).

Class attributes tell the Distiller how to feed a loss (``kdzoo.distillation.LossTerm``):

- ``compares``: what the loss compares with the student's output: ``"labels"`` (``ce``),
  the teacher's ``"logits"`` (``kd``, ``kd_std``, ``dkd``, ``nkd``, ``logit_mse``,
  ``kd_multi_label``, ``teacher_*``) or the teacher's ``"features"`` (``feature_*``, ``at``,
  ``rkd_*``), which need named outputs on both sides;
- ``needs_labels = True`` (``dkd``, ``nkd``, ``teacher_bounded``): ``y_true`` is
  ``{"teacher": teacher_logits, "labels": labels}`` (``teacher_with_labels``);
- ``needs_adapter = False`` (``at``, ``rkd_*``): teacher and student widths may differ and no
  FitNets adapter is inserted.

The temperature-based losses (``kd``, ``kd_std``, ``dkd``, ``nkd``, ``kd_multi_label``) hold
``τ`` in the non-trainable ``keras.Variable`` ``loss.temperature_variable``
(``TemperatureMixin``), so a schedule can assign it without retracing the train step.

Left out: CRD (Tian, Krishnan & Isola 2020, "Contrastive Representation Distillation").
Its objective needs trainable projection heads on *both* the teacher and the student side
(the teacher's head is trained although the teacher is frozen) plus a momentum-updated
memory bank that supplies 16,384 negatives per example. A ``keras.losses.Loss`` holds no
weights, and the Distiller's adapters are one-sided linear maps of the student, so CRD
would need a new kind of loss-owned trainable state in the Distiller and its saving. An
in-batch-negatives variant would avoid the memory bank but, under tf.distribute, would see
only the per-replica batch (e.g. 7 negatives at 2 × 8), far from the paper's setting, so it
would not reproduce CRD. ``rkd_distance`` / ``rkd_angle`` cover in-batch relational transfer.
"""

from kdzoo.losses.attention import AttentionTransfer, attention_map, attention_transfer
from kdzoo.losses.decoupled import (
    DecoupledKD,
    NonTargetKLDivergence,
    decoupled_kd,
    non_target_kl_divergence,
    teacher_with_labels,
)
from kdzoo.losses.features import FeatureCosine, FeatureMSE, feature_cosine, feature_mse
from kdzoo.losses.logits import (
    HardLabelCrossentropy,
    LogitStandardizedKLDivergence,
    SoftTargetKLDivergence,
    TemperatureMixin,
    hard_label_crossentropy,
    soft_target_kl_divergence,
    standardize_logits,
)
from kdzoo.losses.relational import RKDAngle, RKDDistance, rkd_angle, rkd_distance
from kdzoo.losses.task_terms import (
    LogitMSE,
    MultiLabelKLDivergence,
    RegressionToTeacher,
    TeacherBoundedRegression,
    logit_mse,
    multi_label_kl_divergence,
    regression_to_teacher,
    teacher_bounded_regression,
)


def _huber(**kwargs):
    return RegressionToTeacher(kind="huber", **kwargs)


def _teacher_mse(**kwargs):
    return RegressionToTeacher(kind="mse", **kwargs)


_BY_NAME = {
    "ce": HardLabelCrossentropy,
    "kd": SoftTargetKLDivergence,
    "kd_std": LogitStandardizedKLDivergence,
    "dkd": DecoupledKD,
    "nkd": NonTargetKLDivergence,
    "feature_mse": FeatureMSE,
    "feature_cosine": FeatureCosine,
    "at": AttentionTransfer,
    "rkd_distance": RKDDistance,
    "rkd_angle": RKDAngle,
    "logit_mse": LogitMSE,
    "kd_multi_label": MultiLabelKLDivergence,
    "teacher_mse": _teacher_mse,
    "teacher_huber": _huber,
    "teacher_bounded": TeacherBoundedRegression,
}


def names() -> list[str]:
    """The names ``get`` accepts."""
    return sorted(_BY_NAME)


def get(name: str, **kwargs):
    """Returns a new loss object for ``name`` (one of ``names()``)."""
    try:
        cls = _BY_NAME[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}. Valid names: {', '.join(names())}.") from None
    return cls(**kwargs)


__all__ = [
    "AttentionTransfer",
    "DecoupledKD",
    "FeatureCosine",
    "FeatureMSE",
    "HardLabelCrossentropy",
    "LogitMSE",
    "LogitStandardizedKLDivergence",
    "MultiLabelKLDivergence",
    "NonTargetKLDivergence",
    "RKDAngle",
    "RKDDistance",
    "RegressionToTeacher",
    "SoftTargetKLDivergence",
    "TeacherBoundedRegression",
    "TemperatureMixin",
    "attention_map",
    "attention_transfer",
    "decoupled_kd",
    "feature_cosine",
    "feature_mse",
    "get",
    "hard_label_crossentropy",
    "logit_mse",
    "multi_label_kl_divergence",
    "names",
    "non_target_kl_divergence",
    "regression_to_teacher",
    "rkd_angle",
    "rkd_distance",
    "soft_target_kl_divergence",
    "standardize_logits",
    "teacher_bounded_regression",
    "teacher_with_labels",
]
