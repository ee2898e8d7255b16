"""Versioned SavedModel exports in the TF Serving layout ``<base_dir>/<name>/<int version>/``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from kdzoo.distiller import Distiller


def next_version(model_dir) -> int:
    """The next free integer version under ``model_dir`` (1 if there is none)."""
    model_dir = Path(model_dir)
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(model, base_dir="saved_models", name="model", version=None) -> Path:
    """Exports ``model`` (or a Distiller's student) as ``<base_dir>/<name>/<version>/``.

    The export is written to a temporary folder beside the versions and renamed into place,
    so a crash never leaves a half-written version, and an existing version is never
    overwritten (``FileExistsError``). Uses Keras ``model.export`` (an ``ExportArchive``),
    which the TF1 session loader of TF Serving and ``saved_model_cli`` can read.
    """
    if isinstance(model, Distiller):
        model = model.student
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"`name` must be a plain folder name; got {name!r}.")
    model_dir = Path(base_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir) if version is None else int(version)
    if version <= 0:
        raise ValueError(f"`version` must be a positive integer; got {version}.")
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} exists; versions are never overwritten.")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir))
    try:
        model.export(str(tmp), format="tf_saved_model", verbose=False)
        os.rename(tmp, final)  # atomic; fails rather than replace a version made meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
