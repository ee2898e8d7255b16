"""``kdzoo_av_digits``: FSDD clips label-paired with MNIST images as a TFDS builder, built with
``kdzoo.datasets.av_digits`` from the kdzoo data root."""

from __future__ import annotations

import tensorflow_datasets as tfds

from kdzoo.datasets import av_digits
from kdzoo.datasets.catalog import CATALOG
from kdzoo.datasets.tfds import kdzoo_fsdd
from kdzoo.datasets.tfds._base import (
    KdzooBuilder,
    audio_feature,
    manual_download_instructions,
    required_files,
    to_int16,
    to_uint8,
)

SEED = 0
STORAGE = f"""\
This build pairs with `kdzoo.datasets.av_digits.load_arrays(seed={SEED})`. `audio` is int16
(divide by 32768 for kdzoo's float waveforms), `image` uint8 (divide by 255)."""


class KdzooAvDigits(KdzooBuilder):
    """FSDD clips label-paired with MNIST images, from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": f"Initial release: FSDD official split paired with MNIST, seed {SEED}.",
    }
    SPEC = av_digits.SPEC
    REQUIRED = required_files(SPEC)
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(
        SPEC, kdzoo_fsdd.FILES + CATALOG.files("mnist")
    )
    STORAGE = STORAGE

    def _info(self) -> tfds.core.DatasetInfo:
        return self.info_from_spec(
            tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=self.SPEC.image_shape),
                    "audio": audio_feature(self.SPEC),
                    "label": tfds.features.ClassLabel(names=self.SPEC.class_names),
                    "speaker": tfds.features.Text(),
                    "file_name": tfds.features.Text(),
                }
            )
        )

    def _split_generators(self, dl_manager):
        root = self.check_files()
        data = av_digits.load_arrays(seed=SEED, root=root)
        names = kdzoo_fsdd.official_file_names(root, data)
        return {split: self._generate_examples(data[split], names[split]) for split in data}

    def _generate_examples(self, arrays, names):
        audio = to_int16(arrays["audio"])
        images = to_uint8(arrays["image"])
        for i, name in enumerate(names):
            yield (
                str(name).removesuffix(".wav"),
                {
                    "image": images[i],
                    "audio": audio[i],
                    "label": int(arrays["label"][i]),
                    "speaker": str(arrays["speaker"][i]),
                    "file_name": str(name),
                },
            )
