"""Benchmark studies: table arithmetic, and a tiny end-to-end smoke run of each study."""

import pandas as pd
import pytest

from kdzoo.studies import STUDIES, StudyConfig, gain, run_study, summarize


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
@pytest.mark.parametrize("study", STUDIES)
def test_each_study_runs_end_to_end_at_tiny_size(study, tmp_path):
    config = StudyConfig(seeds=(0,), teacher_epochs=1, epochs=1, out_dir=str(tmp_path), tiny=True)
    per_seed, summary, notes = run_study(study, config)
    assert (tmp_path / f"{study}.csv").exists() and (tmp_path / f"{study}.md").exists()
    assert summary["accuracy"].str.match(r"^\d\.\d{3} ± \d\.\d{3}$").all()
    assert per_seed["test_accuracy"].between(0, 1).all()
    assert per_seed["validation_accuracy"].between(0, 1).all()
    teacher_params = per_seed["params"].iloc[0]
    students = per_seed[per_seed["model"].str.contains("student")]
    assert (students["params"] * 8 <= teacher_params).all()
    if study == "av-digits-crossmodal":
        assert len(summary) == 8  # teacher, scratch, five methods, best combination
        assert len(notes["best combination (by validation accuracy)"]) == 2
        assert "accuracy [noise:audio@10dB]" in summary.columns
    if study == "av-digits-fusion":
        assert "accuracy [missing:image]" in summary.columns
