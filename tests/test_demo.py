"""Smoke run of the demo at tiny size (the full run is `make demo`)."""

import os

import keras
import numpy as np
import pytest

from kdzoo.cli import main
from kdzoo.datasets import data_root
from kdzoo.demo import DemoConfig, run_demo


def test_demo_smoke_at_tiny_size(tmp_path):
    config = DemoConfig(
        num_examples=160,
        teacher_epochs=1,
        epochs=1,
        batch_size=32,
        export_dir=str(tmp_path),
        verbose=0,
    )
    result = run_demo(config)
    table = result.table
    assert list(table.columns) == ["model", "inputs", "params", "accuracy", "macro_f1"]
    assert list(table["model"]) == ["teacher", "student (scratch)", "student (distilled)"]
    assert list(table["inputs"]) == ["image+audio", "audio", "audio"]
    params = table.set_index("model")["params"]
    assert params["student (scratch)"] == params["student (distilled)"]
    assert params["teacher"] >= 8 * params["student (scratch)"]
    assert table["accuracy"].between(0, 1).all() and table["macro_f1"].between(0, 1).all()
    # The student was exported in the TF Serving layout, and serves its own predictions.
    assert result.export_path == str(tmp_path / "demo_audio_student" / "1")
    import tensorflow as tf

    served = tf.saved_model.load(result.export_path)
    x = np.zeros((2, 30, 32), "float32")
    out = served.serve({"audio": x})
    assert tuple(out.shape) == (2, 10)
    assert not any("image" in v.name for v in served.variables)
    # A second export takes the next version instead of overwriting.
    keras.backend.clear_session()
    again = run_demo(config)
    assert again.export_path == str(tmp_path / "demo_audio_student" / "2")


def test_demo_command_prints_the_table(tmp_path, capsys):
    code = main(
        [
            "demo",
            "--num-examples",
            "120",
            "--teacher-epochs",
            "1",
            "--epochs",
            "1",
            "--no-export",
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "student (distilled)" in out and "macro_f1" in out
    assert "distilled - scratch accuracy" in out


@pytest.mark.slow
def test_demo_on_av_digits_smoke():
    if not (data_root() / "fsdd").exists() and not os.environ.get("CI"):
        pytest.skip("no shared data at $KDZOO_DATA_DIR")
    config = DemoConfig(
        dataset="av_digits", teacher_epochs=1, epochs=1, batch_size=128, export_dir=None, verbose=0
    )
    table = run_demo(config).table
    assert list(table["inputs"]) == ["image+audio", "audio", "audio"]
    assert table["accuracy"].between(0, 1).all()
