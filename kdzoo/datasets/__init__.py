"""Datasets. ``embedded`` is the built-in synthetic multimodal set (no download)."""

from kdzoo.datasets import embedded

__all__ = ["embedded"]
