"""Runs one distillation step on 1 device and on 2 logical CPU replicas; prints JSON.

Executed in a fresh process by tests/test_distributed.py: logical devices must be set up
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
        temperature=2.0,
        ce_weight=0.4,
        kd_weight=0.6,
        feature_weight=0.5,
        teacher_feature="audio_feature_map",
        student_feature="feature_map",
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


def main():
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
