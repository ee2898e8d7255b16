"""KerasHub teachers: a pretrained text classifier with its own tokenizer, reading raw text.

A KerasHub task (``keras_hub.models.TextClassifier``: BERT, RoBERTa, Gemma...) comes with
its own preprocessor: its tokenizer, vocabulary and sequence length. kdzoo's students read
token ids from kdzoo's own vocabulary (``"text"``). ``hub_teacher`` wraps the task so that
it reads the raw sentences instead, under the batch key ``RAW_TEXT`` (``"raw_text"``): a
functional ``keras.Model`` whose input is a string per example and whose output is the
task's logits, so the ``Distiller`` and the recipe route it like any teacher.
``with_raw_text`` adds those sentences to every pipeline of a dataset. Teacher and student
then see the same examples through two tokenizers, each its own.

``load_teacher`` (and so ``distil()``, ``kdzoo distil --teacher``) takes a KerasHub task
object or a preset folder (``task.save_to_preset(folder)``, or a downloaded preset), and
``distil()`` adds the raw text to the batches when the teacher reads ``RAW_TEXT``. Needs
``pip install 'kdzoo[hub]'`` (keras-hub).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np

#: The batch key a KerasHub teacher reads its raw sentences from.
RAW_TEXT = "raw_text"
_FEATURE = "A KerasHub teacher"


def is_hub_preset(path) -> bool:
    """Whether ``path`` is a KerasHub preset folder (its ``metadata.json`` names a
    ``keras_hub_version``)."""
    metadata = Path(path) / "metadata.json"
    if not metadata.is_file():
        return False
    try:
        return "keras_hub_version" in json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def is_hub_task(model) -> bool:
    """Whether ``model`` is a KerasHub task (without importing keras-hub if it is absent)."""
    return any(
        c.__module__.startswith("keras_hub.") and c.__name__ == "Task" for c in type(model).__mro__
    )


def load_hub_task(path):
    """The text classifier saved in the KerasHub preset folder ``path``."""
    from kdzoo.optional import require

    keras_hub = require("keras_hub", _FEATURE)
    return keras_hub.models.TextClassifier.from_preset(os.fspath(path))


def hub_teacher(task, *, key: str = RAW_TEXT, name: str | None = None) -> keras.Model:
    """``task`` (a KerasHub task with a preprocessor) as a teacher reading raw strings
    ``[batch]`` under ``key`` and returning its logits.

    Raises:
        ValueError: ``task`` has no preprocessor (it would need token ids kdzoo cannot make).
    """
    if getattr(task, "preprocessor", None) is None:
        raise ValueError(
            f"The KerasHub task {task.name!r} has no preprocessor; load it with one "
            "(from_preset loads the preset's), so that it can read raw text."
        )
    sentences = keras.Input(shape=(), dtype="string", name=key)
    logits = task(task.preprocessor(sentences))
    return keras.Model({key: sentences}, logits, name=name or f"{task.name}_on_raw_text")


def with_raw_text(data, key: str = RAW_TEXT, source: str = "text"):
    """``data`` whose every pipeline also carries each row's raw sentence (the ``source``
    column of its arrays, before kdzoo's own vectoriser) under ``key``, for a KerasHub
    teacher. ``data`` itself is not changed."""
    from kdzoo.datasets.loading import TRAIN_AND_TRANSFER, TRANSFER, LoadedDataset

    lacking = [s for s, arrays in data.arrays.items() if source not in arrays]
    if lacking:
        raise ValueError(
            f"{data.name} has no raw {source!r} column in {lacking}, for a teacher that reads "
            f"{key!r}."
        )
    sentences = {split: np.asarray(arrays[source]).astype(str) for split, arrays in
                 data.arrays.items()}  # fmt: skip
    if TRANSFER in sentences:
        sentences[TRAIN_AND_TRANSFER] = np.concatenate([sentences["train"], sentences[TRANSFER]])

    class WithRawText(type(data)):
        def pipeline(self, split, training=None, extras=None, **overrides):
            extras = {**(extras or {}), key: sentences[split]}
            return LoadedDataset.pipeline(self, split, training, extras, **overrides)

    out = object.__new__(WithRawText)
    out.__dict__.update(data.__dict__)
    out.splits = {split: out.pipeline(split) for split in out.arrays}
    return out
