"""The common base of kdzoo's TFDS builders: files come from the kdzoo data root, never
from the network, and every fact (class names, files, source, description, licence) from the
dataset's catalog entry (``kdzoo.datasets.catalog``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from kdzoo.datasets.catalog import CATALOG, DatasetSpec
from kdzoo.datasets.root import ENV_VAR, data_root, require

_INSTRUCTIONS = """\
This dataset is read from the kdzoo data root; nothing is downloaded. Put these files
under one folder, keeping their relative paths:

{files}

then pass that folder as the manual dir, e.g.
`kdzoo.datasets.tfds.build("{name}", data_dir, root=folder)`, or
`builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
manual_dir=folder, try_download_gcs=False))`. Without a manual dir the builder uses
`kdzoo.datasets.root.data_root()`: ${env}, else ~/.kdzoo/data.

Source: {source}.
The builder itself never downloads. On a machine with internet,
`kdzoo.datasets.{loader}.load_arrays()` fetches missing files into the data root."""


def builder_name(spec: DatasetSpec) -> str:
    """The TFDS name of a catalog dataset's builder: ``kdzoo_<name>``."""
    return f"kdzoo_{spec.name}"


def manual_download_instructions(spec: DatasetSpec, files=None) -> str:
    """The ``MANUAL_DOWNLOAD_INSTRUCTIONS`` of the builder of ``spec``.

    Args:
        spec: the dataset's catalog entry.
        files: how to list the paths it reads, relative to the data root; defaults to
            ``CATALOG.files(spec.name)``.

    Returns:
        The instructions, listing the files, their source and both ways of pointing the
        builder at them.
    """
    files = CATALOG.files(spec.name) if files is None else files
    listing = "\n".join(f"  {path}" for path in files)
    return _INSTRUCTIONS.format(
        files=listing, name=builder_name(spec), env=ENV_VAR, source=spec.source, loader=spec.name
    )


def required_files(spec: DatasetSpec) -> tuple[tuple[str, tuple[str, ...], str], ...]:
    """``(dataset, relative paths, source)`` per dataset whose files ``spec`` reads, as
    ``kdzoo.datasets.root.require`` takes them."""
    parts = [CATALOG.get(name) for name in spec.builds_on] or [spec]
    return tuple((part.name, CATALOG.files(part.name), part.source) for part in parts)


def audio_feature(spec: DatasetSpec) -> tfds.features.Audio:
    """The TFDS feature of ``spec``'s clips: int16, ``clip_samples`` at ``sample_rate``."""
    return tfds.features.Audio(
        shape=(spec.clip_samples,), dtype=np.int16, sample_rate=spec.sample_rate
    )


def to_int16(waveforms: np.ndarray) -> np.ndarray:
    """Float waveforms decoded from 16-bit PCM (``int16 / 32768``) back to int16, exactly.

    Args:
        waveforms: float32 samples in [-1, 1), as ``tf.audio.decode_wav`` returns them.

    Returns:
        The int16 samples; ``result / 32768`` equals ``waveforms``.

    Raises:
        ValueError: if a sample is not a multiple of 1/32768 within the int16 range.
    """
    scaled = np.rint(np.asarray(waveforms, dtype=np.float64) * 32768.0)
    if scaled.size and (scaled.min() < -32768 or scaled.max() > 32767):
        raise ValueError("Waveform samples outside [-1, 32767/32768]: not 16-bit PCM.")
    out = scaled.astype(np.int16)
    if not np.array_equal(out.astype(np.float32) / np.float32(32768.0), waveforms):
        raise ValueError("Waveform samples are not 16-bit PCM values (int16 / 32768).")
    return out


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] made by ``uint8 / 255`` back to uint8, exactly.

    Args:
        images: float32 pixels, as kdzoo's MNIST loader returns them.

    Returns:
        The uint8 pixels; ``result.astype(float32) / 255`` equals ``images``.

    Raises:
        ValueError: if a pixel is not ``k / 255`` for an integer ``k`` in 0..255.
    """
    scaled = np.rint(np.asarray(images, dtype=np.float64) * 255.0)
    if scaled.size and (scaled.min() < 0 or scaled.max() > 255):
        raise ValueError("Pixels outside [0, 1].")
    out = scaled.astype(np.uint8)
    if not np.array_equal(out.astype(np.float32) / np.float32(255.0), images):
        raise ValueError("Pixels are not 8-bit values (uint8 / 255).")
    return out


class KdzooBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder that reads kdzoo's data root instead of downloading.

    The root is ``download_config.manual_dir`` when one is given, else
    ``kdzoo.datasets.root.data_root()``. ``try_download_gcs`` is always turned off, and
    ``check_files`` (called first by each ``_split_generators``) raises on missing files
    before kdzoo's loaders could fetch them, so preparing never touches the network.

    Subclasses set ``SPEC`` (their dataset's catalog entry) and ``REQUIRED``, the files to
    check: ``required_files(SPEC)``.
    """

    SPEC: DatasetSpec
    REQUIRED: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    STORAGE = ""  # how the features store the values; appended to the description
    _manual_root: Path | None = None

    def info_from_spec(self, features, supervised_keys=None) -> tfds.core.DatasetInfo:
        """The ``DatasetInfo`` of ``features``, described by the catalog entry ``SPEC``."""
        spec = self.SPEC
        return self.dataset_info_from_configs(
            description="\n\n".join(filter(None, (spec.description, self.STORAGE))),
            features=features,
            supervised_keys=supervised_keys,
            homepage=spec.homepage,
            citation=spec.citation,
            license=spec.license,
        )

    def download_and_prepare(self, *, download_dir=None, download_config=None, **kwargs):
        """Prepares the dataset from the data root (see the class docstring).

        Args:
            download_dir: as in ``tfds.core.DatasetBuilder.download_and_prepare``; unused
                for downloads, since nothing is downloaded.
            download_config: a ``tfds.download.DownloadConfig``; its ``manual_dir`` is the
                data root, if set.
            **kwargs: passed on (``file_format``, ``permissions``).
        """
        config = download_config or tfds.download.DownloadConfig()
        self._manual_root = Path(config.manual_dir).expanduser() if config.manual_dir else None
        config = dataclasses.replace(config, try_download_gcs=False)
        super().download_and_prepare(download_dir=download_dir, download_config=config, **kwargs)

    @property
    def kdzoo_root(self) -> Path:
        """The folder the dataset files are read from."""
        return data_root(self._manual_root)

    def check_files(self) -> Path:
        """Returns the data root after checking that every ``REQUIRED`` file is there.

        Raises:
            kdzoo.datasets.root.DataNotFoundError: listing the missing files and their
                source; nothing is downloaded.
        """
        root = self.kdzoo_root
        for dataset, paths, source in self.REQUIRED:
            require(dataset, list(paths), source, root, download=False)
        return root
