"""Where datasets live: the data root.

The root is, in order: the ``root`` argument, ``$KDZOO_DATA_DIR``, ``~/.kdzoo/data``.
Tests, CI and benchmarks set ``KDZOO_DATA_DIR`` to ``../shared/data`` (the Makefile does).
Files are read in place; nothing is copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "KDZOO_DATA_DIR"
DEFAULT_ROOT = Path("~/.kdzoo/data")


class DataNotFoundError(FileNotFoundError):
    """Dataset files are missing from the data root."""


def data_root(root=None) -> Path:
    """The data root: ``root``, else ``$KDZOO_DATA_DIR``, else ``~/.kdzoo/data``."""
    value = root or os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return Path(value).expanduser()


def require(dataset: str, relative_paths, source: str, root=None) -> list[Path]:
    """Returns the absolute paths of a dataset's files, or raises ``DataNotFoundError``
    listing every missing path and where to get the files."""
    base = data_root(root)
    paths = [base / p for p in relative_paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DataNotFoundError(
            f"{dataset}: {len(missing)} expected file(s) missing under the data root {base} "
            f"(set ${ENV_VAR} or pass root=): {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}. Get them from {source}."
        )
    return paths
