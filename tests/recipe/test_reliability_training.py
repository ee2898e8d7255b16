"""Bad-input and fault matrix, training: ``kdzoo.recipe.distil()`` never deletes what it did not
write, refuses settings it cannot honour before training, resumes exactly or refuses, and
never finishes with NaN weights."""

import dataclasses
import json
import math
import re
import shutil

import keras
import numpy as np
import pytest

from kdzoo.recipe import (
    BackupError,
    BackupMismatchError,
    DistilConfig,
    NonFiniteLossError,
    RaiseOnNonFinite,
    backup_state,
    distil,
)
from kdzoo.recipe.selection import phase_folder

CANDIDATE = "ce:0.5,kd:0.5@t=4"
DISTIL = phase_folder(CANDIDATE)  # its backup folder
# 142 training rows (18 held out for validation) in 8 steps of 16; a distillation of 2
# epochs so that a run stopped after its first epoch has something to resume.
TINY = DistilConfig(
    num_examples=200,
    global_batch_size=16,
    teacher_epochs=1,
    epochs=2,
    candidates=(CANDIDATE,),
    scratch=("scratch",),
    strategy="default",
    verbose=0,
)


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    """Stands in for a kill after the first distillation epoch was backed up."""

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("stopped after epoch 0")


@pytest.fixture(scope="module")
def interrupted_backup(tmp_path_factory):
    """A backup folder as a run stopped after distillation epoch 0 leaves it."""
    keras.utils.set_random_seed(0)
    backup = tmp_path_factory.mktemp("interrupted") / "backup"
    with pytest.raises(KeyboardInterrupt):
        distil(dataclasses.replace(TINY, backup_dir=str(backup)), [_StopAfterFirstEpoch()])
    assert json.loads((backup / DISTIL / "training_metadata.json").read_text())["epoch"] == 1
    return backup


@pytest.fixture
def backup(interrupted_backup, tmp_path):
    copy = tmp_path / "backup"
    shutil.copytree(interrupted_backup, copy)
    return copy


# --- 1. Never delete what kdzoo did not write --------------------------------------------


@pytest.mark.slow
def test_backup_dir_keeps_the_users_files_and_removes_only_the_runs(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "model").mkdir()
    (folder / "model" / "weights.h5").write_bytes(b"\0" * 8)
    distil(dataclasses.replace(TINY, epochs=1, backup_dir=str(folder)))
    assert sorted(p.name for p in folder.iterdir()) == ["model", "notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "backup, export",
    [("d", "d"), ("d", "d/exports"), ("d/backup", "d"), ("d/./x/..", "d")],
    ids=["same", "export-inside-backup", "backup-inside-export", "same-after-normalising"],
)
def test_overlapping_backup_and_export_dirs_are_refused_before_training(
    tmp_path, backup, export, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").mkdir()
    config = dataclasses.replace(TINY, backup_dir=backup, export_dir=export)
    with pytest.raises(ValueError, match="backup_dir .* and export_dir .* overlap"):
        distil(config)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x"]  # nothing written


def test_phase_folders_kdzoo_did_not_write_are_refused(tmp_path):
    (tmp_path / "b" / "teacher").mkdir(parents=True)
    (tmp_path / "b" / "teacher" / "keep.txt").write_text("mine")
    with pytest.raises(BackupError, match=r"already holds teacher without kdzoo's"):
        distil(dataclasses.replace(TINY, backup_dir=str(tmp_path / "b")))
    assert (tmp_path / "b" / "teacher" / "keep.txt").read_text() == "mine"


# --- 2. No silent wrong results: settings and non-finite values ---------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"epochs": -1}, "epochs must be an integer >= 1"),
        ({"teacher_epochs": -1}, "teacher_epochs must be an integer >= 0"),
        ({"global_batch_size": 0}, "global_batch_size must be None or an integer >= 1"),
        ({"train_examples": -5}, "train_examples must be None or an integer >= 1"),
        ({"train_examples": 0}, "train_examples must be None or an integer >= 1"),
        ({"num_examples": 0}, "num_examples must be None or an integer >= 1"),
        ({"learning_rate": math.nan}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": math.inf}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"patience": 0}, "patience must be an integer >= 1"),
        ({"plateau_factor": 1.5}, "plateau_factor and validation_fraction must be below 1"),
        ({"validation_fraction": 0.0}, "validation_fraction must be a finite number > 0"),
        ({"candidates": ("kd", "nope:1")}, "unknown loss 'nope'"),
        ({"candidates": ("kd:x",)}, "weight 'x' is not a number"),
        ({"candidates": ("kd@t=0",)}, "t and lr must be > 0"),
        ({"candidates": ("ce:1",)}, "has no teacher term"),
        ({"candidates": ("scratch",)}, "one is in the other's list"),
        ({"scratch": ("kd",)}, "one is in the other's list"),
        ({"scratch": ()}, "scratch must hold at least one try"),
        ({"tensorboard": True}, "tensorboard writes under run_dir"),
        ({"dataset": "sst2", "num_examples": 100}, "num_examples sizes a generated set"),
        ({"dataset": "nope"}, "DistilConfig.dataset: Unknown dataset .nope.. Valid names"),
    ],
)
def test_settings_are_checked_before_anything_is_loaded(change, message, tmp_path, monkeypatch):
    monkeypatch.setenv("KDZOO_DATA_DIR", str(tmp_path / "no-data"))  # a load would fail
    with pytest.raises(ValueError, match=message):
        distil(dataclasses.replace(TINY, **change))


