"""kdzoo: a TensorFlow/Keras zoo for multimodal knowledge distillation."""

__version__ = "0.1.0"

from kdzoo import losses, models  # noqa: E402
from kdzoo.distiller import Distiller  # noqa: E402
from kdzoo.terms import LossTerm  # noqa: E402

__all__ = ["Distiller", "LossTerm", "losses", "models", "__version__"]
