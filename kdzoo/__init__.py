"""kdzoo: a TensorFlow/Keras zoo for multimodal knowledge distillation.

Attributes load lazily, so ``kdzoo --help`` does not pay for importing TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "data",
    "datasets",
    "distribute",
    "evaluation",
    "export",
    "losses",
    "models",
    "schedules",
    "serving",
    "studies",
    "training",
)
_ATTRIBUTES = {"Distiller": "kdzoo.distiller", "LossTerm": "kdzoo.terms"}

__all__ = ["Distiller", "LossTerm", "__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kdzoo.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'kdzoo' has no attribute {name!r}")
