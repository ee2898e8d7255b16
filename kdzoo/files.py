"""How kdzoo writes files and folders: atomically, and never over what it did not write.

Files: ``atomic_file(path)`` writes a hidden temporary beside ``path`` and renames it into
place only when the block ends without an error (a failed checksum, say), so a crash never
leaves a partial file. ``atomic_gfile`` is the same for ``tf.io.gfile`` paths (``gs://``).

Folders: every folder kdzoo may later replace or remove (a student bundle, a teacher-output
cache) carries a marker file, ``.kdzoo-owned``, naming the kind of folder. A folder without
the marker, or with another kind's, is refused with an error naming it; an empty folder is
taken over (nothing is lost). A kdzoo folder that also holds files kdzoo did not write
there is refused too (``check_own_files``): replacing it would delete them. ``replace_dir``
swaps a finished temporary folder in, checking both again.

Modes: what ``tempfile`` makes is private (0600, 0700); ``atomic_file`` and
``make_sibling_tmp`` give it the mode a plain ``open`` or ``mkdir`` would under the process
umask (``default_mode``), so a renamed report, bundle or cache reads like any other file.

Temporary folders (``make_sibling_tmp``) are named ``.tmp-*`` and carry a ``"tmp"`` marker
naming the host and process writing them. ``remove_stale_tmps`` removes those whose process
has died (a killed export or save), and nothing else: not a live writer's, not another
host's, not a ``.tmp-*`` folder without the marker.

Example:

>>> with atomic_file("stats.json", "w", encoding="utf-8") as f:
...     json.dump(stats, f)
>>> tmp = make_sibling_tmp(dest)              # a hidden sibling: same file system
>>> ...write the contents into tmp...
>>> replace_dir(tmp, dest, kind="student-bundle")   # atomic swap, marker included
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

MARKER = ".kdzoo-owned"
TMP_KIND = "tmp"
TMP_PREFIX = ".tmp-"


def current_umask() -> int:
    """The process umask, read without changing it where ``/proc`` tells it (another
    thread creating a file meanwhile is unaffected); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            status = f.read()
    except OSError:  # no /proc (macOS, Windows)
        status = ""
    for line in status.splitlines():
        field, _, value = line.partition(":")
        if field == "Umask" and value.strip():
            return int(value.strip(), 8)
    mask = os.umask(0o077)  # the brief window errs on the private side
    os.umask(mask)
    return mask


def default_mode(folder: bool = False) -> int:
    """The mode ``open`` (0o666) or ``mkdir`` (0o777, ``folder=True``) gives a new file or
    folder under the process umask."""
    return (0o777 if folder else 0o666) & ~current_umask()


