"""Runs one distillation step on 1 device and on 2 logical CPU replicas; prints JSON.

With ``--multi-teacher``, the same for two teachers combined by a learned gate.

Executed in a fresh process by tests/recipe/test_distributed.py: logical devices must be set up
before TensorFlow runs any op.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kdzoo  # noqa: E402
from kdzoo import models  # noqa: E402

GLOBAL_BATCH = 16


def build(initial=None):
    keras.utils.set_random_seed(0)
    teacher, student = models.build_pair(
        "av_to_audio", teacher_overrides={"dropout": 0.0}, student_overrides={"dropout": 0.0}
    )
    if initial is not None:
        teacher.set_weights(initial[0])
        student.set_weights(initial[1])
    distiller = kdzoo.Distiller(
        teacher=teacher,
        student=student,
        terms=kdzoo.default_terms(
            temperature=2.0,
            ce_weight=0.4,
            kd_weight=0.6,
            feature_weight=0.5,
            teacher_feature="audio_feature_map",
            student_feature="feature_map",
        ),
    )
    # Plain SGD: its update is linear in the gradient, so a loss scaled twice (halved on two
    # replicas) would show. Adam's normalised update would hide it.
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    return distiller


def data():
    rng = np.random.default_rng(0)
    frames, mels = kdzoo.data.AudioConfig.embedded().feature_shape
    x = {
        "image": rng.standard_normal((GLOBAL_BATCH, 16, 16, 1)).astype("float32"),
        "audio": rng.standard_normal((GLOBAL_BATCH, frames, mels)).astype("float32"),
    }
    y = rng.integers(0, 10, GLOBAL_BATCH).astype("int32")
    w = rng.uniform(0.0, 2.0, GLOBAL_BATCH).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(GLOBAL_BATCH)


def run(strategy, initial):
    with strategy.scope():
        distiller = build(initial)
        # Adapter weights must match too: copy them from the reference initialisation.
        distiller.adapters["feature"].set_weights(initial[2])
    history = distiller.fit(data(), epochs=1, verbose=0)
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    return [np.array(v) for v in distiller.student.weights], logs, strategy.num_replicas_in_sync


def build_multi(initial=None):
    """Two single-modality teachers, a learned gate and an audio student."""
    keras.utils.set_random_seed(0)
    teachers = [
        models.build("image_cnn", "teacher", image_shape=(16, 16, 1), dropout=0.0),
        models.build("audio_crnn", "teacher", dropout=0.0),
    ]
    student = models.build("audio_crnn", "student", dropout=0.0)
    if initial is not None:
        for teacher, weights in zip(teachers, initial["teachers"], strict=True):
            teacher.set_weights(weights)
        student.set_weights(initial["student"])
    distiller = kdzoo.Distiller(
        teacher=teachers,
        student=student,
        teacher_combination="gate",
        gate_weight=0.5,
        terms=kdzoo.default_terms(temperature=2.0, ce_weight=0.4, kd_weight=0.6),
    )
    if initial is not None:
        distiller.teacher_gate.set_weights(initial["gate"])
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    return distiller


def run_multi(strategy, initial):
    with strategy.scope():
        distiller = build_multi(initial)
    history = distiller.fit(data(), epochs=1, verbose=0)
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    weights = [np.array(v) for v in distiller.student.weights + distiller.teacher_gate.weights]
    return weights, logs, strategy.num_replicas_in_sync


def multi_teacher_parity(devices):
    """The gate's auxiliary loss is reduced like the terms: 2 replicas equal 1 device.

    Run with ``--multi-teacher``."""
    reference = build_multi()
    initial = {
        "teachers": [t.get_weights() for t in reference.teachers],
        "student": reference.student.get_weights(),
        # A non-zero start, so that the gate's weights shape the combination from step one.
        "gate": [
            np.random.default_rng(1).normal(0, 0.05, w.shape).astype("float32")
            for w in reference.teacher_gate.get_weights()
        ],
    }
    start = initial["student"] + initial["gate"]
    single, single_logs, n1 = run_multi(tf.distribute.OneDeviceStrategy(devices[0]), initial)
    mirrored, mirrored_logs, n2 = run_multi(tf.distribute.MirroredStrategy(devices[:2]), initial)
    gate_count = len(initial["gate"])
    return {
        "replicas": [n1, n2],
        "max_weight_diff": max(
            float(np.max(np.abs(a - b))) for a, b in zip(single, mirrored, strict=True)
        ),
        "max_update": max(float(np.max(np.abs(a - b))) for a, b in zip(single, start, strict=True)),
        "max_gate_update": max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(single[-gate_count:], initial["gate"], strict=True)
        ),
        "single_logs": single_logs,
        "mirrored_logs": mirrored_logs,
    }


def main():
    if "--multi-teacher" in sys.argv[1:]:
        # Its own process: after the single-teacher run, a second MirroredStrategy over other
        # variable shapes failed with "Shape mismatch in the collective instance" (its
        # collective instance keys seem to repeat the first strategy's).
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        json.dump(multi_teacher_parity(devices), sys.stdout)
        return
    reference = build()
    initial = (
        reference.teacher.get_weights(),
        reference.student.get_weights(),
        reference.adapters["feature"].get_weights(),
    )
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    single, single_logs, n1 = run(tf.distribute.OneDeviceStrategy(devices[0]), initial)
    mirrored, mirrored_logs, n2 = run(tf.distribute.MirroredStrategy(devices[:2]), initial)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(single, initial[1], strict=True))
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(single, mirrored, strict=True))
    json.dump(
        {
            "replicas": [n1, n2],
            "max_weight_diff": diff,
            "max_update": moved,
            "single_logs": single_logs,
            "mirrored_logs": mirrored_logs,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
