"""``kdzoo_sms_spam``: the SMS Spam Collection v.1 as a TFDS builder, read from the kdzoo data
root with ``kdzoo.datasets.sms_spam``."""

from __future__ import annotations

import tensorflow_datasets as tfds

from kdzoo.datasets import sms_spam
from kdzoo.tfds_builders._base import manual_download_instructions
from kdzoo.tfds_builders._text import TextClassificationBuilder

FILES = (sms_spam.FILE,)


class KdzooSmsSpam(TextClassificationBuilder):
    """SMS Spam Collection v.1 (5,574 messages, ham/spam), from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: SMS Spam Collection v.1, kdzoo's stratified 70/10/20 "
        "train/validation/test split with seed 0.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(
        "kdzoo_sms_spam", FILES, sms_spam.SOURCE, "sms_spam"
    )
    REQUIRED = (("sms_spam", FILES, sms_spam.SOURCE),)
    LOADER = sms_spam
    LOADER_KWARGS = {"seed": 0}
    CLASS_NAMES = ("ham", "spam")
    HOMEPAGE = "https://archive.ics.uci.edu/dataset/228/sms+spam+collection"
    LICENSE = "CC BY 4.0 (UCI ML repository); free to use with attribution."
    CITATION = """\
@inproceedings{almeida2011sms,
  title = {Contributions to the Study of {SMS} Spam Filtering: New Collection and Results},
  author = {Almeida, Tiago A. and G{\\'o}mez Hidalgo, Jos{\\'e} Mar{\\'i}a and
            Yamakami, Akebo},
  booktitle = {Proceedings of the 11th ACM Symposium on Document Engineering},
  pages = {259--262},
  year = {2011}
}"""
    DESCRIPTION = """\
SMS Spam Collection v.1: 5,574 English SMS messages labelled ham or spam (747 spam). The
corpus has no official split; `train`, `validation` and `test` are kdzoo's stratified,
seeded 70/10/20 split, `kdzoo.datasets.sms_spam.load_arrays(seed=0)`, so the 13% spam rate
holds in every split. The examples are exactly what that call returns (text stripped of
surrounding whitespace). Being imbalanced, report precision, recall and F1 on it.

Provenance: the UCI Machine Learning Repository, "SMS Spam Collection" (file
`SMSSpamCollection`, `ham|spam<TAB>text` per line), read from the kdzoo data root.
Licence: free with attribution (UCI: CC BY 4.0)."""
