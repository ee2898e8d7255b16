"""Which models a user's own data trains, and whether its columns can be exported: the rules
``kdzoo distil --data`` and experiment files (``kdzoo run``) share. No TensorFlow: the CLI
checks its arguments with them before anything heavy is imported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: The model family (teacher and student presets) data of one modality trains when no pair,
#: or no teacher *and* student, is named.
FAMILY_OF_MODALITY = {
    "tabular": "tabular_mlp",
    "text": "text_lstm",
    "image": "image_cnn",
    "audio": "audio_crnn",
}

#: What a tabular column must look like to name a serving input (as
#: ``kdzoo.data.tabular.INPUT_NAME``, which the export checks), and the names it may not take.
SERVING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MODALITY_NAMES = ("image", "audio", "text")


def modalities_of(columns) -> set:
    """The modalities named by column roles (``text``, ``image``, ``audio``; ``numeric`` and
    ``categorical`` are the ``tabular`` input). ``columns``: the roles given."""
    found = {m for m in ("text", "image", "audio") if m in columns}
    if {"numeric", "categorical"} & set(columns):
        found.add("tabular")
    return found


def folder_modality(root) -> str | None:
    """``"image"`` or ``"audio"``: the kind of the first such file under ``root`` (a folder
    of class folders); None if there is none (``from_folder`` then says what it found)."""
    from kdzoo.datasets.frames import AUDIO_SUFFIXES, IMAGE_SUFFIXES

    for _, _, names in os.walk(root, followlinks=True):
        for name in sorted(names):
            suffix = Path(name).suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                return "image"
            if suffix in AUDIO_SUFFIXES:
                return "audio"
    return None


def family_for(modalities) -> str | None:
    """The family data of ``modalities`` trains: its one modality's; None for image with
    audio, or none known (the default pair, which reads both). Raises ``ValueError`` for
    another mix, whose models must be named."""
    modalities = set(modalities) - {None}
    if len(modalities) == 1:
        return FAMILY_OF_MODALITY[modalities.pop()]
    if modalities and modalities != {"image", "audio"}:
        raise ValueError(f"the data gives {' and '.join(sorted(modalities))}; name the models")
    return None


def unservable(columns, modalities=MODALITY_NAMES) -> list:
    """The tabular ``columns`` that cannot name a serving input, so an export would be
    refused after training: not a letter then letters, digits or '_', ``tabular``, or the
    name of another of the data's ``modalities`` (its image, audio or text input; any of
    them by default)."""
    taken = set(modalities) | {"tabular"}  # the model input the columns feed
    return [str(c) for c in columns if not SERVING_NAME.fullmatch(str(c)) or str(c) in taken]


def unservable_message(columns, modalities) -> str | None:
    """What is wrong with the tabular ``columns`` that cannot name a serving input
    (``unservable``), and the renames that would fix them; None if every one can. The
    caller says where they come from and what to do (rename them, or leave out the export)."""
    bad = unservable(columns, modalities)
    if not bad:
        return None
    renames = ", ".join(f"{c!r} -> {suggested_name(c)!r}" for c in bad)
    taken = " or ".join(sorted({*modalities, "tabular"}))
    return (
        f"column(s) {', '.join(map(repr, bad))} cannot name a serving input (a letter, then "
        f"letters, digits or '_', and not {taken}), so the export would be refused after "
        f"training. Rename them ({renames})"
    )


def suggested_name(column) -> str:
    """A serving-safe rename of ``column`` (``"monthly spend"`` -> ``"monthly_spend"``)."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", str(column)).strip("_") or "x"
    taken = (*MODALITY_NAMES, "tabular")
    return name if name[0].isalpha() and name not in taken else f"x_{name}"


__all__ = [
    "FAMILY_OF_MODALITY",
    "family_for",
    "folder_modality",
    "modalities_of",
    "suggested_name",
    "unservable",
    "unservable_message",
]
