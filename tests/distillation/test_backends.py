"""The Distiller on each Keras backend: one ``fit`` from the same weights and batches gives
the same student on TensorFlow, JAX and (when installed) PyTorch, for every loss term; a
``.keras`` file saved on TensorFlow loads on JAX; the student runs once per step."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kdzoo
from tests.helpers import tiny_pair

SCRIPT = Path(__file__).parents[1] / "scripts" / "backend_parity.py"
ROOT = Path(__file__).parents[2]

#: Float32 agreement asked of the backends (issue 17), relative to max(1, |value|): weights,
#: logits, losses and metrics after two SGD steps. Measured on CPU against TensorFlow: JAX
#: 1.8e-7 (weights), 8.8e-7 (logits), 4.6e-6 (losses); PyTorch 1.8e-7, 1.0e-6, 3.2e-6.
TOLERANCE = 1e-5


def _run(script_args, backend, tmp_path, timeout=600):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, *script_args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def tensorflow_step(tmp_path_factory):
    path = tmp_path_factory.mktemp("tensorflow") / "tensorflow.npz"
    _run([str(SCRIPT), str(path)], "tensorflow", path.parent)
    return dict(np.load(path))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_one_step_matches_tensorflow(backend, tensorflow_step, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    path = tmp_path / f"{backend}.npz"
    _run([str(SCRIPT), str(path)], backend, tmp_path)
    other = dict(np.load(path))
    assert str(other.pop("backend")) == backend
    reference = {k: v for k, v in tensorflow_step.items() if k != "backend"}
    assert sorted(other) == sorted(reference)
    # Every setting moved the student: the comparison is of two trainings, not two copies.
    assert any(k.startswith("gate/weight/") for k in reference)
    assert any(k.startswith("classification+cached/history/") for k in reference)
    worst = {
        k: float(
            np.max(
                np.abs(reference[k].astype("float64") - other[k].astype("float64"))
                / np.maximum(1.0, np.abs(reference[k].astype("float64")))
            )
        )
        for k in reference
    }
    bad = {k: d for k, d in worst.items() if not d <= TOLERANCE}
    assert not bad, sorted(bad.items(), key=lambda kv: -kv[1])[:10]


@pytest.mark.slow
def test_keras_file_saved_on_tensorflow_loads_on_jax(tmp_path):
    pytest.importorskip("jax")
    code = """
import sys, numpy as np, keras, kdzoo
from tests.helpers import tiny_pair
path, mode = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
if mode == "save":
    keras.utils.set_random_seed(0)
    teacher, student = tiny_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer="adam", metrics=["accuracy"])
    x = {t.name: rng.standard_normal((8, *t.shape[1:])).astype("float32") for t in teacher.inputs}
    distiller.fit(x, rng.integers(0, 3, 8), epochs=1, verbose=0)
    distiller.save(path + "/distiller.keras")
    student.save(path + "/student.keras")
    np.savez(path + "/x.npz", **x)
    np.save(path + "/logits.npy", distiller.predict(x, verbose=0))
else:
    kdzoo.Distiller  # imports (and so registers) kdzoo's classes, as a user's code would
    x = dict(np.load(path + "/x.npz"))
    distiller = keras.saving.load_model(path + "/distiller.keras")
    student = keras.saving.load_model(path + "/student.keras")
    expected = np.load(path + "/logits.npy")
    print(float(np.max(np.abs(distiller.predict(x, verbose=0) - expected))))
    print(float(np.max(np.abs(np.asarray(student.predict(
        {k: x[k] for k in [t.name for t in student.inputs]}, verbose=0)) - expected))))
    distiller.fit(x, np.zeros(8, "int32"), epochs=1, verbose=0)  # the optimizer state loads too
"""
    script = tmp_path / "roundtrip.py"
    script.write_text(code)
    _run([str(script), str(tmp_path), "save"], "tensorflow", tmp_path)
    done = _run([str(script), str(tmp_path), "load"], "jax", tmp_path)
    distiller_diff, student_diff = (float(v) for v in done.stdout.split()[-2:])
    assert distiller_diff < 1e-5 and student_diff < 1e-5


def _count_student_calls(distiller):
    """Wraps the student's feature view to count its calls (traces, under ``tf.function``)."""
    view = distiller._views.student
    calls = []
    original = view.call

    def call(*args, **kwargs):
        calls.append(kwargs.get("training"))
        return original(*args, **kwargs)

    view.call = call
    return calls


