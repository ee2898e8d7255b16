"""Resumable phases: ``ResumableBackup`` (Keras ``BackupAndRestore`` that only the chief
writes and that verifies its files), and the marker that ties a backup folder to the
settings of the run that wrote it.

Nothing is lost and nothing passes silently:

- ``backup_dir`` may hold other files: a run writes only ``<backup_dir>/<phase>/`` and a
  ``kdzoo_backup.json`` marker, and removes only those (and ``backup_dir`` itself only if
  it created it and it is then empty).
- The marker records a fingerprint of the settings that decide the weights; a rerun with
  other settings is refused (``BackupMismatchError``) instead of resuming the old run.
- A backup whose files are missing, truncated or garbled raises ``BackupError`` naming the
  file; after a kill between Keras' two writes (weights, then metadata) the consistent
  previous pair (``.bkp``) is used, so the resumed run still equals the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile

import keras
import tensorflow as tf

from kdzoo import distribute

log = logging.getLogger("kdzoo")

_METADATA = "training_metadata.json"  # written by keras.callbacks.BackupAndRestore
_WEIGHTS = "latest.weights.h5"  # written by keras.callbacks.BackupAndRestore
_BACKUP_MARKER = "kdzoo_backup.json"  # written by ``distil`` beside the phase folders
#: DistilConfig fields that do not change the trained weights, so a resume may change them.
_NOT_FINGERPRINTED = (
    "strategy",
    "tpu",
    "jit_compile",
    "steps_per_execution",
    "backup_dir",
    "export_dir",
    "export_name",
    "run_dir",
    "tensorboard",
    "verbose",
)


class BackupError(RuntimeError):
    """A backup folder cannot be resumed from: a file is missing, truncated or garbled."""


class BackupMismatchError(BackupError):
    """A backup folder holds a run with other settings than the one asked for."""


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras ``BackupAndRestore`` that only the chief writes, that checks its files before
    resuming, and that checks that the epoch it restores is the one the training data starts
    at.

    Every worker restores from ``backup_dir``. Every worker also saves at each epoch's end
    (saving may need collectives that all workers must join), but a non-chief worker saves
    to a temporary folder that it deletes at once: only the chief's files remain.

    The metadata also records the SHA-256 of the weights file, so a pair written half-way
    (killed between Keras' weights and metadata writes) is recognised and the previous
    consistent pair (``.bkp``) is resumed from instead (``backup_state``).

    Args:
        backup_dir: the folder (shared by all workers).
        data_first_epoch: the epoch the training data starts at (``resume_epoch`` read
            before building it).
        strategy: the strategy training runs under.
    """

    def __init__(self, backup_dir, data_first_epoch=0, strategy=None):
        # Kept after the phase ends: a rerun then skips finished phases. ``distil`` removes
        # the backups (on the chief) once every phase has finished.
        super().__init__(
            backup_dir, save_freq="epoch", double_checkpoint=True, delete_checkpoint=False
        )
        self.data_first_epoch = data_first_epoch
        self.strategy = strategy or tf.distribute.get_strategy()
        self.restored_epoch = 0

    def on_train_begin(self, logs=None):
        _, source = backup_state(self.backup_dir)
        if source == "previous" and distribute.is_chief(self.strategy):
            log.warning(
                "%s: the latest backup is incomplete (a kill while it was written); resuming "
                "from the previous one.",
                self.backup_dir,
            )
            for name in (_WEIGHTS, _METADATA):
                path = os.path.join(self.backup_dir, name)
                tf.io.gfile.copy(f"{path}.bkp", path, overwrite=True)
        try:
            super().on_train_begin(logs)
        except (OSError, ValueError) as err:  # h5py's errors, or a weights/model mismatch
            raise BackupError(
                f"{os.path.join(self.backup_dir, _WEIGHTS)}: cannot restore the backup "
                f"({type(err).__name__}: {err}). Remove {self.backup_dir} to start this phase "
                "afresh."
            ) from err
        # Read again: Keras itself falls back to the .bkp pair when the weights do not load.
        self.restored_epoch = resume_epoch(self.backup_dir)
        _check_same_on_all_workers(self.strategy, self.restored_epoch, "restored epoch")
        if self.restored_epoch != self.data_first_epoch:
            raise BackupError(
                f"{self.backup_dir}: restored epoch {self.restored_epoch}, but the data was "
                f"built to start at epoch {self.data_first_epoch} (the backup changed while "
                "this run started). Run again to resume from it."
            )

    def on_epoch_end(self, epoch, logs=None):
        if distribute.is_chief(self.strategy):
            super().on_epoch_end(epoch, logs)
            _add_weights_digest(self.backup_dir)
            return
        with tempfile.TemporaryDirectory(prefix="kdzoo-worker-backup-") as tmp:
            self.model.save_weights(os.path.join(tmp, _WEIGHTS))


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _add_weights_digest(backup_dir):
    """Rewrites the metadata Keras just wrote with the weights' SHA-256 (atomically)."""
    path = os.path.join(backup_dir, _METADATA)
    with tf.io.gfile.GFile(path) as f:
        metadata = json.load(f)
    metadata["weights_sha256"] = _sha256(os.path.join(backup_dir, _WEIGHTS))
    tmp = f"{path}.tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(metadata))
    tf.io.gfile.rename(tmp, path, overwrite=True)


