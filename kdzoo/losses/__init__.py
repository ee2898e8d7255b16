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
========================  ==================================  ==============================

Class attributes tell the Distiller how to feed a loss (``kdzoo.distillation.LossTerm``):

- ``compares``: what the loss compares with the student's output: ``"labels"`` (``ce``),
  the teacher's ``"logits"`` (``kd``, ``kd_std``, ``dkd``, ``nkd``) or the teacher's
  ``"features"`` (``feature_*``, ``at``, ``rkd_*``), which need named outputs on both sides;
- ``needs_labels = True`` (``dkd``, ``nkd``): ``y_true`` is
  ``{"teacher": teacher_logits, "labels": labels}`` (``teacher_with_labels``);
- ``needs_adapter = False`` (``at``, ``rkd_*``): teacher and student widths may differ and no
  FitNets adapter is inserted.

The temperature-based losses (``kd``, ``kd_std``, ``dkd``, ``nkd``) hold ``τ`` in the
non-trainable ``keras.Variable`` ``loss.temperature_variable`` (``TemperatureMixin``), so a
schedule can assign it without retracing the train step.

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
    "LogitStandardizedKLDivergence",
    "NonTargetKLDivergence",
    "RKDAngle",
    "RKDDistance",
    "SoftTargetKLDivergence",
    "TemperatureMixin",
    "attention_map",
    "attention_transfer",
    "decoupled_kd",
    "feature_cosine",
    "feature_mse",
    "get",
    "hard_label_crossentropy",
    "names",
    "non_target_kl_divergence",
    "rkd_angle",
    "rkd_distance",
    "soft_target_kl_divergence",
    "standardize_logits",
    "teacher_with_labels",
]