def test_the_student_runs_once_per_step():
    keras.utils.set_random_seed(0)
    teacher, student = tiny_pair()
    distiller = kdzoo.Distiller(  # a feature term: the step needs the student's features
        teacher=teacher,
        student=student,
        terms=kdzoo.distillation.default_terms(feature_weight=1.0),
    )
    distiller.compile(optimizer="sgd", metrics=["accuracy"], run_eagerly=True)
    rng = np.random.default_rng(0)
    x = {t.name: rng.standard_normal((8, *t.shape[1:])).astype("float32") for t in teacher.inputs}
    y = rng.integers(0, 3, 8).astype("int32")
    calls = _count_student_calls(distiller)
    distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    train_calls = len(calls)
    distiller.evaluate(x, y, batch_size=4, verbose=0)
    # Two steps each; JAX adds one symbolic pass (Keras' `_symbolic_build`) before a fit.
    assert calls[train_calls - 2 :] == [True, True, False, False]
    assert train_calls == 2 + (keras.config.backend() != "tensorflow")
    # Each step took its forward pass back (JAX's symbolic pass has no step to take it).
    assert len(distiller._views.outputs) == (keras.config.backend() != "tensorflow")


def test_compute_loss_on_logits_from_elsewhere_runs_the_student():
    """``compute_loss`` called by hand with ``y_pred`` from another forward pass (Keras'
    documented use) gets the student's features of a fresh pass, not stale ones."""
    keras.utils.set_random_seed(0)
    teacher, student = tiny_pair()
    distiller = kdzoo.Distiller(
        teacher=teacher,
        student=student,
        terms=kdzoo.distillation.default_terms(feature_weight=1.0),
    )
    rng = np.random.default_rng(0)
    x = {t.name: rng.standard_normal((8, *t.shape[1:])).astype("float32") for t in teacher.inputs}
    y = rng.integers(0, 3, 8).astype("int32")
    logits = distiller(x)
    expected = float(distiller.compute_loss(x, y, logits, training=False))
    distiller({k: v[::-1] for k, v in x.items()})  # another forward pass, kept
    fresh = keras.ops.convert_to_numpy(student({t.name: x[t.name] for t in student.inputs}))
    assert float(distiller.compute_loss(x, y, keras.ops.convert_to_tensor(fresh))) == (
        pytest.approx(expected, rel=1e-6)
    )


@pytest.mark.parametrize(
    "entry",
    ["kdzoo.recipe:run", "kdzoo.recipe:distil", "kdzoo.serving:export_student"],
)
def test_tensorflow_only_entry_points_name_the_backend_they_need(entry, monkeypatch):
    """The recipe and the export refuse another backend at once, saying what to do."""
    import importlib

    module, function = entry.split(":")
    target = getattr(importlib.import_module(module), function)
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    with pytest.raises(
        RuntimeError, match=r"needs Keras's TensorFlow backend; Keras runs on 'jax'"
    ):
        arguments = {"run": ((None, None, None), {}), "distil": ((), {})}
        args, kwargs = arguments.get(function, ((None,), {"name": "student", "data": None}))
        target(*args, **kwargs)


def test_a_shared_temperature_is_state_the_compiled_step_reads_not_a_weight():
    """A temperature shared as a plain (trainable) ``keras.Variable`` is never trained, a
    weights list without it still loads, and an assignment reaches an already compiled step
    (on JAX that needs it tracked as state; an untracked one would keep its traced value)."""
    keras.utils.set_random_seed(0)
    teacher, student = tiny_pair()
    tau = keras.Variable(4.0)  # trainable, as keras.Variable makes it by default
    kd = kdzoo.losses.SoftTargetKLDivergence(temperature=tau)
    distiller = kdzoo.Distiller(
        teacher=teacher,
        student=student,
        terms=[kdzoo.LossTerm("ce", 0.5, target="labels"), kdzoo.LossTerm(kd, 0.5, name="kd")],
    )
    distiller.compile(optimizer=keras.optimizers.SGD(1.0))
    rng = np.random.default_rng(0)
    x = {t.name: rng.standard_normal((8, *t.shape[1:])).astype("float32") for t in teacher.inputs}
    y = rng.integers(0, 3, 8).astype("int32")
    distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert float(keras.ops.convert_to_numpy(tau)) == 4.0
    assert all(v is not tau for v in distiller.trainable_weights)
    # set_weights takes the list of a Distiller that did not track it (an older backup).
    weights = distiller.get_weights()
    legacy = [w for v, w in zip(distiller.weights, weights, strict=True) if v is not tau]
    distiller.set_weights([w + 1.0 for w in legacy])
    assert float(keras.ops.convert_to_numpy(tau)) == 4.0
    distiller.set_weights(weights)

    distiller.evaluate(x, y, batch_size=8, verbose=0)  # compiled at tau = 4
    tau.assign(2.0)
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    t = keras.ops.convert_to_numpy(teacher(x, training=False))
    s = keras.ops.convert_to_numpy(student({k.name: x[k.name] for k in student.inputs}))
    expected = float(kdzoo.losses.SoftTargetKLDivergence(temperature=2.0)(t, s))
    assert logs["kd_loss"] == pytest.approx(expected, rel=1e-5)