def _read_pair(backup_dir, suffix=""):
    """``(epoch, None)`` for a consistent weights + metadata pair, else ``(None, problem)``."""
    metadata_path = os.path.join(backup_dir, _METADATA + suffix)
    weights_path = os.path.join(backup_dir, _WEIGHTS + suffix)
    if not tf.io.gfile.exists(metadata_path):
        return None, f"{metadata_path} is missing"
    try:
        with tf.io.gfile.GFile(metadata_path) as f:
            metadata = json.load(f)
        epoch = metadata["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r} is not an int >= 0")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return None, f"{metadata_path} is not valid backup metadata ({err})"
    if not tf.io.gfile.exists(weights_path):
        return None, f"{weights_path} is missing (its metadata records epoch {epoch})"
    expected = metadata.get("weights_sha256")
    if expected is not None and _sha256(weights_path) != expected:
        return None, f"{weights_path} does not match the SHA-256 its metadata records"
    return epoch, None


def backup_state(backup_dir) -> tuple[int, str | None]:
    """The epoch a phase's backup folder resumes at, and from which files.

    Returns ``(0, None)`` for no backup, ``(epoch, "latest")`` for a consistent latest pair,
    and ``(epoch, "previous")`` where only the ``.bkp`` pair is consistent: the latest one
    was cut short by a kill (metadata garbled or older than the weights). A lost weights
    file, or no consistent pair, raises ``BackupError`` naming the file.
    """
    if not backup_dir or not tf.io.gfile.isdir(backup_dir):
        return 0, None
    names = set(tf.io.gfile.listdir(backup_dir))
    if not names & {_METADATA, _WEIGHTS, f"{_METADATA}.bkp", f"{_WEIGHTS}.bkp"}:
        return 0, None
    epoch, problem = _read_pair(backup_dir)
    if epoch is not None:
        return epoch, "latest"
    if _METADATA in names and _WEIGHTS not in names:
        # Keras never deletes the weights, so this is not a kill: a file was lost. Resuming
        # would train the remaining epochs from fresh weights.
        raise BackupError(
            f"Cannot resume: {problem}. Restore the file, or remove {backup_dir} to start "
            "this phase afresh."
        )
    previous, previous_problem = _read_pair(backup_dir, ".bkp")
    if previous is not None:
        return previous, "previous"
    raise BackupError(
        f"Cannot resume: {problem}, and no consistent previous backup ({previous_problem}). "
        f"Remove {backup_dir} to start this phase afresh."
    )


