"""kdzoo: a TensorFlow/Keras zoo for multimodal knowledge distillation.

Attributes load lazily, so ``kdzoo --help`` does not pay for importing TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "backend",
    "data",
    "datasets",
    "defaults",
    "distillation",
    "distribute",
    "evaluation",
    "losses",
    "models",
    "recipe",
    "serving",
    "studies",
)
_ATTRIBUTES = {
    "Distiller": "kdzoo.distillation",
    "LossTerm": "kdzoo.distillation",
    "default_terms": "kdzoo.distillation",
    "DEFAULTS": "kdzoo.defaults",
}

__all__ = [*_ATTRIBUTES, "__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kdzoo.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'kdzoo' has no attribute {name!r}")
