"""Optional dependencies: which extra installs each, and a clear error where one is missing.

The core (zoo, losses, Distiller, recipe, data, export) needs only ``pip install kdzoo``.
Features with heavier or rarer dependencies come with an extra:

========================  =======================  ==========================================
extra                     installs                 for
========================  =======================  ==========================================
``kdzoo[plots]``          matplotlib               the recipe report's figure (``report.png``)
``kdzoo[serving]``        tensorflow-serving-api   TF Serving warmup files and their replay
``kdzoo[tfds]``           pydub                    TFDS's own ``spoken_digit`` builder
``kdzoo[yaml]``           pyyaml                   YAML experiment files (``kdzoo run``)
``kdzoo[hub]``            keras-hub                KerasHub teachers (``load_teacher``)
``kdzoo[sklearn]``        scikit-learn             its bundled diabetes set (``bench tasks``)
========================  =======================  ==========================================

``require`` imports a module or raises ``MissingExtraError`` (an ``ImportError``) that names
the feature and the ``pip install`` line, at the call that needs it, before any work is done.
"""

from __future__ import annotations

import importlib
import importlib.util

#: Top-level module -> (the extra that installs it, its distribution name on PyPI).
EXTRAS = {
    "matplotlib": ("plots", "matplotlib"),
    "tensorflow_serving": ("serving", "tensorflow-serving-api"),
    "pydub": ("tfds", "pydub"),
    "yaml": ("yaml", "pyyaml"),
    "keras_hub": ("hub", "keras-hub"),
    "sklearn": ("sklearn", "scikit-learn"),
}


class MissingExtraError(ImportError):
    """An optional dependency of a kdzoo feature is not installed."""


def _extra(module: str):
    top = module.split(".")[0]
    if top not in EXTRAS:
        raise KeyError(f"{module!r} is not an optional dependency of kdzoo ({sorted(EXTRAS)}).")
    return EXTRAS[top]


def available(module: str) -> bool:
    """Whether ``module`` (one of ``EXTRAS``, or a submodule of one) can be imported."""
    _extra(module)
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a missing parent package
        return False


def require(module: str, feature: str):
    """Imports and returns ``module``; if it is missing, raises ``MissingExtraError`` naming
    ``feature`` and the extra that installs it.

    >>> require("matplotlib.figure", "The report's figure")  # doctest: +SKIP
    MissingExtraError: The report's figure needs matplotlib: pip install 'kdzoo[plots]'
    """
    extra, distribution = _extra(module)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{feature} needs {distribution}, which is not installed: "
            f"pip install 'kdzoo[{extra}]' (or pip install {distribution})."
        ) from err
