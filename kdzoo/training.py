"""``distil(config)``: the one library function that trains a teacher and distils a student,
on any tf.distribute strategy, resumably. The CLI and the notebooks call it.

What it does, in order:

1. ``kdzoo.distribute.select_strategy(config.strategy)`` (first, before any other op), the
   mixed-precision policy, and the seed;
2. loads ``config.dataset`` with static batch shapes (``drop_remainder=True``): batches of
   the *global* batch size, which tf.distribute splits over the replicas, and sharded by
   data (``kdzoo.distribute.with_shard_policy``), so a global batch is the one a single
   process would see;
3. inside ``strategy.scope()``: builds the pair, compiles each model (``jit_compile``,
   ``steps_per_execution``), then trains the teacher, the student from scratch (the
   baseline) and the same student distilled (``kdzoo.Distiller``), each phase under a
   ``ResumableBackup`` (Keras ``BackupAndRestore``) in ``<backup_dir>/<phase>``;
4. evaluates the three models on the test split and, on the chief only, exports the
   distilled student with ``kdzoo.export.export_for_serving`` (raw-input signatures, the
   output ``kdzoo check-export`` validates); then removes the backups it wrote.

Nothing is lost and nothing passes silently:

- ``backup_dir`` may hold other files: ``distil`` writes only ``<backup_dir>/<phase>/`` and
  a ``kdzoo_backup.json`` marker, and removes only those (and ``backup_dir`` itself only if
  it created it and it is then empty). Backup and export folders may not overlap.
- A backup records a fingerprint of the settings that decide the weights; a rerun with other
  settings on it is refused (``BackupMismatchError``) instead of resuming the old run.
- A backup whose files are missing, truncated or garbled raises ``BackupError`` naming the
  file; after a kill between Keras' two writes (weights, then metadata) the consistent
  previous pair (``.bkp``) is used, so the resumed run still equals the uninterrupted one.
- A non-finite loss stops training with ``NonFiniteLossError`` (not exit code 0 with NaN
  weights).

Resuming repeats no finished epoch and is exact: each epoch's order is a permutation seeded
by ``(seed, epoch number)``, not by how many epochs this process has run, so a run killed
after epoch ``k`` resumes with epoch ``k + 1`` in the order an uninterrupted run would use,
from the same weights and optimizer state. Dropout draws are not in the backup: a phase
that trains with dropout (the teacher's default preset) resumes with fresh draws. The
distillation phase draws none (the teacher runs with ``training=False``; the student
presets have no dropout).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import tempfile

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kdzoo import distribute
from kdzoo._keras_compat import check_steps_per_execution, enable_multi_worker_fit

log = logging.getLogger("kdzoo")

#: Dtype policies ``DistilConfig.mixed_precision`` accepts (``None`` means float32).
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")
PHASES = ("teacher", "scratch", "distil")
OPTIMIZERS = ("adam", "adamw", "sgd")
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
    "verbose",
)


class BackupError(RuntimeError):
    """A backup folder cannot be resumed from: a file is missing, truncated or garbled."""


class BackupMismatchError(BackupError):
    """A backup folder holds a run with other settings than the one asked for."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or weight."""


