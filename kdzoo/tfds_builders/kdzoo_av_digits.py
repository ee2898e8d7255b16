"""``kdzoo_av_digits``: FSDD clips label-paired with MNIST images as a TFDS builder, built with
``kdzoo.datasets.av_digits`` from the kdzoo data root."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from kdzoo.data.audio import AudioConfig
from kdzoo.datasets import av_digits, fsdd, mnist
from kdzoo.tfds_builders import kdzoo_fsdd, kdzoo_mnist
from kdzoo.tfds_builders._base import (
    DIGITS,
    KdzooBuilder,
    manual_download_instructions,
    to_int16,
    to_uint8,
)

SEED = 0
LICENSE = f"Audio: FSDD, {kdzoo_fsdd.LICENSE}. Images: MNIST, {kdzoo_mnist.LICENSE}."
CITATION = f"{kdzoo_fsdd.CITATION}\n\n{kdzoo_mnist.CITATION}"
DESCRIPTION = f"""\
AV digits: each FSDD v1.0.10 clip paired with an MNIST image of the same digit (the
AV-MNIST construction). It is label-paired, not natively multimodal: image and sound share
their digit, not a recording, so cross-modal results on it measure transfer through the
label structure. Say so wherever results are reported.

One example per FSDD clip. `train` (2,700) pairs FSDD's official train clips with images of
kdzoo's 5,000-image MNIST train subset, `test` (300) FSDD's official test clips (takes 0-4)
with the official MNIST test set. The pairing is `kdzoo.datasets.av_digits.load_arrays(
seed={SEED})`: deterministic, each class's images used in turn. `audio` is int16 (divide by
32768 for kdzoo's float waveforms), `image` uint8 (divide by 255).

Provenance: FSDD from github.com/Jakobovski/free-spoken-digit-dataset (tag v1.0.10, CC BY-SA
4.0); MNIST from yann.lecun.com/exdb/mnist (CC BY-SA 3.0); both read from the kdzoo data
root."""


class KdzooAvDigits(KdzooBuilder):
    """FSDD clips label-paired with MNIST images, from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": f"Initial release: FSDD official split paired with MNIST, seed {SEED}.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(
        "kdzoo_av_digits",
        kdzoo_fsdd.FILES + kdzoo_mnist.FILES,
        f"FSDD: {fsdd.SOURCE}; MNIST: {mnist.SOURCE}",
        "av_digits",
    )
    REQUIRED = kdzoo_fsdd.REQUIRED + kdzoo_mnist.REQUIRED

    def _info(self) -> tfds.core.DatasetInfo:
        config = AudioConfig()
        return self.dataset_info_from_configs(
            description=DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "audio": tfds.features.Audio(
                        shape=(config.num_samples,),
                        dtype=np.int16,
                        sample_rate=config.sample_rate,
                    ),
                    "label": tfds.features.ClassLabel(names=DIGITS),
                    "speaker": tfds.features.Text(),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=None,
            homepage=kdzoo_fsdd.HOMEPAGE,
            citation=CITATION,
            license=LICENSE,
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
