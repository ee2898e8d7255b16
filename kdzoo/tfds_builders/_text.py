"""The common part of kdzoo's text-classification builders (``text`` + ``label``)."""

from __future__ import annotations

import types

import tensorflow_datasets as tfds

from kdzoo.tfds_builders._base import KdzooBuilder


class TextClassificationBuilder(KdzooBuilder, skip_registration=True):
    """A builder over a kdzoo text loader module whose ``load_arrays(root=None,
    **LOADER_KWARGS)`` returns ``{split: {"text": str array, "label": int array}}``.

    Subclasses set ``LOADER`` (the module), ``LOADER_KWARGS``, ``REQUIRED``,
    ``CLASS_NAMES``, ``DESCRIPTION``, ``HOMEPAGE``, ``CITATION`` and ``LICENSE``. The
    loader's splits become the TFDS splits; each example's key is its index in its split.
    """

    LOADER: types.ModuleType
    CLASS_NAMES: tuple[str, ...]
    DESCRIPTION: str
    HOMEPAGE: str
    CITATION: str
    LICENSE: str
    LOADER_KWARGS: dict = {}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "text": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=self.CLASS_NAMES),
                }
            ),
            supervised_keys=("text", "label"),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
            license=self.LICENSE,
        )

    def _split_generators(self, dl_manager):
        names = tuple(getattr(self.LOADER, "CLASS_NAMES", self.CLASS_NAMES))
        if names != self.CLASS_NAMES:
            raise RuntimeError(
                f"{self.LOADER.__name__}.CLASS_NAMES is {names}, but {self.name} declares "
                f"{self.CLASS_NAMES}; bump the builder's VERSION after fixing the labels."
            )
        root = self.check_files()
        data = self.LOADER.load_arrays(root=root, **self.LOADER_KWARGS)
        return {split: self._generate_examples(arrays) for split, arrays in data.items()}

    def _generate_examples(self, arrays):
        for i, (text, label) in enumerate(zip(arrays["text"], arrays["label"], strict=True)):
            yield i, {"text": str(text), "label": int(label)}
