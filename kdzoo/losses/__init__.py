"""Distillation losses. Each is a ``keras.losses.Loss`` class with a per-example function.

``get(name, **kwargs)`` turns a config/CLI string into a loss object.
"""

from kdzoo.losses.features import FeatureCosine, FeatureMSE, feature_cosine, feature_mse
from kdzoo.losses.logits import (
    HardLabelCrossentropy,
    SoftTargetKLDivergence,
    hard_label_crossentropy,
    soft_target_kl_divergence,
)

_BY_NAME = {
    "ce": HardLabelCrossentropy,
    "kd": SoftTargetKLDivergence,
    "feature_mse": FeatureMSE,
    "feature_cosine": FeatureCosine,
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
    "FeatureCosine",
    "FeatureMSE",
    "HardLabelCrossentropy",
    "SoftTargetKLDivergence",
    "feature_cosine",
    "feature_mse",
    "get",
    "hard_label_crossentropy",
    "names",
    "soft_target_kl_divergence",
]
