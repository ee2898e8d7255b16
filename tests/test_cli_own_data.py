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


def _customers_csv(tmp_path, n=120):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 70, n),
            "spend": rng.normal(100, 30, n).round(2),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "seats": rng.integers(1, 4, n),
        }
    )
    score = (frame["spend"] - 100) / 30 + (frame["plan"] == "pro") - 0.3 * frame["seats"]
    frame["churn"] = np.where(score > -0.5, "stays", "leaves")
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_distil_runs_a_tabular_csv_and_its_export_serves_named_columns(tmp_path, capsys):
    from helpers import serve

    from kdzoo.data import tabular_features
    from kdzoo.datasets import from_csv
    from kdzoo.serving import check_export, read_metadata

    path = _customers_csv(tmp_path)
    columns = ["--numeric", "age", "spend", "--categorical", "plan", "seats"]
    argv = ["distil", "--data", str(path), "--label", "churn", *columns, "--test-fraction", "0.2"]
    argv += ["--pair", "tabular_mlp", "--teacher-epochs", "2", *TINY]
    argv += ["--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "exports")]
    argv += ["--export-name", "churn"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "student: tabular_mlp_student" in out and "recipe - tuned scratch accuracy" in out
    export = tmp_path / "exports" / "churn" / "1"
    inputs = read_metadata(export)["signatures"]["serving_default"]["inputs"]
    assert {k: v["dtype"] for k, v in inputs.items()} == {
        "age": "float64", "spend": "float64", "plan": "string", "seats": "string"
    }  # fmt: skip
    report = check_export(export)
    assert report.passed, report.format()
    # Named raw columns give what the student gives on the features training computes.
    data = from_csv(path, label="churn", numeric=["age", "spend"],
                    categorical=["plan", "seats"], test_fraction=0.2)  # fmt: skip
    frame = pd.read_csv(path).iloc[:5]
    served = serve(
        export,
        age=frame["age"].to_numpy("float64"),
        spend=frame["spend"].to_numpy("float64"),
        plan=frame["plan"].to_numpy(object).astype(bytes),
        seats=frame["seats"].astype(str).to_numpy(object).astype(bytes),
    )
    raw, _ = data.tabular_config.encode(
        {c: frame[c] for c in ("age", "spend")}, {c: frame[c] for c in ("plan", "seats")}
    )
    features = tabular_features(raw, data.tabular_config).numpy()
    preprocessed = serve(export, "serving_preprocessed", tabular=features)
    np.testing.assert_allclose(served["probabilities"], preprocessed["probabilities"], atol=1e-6)


@pytest.mark.slow
def test_distil_runs_a_regression_csv_and_its_export_serves_values(tmp_path, capsys):
    from helpers import serve

    from kdzoo.serving import read_metadata

    path = _customers_csv(tmp_path)
    unlabelled = pd.read_csv(path)
    unlabelled.loc[:19, "spend"] = None  # 20 customers without a target: a transfer set
    unlabelled.to_csv(path, index=False)
    columns = ["--numeric", "age", "seats", "--categorical", "plan", "--unlabelled"]
    argv = ["distil", "--data", str(path), "--label", "spend", "--task", "regression", *columns]
    argv += ["--test-fraction", "0.2", "--teacher-epochs", "2"]  # tabular: tabular_mlp
    argv += ["--global-batch-size", "16", "--epochs", "1", "--strategy", "default", "--quiet"]
    argv += ["--candidate", "label:0.5,teacher_huber:0.5", "--scratch", "scratch"]
    argv += ["--export-dir", str(tmp_path / "exports")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "recipe - tuned scratch mse: " in out and "validation mse" in out
    assert "teacher: tabular_mlp_teacher, trained here; student: tabular_mlp_student" in out
    export = tmp_path / "exports" / "customers_student" / "1"  # named after the file
    metadata = read_metadata(export)
    assert metadata["task"]["kind"] == "regression" and metadata["task"]["names"] == ["spend"]
    assert {"test_mse", "test_mae", "test_r2"} <= set(metadata["metrics"])
    frame = pd.read_csv(path).iloc[:4]
    served = serve(
        export,
        age=frame["age"].to_numpy("float64"),
        seats=frame["seats"].to_numpy("float64"),
        plan=frame["plan"].to_numpy(object).astype(bytes),
    )
    assert served["values"].shape == (4, 1)
    # In the target's units (mean 100, std 30), not the standardised ones.
    assert 20 < float(np.mean(served["values"])) < 180


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--task", "regression"], "argument --task: only with --data"),
        (
            ["--data", "{csv}", "--label", "intent", "text", "--text", "text"],
            "several columns are a multi_label or regression task's",
        ),
        (
            ["--data", "{csv}", "--label", "intent", "--text", "text", "--label-separator", ";"],
            "argument --label-separator: only with --task multi_label",
        ),
        (["--data", "{folder}", "--task", "regression"], "a regression task reads its labels"),
        (
            [
                "--data",
                "{csv}",
                "--label",
                "intent",
                "--text",
                "text",
                "--task",
                "multi_label",
                "--unlabelled",
            ],
            "a multi_label task needs one 0/1 --label column per label",
        ),  # fmt: skip
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
        (["--numeric", "age"], "argument --numeric: only with --data"),
        (
            ["--data", "{csv}", "--label", "intent", "--text", "text", "--categorical", "intent"],
            "argument --categorical: intent is the --label column",
        ),
        (
            ["--data", "{csv}", "--label", "intent", "--numeric", "income"],
            "no column for --numeric income",
        ),
        (["--data", "{folder}", "--unlabelled"], "every file has a label"),
        (["--skip-bad"], "argument --skip-bad: only with --data"),
        (["--sequence-length", "128"], "argument --sequence-length: only with --data"),
        (
            ["--data", "{csv}", "--label", "intent", "--text", "text", "--sample-rate", "8000"],
            "argument --sample-rate: {csv} has text; --sample-rate is for audio",
        ),
        (
            ["--data", "{csv}", "--label", "intent", "--text", "text", "--image-size", "8", "8"],
            "has text; --image-size is for images (--image COLUMN, or a folder of images)",
        ),
        (
            ["--data", "{csv}", "--label", "intent", "--text", "text", "--test-fraction", "0.9"],
            "argument --test-fraction: 0.9 leaves no training examples",
        ),
    ],
)
def test_data_flags_are_checked_before_anything_loads(tmp_path, capsys, extra, message):
    csv = _csv(tmp_path)
    (tmp_path / "folder").mkdir()
    extra = [e.format(csv=csv, folder=tmp_path / "folder") for e in extra]
    assert cli.main(["distil", *extra, *TINY]) == 2
    assert message.format(csv=csv) in capsys.readouterr().err


def test_an_unservable_column_is_refused_before_training_when_exporting(tmp_path, capsys):
    path = tmp_path / "spend.csv"
    pd.DataFrame({"monthly spend": [1.0, 2.0], "y": ["a", "b"]}).to_csv(path, index=False)
    flags = ["distil", "--data", str(path), "--label", "y", "--numeric", "monthly spend"]
    export = ["--export-dir", str(tmp_path / "exports")]
    assert cli.main([*flags, *export, *TINY]) == 2
    err = capsys.readouterr().err
    assert f"--export-dir: {path}: column(s) 'monthly spend' cannot name a serving" in err
    assert "('monthly spend' -> 'monthly_spend') in the file, or leave out --export-dir" in err
    assert not (tmp_path / "exports").exists()


def test_distil_says_when_nothing_will_be_saved(tmp_path, capsys, monkeypatch):
    import kdzoo.recipe

    class Stop(Exception):
        pass

    def distil(config):
        raise Stop  # the note comes before any training

    monkeypatch.setattr(kdzoo.recipe, "distil", distil)
    flags = ["distil", "--data", str(_csv(tmp_path)), "--label", "intent", "--text", "text"]
    with pytest.raises(Stop):
        cli.main([*flags, *TINY])
    assert "nothing is saved" in capsys.readouterr().err
    with pytest.raises(Stop):  # a backup is emptied when the run ends: nothing kept
        cli.main([*flags, *TINY, "--backup-dir", str(tmp_path / "backup")])
    assert "nothing is saved" in capsys.readouterr().err
    with pytest.raises(Stop):
        cli.main([*flags, *TINY, "--run-dir", str(tmp_path / "run")])
    assert "nothing is saved" not in capsys.readouterr().err


def test_a_bad_row_points_to_skip_bad_and_skip_bad_skips_it(tmp_path, capsys):
    path = _csv(tmp_path)
    frame = pd.read_csv(path).assign(count=1.0).astype({"count": object})
    frame.loc[3, "count"] = "forty"
    frame.to_csv(path, index=False)
    flags = ["distil", "--data", str(path), "--label", "intent", "--numeric", "count"]
    assert cli.main([*flags, *TINY, "--teacher-epochs", "0"]) == 1
    err = capsys.readouterr().err
    assert "line 5, column 'count': 'forty' is not a number" in err
    assert "(pass --skip-bad to skip and count such examples)" in err


def test_a_folder_of_one_class_is_refused_before_anything_loads(tmp_path, capsys):
    folder = tmp_path / "photos" / "cat"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"")  # never read: refused from the names alone
    (folder / "notes.txt").write_text("")  # skipped: logged once, when it loads
    assert cli.main(["distil", "--data", str(tmp_path / "photos"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "photos has only 'cat' in its class folders; a classifier needs two classes" in err


def test_data_smaller_than_one_batch_is_one_line_naming_the_flag(tmp_path, capsys):
    flags = ["distil", "--data", str(_csv(tmp_path, n=30)), "--label", "intent", "--text", "text"]
    assert cli.main([*flags, *TINY, "--global-batch-size", "64"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "kdzoo distil: error: intents has 27 training examples, fewer than one global batch "
        "(--global-batch-size 64); give --global-batch-size 16 or less."
    )


def test_library_messages_are_spelled_as_the_commands_flags():
    message = "DistilConfig.train_examples=500, but; skip_bad=True; pair=NAME; other_thing=1"
    assert cli._as_flags(message) == (
        "--train-examples 500, but; --skip-bad; --pair NAME; other_thing=1"
    )
    # A field without a flag of its name stays as the library spells it.
    assert cli._as_flags("plateau_factor=0.5, candidates=x") == "plateau_factor=0.5, candidates=x"


def _wav_folder(tmp_path, rate, seconds=(0.05, 0.1)):
    """Two class folders of two short tones each, at ``rate`` Hz."""
    import wave

    for label, pitch in (("high", 900.0), ("low", 200.0)):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for i, length in enumerate(seconds):
            t = np.arange(int(rate * length)) / rate
            samples = (np.sin(2 * np.pi * pitch * t) * 20000).astype("<i2")
            with wave.open(str(tmp_path / "clips" / label / f"{i}.wav"), "wb") as f:
                f.setnchannels(1)
                f.setsampwidth(2)
                f.setframerate(rate)
                f.writeframes(samples.tobytes())
    return tmp_path / "clips"


def test_loader_options_are_flags_and_the_loaders_advice_names_them(tmp_path, capsys):
    folder = _wav_folder(tmp_path, 8000)
    assert cli.main(["distil", "--data", str(folder), *TINY]) == 1
    err = capsys.readouterr().err
    assert "is 8000 Hz; the dataset's sample_rate is 16000" in err
    assert "(resample the files, or pass --sample-rate 8000)" in err
    args = cli.build_parser().parse_args(
        ["distil", "--data", str(folder), "--sample-rate", "8000", "--clip-seconds", "0.08"]
    )
    loaded = cli._own_data(args)()
    assert loaded.arrays["train"]["audio"].shape[1] == 640  # 0.08 s at 8 kHz: cropped, padded
    assert loaded.audio_config.sample_rate == 8000
    args.clip_seconds = 1e-5
    with pytest.raises(cli.UsageError, match="1e-05 s is less than one sample at 8000 Hz"):
        cli._own_data(args)


def test_text_options_reach_the_vectorizer(tmp_path):
    flags = ["distil", "--data", str(_csv(tmp_path)), "--label", "intent", "--text", "text"]
    args = cli.build_parser().parse_args([*flags, "--sequence-length", "5", "--max-tokens", "6"])
    loaded = cli._own_data(args)()
    assert loaded.text_vectorizer.sequence_length == 5
    assert loaded.text_vectorizer.vocab_size == 7  # 6 entries, [PAD] included; OOV on top


def test_the_clis_sample_rate_is_the_loaders_default():
    import inspect

    from kdzoo.datasets import frames

    default = inspect.signature(frames.from_dataframe).parameters["sample_rate"].default
    assert cli._SAMPLE_RATE == default


def test_library_messages_are_spelled_as_an_experiment_files_keys():
    message = "pass sample_rate=8000; pass skip_bad=True; DistilConfig.train_examples=5; x=1"
    assert cli._as_keys(message) == (
        "set data.sample_rate: 8000; set data.skip_bad: true; train_examples: 5; x=1"
    )
    assert (
        cli._as_flags("(pass image_size=(H, W) to resize)") == "(pass --image-size H W to resize)"
    )


def test_a_missing_teacher_or_unknown_student_is_named(tmp_path, capsys):
    assert cli.main(["distil", "--teacher", str(tmp_path / "t.keras"), *TINY]) != 0
    assert "t.keras: no such file or folder" in capsys.readouterr().err
    assert cli.main(["distil", "--student", "nope/student", *TINY]) != 0
    assert "Unknown model 'nope'" in capsys.readouterr().err


def test_data_of_one_modality_picks_its_family(tmp_path):
    import argparse

    def args(**given):
        flags = ("pair", "teacher", "student", "data", "text", "image", "audio", "id", "split")
        return argparse.Namespace(**{**dict.fromkeys(flags), "numeric": None,
                                     "categorical": None, **given})  # fmt: skip

    assert cli._pair_for_data(args(data="f.csv", numeric=["a"])) == "tabular_mlp"
    assert cli._pair_for_data(args(data="f.csv", text="t", id="i")) == "text_lstm"
    assert cli._pair_for_data(args(data="f.csv", numeric=["a"], pair="p")) == "p"
    assert cli._pair_for_data(args(data="f.csv", image="i", audio="a")) is None  # av_to_audio
    assert cli._pair_for_data(args(data="f.csv", text="t", student="text_lstm/student")) == (
        "text_lstm"  # the teacher side still comes from the pair
    )
    both = {"teacher": "t.keras", "student": "text_lstm/student"}
    assert cli._pair_for_data(args(data="f.csv", text="t", **both)) is None
    folder = tmp_path / "digits" / "three"
    folder.mkdir(parents=True)
    assert cli._pair_for_data(args(data=str(tmp_path / "digits"))) is None  # nothing in it
    (folder / "a.WAV").write_bytes(b"")
    assert cli._pair_for_data(args(data=str(tmp_path / "digits"))) == "audio_crnn"
    with pytest.raises(cli.UsageError, match="--data gives tabular and text; name the models"):
        cli._pair_for_data(args(data="f.csv", text="t", categorical=["c"]))


def test_files_and_folders_are_named_as_python_identifiers(tmp_path):
    from kdzoo.datasets.frames import default_name

    assert default_name("a/customers.csv") == "customers"
    assert default_name("my-data.csv") == "my_data"
    assert default_name("2024.parquet") == "data_2024"
    (tmp_path / "photos.v2").mkdir()
    assert default_name(tmp_path / "photos.v2") == "photos_v2"
