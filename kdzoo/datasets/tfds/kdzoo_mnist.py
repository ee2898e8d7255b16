"""``kdzoo_mnist``: kdzoo's MNIST subset as a TFDS builder, read from the kdzoo data root with
``kdzoo.datasets.mnist``."""

from __future__ import annotations

import tensorflow_datasets as tfds

from kdzoo.datasets import mnist
from kdzoo.datasets.tfds._base import (
    KdzooBuilder,
    manual_download_instructions,
    required_files,
    to_uint8,
)

STORAGE = """\
`image` is uint8 [28, 28, 1]; `image / 255` equals the float32 images of
`kdzoo.datasets.mnist.load_arrays`."""


class KdzooMnist(KdzooBuilder):
    """MNIST: 5,000 training and the 10,000 official test images, from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: 5,000-image class-balanced train subset, official test set.",
    }
    SPEC = mnist.SPEC
    REQUIRED = required_files(SPEC)
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(SPEC)
    STORAGE = STORAGE

    def _info(self) -> tfds.core.DatasetInfo:
        return self.info_from_spec(
            tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=self.SPEC.image_shape),
                    "label": tfds.features.ClassLabel(names=self.SPEC.class_names),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        root = self.check_files()
        return {
            split: self._generate_examples(mnist.load_arrays(split, root=root))
            for split in self.SPEC.splits
        }

    def _generate_examples(self, arrays):
        images = to_uint8(arrays["image"])
        for i, (image, label) in enumerate(zip(images, arrays["label"], strict=True)):
            yield i, {"image": image, "label": int(label)}
