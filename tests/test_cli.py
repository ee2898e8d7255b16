import pytest
from helpers import run_python

from kdzoo.cli import build_parser, main


def _run(*args):
    return run_python(["-m", "kdzoo.cli", *args])


def test_help_lists_subcommands():
    proc = _run("--help")
    assert proc.returncode == 0
    assert "list" in proc.stdout and "demo" in proc.stdout


def test_list_prints_every_family_with_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("image_cnn", "audio_crnn", "text_lstm", "multimodal_concat", "av_to_audio"):
        assert name in out
    assert "teacher_params" in out and "student_params" in out


def test_version_is_the_installed_packages(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"kdzoo {version('kdzoo')}"


def test_unknown_command_fails_cleanly():
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(["frobnicate"])
    assert err.value.code == 2


def test_help_lists_the_serving_commands():
    proc = _run("--help")
    assert "export" in proc.stdout and "check-export" in proc.stdout
    args = build_parser().parse_args(["export", "bundle", "--portable", "--version", "3"])
    assert (args.model, args.portable, args.version, args.base_dir) == (
        "bundle",
        True,
        3,
        "saved_models",
    )


def test_export_without_a_model_or_preprocessing_fails_with_a_clear_message(tmp_path):
    with pytest.raises(SystemExit, match="No student model"):
        main(["export", str(tmp_path / "missing")])
    from kdzoo import models

    models.build("audio_crnn").save(tmp_path / "student.keras")
    with pytest.raises(SystemExit, match="give --preprocessing FILE or --dataset NAME"):
        main(["export", str(tmp_path / "student.keras"), "--base-dir", str(tmp_path)])
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(SystemExit) as exit:
        main(["export", "x.keras", "--preprocessing", str(tmp_path / "p.json"), "--dataset", "x"])
    assert exit.value.code == 2


def test_export_and_check_export_refuse_bad_input_in_one_line(tmp_path, capsys):
    export = ["export", str(tmp_path / "student.keras")]
    for flags, message in (
        (["--name", "a/b"], "argument --name: 'a/b' is not a plain folder name"),
        (["--base-dir", "gs://bucket/models"], "argument --base-dir: gs://bucket/models is a URL"),
        (["--dataset", "nosuch"], "argument --dataset: unknown dataset 'nosuch'"),
    ):
        assert main([*export, *flags]) == 2
        assert message in capsys.readouterr().err
    preprocessing = tmp_path / "p.json"
    for text, message in (
        ("[1]", "not a preprocessing config (a JSON object"),
        ("{}", "not a preprocessing config"),
        ('{"preprocessing": {"modalities": 3}}', "not a preprocessing config ("),
    ):  # (a file that is not JSON is refused by the flag's type)
        preprocessing.write_text(text)
        with pytest.raises(SystemExit) as refused:
            main([*export, "--preprocessing", str(preprocessing)])
        assert message in str(refused.value)
    from kdzoo.serving import load_student

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "student.keras").write_bytes(b"")
    (bundle / "serving.json").write_text("[]")
    with pytest.raises(ValueError, match=r"bundle/serving.json: a list, not a JSON object"):
        load_student(bundle)
    (bundle / "serving.json").write_text("{")
    with pytest.raises(ValueError, match=r"bundle/serving.json: not JSON"):
        load_student(bundle)
    version = tmp_path / "model" / "007"  # TF Serving reads it as version 7
    version.mkdir(parents=True)
    (tmp_path / "model" / "3").mkdir()
    from kdzoo.cli import _latest_version

    assert _latest_version(tmp_path / "model") == version
    with pytest.raises(SystemExit, match=r"kdzoo check-export: error: .*kdzoo_export.json"):
        main(["check-export", str(tmp_path / "model")])  # no kdzoo export: one line


def test_exports_and_reports_refuse_urls_they_would_write_as_local_folders():
    from kdzoo.recipe.report import claim_run_dir
    from kdzoo.serving.export import _write_version

    with pytest.raises(ValueError, match="gs://b/models is a URL"):
        _write_version("gs://b/models", "m", None, write=None)
    with pytest.raises(ValueError, match="run_dir gs://b/run is a URL"):
        claim_run_dir("gs://b/run")


