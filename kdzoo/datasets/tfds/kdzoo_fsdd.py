"""``kdzoo_fsdd``: the Free Spoken Digit Dataset v1.0.10 as a TFDS builder, read from the
kdzoo data root (``fsdd/recordings/*.wav``) with ``kdzoo.datasets.fsdd``."""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from kdzoo.datasets import fsdd
from kdzoo.datasets.tfds._base import (
    KdzooBuilder,
    audio_feature,
    manual_download_instructions,
    required_files,
    to_int16,
)

STORAGE = """\
`audio` is the int16 waveform of 8,000 samples; divide by 32768 for kdzoo's float32
waveforms. `file_name` is the source wav's name."""
FILES = (f"{fsdd.FOLDER}/{{digit}}_{{speaker}}_{{take}}.wav  (3,000 files)",)


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
    SPEC = fsdd.SPEC
    REQUIRED = required_files(SPEC)
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(SPEC, FILES)
    STORAGE = STORAGE

    def _info(self) -> tfds.core.DatasetInfo:
        return self.info_from_spec(
            tfds.features.FeaturesDict(
                {
                    "audio": audio_feature(self.SPEC),
                    "label": tfds.features.ClassLabel(names=self.SPEC.class_names),
                    "speaker": tfds.features.Text(),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("audio", "label"),
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
