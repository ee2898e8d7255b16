"""Where datasets live: the data root, and fetching missing files into it.

The root is, in order: the ``root`` argument, ``$KDZOO_DATA_DIR``, ``~/.kdzoo/data``.
Tests, CI and benchmarks set ``KDZOO_DATA_DIR`` to ``../shared/data`` (the Makefile does).
Files are read in place; nothing is copied into the repository.

When a loader's files are missing, ``require`` downloads them from the public sources
pinned in the dataset's catalog entry (``kdzoo.datasets.catalog``; checksummed, with a
progress bar, one request per file and no retries), unless ``$KDZOO_NO_DOWNLOAD=1`` (or
``download=False``). If they still are missing it raises ``DataNotFoundError`` listing
every missing path, where to get the files, and why the download did not happen or failed.
"""

from __future__ import annotations

import os
from pathlib import Path

from kdzoo.datasets import catalog as _catalog
from kdzoo.datasets import download as _download

ENV_VAR = "KDZOO_DATA_DIR"
NO_DOWNLOAD_ENV_VAR = "KDZOO_NO_DOWNLOAD"
DEFAULT_ROOT = Path("~/.kdzoo/data")


class DataNotFoundError(FileNotFoundError):
    """Dataset files are missing from the data root."""


def data_root(root=None) -> Path:
    """The data root: ``root``, else ``$KDZOO_DATA_DIR``, else ``~/.kdzoo/data``."""
    value = root or os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return Path(value).expanduser()


def download_allowed(download: bool | None = None) -> bool:
    """``download`` if given, else True unless ``$KDZOO_NO_DOWNLOAD`` is 1/true/yes/on."""
    if download is not None:
        return bool(download)
    flag = os.environ.get(NO_DOWNLOAD_ENV_VAR, "").strip().lower()
    return flag not in ("1", "true", "yes", "on")


def require(
    dataset: str,
    relative_paths,
    source: str,
    root=None,
    download: bool | None = None,
    timeout: float = _download.DEFAULT_TIMEOUT,
) -> list[Path]:
    """Returns the absolute paths of a dataset's files, fetching missing ones if allowed.

    Args:
        dataset: The dataset's name, also its key in ``kdzoo.datasets.catalog.SOURCES``
            (a name without pinned sources is fine: nothing is downloaded).
        relative_paths: Files or folders under the data root that the loader reads.
        source: Where to get the files, in words (shown in errors).
        root: The data root (see ``data_root``).
        download: Fetch missing files from the registered sources. ``None`` (default): yes,
            unless ``$KDZOO_NO_DOWNLOAD=1``.
        timeout: Seconds for each connection and read (no retries).

    Raises:
        DataNotFoundError: Files are still missing; the message lists every missing path,
            where to get them, and the download failure, if any.
    """
    base = data_root(root)
    relative_paths = list(relative_paths)
    paths = [base / p for p in relative_paths]

    def missing():
        return [
            (rel, path)
            for rel, path in zip(relative_paths, paths, strict=True)
            if not path.exists()
        ]

    absent = missing()
    if not absent:
        return paths
    resources = _download.resources_for(
        _catalog.SOURCES.get(dataset, ()), [rel for rel, _ in absent]
    )
    reason = ""
    if resources and download_allowed(download):
        try:
            for resource in resources:
                if not (base / resource.dest).exists():
                    _download.install(resource, base, timeout=timeout, progress=True)
        except OSError as err:
            reason = f" Download failed: {err}"
        absent = missing()
        if not absent:
            return paths
    elif resources:
        reason = (
            f" Automatic download is off (${NO_DOWNLOAD_ENV_VAR}=1 or download=False); "
            f"unset ${NO_DOWNLOAD_ENV_VAR} to fetch them."
        )
    links = "; ".join(r.describe() for r in resources)
    raise DataNotFoundError(
        f"{dataset}: {len(absent)} expected file(s) missing under the data root {base} "
        f"(set ${ENV_VAR} or pass root=): {', '.join(str(p) for _, p in absent)}. "
        f"Get them from {source}{f' ({links})' if links else ''}.{reason}"
    )