def resume_epoch(backup_dir) -> int:
    """The epoch a ``BackupAndRestore`` in ``backup_dir`` resumes at (0 if none)."""
    return backup_state(backup_dir)[0]


def _check_same_on_all_workers(strategy, value, what):
    """Raises on every worker if workers hold different ``value``s (e.g. one worker cannot
    see the backups), instead of training on silently different weights."""
    if distribute.num_workers(strategy) == 1:
        return
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant([float(value), float(value) ** 2], tf.float64)
    )
    total, squares = strategy.reduce("SUM", per_replica, axis=None).numpy()
    n = strategy.num_replicas_in_sync
    if abs(n * squares - total**2) > 1e-6:  # equality only if all values are equal
        raise RuntimeError(
            f"Workers disagree on the {what} (this worker: {value}; mean over replicas: "
            f"{total / n:g}). Every worker must see the same backup_dir (shared storage)."
        )


def fingerprint(config) -> dict:
    """The settings of ``config`` that decide the trained weights (JSON-ready)."""
    fields = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _NOT_FINGERPRINTED
    }
    return json.loads(json.dumps(fields, sort_keys=True, default=str))


def claim_backup_dir(config, chief, folders) -> bool:
    """Checks ``config.backup_dir`` before training and marks it as this run's.

    ``folders`` are the phase folders the run will write (``kdzoo.recipe.selection.
    phase_folder`` of each phase). Returns whether ``backup_dir`` was created here (then
    ``release_backup_dir`` may remove it). Raises ``BackupMismatchError`` if it holds
    another run's backups, and ``BackupError`` if it holds phase folders kdzoo did not write.
    """
    root = config.backup_dir
    marker = os.path.join(root, _BACKUP_MARKER)
    wanted = fingerprint(config)
    if tf.io.gfile.exists(marker):
        try:
            with tf.io.gfile.GFile(marker) as f:
                recorded = json.load(f)["fingerprint"]
        except (ValueError, KeyError, TypeError) as err:
            raise BackupError(f"{marker} is not a kdzoo backup marker ({err}).") from err
        differ = sorted(k for k in set(wanted) | set(recorded) if wanted.get(k) != recorded.get(k))
        if differ:
            details = "; ".join(
                f"{k}: backup {recorded.get(k)!r}, now {wanted.get(k)!r}" for k in differ
            )
            raise BackupMismatchError(
                f"backup_dir {root} holds a run with other settings ({details}). Resuming it "
                "would train that run, not this one. Rerun with its settings to resume it, or "
                f"start fresh with another backup_dir (or remove {root})."
            )
        return False
    existing = [p for p in folders if tf.io.gfile.exists(os.path.join(root, p))]
    if existing:
        raise BackupError(
            f"backup_dir {root} already holds {', '.join(existing)} without kdzoo's "
            f"{_BACKUP_MARKER}; kdzoo will not resume from or remove folders it did not write. "
            "Use another backup_dir."
        )
    created = not tf.io.gfile.exists(root)
    if chief:
        tf.io.gfile.makedirs(root)
        record = {"kind": "kdzoo-distil-backup", "created_dir": created, "fingerprint": wanted}
        with tf.io.gfile.GFile(marker, "w") as f:
            f.write(json.dumps(record, indent=2, sort_keys=True))
    return created


def release_backup_dir(root, folders):
    """Removes what ``distil`` wrote in ``root``: the phase ``folders`` and the marker, then
    ``root`` itself if ``distil`` created it and nothing else is left in it."""
    marker = os.path.join(root, _BACKUP_MARKER)
    try:
        with tf.io.gfile.GFile(marker) as f:
            created = bool(json.load(f).get("created_dir"))
    except (tf.errors.NotFoundError, ValueError):
        return
    for phase in folders:
        path = os.path.join(root, phase)
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)
    tf.io.gfile.remove(marker)
    if created and not tf.io.gfile.listdir(root):
        tf.io.gfile.rmtree(root)
