"""The SST-2 transfer study (``kdzoo bench sst2-transfer``): the phrases file, table
arithmetic, and a tiny end-to-end run."""

import pandas as pd
import pytest

from kdzoo import cli
from kdzoo.sst2_transfer import (
    Sst2TransferConfig,
    command,
    goals,
    markdown,
    read_phrases,
    run,
    summarize,
)


def _per_seed():
    rows = [
        ("teacher member (phrase labels)", 0, 0.84, 67349),
        ("teacher member (phrase labels)", 1, 0.82, 67349),
        ("teacher (phrase labels)", 0, 0.86, 67349),
        ("supervised (phrase labels)", 0, 0.84, 67349),
        ("scratch (sentence labels)", 0, 0.78, 6920),
        ("distilled (sentence labels + phrases)", 0, 0.82, 74269),
        ("scratch (sentence labels)", 1, 0.80, 6920),
        ("distilled (sentence labels + phrases)", 1, 0.81, 74269),
    ]
    frame = pd.DataFrame(rows, columns=["model", "seed", "test_accuracy", "train_examples"])
    return frame.assign(dataset="sst2", command="kdzoo bench sst2-transfer --seeds 0 1")


def test_goals_and_table():
    checked = goals(summarize(_per_seed()))
    assert checked["teacher"] == pytest.approx(0.86) and checked["teacher_met"]
    assert checked["gap_points"] == pytest.approx(2.5) and checked["gap_met"]
    text = markdown(_per_seed())
    assert "| distilled (sentence labels + phrases) | 2 | 74,269 | 0.8150 ± 0.0071 |" in text
    # The members are their own rows, not the teacher the goal reads.
    assert "| teacher member (phrase labels) | 2 | 67,349 | 0.8300 ± 0.0141 |" in text
    assert "teacher ≥ 0.85 on Kim test: 0.8600, met." in text
    assert "distilled − scratch ≥ 2 points: +2.5 points, met." in text


def test_the_command_replays_the_config():
    config = Sst2TransferConfig(seeds=(0,), transfer_examples=5000, augment_copies=4, epochs=2)
    assert command(config) == (
        "kdzoo bench sst2-transfer --seeds 0 --transfer-examples 5000 --augment-copies 4 --epochs 2"
    )
    from kdzoo.verify import rerun_command

    assert rerun_command(command(Sst2TransferConfig()), 0) == "kdzoo bench sst2-transfer --seeds 0"


def test_transfer_examples_only_with_the_study(capsys):
    assert cli.main(["bench", "sst2", "--transfer-examples", "10"]) == 2
    assert "--transfer-examples: only with sst2-transfer" in capsys.readouterr().err


@pytest.mark.requires_data("sst2")
def test_the_phrases_file_reads_with_labels_and_names_a_bad_line(tmp_path):
    phrases = read_phrases()
    assert len(phrases["text"]) == 67349 and set(phrases["label"]) == {0, 1}
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "glue_train_phrases.tsv").write_text(
        "sentence\tlabel\na fine film\t1\nan awful one\t2\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"glue_train_phrases.tsv:3: label 2 is not 0 or 1"):
        read_phrases(tmp_path)


@pytest.mark.slow  # about a minute on 2 cores
@pytest.mark.requires_data("sst2")
def test_the_study_runs_end_to_end_at_tiny_size(tmp_path):
    config = Sst2TransferConfig(
        seeds=(0, 1), augment_copies=2, teacher_epochs=1, epochs=1, out_dir=str(tmp_path), tiny=True
    )
    per_seed, _ = run(config)
    assert list(per_seed["model"]) == [
        *["teacher member (phrase labels)"] * 3,
        "teacher (phrase labels)",
        "supervised (phrase labels)",
        *["scratch (sentence labels)", "distilled (sentence labels + phrases)"] * 2,
    ]
    assert list(per_seed["seed"][:3]) == [0, 1, 2]  # each member its own seed
    teacher = per_seed[per_seed["model"] == "teacher (phrase labels)"].iloc[0]
    assert teacher["setting"] == "mean of 3 text_cnn_lstm/teacher"
    examples = per_seed.set_index(["model", "seed"])["train_examples"]
    assert examples[("supervised (phrase labels)", 0)] == 192
    assert examples[("scratch (sentence labels)", 0)] == 96
    # The candidates also read the phrases and up to 2 augmented copies of each sentence.
    distilled = examples[("distilled (sentence labels + phrases)", 0)]
    assert 96 + 192 + 96 < distilled <= 96 + 192 + 2 * 96
    assert per_seed["test_accuracy"].between(0, 1).all()
    assert not per_seed.duplicated(["dataset", "seed", "model"]).any()
    assert (tmp_path / "sst2-transfer.md").read_text().startswith("# SST-2 with a teacher")
    assert (tmp_path / "sst2-transfer.png").stat().st_size > 0  # the study draws its figure
