"""Datasets: the catalog of what kdzoo can load, the readers, and ``load``.

``kdzoo.datasets.catalog`` lists every dataset and its facts. ``embedded`` is the built-in
synthetic multimodal set (no download); ``fsdd``, ``mnist``, ``av_digits``, ``sst2`` and
``sms_spam`` read real data from the data root (``kdzoo.datasets.root``).
``load(name, ...)`` returns ready pipelines plus metadata; ``from_dataframe``, ``from_csv``,
``from_parquet`` and ``from_folder`` (``frames``) return the same for your own data;
``from_numpy`` (``arrays``) takes model-ready NumPy arrays and needs no TensorFlow (the
recipe trains on it on any Keras backend);
``kdzoo.datasets.tfds`` offers the built-in datasets as TensorFlow Datasets builders.

Attributes load lazily, so that the catalog (``NAMES``, ``CATALOG``) can be read without
importing TensorFlow.
"""

import importlib

_SUBMODULES = (
    "arrays",
    "av_digits",
    "catalog",
    "download",
    "embedded",
    "frames",
    "fsdd",
    "loading",
    "mnist",
    "root",
    "sms_spam",
    "sst2",
    "tfds",
)
_ATTRIBUTES = {
    "ArrayDataset": "kdzoo.datasets.arrays",
    "from_numpy": "kdzoo.datasets.arrays",
    "CATALOG": "kdzoo.datasets.catalog",
    "DatasetSpec": "kdzoo.datasets.catalog",
    "NAMES": "kdzoo.datasets.catalog",
    "LoadedDataset": "kdzoo.datasets.loading",
    "from_csv": "kdzoo.datasets.frames",
    "from_dataframe": "kdzoo.datasets.frames",
    "from_folder": "kdzoo.datasets.frames",
    "from_parquet": "kdzoo.datasets.frames",
    "load": "kdzoo.datasets.loading",
    "TRANSFER": "kdzoo.datasets.loading",
    "scarce_labels": "kdzoo.datasets.loading",
    "with_task": "kdzoo.datasets.loading",
    "with_transfer": "kdzoo.datasets.loading",
    "DataNotFoundError": "kdzoo.datasets.root",
    "data_root": "kdzoo.datasets.root",
}

# Not "tfds": importing it registers builders with TensorFlow Datasets; ask for it by name.
__all__ = [*_ATTRIBUTES, *(m for m in _SUBMODULES if m != "tfds")]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kdzoo.datasets.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'kdzoo.datasets' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
