"""The backend-neutral core of kdzoo on JAX with no TensorFlow importable; prints JSON.

Executed in a fresh process by tests/test_backend_imports.py (``KERAS_BACKEND=jax``). Before
anything else (unless ``--allow-tensorflow``) it installs a meta-path finder that makes every
``tensorflow*`` import (``tensorflow``, ``tensorflow_text``, ``tensorflow_datasets``, ...)
raise ``ImportError``, as on a machine without TensorFlow. Then it:

1. imports the core: ``kdzoo``, models and their registry, every loss, labels, tasks, input
   routing, and the distillation terms, teachers, schedules and cache;
2. builds the ``--pairs`` (default ``av_to_audio``; ``all``: every registered pair) and runs
   each model on a zero batch (inference and training mode: batch norm must not ask for
   ``synchronized``);
3. computes every loss of ``kdzoo.losses.names()`` on random tensors, and checks that an
   out-of-range label raises ``ValueError`` eagerly and gives a NaN loss (and a finite
   gradient) inside ``jax.jit``;
4. attaches a teacher's outputs to NumPy inputs (``arrays_with_teacher_outputs``);
5. with ``--saved-on-tensorflow model.keras outputs.npz`` (an image model saved on
   TensorFlow, and an ``.npz`` of an input ``x`` and that model's outputs ``y`` on it),
   loads the model and compares its outputs;
6. runs the recipe (``kdzoo.recipe.run``) on ``kdzoo.datasets.from_numpy`` arrays with the
   ``av_to_audio`` pair: the teacher on image+audio, cached teacher outputs, a scratch try
   and a distillation candidate, selection on validation, the test split last.

Each eager JAX op compiles once per shape, so building a pair costs seconds: the test builds
one. By hand, in a venv without TensorFlow:
``KERAS_BACKEND=jax PYTHONPATH=. python tests/scripts/backend_neutral_core.py --pairs all``.
"""

import argparse
import importlib.abc
import json
import os
import sys


