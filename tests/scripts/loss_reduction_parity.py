"""One SGD distillation step per KD loss, on 1 device and on 2 logical CPU replicas; prints
JSON.

Executed in a fresh process by tests/recipe/test_distributed.py: logical devices must be set up
before TensorFlow runs any op. For each loss of the family a Distiller (``ce`` + that loss)
takes one SGD step on a weighted global batch:

- per-example losses: the 2-replica step must equal the 1-device step on the global batch
  (weights and reported losses);
- batch-relational losses (RKD): each replica relates only its local half, so the 2-replica
  step must equal the *mean* of the two 1-device steps on the halves (SGD is linear in the
  gradient), and the reported loss the mean of the two half-batch losses.

The per-example losses that read labels (``kd`` beside ``ce``, and ``dkd``) run once more
with rows without a label (``kdzoo.labels.UNLABELLED``), spread unevenly over the two
replicas: the masked objective and the per-labelled-row reports must split the same way.
So do a regression and a multi-label Distiller (``task=``), whose rows without a label are
NaN targets and rows of ``UNLABELLED``.

SGD, not Adam: a loss scaled twice (halved on two replicas) would show in the update.
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
import kdzoo.labels  # noqa: E402
import kdzoo.losses.task_terms  # noqa: E402
from kdzoo.models.layers import Feature  # noqa: E402
from kdzoo.tasks import Task  # noqa: E402

GLOBAL_BATCH = 16
CLASSES = 5

#: name -> LossTerm keyword arguments; "relational" losses relate examples within a batch.
LOSSES = {
    "kd": {},
    "kd_std": {},
    "dkd": {},
    "nkd": {},
    "at": {"teacher_output": "feature_map", "student_output": "feature_map"},
    "rkd_distance": {"teacher_output": "embedding", "student_output": "embedding"},
    "rkd_angle": {"teacher_output": "embedding", "student_output": "embedding"},
    "multi_label_kd": {},
    "logit_mse": {},
    "regression_huber": {},
}
#: The losses of kdzoo.losses.task_terms, given to LossTerm as objects (the outputs read as five
#: labels' logits, or five regression targets).
TASK_LOSSES = {
    "multi_label_kd": lambda: kdzoo.losses.task_terms.MultiLabelKLDivergence(temperature=2.0),
    "logit_mse": lambda: kdzoo.losses.task_terms.LogitMSE(),
    "regression_huber": lambda: kdzoo.losses.task_terms.RegressionToTeacher("huber", delta=0.5),
}
RELATIONAL = ("rkd_distance", "rkd_angle")
#: Run again with unlabelled rows: 4 in the first replica's half, 1 in the second's.
UNLABELLED_CASES = ("kd", "dkd")
UNLABELLED_ROWS = [0, 2, 3, 5, 9]
#: Distillers of another task kind, with those rows unlabelled: the task, and its teacher term.
TASK_CASES = {
    "regression+unlabelled": (
        Task.regression(num_targets=CLASSES),
        lambda: kdzoo.losses.task_terms.RegressionToTeacher("mse"),
    ),
    "multi_label+unlabelled": (
        Task.multi_label(num_labels=CLASSES),
        lambda: kdzoo.losses.task_terms.MultiLabelKLDivergence(temperature=2.0),
    ),
    # Chen et al.'s teacher-bounded loss reads the targets beside the teacher's predictions.
    "regression_bounded+unlabelled": (
        Task.regression(num_targets=CLASSES),
        lambda: kdzoo.losses.task_terms.TeacherBoundedRegression(),
    ),
}


def tiny_model(name, channels, width):
    """Conv feature map -> embedding -> logits; no batch norm or dropout, so a replica's
    forward pass does not depend on the other replica's examples."""
    inputs = keras.Input((6, 6, 2), name="image")
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(inputs)
    x = Feature(name="feature_map")(x)
    x = keras.layers.Dense(width, activation="tanh")(keras.layers.GlobalAveragePooling2D()(x))
    x = Feature(name="embedding")(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(x), name=name)