def test_a_training_subset_larger_than_the_data_is_refused():
    with pytest.raises(ValueError, match=r"train_examples=500, but embedded has only 142"):
        distil(dataclasses.replace(TINY, train_examples=500))


def test_a_nan_input_stops_training_with_a_clear_error():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.ones((8, 3), "float32")
    x[5, 1] = np.nan
    with pytest.raises(NonFiniteLossError, match=r"teacher loss became nan at epoch 0, batch 1"):
        model.fit(x, np.zeros(8), batch_size=4, verbose=0, callbacks=[RaiseOnNonFinite("teacher")])


@pytest.mark.slow
def test_distil_stops_on_a_diverging_loss_instead_of_exiting_cleanly():
    config = dataclasses.replace(TINY, learning_rate=1e30, teacher_epochs=0)
    with pytest.raises(  # the first student phase, scratch, diverges first
        NonFiniteLossError, match=r"The scratch (loss|weights) became (nan|inf|non-finite)"
    ):
        distil(config)
    config = dataclasses.replace(config, scratch=("scratch@lr=0.002",))
    with pytest.raises(NonFiniteLossError, match=r"The distil ce:0.5,kd:0.5@t=4 (loss|weights)"):
        distil(config)


# --- 3. A resume equals the uninterrupted run or refuses ---------------------------------


def test_a_lost_weights_file_is_refused_naming_it(backup):
    (backup / DISTIL / "latest.weights.h5").unlink()
    with pytest.raises(BackupError, match=re.escape(DISTIL) + r"/latest\.weights\.h5 is missing"):
        distil(dataclasses.replace(TINY, backup_dir=str(backup)))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"seed": 1}, "seed"),
        ({"pair": "av_to_image", "student_inputs": ("image",)}, "pair"),
        ({"candidates": ("ce:0.5,kd_std:0.5",)}, "candidates"),
        ({"num_examples": 300}, "num_examples"),
        ({"epochs": 3}, "epochs"),
    ],
)
def test_a_rerun_with_other_settings_is_refused(backup, change, field):
    config = dataclasses.replace(TINY, backup_dir=str(backup), **change)
    with pytest.raises(BackupMismatchError, match=rf"other settings \({field}: backup .*another"):
        distil(config)
    assert (backup / DISTIL / "training_metadata.json").is_file()  # nothing removed


def test_a_truncated_weights_file_without_a_previous_one_is_refused_naming_it(backup):
    weights = backup / DISTIL / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])
    assert not (backup / DISTIL / "latest.weights.h5.bkp").exists()
    with pytest.raises(
        BackupError, match=re.escape(DISTIL) + r"/latest\.weights\.h5 does not match"
    ):
        distil(dataclasses.replace(TINY, backup_dir=str(backup)))


@pytest.mark.parametrize("garbage", [b"{not json", b"[]", b'{"epoch": "one"}', b""])
def test_garbled_metadata_is_refused_naming_it(backup, garbage):
    (backup / DISTIL / "training_metadata.json").write_bytes(garbage)
    with pytest.raises(
        BackupError, match=re.escape(DISTIL) + r"/training_metadata\.json is not valid backup"
    ):
        distil(dataclasses.replace(TINY, backup_dir=str(backup)))


def test_a_garbled_run_marker_is_refused_naming_it(backup):
    (backup / "kdzoo_backup.json").write_text("{")
    with pytest.raises(BackupError, match=r"kdzoo_backup\.json is not a kdzoo backup marker"):
        distil(dataclasses.replace(TINY, backup_dir=str(backup)))


def _pair(folder, epoch, weights, suffix=""):
    import hashlib

    (folder / f"latest.weights.h5{suffix}").write_bytes(weights)
    metadata = {"epoch": epoch, "batch": 0, "weights_sha256": hashlib.sha256(weights).hexdigest()}
    (folder / f"training_metadata.json{suffix}").write_text(json.dumps(metadata))


def test_a_kill_between_the_weights_and_metadata_writes_resumes_from_the_previous_pair(
    tmp_path,
):
    _pair(tmp_path, 1, b"epoch-1 weights", ".bkp")
    _pair(tmp_path, 1, b"epoch-1 weights")
    assert backup_state(tmp_path) == (1, "latest")
    (tmp_path / "latest.weights.h5").write_bytes(b"epoch-2 weights")  # metadata not yet
    assert backup_state(tmp_path) == (1, "previous")
    (tmp_path / "training_metadata.json").write_text('{"epo')  # cut during the metadata write
    assert backup_state(tmp_path) == (1, "previous")