class _NoTensorFlow(importlib.abc.MetaPathFinder):
    """Refuses ``tensorflow`` and every ``tensorflow_*`` distribution, and their submodules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0].startswith("tensorflow"):
            raise ImportError(f"{fullname} is blocked: this process checks kdzoo without it")
        return None


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--pairs", default="av_to_audio", help="pair names, comma-separated, or all")
parser.add_argument("--saved-on-tensorflow", nargs=2, metavar=("KERAS_FILE", "NPZ"))
parser.add_argument(
    "--allow-tensorflow", action="store_true", help="do not block TensorFlow (JAX beside it)"
)
args = parser.parse_args()
if not args.allow_tensorflow:
    sys.meta_path.insert(0, _NoTensorFlow())
if os.environ.get("KERAS_BACKEND") != "jax":
    sys.exit("Run with KERAS_BACKEND=jax.")

import importlib  # noqa: E402

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

MODULES = (
    "kdzoo",
    "kdzoo.backend",
    "kdzoo.models",
    "kdzoo.models.registry",
    "kdzoo.losses",
    "kdzoo.labels",
    "kdzoo.tasks",
    "kdzoo.data",
    "kdzoo.data.routing",
    "kdzoo.distillation",
    "kdzoo.distillation.teachers",
    "kdzoo.distillation.terms",
    "kdzoo.distillation.schedules",
    "kdzoo.distillation.cache",
    "kdzoo.distillation.keys",
    "kdzoo._keras_compat",
    "kdzoo.data.batches",
    "kdzoo.datasets.arrays",
    "kdzoo.evaluation",
    "kdzoo.recipe",
    "kdzoo.recipe.selection",
    "kdzoo.recipe.phases",
)
for module in MODULES:
    importlib.import_module(module)

import kdzoo  # noqa: E402
from kdzoo import backend, losses, models  # noqa: E402
from kdzoo.data import select_inputs  # noqa: E402
from kdzoo.distillation import (  # noqa: E402
    TEACHER_OUTPUTS,
    DistillationScheduler,
    LossTerm,
    TeacherEnsemble,
    arrays_with_teacher_outputs,
    default_terms,
)
from kdzoo.models.layers import BatchNormalization  # noqa: E402

assert backend.name() == "jax" and not backend.is_tensorflow()
assert backend.num_replicas_in_sync() == 1 and backend.scale_for_replicas(2.0) == 2.0
assert kdzoo.LossTerm is LossTerm and len(default_terms()) >= 2 and DistillationScheduler
report = {"backend": backend.name(), "modules": list(MODULES)}
RNG = np.random.default_rng(0)
CLASSES = 10


# ---------------------------------------------------------------- 2. every pair
def zero_batch(model, batch=2):
    return {
        t.name: np.zeros((batch, *(8 if d is None else d for d in t.shape[1:])), t.dtype)
        for t in model.inputs
    }


pairs = {}
for name in models.list_pairs() if args.pairs == "all" else args.pairs.split(","):
    teacher, student = models.build_pair(name, num_classes=CLASSES)
    for role, model in (("teacher", teacher), ("student", student)):
        x = zero_batch(model)
        for training in (False, True):
            out = keras.ops.convert_to_numpy(model(x, training=training))
            assert out.shape == (2, CLASSES), (name, role, out.shape)
            assert np.isfinite(out).all(), (name, role, training)
        for layer in model.layers:
            if isinstance(layer, BatchNormalization):
                assert layer.synchronized is False, layer.name
    pairs[name] = (teacher, student)
report["pairs"] = sorted(pairs)


# ---------------------------------------------------------------- 3. every loss
def normal(*shape):
    return RNG.normal(size=shape).astype("float32")


B = 6
T, S, LABELS = normal(B, CLASSES), normal(B, CLASSES), RNG.integers(0, CLASSES, B)
INPUTS = {  # (y_true, y_pred) per loss name
    "ce": (LABELS, S),
    "kd": (T, S),
    "kd_std": (T, S),
    "dkd": (losses.teacher_with_labels(T, LABELS), S),
    "nkd": (losses.teacher_with_labels(T, LABELS), S),
    "feature_mse": (normal(B, 16), normal(B, 16)),
    "feature_cosine": (normal(B, 16), normal(B, 16)),
    "at": (normal(B, 5, 5, 8), normal(B, 5, 5, 4)),
    "rkd_distance": (normal(B, 16), normal(B, 4)),
    "rkd_angle": (normal(B, 16), normal(B, 4)),
    "logit_mse": (T, S),
    "kd_multi_label": (T, S),
    "teacher_mse": (normal(B, 1), normal(B, 1)),
    "teacher_huber": (normal(B, 1), normal(B, 1)),
    "teacher_bounded": ({"teacher": normal(B, 1), "labels": normal(B, 1)}, normal(B, 1)),
}
assert sorted(INPUTS) == losses.names(), "add the new loss to INPUTS"
values = {}
for name, (y_true, y_pred) in INPUTS.items():
    value = float(losses.get(name)(y_true, y_pred))
    assert np.isfinite(value), (name, value)
    values[name] = value
report["losses"] = values

bad = np.array([0, CLASSES, 2, 3, 4, -1])
for name in ("dkd", "nkd"):
    loss = losses.get(name)
    try:
        loss(losses.teacher_with_labels(T, bad), S)
    except ValueError as err:
        assert "outside the valid range of [0, 10)" in str(err), err
    else:
        raise AssertionError(f"{name}: an out-of-range label did not raise eagerly")

    def objective(student, labels, loss=loss):
        return loss(losses.teacher_with_labels(T, labels), student)

    value, grad = jax.jit(jax.value_and_grad(objective))(S, bad)
    grad = np.asarray(grad)
    assert np.isnan(float(value)), (name, value)  # the bad rows show in the reported loss
    assert np.isfinite(grad).all() and not grad[[1, 5]].any(), name  # ...and do not train
report["bad_labels"] = "ValueError eagerly, NaN loss and zero gradient rows under jax.jit"


# ---------------------------------------------------------------- 4. cached outputs
teacher, student = pairs["av_to_audio"]
x = {k: RNG.normal(size=v.shape).astype(v.dtype) for k, v in zero_batch(teacher, 5).items()}
cached = arrays_with_teacher_outputs(teacher, x, features=["embedding"], batch_size=2)
outputs = cached[TEACHER_OUTPUTS]
assert sorted(outputs) == ["embedding", "logits"] and outputs["logits"].shape == (5, CLASSES)
expected = keras.ops.convert_to_numpy(teacher(select_inputs(x, ("image", "audio"))))
np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-5, atol=1e-5)
ensemble = TeacherEnsemble(teacher)
raw = ensemble.raw_outputs(cached)
np.testing.assert_array_equal(keras.ops.convert_to_numpy(raw[0]["logits"]), outputs["logits"])
report["cached_outputs"] = sorted(outputs)


# ---------------------------------------------------------------- 5. a model saved on TF
if args.saved_on_tensorflow:
    path, npz = args.saved_on_tensorflow
    loaded = keras.saving.load_model(path, compile=False)
    saved = np.load(npz)
    got = keras.ops.convert_to_numpy(loaded({"image": saved["x"]}, training=False))
    np.testing.assert_allclose(got, saved["y"], rtol=1e-4, atol=1e-5)
    report["loaded_from_tensorflow"] = loaded.name

imported = sorted(m for m in sys.modules if m.split(".")[0].startswith("tensorflow"))
assert args.allow_tensorflow or not imported, imported
report["tensorflow_imported"] = bool(imported)


# ---------------------------------------------------------------- 6. the recipe on arrays
from kdzoo.datasets import from_numpy  # noqa: E402
from kdzoo.recipe import RECIPE, SCRATCH, TEACHER, run  # noqa: E402


def split(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    x = {k: rng.normal(size=v.shape).astype(v.dtype) for k, v in zero_batch(teacher, n).items()}
    x["image"] += labels[:, None, None, None] / CLASSES  # the teacher's view carries the class
    return x, labels


teacher, student = models.build_pair("av_to_audio", num_classes=CLASSES, audio_shape=(8, 8))
data = from_numpy(split(96, 1), split(32, 2), split(32, 3), name="av arrays")
result = run(
    teacher,
    student,
    data,
    candidates=("ce:0.5,kd:0.5@t=2",),
    teacher_epochs=1,
    epochs=1,
    batch_size=32,
    student_inputs=("audio",),
    verbose=0,
)
assert list(result.table["model"]) == [TEACHER, SCRATCH, RECIPE], result.table
assert list(result.table["inputs"]) == ["audio+image", "audio", "audio"], result.table
assert np.isfinite(result.table["accuracy"]).all() and "teacher outputs" in result.seconds
assert result.evaluated_on == "test" and len(result.candidates) == 2
report["recipe"] = {
    "chosen": result.chosen.name,
    "test_accuracy": [float(v) for v in result.table["accuracy"]],
}
report["tensorflow_imported"] = any(m.split(".")[0].startswith("tensorflow") for m in sys.modules)
print(json.dumps(report))