@pytest.mark.slow
@pytest.mark.requires_data("fsdd", "mnist")
def test_export_and_check_export_on_the_av_digits_audio_student(tmp_path, capsys):
    """Acceptance: an AV-digits audio student (1 epoch on a subset) exported from its
    .keras file with the dataset's preprocessing, then checked: waveform in, probabilities
    out, loaded by a tensorflow-only process and by saved_model_cli."""
    import keras

    from kdzoo import datasets, models
    from kdzoo.data import from_arrays

    data = datasets.load("av_digits", modalities=("audio",), batch_size=64)
    student = models.build("audio_crnn", "student", audio_shape=data.audio_config.feature_shape)
    subset = {k: v[:256] for k, v in data.arrays["train"].items()}
    student.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    student.fit(
        from_arrays(subset, ("audio",), training=True, audio_config=data.audio_config),
        epochs=1,
        verbose=0,
    )
    student.save(tmp_path / "student.keras")
    capsys.readouterr()
    code = main(
        [
            "export",
            str(tmp_path / "student.keras"),
            "--dataset",
            "av_digits",
            "--name",
            "av_digits_audio_student",
            "--base-dir",
            str(tmp_path),
            "--teacher-name",
            "multimodal_concat_teacher",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "serving_default: audio float32 [-1, -1] -> probabilities float32 [-1, 10]" in out
    assert "ops outside core TensorFlow: none" in out
    from kdzoo.serving import read_metadata

    meta = read_metadata(tmp_path / "av_digits_audio_student" / "1")
    assert meta["preprocessing"]["audio"]["mel_mean"] == list(data.audio_config.mel_mean)
    assert meta["teacher"] == "multimodal_concat_teacher" and "test_accuracy" in meta["metrics"]
    assert meta["warmup"]["inputs"] == "given"
    code = main(["check-export", str(tmp_path / "av_digits_audio_student")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "all checks passed" in out and "imports tensorflow only" in out


class _Called(Exception):
    """Raised by a stand-in for a library entry point: parsing ended there, nothing trained."""


def _stand_in(monkeypatch, owner, name, result=None):
    """Replaces ``owner.name`` with a function that records its arguments and returns
    ``result`` (raises ``_Called`` if None); returns the list of recorded calls."""
    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        if result is None:
            raise _Called
        return result

    monkeypatch.setattr(owner, name, fake)
    return calls


def test_distil_flags_reach_the_config_unset_ones_keep_its_defaults(monkeypatch):
    import kdzoo.recipe
    from kdzoo.recipe import DistilConfig

    calls = _stand_in(monkeypatch, kdzoo.recipe, "distil")
    with pytest.raises(_Called):
        main(["distil"])
    assert calls[-1] == (DistilConfig(),)
    argv = ["distil", "--candidate", "ce:0.5,kd_std:0.5@t=2", "--candidate", "dkd@t=4,lr=0.001"]
    argv += ["--scratch", "scratch", "--scratch", "scratch@ls=0.1", "--patience", "3"]
    argv += ["--teacher-epochs", "0", "--epochs", "7", "--learning-rate", "0.01"]
    argv += ["--run-dir", "runs/x", "--tensorboard", "--jit-compile", "false", "--quiet"]
    argv += ["--portable"]
    with pytest.raises(_Called):
        main(argv)
    (config,) = calls[-1]
    assert config.portable is True
    assert config.candidates == ("ce:0.5,kd_std:0.5@t=2", "dkd@t=4,lr=0.001")
    assert config.scratch == ("scratch", "scratch@ls=0.1")
    assert (config.patience, config.teacher_epochs, config.epochs) == (3, 0, 7)
    assert (config.learning_rate, config.run_dir, config.tensorboard) == (0.01, "runs/x", True)
    assert (config.jit_compile, config.verbose) == (False, 2)


def test_demo_flags_reach_the_config_unset_ones_keep_its_defaults(monkeypatch, tmp_path):
    import kdzoo.demo
    from kdzoo.demo import DemoConfig

    monkeypatch.chdir(tmp_path)  # the default export and run folders are relative
    calls = _stand_in(monkeypatch, kdzoo.demo, "run_demo")
    with pytest.raises(_Called):
        main(["demo"])
    assert calls[-1] == (DemoConfig(),)
    argv = ["demo", "--candidate", "ce:0.5,kd:0.5@t=4", "--candidate", "nkd@t=2"]
    argv += ["--run-dir", "r", "--teacher-epochs", "2", "--epochs", "3", "--seed", "5"]
    argv += ["--no-export", "--quiet"]
    with pytest.raises(_Called):
        main(argv)
    (config,) = calls[-1]
    assert config.candidates == ("ce:0.5,kd:0.5@t=4", "nkd@t=2")
    assert (config.run_dir, config.teacher_epochs, config.epochs, config.seed) == ("r", 2, 3, 5)
    assert (config.export_dir, config.verbose) == (None, 2)
    assert not (tmp_path / "r").exists() and not (tmp_path / "saved_models").exists()


def test_bench_flags_reach_the_study_config(monkeypatch):
    import dataclasses

    import kdzoo.studies
    from kdzoo.studies import StudyConfig

    calls = _stand_in(monkeypatch, kdzoo.studies, "run_study")
    with pytest.raises(_Called):
        main(["bench", "sst2"])
    assert calls[-1] == ("sst2", dataclasses.replace(StudyConfig(), verbose=2))
    argv = ["bench", "default-recipe", "--datasets", "sst2", "mnist", "--seeds", "3", "4"]
    argv += ["--teacher-epochs", "2", "--epochs", "3", "--out-dir", "o", "--no-keras-peer"]
    argv += ["--tiny", "--quiet"]
    with pytest.raises(_Called):
        main(argv)
    name, config = calls[-1]
    assert name == "default-recipe"
    assert (config.datasets, config.seeds) == (("sst2", "mnist"), (3, 4))
    assert (config.teacher_epochs, config.epochs, config.out_dir) == (2, 3, "o")
    assert (config.keras_peer, config.tiny, config.verbose) == (False, True, 0)
    # --datasets picks among default-recipe's studies; it means nothing to one study.
    assert main(["bench", "sst2", "--datasets", "mnist"]) == 2
    assert len(calls) == 2


def test_distil_prints_the_recipes_choice_and_gain(monkeypatch, capsys):
    import types

    import pandas as pd

    import kdzoo.recipe
    from kdzoo.recipe import Candidate, Selection

    chosen = Candidate.parse("ce:0.5,kd:0.5@t=4")
    recipe = types.SimpleNamespace(
        evaluated_on="test",
        table=pd.DataFrame(
            {
                "model": ["teacher", "student (scratch, tuned)", "student (recipe)"],
                "accuracy": [0.9, 0.7, 0.72],
                "validation_accuracy": [0.91, 0.69, 0.74],
                "setting": ["", "scratch (ls=0.1)", chosen.describe()],
            }
        ),
        candidates=pd.DataFrame(
            {
                "setting": ["scratch (ls=0.1)", chosen.describe()],
                "validation_accuracy": [0.69, 0.74],
                "test_accuracy": [0.7, 0.72],
                "epochs": [12, 15],
                "seconds": [30.0, 41.0],
                "chosen": [False, True],
            }
        ),
        chosen=chosen,
        gain=0.02,
        validation_gain=0.05,
        metric="accuracy",
        report_dir="runs/x",
        selection=Selection("scratch (ls=0.1)", chosen.describe(), 0.05, 0.02, 1.0, True),
    )
    result = types.SimpleNamespace(
        is_chief=True,
        strategy="default (one device)",
        recipe=recipe,
        export_path="e/1",
        teacher=types.SimpleNamespace(name="multimodal_concat_teacher"),
        student=types.SimpleNamespace(name="audio_crnn_student"),
        global_batch_size=32,
    )
    _stand_in(monkeypatch, kdzoo.recipe, "distil", result)
    assert main(["distil", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "strategy: default (one device)" in out
    assert "global batch: 32 (auto: sized for the training examples)" in out
    assert "teacher: multimodal_concat_teacher, trained here; student: audio_crnn_student" in out
    assert "(chosen on validation; test shown, never used to choose)" in out
    chosen_line = [line for line in out.splitlines() if "<- chosen" in line]
    assert len(chosen_line) == 1 and "ce:0.5,kd:0.5 (τ=4)" in chosen_line[0]
    assert "chosen: ce:0.5,kd:0.5 (τ=4)" in out
    assert "recipe - tuned scratch accuracy: +0.020 (test), +0.050 (validation)" in out
    assert (
        "why: ce:0.5,kd:0.5 (τ=4) vs scratch (ls=0.1) on validation: +5.00 points, 1 SE 2.00: "
        "distilled chosen (the rule: > 1 SE)"
    ) in out
    assert "report (tables, learning curves, confusion matrices): runs/x" in out
    assert "the recipe's student exported to e/1" in out
    # Without a test split the numbers are the validation ones, and the output says so.
    recipe.evaluated_on = "validation"
    recipe.gain = recipe.validation_gain
    recipe.candidates["test_accuracy"] = float("nan")
    assert main(["distil", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "the data has no test split" in out and "--test-fraction" in out
    assert "test" not in out.split("Every student tried")[1].splitlines()[1]  # the header
    assert "recipe - tuned scratch accuracy: +0.050 (validation)\n" in out


@pytest.mark.slow
def test_distil_command_runs_the_recipe_on_candidates_named_on_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(
        [
            "distil",
            "--num-examples",
            "200",
            "--teacher-epochs",
            "1",
            "--epochs",
            "1",
            "--candidate",
            "ce:0.5,kd_std:0.5,nkd:0.1@t=2",
            "--scratch",
            "scratch",
            "--strategy",
            "default",
            "--run-dir",
            str(run),
            "--tensorboard",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "strategy: " in out
    assert "kd_std_loss" in out and "nkd_loss" in out  # the named terms trained
    for row in ("teacher", "student (scratch, tuned)", "student (recipe)"):
        assert row in out
    assert "ce:0.5,kd_std:0.5,nkd:0.1 (τ=2)" in out  # the candidate tried
    chosen = [line for line in out.splitlines() if line.startswith("chosen: ")]
    assert chosen in (["chosen: scratch"], ["chosen: ce:0.5,kd_std:0.5,nkd:0.1 (τ=2)"])
    assert "recipe - tuned scratch accuracy: " in out
    assert f"report (tables, learning curves, confusion matrices): {run}" in out
    for name in ("summary.csv", "candidates.csv", "report.md", "report.png"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("events.out.tfevents.*"))


def test_named_terms_are_validated():
    import pytest

    from kdzoo.recipe import parse_terms

    terms = parse_terms(["ce:0.25", "dkd"], temperature=3.0)
    assert [(t.name, t.weight, t.target) for t in terms] == [
        ("ce", 0.25, "labels"),
        ("dkd", 1.0, "teacher"),
    ]
    assert terms[1].loss.temperature == 3.0
    with pytest.raises(ValueError, match="Valid names"):
        parse_terms(["kdd"])
    with pytest.raises(ValueError, match="compares features"):
        parse_terms(["at:1"])
    with pytest.raises(ValueError, match="not a number"):
        parse_terms(["kd:x"])


def test_bench_fusion_strong_teacher_reaches_its_study(monkeypatch):
    import kdzoo.fusion_strong_teacher
    from kdzoo.fusion_strong_teacher import FusionTeacherConfig

    calls = _stand_in(monkeypatch, kdzoo.fusion_strong_teacher, "run")
    with pytest.raises(_Called):
        main(["bench", "fusion-strong-teacher", "--seeds", "4", "--epochs", "3", "--quiet"])
    (config,) = calls[-1]
    assert config == FusionTeacherConfig(seeds=(4,), epochs=3, verbose=0)
    # One dataset, no keras.distillation timing: those flags are refused before anything runs.
    assert main(["bench", "fusion-strong-teacher", "--datasets", "mnist"]) == 2
    assert main(["bench", "fusion-strong-teacher", "--no-keras-peer"]) == 2
    assert len(calls) == 1


def test_bench_tabular_views_reaches_its_study(monkeypatch):
    import kdzoo.tabular_views
    from kdzoo.tabular_views import TabularViewsConfig

    calls = _stand_in(monkeypatch, kdzoo.tabular_views, "run")
    with pytest.raises(_Called):
        main(["bench", "tabular-views", "--datasets", "hog", "--seeds", "2", "--quiet"])
    (config,) = calls[-1]
    assert config == TabularViewsConfig(student_views=("hog",), seeds=(2,), verbose=0)
    assert main(["bench", "tabular-views", "--datasets", "mnist"]) == 2
    assert main(["bench", "tabular-views", "--no-keras-peer"]) == 2
    assert len(calls) == 1


def test_bench_function_matching_reaches_its_study(monkeypatch):
    import kdzoo.function_matching
    from kdzoo.function_matching import FunctionMatchingConfig

    calls = _stand_in(monkeypatch, kdzoo.function_matching, "run")
    with pytest.raises(_Called):
        main(["bench", "function-matching", "--datasets", "fsdd-lowpass-50", "--quiet"])
    (config,) = calls[-1]
    assert config == FunctionMatchingConfig(pairings=("fsdd-lowpass-50",), verbose=0)
    # A privileged pairing with all its labels is not one of this study's.
    assert main(["bench", "function-matching", "--datasets", "fsdd-lowpass"]) == 2
    assert main(["bench", "function-matching", "--no-keras-peer"]) == 2
    assert len(calls) == 1


def test_the_cli_drops_only_tensorflows_retracing_warning(caplog):
    import logging

    from kdzoo import cli as _cli

    _cli._quiet_tensorflow()
    _cli._quiet_tensorflow()  # once is enough: the filter is not added twice
    logger = logging.getLogger("tensorflow")
    assert logger.filters.count(_cli._retracing_filter) == 1
    with caplog.at_level("WARNING", logger="tensorflow"):
        logger.warning("5 out of the last 7 calls to <f> triggered tf.function retracing.")
        logger.warning("Something else went wrong.")
    assert caplog.messages == ["Something else went wrong."]


def test_a_file_given_as_an_output_folder_and_a_wrong_candidate_are_refused_at_once(
    tmp_path, capsys
):
    import pandas as pd

    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    data = tmp_path / "d.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0.5, 1.0, 1.5, 2.0]}).to_csv(data, index=False)
    regression = ["--data", str(data), "--label", "y", "--task", "regression", "--numeric", "x"]
    for argv, message in (  # each before anything trains (it failed after training)
        (["distil", "--export-dir", str(taken)], f"--export-dir: {taken} is a file, not a"),
        (["export", str(tmp_path / "s.keras"), "--base-dir", str(taken)], f"{taken} is a file"),
        (["demo", "--export-dir", str(taken)], f"--export-dir: {taken} is a file, not a folder"),
        (
            ["distil", *regression, "--candidate", "ce:0.5,kd:0.5@t=2"],
            "argument --candidate: 'ce:0.5,kd:0.5@t=2': ce:0.5, kd:0.5 cannot train a "
            "regression student; its terms are label, teacher_mse",
        ),
    ):
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    assert taken.read_text() == "mine"


def test_an_export_that_needs_ops_outside_core_tensorflow_says_so(tmp_path, capsys):
    from kdzoo.cli import _note_custom_ops
    from kdzoo.serving.export import METADATA_FILE

    (tmp_path / METADATA_FILE).write_text('{"requires": ["tensorflow_text"]}')
    _note_custom_ops(tmp_path)
    out = capsys.readouterr().out
    assert "needs tensorflow_text" in out and "stock TF Serving does not have them" in out
    (tmp_path / METADATA_FILE).write_text('{"requires": []}')
    _note_custom_ops(tmp_path)
    assert capsys.readouterr().out == ""


def test_a_bad_file_of_teacher_outputs_is_one_line_before_training(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame(
        {"uid": [f"u{i}" for i in range(n)], "x": rng.normal(size=n), "y": ["a", "b"] * (n // 2)}
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    teacher = pd.DataFrame({"id": frame["uid"][:-3], "logit_0": 1.0, "logit_1": 0.0})
    teacher.to_csv(tmp_path / "T.CSV", index=False)  # 3 ids short; an upper-case extension
    argv = ["distil", "--data", str(tmp_path / "d.csv"), "--label", "y", "--numeric", "x"]
    argv += ["--id", "uid", "--teacher", str(tmp_path / "T.CSV"), "--epochs", "1", "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"kdzoo distil: error: {tmp_path / 'T.CSV'}: no outputs for " in err
