"""SMS Spam Collection v.1: 5,574 SMS messages, ``ham|spam<TAB>text`` per line (747 spam),
UTF-8. It ships without splits; kdzoo makes a stratified, seeded 70/10/20
train/validation/test split, so the 13% spam rate holds in every split. Being imbalanced,
it is the set on which to report precision, recall and F1, not only accuracy."""

from __future__ import annotations

import numpy as np

from kdzoo.data.bad_input import BadInputLog, check_text, read_lines
from kdzoo.datasets.catalog import CATALOG
from kdzoo.datasets.root import require

SPEC = CATALOG.get("sms_spam")
SOURCE = SPEC.source
FILE = SPEC.files["collection"]
CLASS_NAMES = SPEC.class_names
ENCODING = "utf-8"
FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}


def read_collection(path, bad_log: BadInputLog | None = None) -> dict:
    """Parses the collection into ``{"text", "label"}`` arrays (0 = ham, 1 = spam)."""
    bad_log = bad_log or BadInputLog()
    texts, labels = [], []
    for number, line in read_lines(path, ENCODING, bad_log):
        where = f"{path}:{number}"
        label, tab, text = line.partition("\t")
        if not tab or label not in CLASS_NAMES:
            bad_log.bad(where, f"label {label[:20]!r} is not 'ham' or 'spam'", "label out of range")
            continue
        if check_text(text, where, bad_log):
            texts.append(text.strip())
            labels.append(CLASS_NAMES.index(label))
    return {"text": np.array(texts, dtype=object), "label": np.array(labels, dtype=np.int32)}


def stratified_split(labels, seed=0, fractions=None) -> dict:
    """Indices per split: each class is shuffled with ``seed`` and cut by ``fractions``."""
    fractions = fractions or FRACTIONS
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in fractions}
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.round(np.cumsum(list(fractions.values())) * rows.size).astype(int)
        for name, start, stop in zip(fractions, [0, *cuts[:-1]], cuts, strict=True):
            parts[name].append(rows[start:stop])
    return {name: np.sort(np.concatenate(idx)) for name, idx in parts.items()}


def load_arrays(root=None, seed=0, skip_bad=False, bad_log: BadInputLog | None = None) -> dict:
    """Returns ``{"train", "validation", "test"}``, each ``{"text": str array, "label"}``,
    from a stratified split seeded by ``seed``."""
    bad_log = bad_log or BadInputLog(skip_bad)
    (path,) = require("sms_spam", [FILE], SOURCE, root)
    data = read_collection(path, bad_log)
    bad_log.summarize("sms_spam")
    return {
        split: {k: v[index] for k, v in data.items()}
        for split, index in stratified_split(data["label"], seed).items()
    }


def read_splits(root=None, seed=0, bad_log: BadInputLog | None = None) -> dict:
    """The catalog's reader: ``load_arrays(seed=seed)``, the seeded stratified split."""
    return load_arrays(root=root, seed=seed, bad_log=bad_log)