@dataclasses.dataclass
class DistilConfig:
    """Settings of ``distil``; every field has a CLI flag of the same name.

    Attributes:
        dataset: a ``kdzoo.datasets`` name. Defaults to ``"embedded"``.
        pair: a ``kdzoo.models`` pair (or model family). Defaults to ``"av_to_audio"``.
        teacher_inputs, student_inputs: the batch keys each model reads.
        num_examples: size of the generated ``"embedded"`` set. Defaults to 5000.
        normalize_audio: per-mel-bin normalisation of the log-mel (``kdzoo.datasets.load``).
            Defaults to None (the dataset's default: off for ``"embedded"``).
        train_examples: use only ``N`` training examples, a seeded random subset (quick
            runs). Defaults to None (all).
        global_batch_size: examples per step over all replicas; must be a multiple of the
            replica count. Defaults to 64.
        teacher_epochs: teacher training epochs; 0 distils from an untrained teacher.
            Defaults to 10.
        epochs: student epochs (baseline and distillation). Defaults to 10.
        baseline: also train the student from scratch, for the comparison table.
            Defaults to True.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``. Defaults to ``"adam"``.
        learning_rate: the optimizer's peak rate, cosine-decayed to 0 over each phase.
            Defaults to 2e-3.
        temperature, ce_weight, kd_weight: the ``Distiller``'s. Defaults to 4.0, 0.5, 0.5.
        terms: loss terms by name, ``"name"`` or ``"name:weight"`` (``kdzoo.losses.names()``;
            ``"ce"`` compares with the labels, the others with the teacher's logits), e.g.
            ``("ce:0.5", "kd_std:0.5")``. Replaces ``ce_weight``/``kd_weight`` when given;
            temperature-based losses get ``temperature``. Defaults to None.
        teacher_overrides, student_overrides: builder arguments for each side of the pair,
            e.g. ``{"dropout": 0.0}``. Defaults to None.
        strategy: ``"auto"``, ``"default"``, ``"mirrored"``, ``"multiworker"`` or
            ``"tpu"`` (``kdzoo.distribute.resolve_strategy``). Defaults to ``"auto"``.
        tpu: TPU name, ``grpc://`` address or ``"local"``. Defaults to the environment's.
        seed: initialisation, data order and pairing seed. Defaults to 0.
        jit_compile: XLA for the train steps: True, False or ``"auto"`` (Keras': on for
            GPUs when every layer supports it; TPUs always compile). Defaults to ``"auto"``.
        steps_per_execution: train steps per ``tf.function`` call (fewer host round trips,
            which matters most on TPUs). Defaults to 1.
        mixed_precision: ``"float32"``, ``"mixed_float16"`` (GPU; loss scaling is added by
            ``compile``), ``"mixed_bfloat16"`` (TPU, recent CPUs/GPUs), or ``"auto"``
            (bfloat16 on TPU, float16 on GPU, float32 otherwise). Logits and losses stay
            float32. Defaults to ``"float32"``.
        backup_dir: where each phase's ``BackupAndRestore`` state goes, so a killed run
            resumes from its last finished epoch. Every worker must see it (a shared or
            ``gs://`` path for several hosts). Defaults to None (no backups).
        export_dir: where the chief exports the distilled student (TF Serving layout,
            ``<export_dir>/<export_name>/<version>/``). Defaults to None (no export).
        export_name: the exported model's name. Defaults to ``"audio_student"``.
        verbose: Keras ``fit`` verbosity. Defaults to ``"auto"``.
    """

    dataset: str = "embedded"
    pair: str = "av_to_audio"
    teacher_inputs: tuple = ("image", "audio")
    student_inputs: tuple = ("audio",)
    num_examples: int | None = None
    normalize_audio: bool | None = None
    train_examples: int | None = None
    global_batch_size: int = 64
    teacher_epochs: int = 10
    epochs: int = 10
    baseline: bool = True
    optimizer: str = "adam"
    learning_rate: float = 2e-3
    temperature: float = 4.0
    ce_weight: float = 0.5
    kd_weight: float = 0.5
    terms: tuple | None = None
    teacher_overrides: dict | None = None
    student_overrides: dict | None = None
    strategy: str = "auto"
    tpu: str | None = None
    seed: int = 0
    jit_compile: bool | str = "auto"
    steps_per_execution: int = 1
    mixed_precision: str = "float32"
    backup_dir: str | None = None
    export_dir: str | None = None
    export_name: str = "audio_student"
    verbose: int | str = "auto"


@dataclasses.dataclass
class DistilResult:
    """What ``distil`` returns.

    Attributes:
        strategy: the strategy used and why it was chosen (one line).
        num_replicas: replicas in sync.
        is_chief: whether this process wrote the exports (always True on one worker).
        table: test metrics of the teacher, the scratch student and the distilled student.
        history: per phase, Keras' history of the epochs run *in this process*.
        epochs_run: per phase, the epoch indices run in this process (a resumed run skips
            the finished ones).
        teacher, student, scratch_student: the trained models (``scratch_student`` is None
            without ``baseline``).
        distiller: the ``Distiller`` that trained ``student`` (compiled; its optimizer state
            included).
        export_path: the chief's export folder, or None.
        precision: the dtype policy trained under.
    """

    strategy: str
    num_replicas: int
    is_chief: bool
    table: pd.DataFrame
    history: dict
    epochs_run: dict
    teacher: keras.Model
    student: keras.Model
    scratch_student: keras.Model | None
    distiller: keras.Model
    export_path: str | None
    precision: str = "float32"


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


def float32_outputs(model: keras.Model) -> keras.Model:
    """Makes the layers that produce ``model``'s outputs compute in float32.

    Under a mixed policy the logits would otherwise be float16/bfloat16; softmax and the
    losses of near-equal large logits need float32 (Keras' mixed-precision guide).
    """
    for output in model.outputs:
        layer = output._keras_history.operation  # private: the producing layer
        if layer.compute_dtype != "float32":
            layer.dtype_policy = "float32"
    return model


