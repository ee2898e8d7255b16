"""SST-2: sentence-level binary sentiment (Stanford Sentiment Treebank, Kim 2014 splits),
files ``sst2/stsa.binary.{train,dev,test}`` with 6920 / 872 / 1821 lines ``label sentence``,
lower-cased, tokenised by spaces. ``dev`` is exposed as ``"validation"``.

The shared copy's README calls the files latin-1, but their non-ASCII bytes are UTF-8
sequences (e.g. ``\xc3\xa9`` for "é"); decoding them as latin-1 would produce mojibake. Lines
are therefore decoded as UTF-8, strictly: a line that is not valid UTF-8 raises
``BadExampleError`` naming the file and line (with ``skip_bad=True`` it is skipped, counted
and logged), never re-guessed as latin-1."""

from __future__ import annotations

import numpy as np

from kdzoo.data.bad_input import BadInputLog, check_text, read_lines
from kdzoo.datasets.catalog import CATALOG
from kdzoo.datasets.root import require

SPEC = CATALOG.get("sst2")
SOURCE = SPEC.source
FILES = {split: SPEC.files[split] for split in SPEC.splits}
CLASS_NAMES = SPEC.class_names
ENCODING = "utf-8"


def read_split(path, bad_log: BadInputLog | None = None) -> dict:
    """Parses one ``label sentence`` file into ``{"text", "label"}`` arrays.

    A line that is not valid UTF-8, has a label other than 0 or 1, or has no text is
    reported to ``bad_log`` (raises by default) as ``<file>:<line>``."""
    bad_log = bad_log or BadInputLog()
    texts, labels = [], []
    for number, line in read_lines(path, ENCODING, bad_log):
        where = f"{path}:{number}"
        label, _, text = line.strip().partition(" ")
        if label not in ("0", "1"):  # indices of CLASS_NAMES
            bad_log.bad(where, f"label {label!r} is not 0 or 1", "label out of range")
            continue
        if check_text(text, where, bad_log):
            texts.append(text.strip())
            labels.append(int(label))
    return {"text": np.array(texts, dtype=object), "label": np.array(labels, dtype=np.int32)}


def load_arrays(root=None, skip_bad=False, bad_log: BadInputLog | None = None) -> dict:
    """Returns ``{"train", "validation", "test"}``, each ``{"text": str array, "label"}``."""
    bad_log = bad_log or BadInputLog(skip_bad)
    paths = require("sst2", list(FILES.values()), SOURCE, root)
    out = {split: read_split(path, bad_log) for split, path in zip(FILES, paths, strict=True)}
    bad_log.summarize("sst2")
    return out


def read_splits(root=None, seed=0, bad_log: BadInputLog | None = None) -> dict:
    """The catalog's reader: ``load_arrays`` (``seed`` is unused: the splits are Kim's)."""
    del seed
    return load_arrays(root=root, bad_log=bad_log)
