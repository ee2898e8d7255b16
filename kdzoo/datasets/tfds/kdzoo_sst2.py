"""``kdzoo_sst2``: SST-2 sentence-level binary sentiment (Kim 2014 splits) as a TFDS builder,
read from the kdzoo data root with ``kdzoo.datasets.sst2``."""

from __future__ import annotations

import tensorflow_datasets as tfds

from kdzoo.datasets import sst2
from kdzoo.datasets.tfds._base import manual_download_instructions, required_files
from kdzoo.datasets.tfds._text import TextClassificationBuilder


class KdzooSst2(TextClassificationBuilder):
    """SST-2 (Kim 2014 splits: 6,920 / 872 / 1,821 sentences), from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: SST-2 sentence level, Kim (2014) train/dev/test splits.",
    }
    SPEC = sst2.SPEC
    REQUIRED = required_files(SPEC)
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(SPEC)
    LOADER = sst2
