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


@pytest.mark.slow
def test_distil_command_trains_with_loss_terms_named_on_the_command_line(capsys):
    from kdzoo.cli import main

    rc = main(
        [
            "distil",
            "--num-examples",
            "200",
            "--teacher-epochs",
            "1",
            "--epochs",
            "1",
            "--term",
            "ce:0.5",
            "--term",
            "kd_std:0.5",
            "--term",
            "nkd:0.1",
            "--strategy",
            "default",
            "--no-baseline",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "strategy: " in out and "student (distilled)" in out
    assert "kd_std_loss" in out and "nkd_loss" in out  # the named terms trained


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
