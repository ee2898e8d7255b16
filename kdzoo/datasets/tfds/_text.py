"""The common part of kdzoo's text-classification builders (``text`` + ``label``)."""

from __future__ import annotations

import types

import tensorflow_datasets as tfds

from kdzoo.datasets.tfds._base import KdzooBuilder


class TextClassificationBuilder(KdzooBuilder, skip_registration=True):
    """A builder over a kdzoo text loader module whose ``load_arrays(root=None,
    **LOADER_KWARGS)`` returns ``{split: {"text": str array, "label": int array}}``.

    Subclasses set ``SPEC``, ``REQUIRED``, ``LOADER`` (the module) and ``LOADER_KWARGS``.
    The loader's splits become the TFDS splits; each example's key is its index in its split.
    """

    LOADER: types.ModuleType
    LOADER_KWARGS: dict = {}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.info_from_spec(
            tfds.features.FeaturesDict(
                {
                    "text": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=self.SPEC.class_names),
                }
            ),
            supervised_keys=("text", "label"),
        )

    def _split_generators(self, dl_manager):
        root = self.check_files()
        data = self.LOADER.load_arrays(root=root, **self.LOADER_KWARGS)
        return {split: self._generate_examples(arrays) for split, arrays in data.items()}

    def _generate_examples(self, arrays):
        for i, (text, label) in enumerate(zip(arrays["text"], arrays["label"], strict=True)):
            yield i, {"text": str(text), "label": int(label)}