def build(loss_name, initial):
    teacher, student = tiny_model("teacher", 8, 12), tiny_model("student", 4, 6)
    teacher.set_weights(initial[0])
    student.set_weights(initial[1])
    if loss_name in TASK_CASES:
        task, term = TASK_CASES[loss_name]
        terms = [
            kdzoo.LossTerm(task.label_loss(), 0.3, target="labels", name="ce"),
            kdzoo.LossTerm(term(), 0.7, name="term"),
        ]
        distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms, task=task)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5))
        return distiller
    terms = [
        kdzoo.LossTerm("ce", 0.3, target="labels", name="ce"),
        kdzoo.LossTerm(
            TASK_LOSSES[loss_name]() if loss_name in TASK_LOSSES else loss_name,
            0.7,
            name="term",
            **LOSSES[loss_name],
        ),
    ]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    return distiller


def data(unlabelled=False, kind="classification"):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((GLOBAL_BATCH, 6, 6, 2)).astype("float32")
    y = rng.integers(0, CLASSES, GLOBAL_BATCH).astype("int32")
    w = rng.uniform(0.0, 2.0, GLOBAL_BATCH).astype("float32")
    if kind == "regression":
        y = rng.standard_normal((GLOBAL_BATCH, CLASSES)).astype("float32") - 0.5
        if unlabelled:
            y[UNLABELLED_ROWS] = np.nan
        return x, y, w
    if kind == "multi_label":
        y = rng.integers(0, 2, (GLOBAL_BATCH, CLASSES)).astype("float32")
    if unlabelled:
        y[UNLABELLED_ROWS] = kdzoo.labels.UNLABELLED
    return x, y, w


def step(strategy, loss_name, initial, rows, unlabelled=False):
    """One fit step on the examples ``rows`` as one batch; returns (student weights, logs)."""
    kind = TASK_CASES[loss_name][0].kind if loss_name in TASK_CASES else "classification"
    x, y, w = (a[rows] for a in data(unlabelled, kind))
    dataset = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(len(y))
    with strategy.scope():
        distiller = build(loss_name, initial)
    history = distiller.fit(dataset, epochs=1, verbose=0)
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    return [keras.ops.convert_to_numpy(v) for v in distiller.student.weights], logs


def max_diff(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b, strict=True))


def main():
    keras.utils.set_random_seed(0)
    initial = (
        tiny_model("teacher", 8, 12).get_weights(),
        tiny_model("student", 4, 6).get_weights(),
    )
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    one = tf.distribute.OneDeviceStrategy(devices[0])
    two = tf.distribute.MirroredStrategy(devices[:2])
    everything, halves = np.arange(GLOBAL_BATCH), np.split(np.arange(GLOBAL_BATCH), 2)
    results = {"replicas": [one.num_replicas_in_sync, two.num_replicas_in_sync]}
    for name in LOSSES:
        single, single_logs = step(one, name, initial, everything)
        mirrored, mirrored_logs = step(two, name, initial, everything)
        result = {"max_update": max_diff(single, initial[1])}
        if name in RELATIONAL:
            parts = [step(one, name, initial, rows) for rows in halves]
            expected = [np.mean(ws, axis=0) for ws in zip(*(p[0] for p in parts), strict=True)]
            expected_logs = {k: float(np.mean([p[1][k] for p in parts])) for k in single_logs}
            # The full-batch relations differ: evidence that relations really are per replica.
            result["global_batch_term_loss"] = single_logs["term_loss"]
        else:
            expected, expected_logs = single, single_logs
        result["max_weight_diff"] = max_diff(mirrored, expected)
        result["expected_logs"] = expected_logs
        result["mirrored_logs"] = mirrored_logs
        results[name] = result
    for name in (*UNLABELLED_CASES, *TASK_CASES):
        single, single_logs = step(one, name, initial, everything, unlabelled=True)
        mirrored, mirrored_logs = step(two, name, initial, everything, unlabelled=True)
        results[name if name in TASK_CASES else f"{name}+unlabelled"] = {
            "max_update": max_diff(single, initial[1]),
            "max_weight_diff": max_diff(mirrored, single),
            "expected_logs": single_logs,
            "mirrored_logs": mirrored_logs,
        }
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
