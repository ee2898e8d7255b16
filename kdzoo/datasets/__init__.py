"""Datasets. ``embedded`` is the built-in synthetic multimodal set (no download); ``fsdd``,
``mnist``, ``av_digits``, ``sst2`` and ``sms_spam`` read real data from the data root
(``kdzoo.datasets.root``).
``load(name, ...)`` returns ready pipelines plus metadata."""

from kdzoo.datasets import av_digits, embedded, fsdd, mnist, sms_spam, sst2
from kdzoo.datasets.registry import NAMES, LoadedDataset, load
from kdzoo.datasets.root import DataNotFoundError, data_root

__all__ = [
    "NAMES",
    "DataNotFoundError",
    "LoadedDataset",
    "av_digits",
    "data_root",
    "embedded",
    "fsdd",
    "load",
    "mnist",
    "sms_spam",
    "sst2",
]
