"""The backend-neutral core runs on JAX with no TensorFlow importable (the recipe too, on
NumPy arrays), and a model saved on TensorFlow loads there (kdzoo's ``BatchNormalization``).
The child process and what it checks: tests/scripts/backend_neutral_core.py."""

from pathlib import Path

import numpy as np
import pytest
from helpers import last_json_line, run_python

from kdzoo import losses, models
from kdzoo.models.layers import BatchNormalization

pytest.importorskip("jax")

SCRIPT = Path(__file__).parent / "scripts" / "backend_neutral_core.py"
ROOT = Path(__file__).parents[1]


def _saved_on_tensorflow(tmp_path):
    """An image model saved on TensorFlow, with non-default weights and batch-norm
    statistics, and an ``.npz`` of an input and its outputs."""
    model = models.build("image_cnn", "student", num_classes=10)
    assert any(isinstance(layer, BatchNormalization) for layer in model.layers)
    rng = np.random.default_rng(3)
    model.set_weights([w + 0.05 * np.abs(rng.normal(size=w.shape)) for w in model.get_weights()])
    x = rng.random((3, *model.input_shape[1:])).astype("float32")
    y = np.asarray(model({"image": x}, training=False))
    path, npz = tmp_path / "image.keras", tmp_path / "image.npz"
    model.save(path)
    np.savez(npz, x=x, y=y)
    return path, npz


@pytest.mark.tensorflow("the parent saves the model on TensorFlow for the JAX child to load")
def test_the_core_runs_on_jax_without_tensorflow(tmp_path):
    path, npz = _saved_on_tensorflow(tmp_path)
    proc = run_python(
        [SCRIPT, "--saved-on-tensorflow", path, npz],
        cwd=ROOT,
        env={
            "KERAS_BACKEND": "jax",
            "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": str(ROOT),
            # The script runs eager ops, each compiled once: unoptimised XLA halves the time.
            "XLA_FLAGS": "--xla_backend_optimization_level=0",
        },
        timeout=240,
        check=True,
    )
    report = last_json_line(proc.stdout)
    assert report["backend"] == "jax"
    assert report["pairs"] == ["av_to_audio"]
    assert sorted(report["losses"]) == losses.names()
    assert report["cached_outputs"] == ["embedding", "logits"]
    assert report["loaded_from_tensorflow"] == "image_cnn_student"
    # The recipe trained on NumPy arrays, cross-modal, with TensorFlow blocked.
    assert len(report["recipe"]["test_accuracy"]) == 3
    assert report["recipe"]["chosen"] in ("scratch", "ce:0.5,kd:0.5@t=2")
    assert report["tensorflow_imported"] is False
