"""``kdzoo_fsdd``: the Free Spoken Digit Dataset v1.0.10 as a TFDS builder, read from the
kdzoo data root (``fsdd/recordings/*.wav``) with ``kdzoo.datasets.fsdd``."""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from kdzoo.data.audio import AudioConfig
from kdzoo.datasets import fsdd
from kdzoo.tfds_builders._base import DIGITS, KdzooBuilder, manual_download_instructions, to_int16

HOMEPAGE = "https://github.com/Jakobovski/free-spoken-digit-dataset"
LICENSE = "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)"
CITATION = """\
@misc{jackson2018fsdd,
  author = {Zohar Jackson and C{\\'e}sar Souza and Jason Flaks and Yuxin Pan and
            Hereman Nicolas and Adhish Thite},
  title = {Free Spoken Digit Dataset (FSDD)},
  howpublished = {\\url{https://github.com/Jakobovski/free-spoken-digit-dataset}},
  note = {Version 1.0.10, folder recordings/},
  year = {2018}
}"""
DESCRIPTION = """\
Free Spoken Digit Dataset (FSDD) v1.0.10: 3,000 recordings of the digits 0-9, 8 kHz mono
16-bit PCM, 6 speakers x 10 digits x 50 takes (file names `{digit}_{speaker}_{take}.wav`).

Splits are FSDD's official ones: `test` holds takes 0-4 of every speaker and digit (300
clips), `train` the other 2,700. `audio` is the int16 waveform padded with zeros or cropped
to 8,000 samples (1 s), exactly as `kdzoo.datasets.fsdd.load_arrays` does; divide by 32768
for kdzoo's float32 waveforms. `file_name` is the source wav's name.

Provenance: github.com/Jakobovski/free-spoken-digit-dataset, tag v1.0.10, folder
recordings/, read from the kdzoo data root. Licence: CC BY-SA 4.0."""

FILES = (f"{fsdd.FOLDER}/{{digit}}_{{speaker}}_{{take}}.wav  (3,000 files)",)
REQUIRED = (("fsdd", (fsdd.FOLDER,), fsdd.SOURCE),)


def official_file_names(root, arrays: dict) -> dict:
    """The wav names of the rows of ``fsdd.load_arrays("official")``, split by split.

    Args:
        root: the kdzoo data root.
        arrays: ``{"train": {...}, "test": {...}}`` with the loader's ``"label"`` and
            ``"speaker"`` rows (from ``fsdd.load_arrays`` or ``av_digits.load_arrays``).

    Returns:
        ``{"train": [...], "test": [...]}``: the file name of each row, in row order.

    Raises:
        RuntimeError: if the file list and the rows disagree.
    """
    names = {"train": [], "test": []}
    for path, _, _, take in fsdd.list_clips(root):
        names["test" if take < 5 else "train"].append(os.path.basename(path))
    for split, rows in arrays.items():
        prefixes = [f"{d}_{s}_" for d, s in zip(rows["label"], rows["speaker"], strict=True)]
        if len(names[split]) != len(prefixes) or any(
            not n.startswith(p) for n, p in zip(names[split], prefixes, strict=True)
        ):
            raise RuntimeError(f"FSDD {split}: file names do not match the loader's rows.")
    return names


class KdzooFsdd(KdzooBuilder):
    """FSDD v1.0.10 with its official train/test split, from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: FSDD v1.0.10, official split, int16 waveforms of 8,000 samples.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(
        "kdzoo_fsdd", FILES, fsdd.SOURCE, "fsdd"
    )
    REQUIRED = REQUIRED

    def _info(self) -> tfds.core.DatasetInfo:
        config = AudioConfig()
        return self.dataset_info_from_configs(
            description=DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
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
            supervised_keys=("audio", "label"),
            homepage=HOMEPAGE,
            citation=CITATION,
            license=LICENSE,
        )

    def _split_generators(self, dl_manager):
        root = self.check_files()
        data = fsdd.load_arrays("official", root=root)
        names = official_file_names(root, data)
        return {split: self._generate_examples(data[split], names[split]) for split in data}

    def _generate_examples(self, arrays, names):
        audio = to_int16(arrays["audio"])
        for i, name in enumerate(names):
            yield (
                str(name).removesuffix(".wav"),
                {
                    "audio": audio[i],
                    "label": int(arrays["label"][i]),
                    "speaker": str(arrays["speaker"][i]),
                    "file_name": str(name),
                },
            )
