"""The regression and multi-label study (``kdzoo bench tasks``) at its smoke size, and the
diabetes set it reads from scikit-learn."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kdzoo import task_study
from kdzoo.cli import main
from kdzoo.task_study import SETTINGS, TasksConfig, command, diabetes_frame, goals, run


def test_diabetes_is_read_offline_from_scikit_learn():
    frame = diabetes_frame()
    assert frame.shape == (442, 11) and "target" in frame
    assert np.isfinite(frame.to_numpy()).all()


def test_command_names_only_what_differs_from_the_defaults():
    assert command(TasksConfig()) == "kdzoo bench tasks --seeds 0 1 2"
    config = TasksConfig(settings=("diabetes",), seeds=(1,), epochs=3, tiny=True)
    assert command(config) == "kdzoo bench tasks --seeds 1 --datasets diabetes --epochs 3 --tiny"


@pytest.mark.slow
def test_tiny_study_writes_every_setting_with_its_metric(tmp_path):
    config = TasksConfig(seeds=(0, 1), teacher_epochs=1, epochs=1, out_dir=str(tmp_path), tiny=True)
    per_seed, summary = run(config)
    written = pd.read_csv(tmp_path / "tasks.csv")
    assert len(written) == len(per_seed) == len(SETTINGS) * 2 * 3
    assert set(written["dataset"]) == set(SETTINGS)
    metrics = written.groupby("dataset")["metric"].first().to_dict()
    assert metrics == {
        "embedded-regression": "mse",
        "embedded-multi-label": "macro_roc_auc",
        "diabetes": "mse",
        "embedded-regression-scarce": "mse",
        "embedded-multi-label-scarce": "macro_roc_auc",
    }
    # A -scarce setting: 64 labelled rows per seed, the other training rows a transfer set,
    # and its embedded setting's teacher (the same test numbers).
    scarce = written[written["dataset"].str.endswith(task_study.SCARCE)]
    full = written[written["dataset"] == "embedded-regression"]["train_examples"].iloc[0]
    students = scarce[scarce["model"] != "teacher"]
    assert (students["train_examples"] == task_study._TINY_LABELLED_ROWS).all()
    assert (students["train_examples"] + students["transfer_examples"] == full).all()
    assert (scarce.loc[scarce["model"] == "teacher", "train_examples"] == full).all()
    assert (
        f"keeps {task_study._TINY_LABELLED_ROWS} labelled training rows"
        in (tmp_path / "tasks.md").read_text()
    )
    teacher = written[written["model"] == "teacher"].set_index(["dataset", "seed"])
    for base, metric in (("embedded-regression", "mse"), ("embedded-multi-label", "macro_roc_auc")):
        values = teacher.loc[base + task_study.SCARCE, f"test_{metric}"].to_numpy()
        assert np.isfinite(values).all()
        np.testing.assert_array_equal(values, teacher.loc[base, f"test_{metric}"].to_numpy())
    regression = written[written["task"] == "regression"]
    assert (regression["test_mse"] > 0).all() and regression["test_r2"].notna().all()
    assert written.loc[written["task"] == "multi_label", "test_macro_roc_auc"].between(0, 1).all()
    # The teacher is trained once per setting: the same numbers for both seeds.
    teachers = written[written["model"] == "teacher"].groupby("dataset")["test_mse"]
    assert (teachers.nunique(dropna=False) == 1).all()
    assert set(goals(summary)["dataset"]) == set(SETTINGS)
    text = (tmp_path / "tasks.md").read_text()
    assert "Issue 16's goals" in text and "kdzoo bench tasks --seeds 0 1" in text
    assert (tmp_path / "code.json").is_file()
    # Run alone, a -scarce setting trains its embedded setting's teacher the same way and
    # starts its students from the same weights: the same rows.
    alone, _ = run(dataclasses.replace(config, settings=("embedded-regression-scarce",),
                                       out_dir=None))  # fmt: skip
    together = per_seed[per_seed["dataset"] == "embedded-regression-scarce"]
    columns = ["model", "setting", "validation_mse", "test_mse", "train_examples"]
    pd.testing.assert_frame_equal(
        alone[columns].reset_index(drop=True), together[columns].reset_index(drop=True)
    )


def test_cli_reaches_the_study(monkeypatch):
    calls = []

    def fake_run(config):
        calls.append(config)
        frame = pd.DataFrame(
            {"dataset": ["diabetes"] * 2, "kind": ["scratch", "distilled"], "metric": ["mse"] * 2,
             "mean": [2.0, 1.5], "std": [0.0, 0.0], "count": [1, 1]}
        )  # fmt: skip
        return None, frame

    monkeypatch.setattr(task_study, "run", fake_run)
    assert main(["bench", "tasks", "--datasets", "diabetes", "--seeds", "2", "--quiet"]) == 0
    assert calls[0].settings == ("diabetes",) and calls[0].seeds == (2,)
    assert main(["bench", "tasks", "--datasets", "mnist"]) == 2
    assert main(["bench", "tasks", "--no-keras-peer"]) == 2
