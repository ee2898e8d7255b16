"""``kdzoo_sms_spam``: the SMS Spam Collection v.1 as a TFDS builder, read from the kdzoo data
root with ``kdzoo.datasets.sms_spam``."""

from __future__ import annotations

import tensorflow_datasets as tfds

from kdzoo.datasets import sms_spam
from kdzoo.datasets.tfds._base import manual_download_instructions, required_files
from kdzoo.datasets.tfds._text import TextClassificationBuilder

SEED = 0


class KdzooSmsSpam(TextClassificationBuilder):
    """SMS Spam Collection v.1 (5,574 messages, ham/spam), from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: SMS Spam Collection v.1, kdzoo's stratified 70/10/20 "
        f"train/validation/test split with seed {SEED}.",
    }
    SPEC = sms_spam.SPEC
    REQUIRED = required_files(SPEC)
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(SPEC)
    LOADER = sms_spam
    LOADER_KWARGS = {"seed": SEED}