@contextlib.contextmanager
def atomic_file(path, mode="wb", encoding=None):
    """Opens a temporary beside ``path``; renames it to ``path`` when the block succeeds.

    Args:
        path: the final file (its folder is created).
        mode: ``"wb"`` or ``"w"``.
        encoding: for text mode.

    The temporary (``.<name>.*.tmp``) is removed if the block raises, so ``path`` holds the
    old content or the new, never part of it. The file gets ``default_mode()``, not
    ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, default_mode())
        with os.fdopen(handle, mode, encoding=encoding) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_gfile(path, mode="w"):
    """``atomic_file`` for ``tf.io.gfile`` paths (local, ``gs://``, ...)."""
    import tensorflow as tf

    folder, name = os.path.split(str(path))
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tf.io.gfile.GFile(tmp, mode) as f:
            yield f
        tf.io.gfile.rename(tmp, str(path), overwrite=True)
    except BaseException:
        with contextlib.suppress(tf.errors.OpError):
            tf.io.gfile.remove(tmp)
        raise


class NotOwnedError(FileExistsError):
    """A folder kdzoo was asked to replace or remove holds something kdzoo did not write."""


def write_marker(folder, kind: str, **extra) -> None:
    """Marks ``folder`` as a kdzoo folder of ``kind`` (``extra`` fields are recorded too)."""
    with open(os.path.join(folder, MARKER), "w", encoding="utf-8") as f:
        json.dump({"kind": kind, "format": 1, **extra}, f)


def read_marker(folder) -> dict | None:
    """The marker of ``folder`` as a dict, or None (no marker, or not kdzoo's)."""
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def owner_kind(folder) -> str | None:
    """The kind recorded in ``folder``'s marker, or None (no marker, or not kdzoo's)."""
    kind = (read_marker(folder) or {}).get("kind")
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


def check_own_files(folder, own, what: str = "folder", action: str = "replacing") -> None:
    """Raises ``NotOwnedError`` if ``folder`` holds a file not named in ``own`` (replacing
    the folder would delete it); an absent folder passes.

    Args:
        folder: the kdzoo folder that would be replaced.
        own: the names of the files kdzoo writes there (its marker included).
        what: how the error names the argument (e.g. ``"cache_dir"``).
        action: what would replace the folder, for the error (e.g. ``"saving"``).
    """
    if not os.path.isdir(folder):
        return
    others = sorted(set(os.listdir(folder)) - set(own))
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise NotOwnedError(
            f"{what} {folder} holds {len(others)} file(s) kdzoo did not write there "
            f"({shown}); {action} would replace the folder and delete them. Move them out, "
            "or choose a new folder."
        )


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of proc(5); fields[0] is field 3
    except (OSError, IndexError):
        return None


def _writer() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def _writer_is_dead(marker: dict) -> bool:
    """True only if the process named by a ``"tmp"`` marker has certainly ended."""
    if os.name != "posix" or marker.get("host") != socket.gethostname():
        return False  # another machine's process (or no safe probe): assume it is alive
    pid = marker.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0 probes, it does not signal
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    except OSError:
        return False
    started = marker.get("start")
    now = _process_start(pid)
    return started is not None and now is not None and now != started  # pid reused


def make_sibling_tmp(dest, label: str = "") -> Path:
    """A new hidden folder ``.tmp-*`` beside ``dest`` (same file system, so a rename is
    atomic), marked as this process's temporary (see ``remove_stale_tmps``).

    ``replace_dir`` replaces the mark with the final kind; code that renames the folder
    itself calls ``unmark`` first. The folder gets ``default_mode(folder=True)``, not
    ``mkdtemp``'s 0700.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{label or dest.name}-", dir=dest.parent))
    os.chmod(tmp, default_mode(folder=True))
    mark_tmp(tmp)
    return tmp


def mark_tmp(folder) -> None:
    """Marks ``folder`` as a temporary of this process (host, pid and its start time)."""
    write_marker(folder, TMP_KIND, **_writer())


def unmark(folder) -> None:
    """Removes ``folder``'s marker, if any."""
    Path(folder, MARKER).unlink(missing_ok=True)


def _rmtree(folder) -> list:
    """``shutil.rmtree`` that carries on past errors and returns them as ``(path, error)``;
    a file already gone (another process cleaning up too) is no error."""
    failures = []

    def record(_function, path, error):
        if isinstance(error, tuple):  # onerror's exc_info (Python < 3.12)
            error = error[1]
        if not isinstance(error, FileNotFoundError):
            failures.append((path, error))

    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=record)
    else:
        shutil.rmtree(folder, onerror=record)
    return failures


def remove_stale_tmps(parent) -> list[Path]:
    """Removes the temporaries in ``parent`` left by a kdzoo process that has died.

    Only ``.tmp-*`` folders with a ``"tmp"`` marker whose process (host and pid, and the
    pid's start time where ``/proc`` tells it) has certainly ended are removed: a live
    writer's, another host's and unmarked folders are left alone. A folder that cannot be
    removed is reported with a warning. Returns the folders removed.
    """
    removed = []
    try:
        entries = sorted(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TMP_PREFIX) or entry.is_symlink() or not entry.is_dir():
            continue
        marker = read_marker(entry)
        if not marker or marker.get("kind") != TMP_KIND or not _writer_is_dead(marker):
            continue
        failures = _rmtree(entry)
        if failures:
            path, err = failures[0]
            warnings.warn(
                f"Could not remove {entry}, left by a kdzoo process that died "
                f"(pid {marker.get('pid')}): {path}: {err}",
                stacklevel=2,
            )
        else:
            removed.append(entry)
    return removed


def replace_dir(
    tmp, dest, kind: str, what: str = "folder", own=None, action: str = "replacing"
) -> Path:
    """Marks ``tmp`` as ``kind`` and swaps it in as ``dest``.

    ``dest`` must pass ``check_replaceable`` and, where ``own`` names the files kdzoo
    writes there, ``check_own_files`` (``what`` and ``action`` word their errors): checked
    again here, as a file may have been put there while ``tmp`` was written. An old ``dest``
    is renamed aside first and removed only once the new one is in place, so a crash leaves
    either the old or the new folder at ``dest``, never a partial one.
    """
    check_replaceable(dest, kind, what)
    if own is not None:
        check_own_files(dest, own, what, action)
    tmp, dest = Path(tmp), Path(dest)
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
