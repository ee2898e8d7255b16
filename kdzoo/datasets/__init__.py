"""Datasets. ``embedded`` is the built-in synthetic multimodal set (no download); ``fsdd`` and
``mnist`` read real data from the data root (``kdzoo.datasets.root``)."""

from kdzoo.datasets import embedded, fsdd, mnist
from kdzoo.datasets.root import DataNotFoundError, data_root

__all__ = ["DataNotFoundError", "data_root", "embedded", "fsdd", "mnist"]
