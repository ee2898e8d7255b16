"""``kdzoo distil`` on your own data and teacher: ``--data`` with column flags, ``--teacher``,
``--student``, every flag checked before anything trains."""

import numpy as np
import pandas as pd
import pytest

from kdzoo import cli, models

INTENTS = {"billing": "invoice charge refund", "travel": "flight hotel trip", "other": "hello hi"}


def _csv(tmp_path, n=90, unlabelled=0):
    rng = np.random.default_rng(0)
    labels = rng.choice(sorted(INTENTS), n)
    frame = pd.DataFrame(
        {
            "text": [f"please {INTENTS[c]} {rng.integers(100)}" for c in labels],
            "intent": labels,
        }
    )
    frame.loc[frame.index[:unlabelled], "intent"] = None  # empty cells in the file
    path = tmp_path / "intents.csv"
    frame.to_csv(path, index=False)
    return path


TINY = [
    "--global-batch-size", "16", "--epochs", "1", "--candidate", "ce:0.5,kd:0.5@t=2",
    "--scratch", "scratch", "--strategy", "default", "--quiet",
]  # fmt: skip


@pytest.mark.slow
def test_distil_runs_a_text_csv_with_a_keras_teacher_file(tmp_path, capsys):
    path = _csv(tmp_path, unlabelled=30)
    # A teacher trained elsewhere: here an untrained zoo model of the right shape.
    from kdzoo.datasets import from_csv

    loaded = from_csv(path, label="intent", text="text", unlabelled=True)
    vocab = loaded.text_vectorizer.vocab_size
    teacher = models.build("text_cnn_lstm", "teacher", 3, sequence_length=64, vocab_size=vocab)
    teacher.save(tmp_path / "teacher.keras")
    argv = ["distil", "--data", str(path), "--label", "intent", "--text", "text", "--unlabelled"]
    argv += ["--test-fraction", "0.2", "--teacher", str(tmp_path / "teacher.keras")]
    argv += ["--student", "text_lstm/student", "--teacher-epochs", "0", *TINY]
    argv += ["--run-dir", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "teacher: text_cnn_lstm_teacher, given" in out and "not trained" in out
    assert "student: text_lstm_student" in out and "recipe - tuned scratch accuracy" in out
    # The 30 rows with an empty label were distilled on, never trained on by scratch.
    candidates = pd.read_csv(next(tmp_path.rglob("candidates.csv")))
    examples = candidates.set_index("candidate")["train_examples"]
    assert examples["ce:0.5,kd:0.5@t=2"] == examples["scratch"] + 30


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--label", "intent"], "argument --label: only with --data"),
        (["--data", "nowhere.csv", "--label", "y", "--text", "t"], "no such file or folder"),
        (["--data", "{csv}", "--text", "text"], "argument --label: the label column"),
        (["--data", "{csv}", "--label", "intent"], "name at least one input column"),
        (
            ["--data", "{csv}", "--label", "intent", "--text", "utterance"],
            "no column for --text utterance",
        ),
        (
            ["--data", "{csv}", "--dataset", "sst2", "--label", "intent", "--text", "text"],
            "not with --dataset",
        ),
        (["--data", "{folder}", "--label", "intent"], "takes no column flags"),
        (["--unlabelled"], "argument --unlabelled: only with --data"),
        (["--data", "{folder}", "--unlabelled"], "every file has a label"),
    ],
)
def test_data_flags_are_checked_before_anything_loads(tmp_path, capsys, extra, message):
    csv = _csv(tmp_path)
    (tmp_path / "folder").mkdir()
    extra = [e.format(csv=csv, folder=tmp_path / "folder") for e in extra]
    assert cli.main(["distil", *extra, *TINY]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_teacher_or_unknown_student_is_named(tmp_path, capsys):
    assert cli.main(["distil", "--teacher", str(tmp_path / "t.keras"), *TINY]) != 0
    assert "t.keras: no such file or folder" in capsys.readouterr().err
    assert cli.main(["distil", "--student", "nope/student", *TINY]) != 0
    assert "Unknown model 'nope'" in capsys.readouterr().err
