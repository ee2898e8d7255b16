"""Benchmark studies: table arithmetic, and a tiny end-to-end smoke run of each study."""

import dataclasses

import pandas as pd
import pytest

from kdzoo.defaults import DEFAULTS
from kdzoo.recipe import Candidate
from kdzoo.studies import GOAL_COLUMNS, StudyConfig, gain, goals, run_study, summarize


def test_summary_is_mean_and_sample_std_over_seeds():
    per_seed = pd.DataFrame(
        {
            "seed": [0, 1, 2, 0, 1, 2],
            "model": ["t"] * 3 + ["s"] * 3,
            "params": [10] * 3 + [2] * 3,
            "test_accuracy": [0.9, 0.8, 0.7, 0.5, 0.6, 0.7],
            "validation_accuracy": [0.0] * 6,
            "test_accuracy [fgsm@0.05]": [0.1, 0.2, 0.3] + [float("nan")] * 3,
        }
    )
    table = summarize(per_seed)
    assert list(table["model"]) == ["t", "s"] and list(table["seeds"]) == [3, 3]
    assert table.loc[0, "accuracy"] == "0.800 ± 0.100"
    assert table.loc[1, "accuracy [fgsm@0.05]"] == "—"
    assert "validation_accuracy" not in table.columns  # tables report test only
    assert list(gain(per_seed, "s", "t")) == pytest.approx([-0.4, -0.2, 0.0])


@pytest.mark.slow
@pytest.mark.requires_data("fsdd")
def test_a_study_runs_the_recipe_end_to_end_at_tiny_size(tmp_path):
    config = StudyConfig(seeds=(0, 1), teacher_epochs=1, epochs=1, out_dir=str(tmp_path), tiny=True)
    per_seed, summary, notes = run_study("fsdd", config)
    assert (tmp_path / "fsdd.csv").exists() and (tmp_path / "fsdd.md").exists()
    assert summary["accuracy"].str.match(r"^\d\.\d{3} ± \d\.\d{3}$").all()
    assert per_seed["test_accuracy"].between(0, 1).all()
    assert per_seed["validation_accuracy"].between(0, 1).all()
    main = per_seed[per_seed["model"].isin(("teacher", "scratch", "recipe"))]
    assert list(main["model"]) == ["teacher", "scratch", "recipe"] * 2
    teacher_params = per_seed["params"].iloc[0]
    students = per_seed[per_seed["model"] != "teacher"]
    assert (students["params"] * 8 <= teacher_params).all()
    # At the tiny size, the first default candidate and one scratch try, per seed.
    assert len(per_seed) == 2 * (3 + 2 * 1)
    tried = per_seed.loc[per_seed["model"].str.startswith("candidate: "), "setting"]
    assert Candidate.parse(DEFAULTS.candidates[0]).describe() in set(tried)
    # The teacher is trained once and reused: the same test accuracy for every seed.
    assert main[main["model"] == "teacher"]["test_accuracy"].nunique() == 1
    cost = notes["cost"]
    assert cost["keras_distiller_seconds"] > 0 and cost["candidate_cost_vs_student_only"] > 0


@pytest.mark.slow
@pytest.mark.requires_data("sms_spam")
def test_default_recipe_keeps_the_rows_of_datasets_not_run(tmp_path):
    config = StudyConfig(
        seeds=(0,), teacher_epochs=1, epochs=1, out_dir=str(tmp_path), tiny=True, keras_peer=False
    )
    old = pd.DataFrame(
        {
            "dataset": ["fsdd"] * 3,
            "seed": [0] * 3,
            "model": ["teacher", "scratch", "recipe"],
            "chosen": ["", "", "scratch"],
            "validation_accuracy": [0.9, 0.8, 0.8],
            "test_accuracy": [0.9, 0.8, 0.82],
            "test_f1": [float("nan")] * 3,
        }
    )
    old.to_csv(tmp_path / "default-recipe.csv", index=False)
    combined, table, _ = run_study(
        "default-recipe", dataclasses.replace(config, datasets=("sms-spam",))
    )
    written = pd.read_csv(tmp_path / "default-recipe.csv")
    assert list(dict.fromkeys(written["dataset"])) == ["sms-spam", "fsdd"]  # catalog order
    assert set(GOAL_COLUMNS) <= set(written.columns)
    assert list(table["dataset"]) == ["sms-spam", "fsdd"]
    assert table.set_index("dataset").loc["fsdd", "gain (points)"] == "+2.00"
    text = (tmp_path / "default-recipe.md").read_text()
    assert "Goal 1" in text and "Goal 2" in text and "kdzoo bench default-recipe" in text


def test_goals_are_computed_per_dataset_from_paired_seeds():
    rows = []
    for seed, (scratch, recipe) in enumerate([(0.80, 0.82), (0.81, 0.806), (0.79, 0.81)]):
        for model, acc in (("teacher", 0.9), ("scratch", scratch), ("recipe", recipe)):
            rows.append({"dataset": "d", "seed": seed, "model": model, "chosen": "kd"})
            rows[-1].update(test_accuracy=acc, test_f1=float("nan"))
    table = goals(pd.DataFrame(rows)).iloc[0]
    assert table["gain (points)"] == pytest.approx((2.0 - 0.4 + 2.0) / 3)
    assert table["worst seed"] == pytest.approx(-0.4)
    assert bool(table["goal 1"]) and bool(table["+1 point"])
