"""Folders kdzoo owns, and the only way kdzoo replaces or removes a folder.

kdzoo never deletes or overwrites what it did not write. Every folder it may later replace
or remove (a student bundle, a teacher-output cache, a run's backups) carries a marker file,
``.kdzoo-owned``, naming the kind of folder. A folder without the marker, or with another
kind's, is refused with an error naming it; an empty folder is taken over (nothing is lost).

Example:

>>> tmp = make_sibling_tmp(dest)              # a hidden sibling: same file system
>>> ...write the contents into tmp...
>>> replace_dir(tmp, dest, kind="student-bundle")   # atomic swap, marker included
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

MARKER = ".kdzoo-owned"


class NotOwnedError(FileExistsError):
    """A folder kdzoo was asked to replace or remove holds something kdzoo did not write."""


def write_marker(folder, kind: str) -> None:
    """Marks ``folder`` as a kdzoo folder of ``kind``."""
    with open(os.path.join(folder, MARKER), "w", encoding="utf-8") as f:
        json.dump({"kind": kind, "format": 1}, f)


def owner_kind(folder) -> str | None:
    """The kind recorded in ``folder``'s marker, or None (no marker, or not kdzoo's)."""
    path = os.path.join(folder, MARKER)
    try:
        with open(path, encoding="utf-8") as f:
            kind = json.load(f).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def check_replaceable(folder, kind: str, what: str = "folder") -> None:
    """Raises ``NotOwnedError`` unless ``folder`` is absent, empty, or a kdzoo ``kind`` folder.

    Args:
        folder: the destination that would be replaced.
        kind: the marker kind that allows replacing it.
        what: how the error names the argument (e.g. ``"cache_dir"``).
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise NotOwnedError(f"{what} {folder} is a file, not a folder; kdzoo will not replace it.")
    if not any(folder.iterdir()):
        return
    found = owner_kind(folder)
    if found != kind:
        marker = "no kdzoo marker" if found is None else f"a kdzoo {found!r} marker"
        raise NotOwnedError(
            f"{what} {folder} exists and has {marker} (kdzoo replaces only a {kind!r} folder "
            f"it wrote, marked by {MARKER}). Choose a new or empty folder, or remove it yourself."
        )


def make_sibling_tmp(dest, label: str = "") -> Path:
    """A new hidden folder beside ``dest`` (same file system, so a rename is atomic)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{label or dest.name}-", dir=dest.parent))


def replace_dir(tmp, dest, kind: str, what: str = "folder") -> Path:
    """Marks ``tmp`` as ``kind`` and swaps it in as ``dest``.

    ``dest`` must pass ``check_replaceable``. An old ``dest`` is renamed aside first and
    removed only once the new one is in place, so a crash leaves either the old or the new
    folder at ``dest``, never a partial one.
    """
    tmp, dest = Path(tmp), Path(dest)
    check_replaceable(dest, kind, what)
    write_marker(tmp, kind)
    old = None
    if dest.exists():
        old = dest.with_name(f".old-{dest.name}-{uuid.uuid4().hex[:8]}")
        os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except BaseException:
        if old is not None:
            os.rename(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def remove_owned(folder, kind: str, what: str = "folder") -> None:
    """Removes ``folder`` if it is a kdzoo ``kind`` folder (or empty); refuses otherwise."""
    folder = Path(folder)
    if not folder.exists():
        return
    check_replaceable(folder, kind, what)
    shutil.rmtree(folder)
