"""Smoke run of the demo at tiny size (the full run is `make demo`)."""

import keras
import pytest

from kdzoo.cli import main
from kdzoo.data.audio import AudioConfig
from kdzoo.demo import DemoConfig, run_demo
from kdzoo.recipe import RECIPE, SCRATCH
from kdzoo.serving import read_metadata
from kdzoo.serving.bundle import load_student


@pytest.mark.slow  # 22 s on 2 cores
def test_demo_smoke_at_tiny_size(tmp_path):
    config = DemoConfig(
        num_examples=160,
        labels_per_class=6,  # 60 labelled (12 of them for validation), 68 unlabelled
        teacher_epochs=1,
        epochs=1,
        batch_size=32,
        candidates=("ce:0.5,kd:0.5@t=2",),
        export_dir=str(tmp_path),
        run_dir=str(tmp_path / "run"),
        verbose=0,
    )
    result = run_demo(config)
    table = result.table
    assert list(table.columns) == [
        "model",
        "inputs",
        "params",
        "validation_accuracy",
        "setting",
        "accuracy",
        "macro_f1",
    ]
    assert list(table["model"]) == ["teacher", SCRATCH, RECIPE]
    assert list(table["inputs"]) == ["image+audio", "audio", "audio"]
    params = table.set_index("model")["params"]
    assert params[SCRATCH] == params[RECIPE]
    assert params["teacher"] >= 8 * params[SCRATCH]
    assert len(result.recipe.candidates) == 2  # one scratch try per candidate
    # Scratch trains on the 50 labelled rows left after validation; the candidate on those
    # and the 68 unlabelled ones.
    assert result.recipe.candidates["train_examples"].tolist() == [50, 50 + 68]
    assert (tmp_path / "run" / "report.png").is_file()
    assert table["accuracy"].between(0, 1).all() and table["macro_f1"].between(0, 1).all()
    # The student was exported in the TF Serving layout: raw waveforms in, probabilities out.
    assert result.export_path == str(tmp_path / "demo_audio_student" / "1")
    import tensorflow as tf

    served = tf.saved_model.load(result.export_path)
    waves = tf.zeros((2, AudioConfig.embedded().num_samples))
    out = served.signatures["serving_default"](audio=waves)
    assert tuple(out["probabilities"].shape) == (2, 10)
    assert not any("image" in v.name for v in served.variables)
    meta = read_metadata(result.export_path)
    distilled = table.set_index("model").loc[RECIPE]
    assert meta["teacher"] == "multimodal_concat_teacher"
    assert meta["metrics"]["test_accuracy"] == pytest.approx(distilled["accuracy"])
    assert meta["preprocessing"]["audio"] == AudioConfig.embedded().to_dict()
    assert meta["warmup"]["inputs"] == "given"
    # ... and saved as a bundle that `kdzoo export` reads.
    assert result.student_path == str(tmp_path / "bundles" / "demo_audio_student")
    bundle = load_student(result.student_path)
    assert bundle.preprocessing.audio == AudioConfig.embedded()
    assert bundle.examples["audio"].shape == (4, 4000) and bundle.name == "demo_audio_student"
    # A second export takes the next version instead of overwriting.
    keras.backend.clear_session()
    again = run_demo(config)
    assert again.export_path == str(tmp_path / "demo_audio_student" / "2")


@pytest.mark.slow
def test_demo_command_prints_the_table(tmp_path, capsys):
    code = main(
        [
            "demo",
            "--num-examples",
            "120",
            "--labels-per-class",
            "5",
            "--batch-size",
            "16",
            "--teacher-epochs",
            "1",
            "--epochs",
            "1",
            "--candidate",
            "ce:0.5,kd:0.5@t=2",
            "--run-dir",
            str(tmp_path / "run"),
            "--no-export",
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert RECIPE in out and "macro_f1" in out and "<- chosen" in out
    assert "train 39 labelled + 47 unlabelled (transfer), validation 10, test 24" in out
    assert "recipe - tuned scratch accuracy" in out and "(validation)" in out


@pytest.mark.slow
@pytest.mark.requires_data("fsdd", "mnist")
def test_demo_on_av_digits_smoke():
    config = DemoConfig(
        dataset="av_digits",
        teacher_epochs=1,
        epochs=1,
        batch_size=128,
        candidates=("ce:0.5,kd:0.5@t=2",),
        export_dir=None,
        run_dir=None,
        verbose=0,
    )
    table = run_demo(config).table
    assert list(table["inputs"]) == ["image+audio", "audio", "audio"]
    assert table["accuracy"].between(0, 1).all()


@pytest.mark.slow
def test_kdzoo_export_and_check_export_on_the_demo_student(tmp_path, capsys):
    """Acceptance: the demo's distilled student, re-exported portably from its bundle with
    `kdzoo export`, passes `kdzoo check-export` (fresh tensorflow-only process,
    saved_model_cli show/run, warmup replay, bad inputs)."""
    config = DemoConfig(
        num_examples=160,
        labels_per_class=6,  # 60 labelled (12 of them for validation), 68 unlabelled
        teacher_epochs=1,
        epochs=1,
        batch_size=32,
        candidates=("ce:0.5,kd:0.5@t=2",),
        export_dir=str(tmp_path),
        run_dir=None,
        verbose=0,
    )
    result = run_demo(config)
    capsys.readouterr()
    assert main(["export", result.student_path, "--base-dir", str(tmp_path), "--portable"]) == 0
    out = capsys.readouterr().out
    version = tmp_path / "demo_audio_student" / "2"
    assert f"exported {version} (portable)" in out
    assert "teacher: multimodal_concat_teacher" in out
    assert read_metadata(version)["metrics"] == read_metadata(result.export_path)["metrics"]
    for path in (result.export_path, str(version)):
        assert main(["check-export", path]) == 0, capsys.readouterr().out
        assert "all checks passed" in capsys.readouterr().out
