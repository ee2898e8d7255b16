"""Multi-step distillation ``fit`` with every per-example loss, sample weights and metrics:
one device vs 2 replicas, XLA vs none, ``steps_per_execution`` > 1 vs 1.

Imported by tests/recipe/test_strategies.py (XLA, steps_per_execution: one device, in-process) and
run as a script in a fresh process (``python fit_parity.py``: 2 logical CPUs must be set up
before TensorFlow runs any op), which prints JSON comparing ``MirroredStrategy`` over 2
logical CPUs with one device, for the Distiller and for ``kdzoo.recipe.distil``.

SGD, not Adam: its update is linear in the gradient, so a loss scaled twice (halved on two
replicas) would show, and float32 reassociation (XLA fusion, a cross-replica sum) stays at
rounding level instead of being amplified by Adam's normalisation of near-zero gradients.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kdzoo  # noqa: E402
from kdzoo import distribute  # noqa: E402
from kdzoo.models.layers import Feature  # noqa: E402

CLASSES = 5
EXAMPLES = 64
GLOBAL_BATCH = 16  # 4 steps per epoch
EPOCHS = 2

#: Every loss whose value is a mean of per-example terms (RKD relates examples within a
#: replica's batch; tests/scripts/loss_reduction_parity.py covers it), with its weight and outputs.
TERMS = (
    ("ce", 0.5, {"target": "labels"}),
    ("kd", 0.5, {}),
    ("kd_std", 0.2, {}),
    ("dkd", 0.2, {}),
    ("nkd", 0.2, {}),
    ("feature_mse", 0.3, {"teacher_output": "embedding", "student_output": "embedding"}),
    ("feature_cosine", 0.3, {"teacher_output": "embedding", "student_output": "embedding"}),
    ("at", 0.3, {"teacher_output": "feature_map", "student_output": "feature_map"}),
)


def tiny_model(name, channels, width):
    """Conv feature map -> embedding -> logits, without batch norm or dropout."""
    inputs = keras.Input((6, 6, 2), name="image")
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(inputs)
    x = Feature(name="feature_map")(x)
    x = keras.layers.Dense(width, activation="tanh")(keras.layers.GlobalAveragePooling2D()(x))
    x = Feature(name="embedding")(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(x), name=name)


def initial_weights():
    """Teacher, student and adapter weights every run starts from."""
    keras.utils.set_random_seed(0)
    distiller = build_distiller()
    return [np.array(v) for v in distiller.weights]


def build_distiller(initial=None, **compile_kwargs):
    teacher, student = tiny_model("teacher", 8, 12), tiny_model("student", 4, 6)
    terms = [kdzoo.LossTerm(loss, w, name=loss, **kw) for loss, w, kw in TERMS]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    if initial is not None:
        distiller.set_weights(initial)
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.2),
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(from_logits=True)],
        **compile_kwargs,
    )
    return distiller


def dataset():
    """Fixed-order weighted batches (shapes static: ``drop_remainder=True``)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((EXAMPLES, 6, 6, 2)).astype("float32")
    y = rng.integers(0, CLASSES, EXAMPLES).astype("int32")
    w = rng.uniform(0.0, 2.0, EXAMPLES).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(GLOBAL_BATCH, drop_remainder=True)


def run_fit(strategy, initial, **compile_kwargs):
    """``(trainable weights after EPOCHS epochs, {metric: [per-epoch values]}, distiller)``."""
    with strategy.scope():
        distiller = build_distiller(initial, **compile_kwargs)
    history = distiller.fit(dataset(), epochs=EPOCHS, verbose=0, shuffle=False)
    weights = [np.array(v) for v in distiller.trainable_weights]
    return weights, {k: [float(x) for x in v] for k, v in history.history.items()}, distiller


def max_diff(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b, strict=True))


def keras_steps_per_execution_error(strategy):
    """The error of a plain Keras model's ``fit`` with ``steps_per_execution=2`` under
    ``strategy`` (None if it ran): ``kdzoo._keras_compat.check_steps_per_execution``."""
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(32) % 3)).batch(8)
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.compile(
            "sgd",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            steps_per_execution=2,
        )
    try:
        model.fit(data, epochs=1, verbose=0)
    except tf.errors.InvalidArgumentError as err:
        return err.message[-600:]  # the end holds the cause; the start, a traceback
    return None


def model_outputs(model, batch):
    """``model``'s logits on ``batch``.

    Compared instead of the teacher's weights: a conv kernel followed by batch norm has
    directions the output does not depend on, whose (zero) gradient is pure rounding noise
    that differs with the summation order (1e-4 after one epoch) and changes nothing."""
    return np.asarray(model({t.name: batch[t.name] for t in model.inputs}, training=False))


def library_runs(one, two):
    """``kdzoo.recipe.distil`` on one device and on MirroredStrategy (2 logical CPUs).

    The strategies are the ones the Distiller runs used: a second ``MirroredStrategy`` in
    one process would start its collective keys where the first did and clash with it."""
    from kdzoo.distribute import StrategyChoice
    from kdzoo.recipe import DistilConfig, distil

    config = DistilConfig(
        num_examples=200,
        global_batch_size=16,
        teacher_epochs=1,
        epochs=1,
        candidates=("ce:0.5,kd:0.5@t=4",),
        scratch=("scratch",),
        teacher_overrides={"dropout": 0.0},  # no random draws: the runs compute the same
        optimizer="sgd",
        learning_rate=0.05,
        # Centred inputs: synchronised batch norm computes var = E[x²] - E[x]², which turns
        # the rounding of a cross-replica sum into 1e-4 differences when |mean| >> std.
        normalize_audio=True,
        verbose=0,
    )
    test = kdzoo.datasets.load(
        "embedded", num_examples=200, normalize_audio=True, split="test", batch_size=40
    )
    batch = next(iter(test.splits["test"]))[0]
    out = {}
    for name, strategy in (("single", one), ("mirrored", two)):
        keras.backend.clear_session()
        result = distil(config, strategy=StrategyChoice(strategy, name, "fit_parity"))
        out[name] = {
            "replicas": result.num_replicas,
            "student": result.student.get_weights(),
            "teacher_logits": [model_outputs(result.teacher, batch)],
            "history": {p: {k: v[-1] for k, v in h.items()} for p, h in result.history.items()},
        }
    return {
        "replicas": [out["single"]["replicas"], out["mirrored"]["replicas"]],
        "max_student_diff": max_diff(out["single"]["student"], out["mirrored"]["student"]),
        "max_teacher_logits_diff": max_diff(
            out["single"]["teacher_logits"], out["mirrored"]["teacher_logits"]
        ),
        "single_history": out["single"]["history"],
        "mirrored_history": out["mirrored"]["history"],
    }


def main():
    devices = distribute.configure_logical_cpus(2)
    initial = initial_weights()
    start = [np.array(v) for v in build_distiller(initial).trainable_weights]
    one = tf.distribute.OneDeviceStrategy(devices[0])
    two = tf.distribute.MirroredStrategy(devices[:2])
    single, single_logs, _ = run_fit(one, initial)
    mirrored, mirrored_logs, _ = run_fit(two, initial)
    json.dump(
        {
            "replicas": [one.num_replicas_in_sync, two.num_replicas_in_sync],
            "max_update": max_diff(single, start),
            "max_weight_diff": max_diff(single, mirrored),
            "single_logs": single_logs,
            "mirrored_logs": mirrored_logs,
            "library": library_runs(one, two),
            # Last: the failed fit leaves the collectives of this process unusable.
            "keras_steps_per_execution_error": keras_steps_per_execution_error(two),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