def check_settings(config, ints=(), optional_ints=(), positive=(), nonnegative=()) -> None:
    """Raises ``ValueError`` naming ``<Config>.<field>`` for a setting out of its range.

    Args:
        config: a settings dataclass (``DistilConfig``, ``DemoConfig``, ...).
        ints: ``(field, minimum)`` pairs that must be ints >= minimum.
        optional_ints: ``(field, minimum)`` pairs that may also be None.
        positive: fields that must be finite numbers > 0 (learning rates, temperatures).
        nonnegative: fields that must be finite numbers >= 0 (loss weights).
    """
    owner = type(config).__name__
    for field, minimum in (*ints, *optional_ints):
        value = getattr(config, field)
        if value is None and (field, minimum) in optional_ints:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            none = "None or " if (field, minimum) in optional_ints else ""
            raise ValueError(f"{owner}.{field} must be {none}an int >= {minimum}; got {value!r}.")
    for field in (*positive, *nonnegative):
        value = getattr(config, field)
        strict = field in positive
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value > 0 or (not strict and value == 0))
        if not ok:
            expected = "a finite number > 0" if strict else "a finite number >= 0"
            raise ValueError(f"{owner}.{field} must be {expected}; got {value!r}.")


def check_config(config: DistilConfig) -> None:
    """Raises ``ValueError`` naming the field for any setting ``distil`` cannot honour, before
    anything is loaded or trained."""
    check_settings(
        config,
        ints=(
            ("epochs", 1),
            ("teacher_epochs", 0),
            ("global_batch_size", 1),
            ("steps_per_execution", 1),
        ),
        optional_ints=(("num_examples", 1), ("train_examples", 1)),
        positive=("learning_rate", "temperature"),
        nonnegative=("ce_weight", "kd_weight"),
    )
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"DistilConfig.optimizer must be one of {OPTIMIZERS}; got {config.optimizer!r}."
        )
    if tuple(config.student_inputs) == () or tuple(config.teacher_inputs) == ():
        raise ValueError("DistilConfig.teacher_inputs and student_inputs must name input keys.")
    if config.terms:
        terms_from_names(config.terms, config.temperature)  # names and weights, before training
    if config.num_examples is not None and config.dataset != "embedded":
        raise ValueError(
            "DistilConfig.num_examples sizes the generated 'embedded' set; "
            f"{config.dataset!r} has a fixed size (use train_examples for a subset)."
        )
    if config.backup_dir and config.export_dir:
        backup, export = _normalized(config.backup_dir), _normalized(config.export_dir)
        if backup == export or _inside(backup, export) or _inside(export, backup):
            raise ValueError(
                f"DistilConfig.backup_dir {config.backup_dir!r} and export_dir "
                f"{config.export_dir!r} overlap; backups are removed when the run ends, so "
                "they must not hold the exports. Use two separate folders."
            )


def _normalized(path) -> str:
    path = str(path)
    if "://" in path:  # gs://, hdfs://: compare as written
        return path.rstrip("/")
    return os.path.realpath(os.path.expanduser(path))


def _inside(path, folder) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _precision(name, kind):
    if name not in PRECISIONS:
        raise ValueError(f"`mixed_precision` must be one of {PRECISIONS}; got {name!r}.")
    if name != "auto":
        return name
    if kind == "tpu":
        return "mixed_bfloat16"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def _epoch_batches(rows, num_rows, batch_size, seed, first_epoch, epochs):
    """Batches of epochs ``first_epoch..epochs-1``; epoch ``e`` is the permutation seeded
    by ``(seed, e)``, whatever epoch this process started at."""
    steps = num_rows // batch_size
    first_epoch = min(first_epoch, epochs - 1)  # a finished phase still builds (0 epochs run)

    def one_epoch(epoch):
        order_seed = seed * 1_000_003 + epoch
        shuffled = rows.shuffle(num_rows, seed=order_seed, reshuffle_each_iteration=False)
        return shuffled.batch(batch_size, drop_remainder=True)

    parts = [one_epoch(epoch) for epoch in range(first_epoch, epochs)]
    order = tf.data.Dataset.range(len(parts)).flat_map(
        lambda i: tf.data.Dataset.from_tensors(i).repeat(steps)
    )
    data = tf.data.Dataset.choose_from_datasets(parts, order)
    data = data.apply(tf.data.experimental.assert_cardinality(len(parts) * steps))
    return distribute.with_shard_policy(data.prefetch(tf.data.AUTOTUNE)), steps


