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

import json
import logging
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from kdzoo.datasets.catalog import CATALOG
from kdzoo.datasets.root import data_root
from kdzoo.datasets.tfds._base import builder_name
from kdzoo.datasets.tfds.kdzoo_av_digits import KdzooAvDigits
from kdzoo.datasets.tfds.kdzoo_fsdd import KdzooFsdd
from kdzoo.datasets.tfds.kdzoo_mnist import KdzooMnist
from kdzoo.datasets.tfds.kdzoo_sms_spam import KdzooSmsSpam
from kdzoo.datasets.tfds.kdzoo_sst2 import KdzooSst2
from kdzoo.files import atomic_gfile

log = logging.getLogger("kdzoo")
#: What ``build`` prepared a dataset from (its data root and ``max_examples_per_split``),
#: written beside TFDS's files in the builder's version folder.
BUILD_RECORD = "kdzoo_build.json"

_CLASSES = (KdzooAvDigits, KdzooFsdd, KdzooMnist, KdzooSmsSpam, KdzooSst2)
#: TFDS name -> builder class, in catalog order (every catalog dataset read from files has
#: one: tests/datasets/test_tfds.py checks it).
BUILDERS = {builder_name(spec): cls for spec in CATALOG for cls in _CLASSES if cls.SPEC is spec}
NAMES = tuple(BUILDERS)


def build(name: str, data_dir, root=None, **download_config) -> tfds.core.DatasetBuilder:
    """Prepares a kdzoo TFDS dataset offline and returns its builder.

    Afterwards ``tfds.load(name, data_dir=data_dir, download=False)`` works. A dataset
    already prepared in ``data_dir`` is reused, not rebuilt, if ``build`` prepared it from
    the same data root and ``max_examples_per_split``, which it records beside TFDS's files
    (``BUILD_RECORD``); another root or size is an error, since reusing it would give other
    data than asked for. ``download_mode="force_redownload"`` rebuilds.

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
        ValueError: if ``name`` is not a kdzoo builder, or ``data_dir`` holds it prepared
            from another root or ``max_examples_per_split``.
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
    manual_dir = str(data_root(root))
    asked = {
        "root": os.path.abspath(manual_dir),
        "max_examples_per_split": download_config.get("max_examples_per_split"),
    }
    record = os.path.join(str(builder.data_dir), BUILD_RECORD)
    if "download_mode" in download_config:  # TFDS wants the enum; accept its value too
        download_config["download_mode"] = tfds.download.GenerateMode(
            download_config["download_mode"]
        )
    rebuild = download_config.get("download_mode") == tfds.download.GenerateMode.FORCE_REDOWNLOAD
    if builder.is_prepared() and not rebuild:
        if tf.io.gfile.exists(record):
            with tf.io.gfile.GFile(record, "r") as f:
                built = json.load(f)
            if built != asked:
                raise ValueError(
                    f"{name} in {builder.data_dir} was prepared with {built}, not {asked} as "
                    'asked now; pass download_mode="force_redownload" to rebuild it, or '
                    "another data_dir."
                )
        else:
            log.info("%s in %s was prepared without build(): reused as it is.", name, data_dir)
        return builder
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir, try_download_gcs=False, **download_config
        )
    )
    with atomic_gfile(record, "w") as f:
        f.write(json.dumps(asked))
    return builder


__all__ = [
    "BUILDERS",
    "BUILD_RECORD",
    "NAMES",
    "KdzooAvDigits",
    "KdzooFsdd",
    "KdzooMnist",
    "KdzooSmsSpam",
    "KdzooSst2",
    "build",
]
