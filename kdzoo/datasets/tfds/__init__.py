"""kdzoo's datasets as TensorFlow Datasets (TFDS) builders, prepared offline.

Importing this package registers one builder per dataset of the catalog that is read from
files (``kdzoo.datasets.catalog``; the generated ``embedded`` set has none), named
``kdzoo_<dataset>``. Their class names, splits, descriptions, licences and files are the
catalog's:

| name | splits | features |
|---|---|---|
| ``kdzoo_fsdd`` | train 2,700 / test 300 | audio int16 [8000], label, speaker, file_name |
| ``kdzoo_mnist`` | train 5,000 / test 10,000 | image uint8 [28, 28, 1], label |
| ``kdzoo_av_digits`` | train 2,700 / test 300 | image, audio, label, speaker, file_name |
| ``kdzoo_sst2`` | train 6,920 / validation 872 / test 1,821 | text, label (negative, positive) |
| ``kdzoo_sms_spam`` | train / validation / test (70/10/20) | text, label (ham, spam) |

They read the files of the kdzoo data root (see ``kdzoo.datasets.root``) through kdzoo's
NumPy loaders and never touch the network: the root is ``download_config.manual_dir`` if
given, else ``kdzoo.datasets.root.data_root()`` (``$KDZOO_DATA_DIR``, else
``~/.kdzoo/data``), and ``try_download_gcs`` is always off. Data is stored at its original
resolution: audio int16 (divide by 32768 for kdzoo's float waveforms), images uint8 (divide
by 255). Missing files raise ``kdzoo.datasets.root.DataNotFoundError`` naming them; each
builder's ``MANUAL_DOWNLOAD_INSTRUCTIONS`` lists its files and their source.

Usage::

    import tensorflow_datasets as tfds
    import kdzoo.datasets.tfds  # registers the builders

    kdzoo.datasets.tfds.build("kdzoo_fsdd", data_dir="~/tensorflow_datasets")
    ds = tfds.load("kdzoo_fsdd", split="train", data_dir="~/tensorflow_datasets",
                   download=False)

``build`` prepares once; later ``tfds.load(..., download=False)`` calls read the prepared
files (TFDS can read them even in a process that has not imported kdzoo). Always pass
``download=False``: then a dataset missing from ``data_dir`` is an immediate error. The
same preparation in plain TFDS::

    builder = tfds.builder("kdzoo_fsdd", data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir="/path/to/kdzoo/data", try_download_gcs=False))

TFDS's own ``spoken_digit`` (FSDD v1.0.9) is not built here; it builds offline from a folder
holding ``free-spoken-digit-dataset-1.0.9.tar.gz`` (``$KDZOO_DATA_DIR/fsdd_tfds_manual``)
with ``tfds.download.DownloadConfig(manual_dir=that_folder, try_download_gcs=False)`` and
needs ``pydub``.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from kdzoo.datasets.catalog import CATALOG
from kdzoo.datasets.root import data_root
from kdzoo.datasets.tfds._base import builder_name
from kdzoo.datasets.tfds.kdzoo_av_digits import KdzooAvDigits
from kdzoo.datasets.tfds.kdzoo_fsdd import KdzooFsdd
from kdzoo.datasets.tfds.kdzoo_mnist import KdzooMnist
from kdzoo.datasets.tfds.kdzoo_sms_spam import KdzooSmsSpam
from kdzoo.datasets.tfds.kdzoo_sst2 import KdzooSst2

_CLASSES = (KdzooAvDigits, KdzooFsdd, KdzooMnist, KdzooSmsSpam, KdzooSst2)
#: TFDS name -> builder class, in catalog order (every catalog dataset read from files has
#: one: tests/datasets/test_tfds.py checks it).
BUILDERS = {builder_name(spec): cls for spec in CATALOG for cls in _CLASSES if cls.SPEC is spec}
NAMES = tuple(BUILDERS)


def build(name: str, data_dir, root=None, **download_config) -> tfds.core.DatasetBuilder:
    """Prepares a kdzoo TFDS dataset offline and returns its builder.

    Afterwards ``tfds.load(name, data_dir=data_dir, download=False)`` works. A dataset
    already prepared in ``data_dir`` is reused, not rebuilt.

    Args:
        name: a kdzoo builder name (see ``NAMES``: ``kdzoo_<catalog name>``), optionally
            with a version, e.g. ``"kdzoo_fsdd"`` or ``"kdzoo_fsdd:1.0.0"``.
        data_dir: the TFDS data directory to write to.
        root: the kdzoo data root to read from; default ``kdzoo.datasets.root.data_root()``.
        **download_config: more ``tfds.download.DownloadConfig`` fields, e.g.
            ``max_examples_per_split``; ``manual_dir`` and ``try_download_gcs`` are set here.

    Returns:
        The prepared ``tfds.core.DatasetBuilder``.

    Raises:
        ValueError: if ``name`` is not a kdzoo builder.
        kdzoo.datasets.root.DataNotFoundError: if the dataset's files are missing.
    """
    base = name.split(":", 1)[0].split("/", 1)[0]
    if base not in BUILDERS:
        raise ValueError(f"Unknown kdzoo TFDS dataset {name!r}. Valid names: {', '.join(NAMES)}.")
    for key in ("manual_dir", "try_download_gcs"):
        if key in download_config:
            raise TypeError(f"build() sets `{key}` itself; pass the data root as `root=`.")
    data_dir = os.path.expanduser(os.fspath(data_dir))
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=str(data_root(root)), try_download_gcs=False, **download_config
        )
    )
    return builder


__all__ = [
    "BUILDERS",
    "NAMES",
    "KdzooAvDigits",
    "KdzooFsdd",
    "KdzooMnist",
    "KdzooSmsSpam",
    "KdzooSst2",
    "build",
]