def _select(keys):
    keys = tuple(keys)
    return lambda x, y: ({k: x[k] for k in keys}, y)


class _EpochLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


_NON_FINITE_HINT = (
    "Check the inputs for NaN/Inf values and that the learning rate is not too large."
)


class RaiseOnNonFinite(keras.callbacks.Callback):
    """Stops training with ``NonFiniteLossError`` at the first NaN or infinite loss, or at
    the end of an epoch whose weights are not all finite.

    Keras' ``TerminateOnNaN`` only stops ``fit``, which then returns normally with NaN
    weights; a recipe must not go on to evaluate or export them.

    Args:
        phase: named in the error (e.g. ``"teacher"``).
    """

    def __init__(self, phase="training"):
        super().__init__()
        self.phase = phase
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"The {self.phase} loss became {float(loss)} at epoch {self._epoch}, batch "
                f"{batch}; training stopped. {_NON_FINITE_HINT}"
            )

    def on_epoch_end(self, epoch, logs=None):
        # A loss can stay finite while weights overflow (seen with a learning rate of 1e30).
        # get_weights reads distributed (Mirrored) variables too.
        for variable, value in zip(self.model.weights, self.model.get_weights(), strict=True):
            if not np.isfinite(value).all():
                raise NonFiniteLossError(
                    f"The {self.phase} weights became non-finite at epoch {epoch} "
                    f"({variable.path}); training stopped. {_NON_FINITE_HINT}"
                )


def fingerprint(config: DistilConfig) -> dict:
    """The settings of ``config`` that decide the trained weights (JSON-ready)."""
    fields = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _NOT_FINGERPRINTED
    }
    return json.loads(json.dumps(fields, sort_keys=True, default=str))


def _claim_backup_dir(config, chief) -> bool:
    """Checks ``config.backup_dir`` before training and marks it as this run's.

    Returns whether the folder was created here (then ``_release_backup_dir`` may remove it).
    Raises ``BackupMismatchError`` if it holds another run's backups, and ``BackupError`` if
    it holds phase folders kdzoo did not write.
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
    existing = [p for p in PHASES if tf.io.gfile.exists(os.path.join(root, p))]
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


def _release_backup_dir(root):
    """Removes what ``distil`` wrote in ``root``: the phase folders and the marker, then
    ``root`` itself if ``distil`` created it and nothing else is left in it."""
    marker = os.path.join(root, _BACKUP_MARKER)
    try:
        with tf.io.gfile.GFile(marker) as f:
            created = bool(json.load(f).get("created_dir"))
    except (tf.errors.NotFoundError, ValueError):
        return
    for phase in PHASES:
        path = os.path.join(root, phase)
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)
    tf.io.gfile.remove(marker)
    if created and not tf.io.gfile.listdir(root):
        tf.io.gfile.rmtree(root)


def _write_on_chief(strategy, write, final_dir):
    """``write(folder)`` into ``final_dir`` on the chief; other workers write into a
    temporary folder that is deleted (saving may need collectives every worker joins)."""
    if distribute.is_chief(strategy):
        return write(final_dir)
    with tempfile.TemporaryDirectory(prefix="kdzoo-worker-") as tmp:
        write(tmp)
    return None


def distil(config: DistilConfig | None = None, callbacks=None, strategy=None) -> DistilResult:
    """Trains the teacher, the scratch baseline and the distilled student under a strategy.

    Args:
        config: a ``DistilConfig``. Defaults to ``DistilConfig()``.
        callbacks: extra Keras callbacks for the distillation phase (after the backup).
        strategy: a ``kdzoo.distribute.StrategyChoice`` (or a ``tf.distribute.Strategy``)
            already made, e.g. by a notebook that shows it first; then ``config.strategy``
            and ``config.tpu`` are not used. A process makes one multi-worker or TPU
            strategy. Defaults to None: ``select_strategy(config.strategy)``.

    Returns:
        A ``DistilResult``.

    Example:

    >>> result = kdzoo.training.distil(DistilConfig(strategy="auto", backup_dir="/tmp/kd"))
    >>> print(result.strategy)
    >>> result.table
    """
    config = config or DistilConfig()
    check_config(config)
    if strategy is None:
        choice = distribute.select_strategy(config.strategy, tpu=config.tpu)  # before any op
    elif isinstance(strategy, distribute.StrategyChoice):
        choice = strategy
    else:
        kind = distribute.strategy_kind(strategy)
        choice = distribute.StrategyChoice(strategy, kind, "given to distil()")
    strategy = choice.strategy
    check_steps_per_execution(strategy, config.steps_per_execution)
    precision = _precision(config.mixed_precision, choice.kind)
    per_replica = distribute.per_replica_batch_size(config.global_batch_size, strategy)
    log.info(
        "Global batch %d = %d replicas x %d; precision %s",
        config.global_batch_size,
        strategy.num_replicas_in_sync,
        per_replica,
        precision,
    )
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return _distil(config, choice, precision, callbacks or [])
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _distil(config, choice, precision, extra_callbacks):
    from kdzoo import datasets, models
    from kdzoo.distiller import Distiller
    from kdzoo.evaluation import classification_metrics
    from kdzoo.export import export_for_serving
    from kdzoo.serving.preprocessing import ServingPreprocessing, raw_examples

    strategy = choice.strategy
    chief = distribute.is_chief(strategy)
    if config.backup_dir:
        _claim_backup_dir(config, chief)
    keras.utils.set_random_seed(config.seed)
    data = datasets.load(
        config.dataset,
        batch_size=256,  # evaluation and preprocessing batches; training batches are below
        seed=config.seed,
        modalities=tuple(dict.fromkeys((*config.teacher_inputs, *config.student_inputs))),
        num_examples=config.num_examples if config.dataset == "embedded" else None,
        normalize_audio=config.normalize_audio,
    )
    if config.train_examples:  # a seeded subset: files are often sorted by class
        train = data.arrays["train"]
        if config.train_examples > len(train["label"]):
            raise ValueError(
                f"DistilConfig.train_examples={config.train_examples}, but {config.dataset} "
                f"has only {len(train['label'])} training examples."
            )
        keep = np.random.default_rng(config.seed).permutation(len(train["label"]))
        keep = np.sort(keep[: config.train_examples])
        data.arrays["train"] = {k: v[keep] for k, v in train.items()}
    # Preprocessed rows, cached once; each phase draws its epochs from them.
    rows = data.pipeline("train", training=False).unbatch()
    num_rows = len(data.arrays["train"]["label"])
    test = data.splits["test"]
    if num_rows < config.global_batch_size:
        raise ValueError(
            f"{config.dataset} has {num_rows} training examples, fewer than "
            f"global_batch_size={config.global_batch_size}."
        )
    shapes = {f"{m}_shape": tuple(spec.shape) for m, spec in data.input_specs.items()}

    def phase_data(phase, epochs, keys=None):
        backup = os.path.join(config.backup_dir, phase) if config.backup_dir else None
        first = resume_epoch(backup)
        if first > epochs:
            raise ValueError(
                f"{backup} holds a run at epoch {first}, past the {epochs} epochs asked for "
                f"this phase. Ask for at least {first} epochs, or use another backup_dir."
            )
        batches, steps = _epoch_batches(
            rows, num_rows, config.global_batch_size, config.seed, first, epochs
        )
        if keys is not None:
            batches = batches.map(_select(keys))
        callbacks = [ResumableBackup(backup, first, strategy)] if backup else []
        return batches, steps, [RaiseOnNonFinite(phase), *callbacks]

    def compile_model(model, epochs, steps, **kwargs):
        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=max(1, epochs * steps)
        )
        model.compile(
            optimizer=keras.optimizers.get(
                {"class_name": config.optimizer, "config": {"learning_rate": schedule}}
            ),
            metrics=["accuracy"],
            jit_compile=config.jit_compile,
            steps_per_execution=config.steps_per_execution,
            **kwargs,
        )
        enable_multi_worker_fit(model)  # kdzoo/_keras_compat.py: remove when Keras fixes it

    history, epochs_run = {}, {}

    def fit(phase, model, batches, steps, epochs, callbacks):
        epoch_log = _EpochLog()
        result = model.fit(
            batches,
            epochs=epochs,
            steps_per_epoch=steps,
            callbacks=[*callbacks, epoch_log],
            shuffle=False,  # the data are shuffled per epoch above; fit cannot shuffle tf.data
            verbose=config.verbose,
        )
        history[phase], epochs_run[phase] = dict(result.history), epoch_log.epochs

    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with strategy.scope():
        teacher, student = models.build_pair(
            config.pair,
            data.num_classes,
            teacher_overrides=config.teacher_overrides,
            student_overrides=config.student_overrides,
            **shapes,
        )
        float32_outputs(teacher)
        float32_outputs(student)
        initial = student.get_weights()  # scratch and distilled start from the same weights

        if config.teacher_epochs:
            batches, steps, callbacks = phase_data(
                "teacher", config.teacher_epochs, config.teacher_inputs
            )
            compile_model(teacher, config.teacher_epochs, steps, loss=ce)
            fit("teacher", teacher, batches, steps, config.teacher_epochs, callbacks)

        scratch = None
        if config.baseline:
            scratch = student
            batches, steps, callbacks = phase_data("scratch", config.epochs, config.student_inputs)
            compile_model(scratch, config.epochs, steps, loss=ce)
            fit("scratch", scratch, batches, steps, config.epochs, callbacks)
            student = keras.models.clone_model(scratch)
            float32_outputs(student)
            student.set_weights(initial)

        if config.terms:  # the Distiller refuses terms= beside its convenience weights
            objective = {"terms": terms_from_names(config.terms, config.temperature)}
        else:
            objective = {
                "temperature": config.temperature,
                "ce_weight": config.ce_weight,
                "kd_weight": config.kd_weight,
            }
        distiller = Distiller(
            teacher=teacher,
            student=student,
            teacher_inputs=config.teacher_inputs,
            student_inputs=config.student_inputs,
            **objective,
        )
        batches, steps, callbacks = phase_data("distil", config.epochs)
        compile_model(distiller, config.epochs, steps)
        fit("distil", distiller, batches, steps, config.epochs, [*callbacks, *extra_callbacks])

    rows_out = [("teacher", teacher, config.teacher_inputs)]
    if scratch is not None:
        rows_out.append(("student (scratch)", scratch, config.student_inputs))
    rows_out.append(("student (distilled)", student, config.student_inputs))
    table = pd.DataFrame(
        [
            {
                "model": label,
                "inputs": "+".join(inputs),
                "params": model.count_params(),
                **classification_metrics(model, test),  # each model reads its own keys
            }
            for label, model, inputs in rows_out
        ]
    )

    export_path = None
    if config.export_dir:
        distilled_row = table.iloc[-1]
        preprocessing = ServingPreprocessing.from_dataset(data, config.student_inputs)

        def export(base):
            return str(
                export_for_serving(
                    student,
                    base,
                    name=config.export_name,
                    preprocessing=preprocessing,
                    teacher_name=teacher.name,
                    metrics={f"test_{k}": float(distilled_row[k]) for k in _METRICS},
                    warmup_inputs=raw_examples(data.arrays["test"], config.student_inputs),
                )
            )

        export_path = _write_on_chief(strategy, export, config.export_dir)
    if config.backup_dir and chief:
        _release_backup_dir(config.backup_dir)  # every phase finished: nothing to resume
    return DistilResult(
        strategy=str(choice),
        num_replicas=strategy.num_replicas_in_sync,
        is_chief=chief,
        table=table,
        history=history,
        epochs_run=epochs_run,
        teacher=teacher,
        student=student,
        scratch_student=scratch,
        distiller=distiller,
        export_path=export_path,
        precision=precision,
    )


_METRICS = ("accuracy", "macro_f1")
_FEATURE_LOSSES = ("at", "feature_cosine", "feature_mse", "rkd_angle", "rkd_distance")


def terms_from_names(specs, temperature=4.0):
    """``LossTerm``s from ``"name[:weight]"`` strings (configs and the CLI).

    ``"ce"`` compares the student's logits with the labels; every other name compares them
    with the teacher's logits (temperature-based losses get ``temperature``).
    """
    import inspect

    from kdzoo import losses
    from kdzoo.terms import LossTerm

    out = []
    for spec in specs:
        name, _, weight = str(spec).partition(":")
        try:
            weight = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"Loss term {spec!r}: weight {weight!r} is not a number.") from None
        if name in _FEATURE_LOSSES:
            raise ValueError(
                f"Loss term {spec!r}: {name!r} compares features; build it as "
                "kdzoo.LossTerm(name, weight, teacher_output=..., student_output=...)."
            )
        if name not in losses.names():
            raise ValueError(
                f"Loss term {spec!r}: unknown loss {name!r}. Valid names: "
                f"{', '.join(losses.names())}."
            )
        kwargs = {}
        if "temperature" in inspect.signature(losses.get(name).__class__).parameters:
            kwargs["temperature"] = temperature
        loss = losses.get(name, **kwargs)
        target = "labels" if name == "ce" else "teacher"
        out.append(LossTerm(loss, weight, target=target, name=name))
    return out
