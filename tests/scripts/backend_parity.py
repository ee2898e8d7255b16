"""One distillation step on the Keras backend this process runs (``KERAS_BACKEND``), from
weights and batches that NumPy makes, for comparison across backends.

Run as ``KERAS_BACKEND=jax python backend_parity.py OUT.npz`` (tensorflow, jax or torch);
``tests/distillation/test_backends.py`` runs it once per installed backend and compares
each backend's file with TensorFlow's. Nothing here depends on a backend's random
generator: every weight is drawn by NumPy from the setting's seed and set by position, so
the runs start from the same numbers.

Each setting trains a fresh Distiller for one ``fit`` epoch of two SGD steps (SGD: its
update is linear in the gradient, so a wrongly scaled loss shows, and float32 rounding is
not amplified as Adam's normalisation would) and records the student's, adapters' and
gate's weights, the history (the loss, each term's loss and the metrics) and the logits
``predict`` and ``evaluate`` give afterwards. The settings cover every loss term of
``kdzoo.losses``, sample weights, unlabelled rows (per task kind), cached teacher outputs,
cross-modal routing, FitNets adapters, a student weight regulariser and the three ways of
mixing several teachers.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kdzoo  # noqa: E402
from kdzoo.models.layers import Feature  # noqa: E402
from kdzoo.tasks import Task  # noqa: E402

CLASSES = 4
EXAMPLES = 16
BATCH = 8  # two steps

#: name -> (terms as (loss, weight, LossTerm keywords), task, several teachers' combination);
#: the loss ``"label"`` is the task's own label loss (``Task.label_loss``).
SETTINGS = {
    "classification": (
        (
            ("ce", 0.5, {"target": "labels"}),
            ("kd", 0.5, {}),
            ("kd_std", 0.2, {}),
            ("dkd", 0.2, {}),
            ("nkd", 0.2, {}),
            ("logit_mse", 0.1, {}),
            ("feature_mse", 0.3, {"teacher_output": "embedding", "student_output": "embedding"}),
            (
                "feature_cosine",
                0.3,
                {"teacher_output": "embedding", "student_output": "embedding"},
            ),
            ("at", 0.3, {"teacher_output": "feature_map", "student_output": "feature_map"}),
            ("rkd_distance", 0.1, {"teacher_output": "embedding", "student_output": "embedding"}),
            ("rkd_angle", 0.1, {"teacher_output": "embedding", "student_output": "embedding"}),
        ),
        None,
        None,
    ),
    "multi_label": (
        (("label", 0.5, {"target": "labels"}), ("kd_multi_label", 0.5, {})),
        Task.multi_label(num_labels=CLASSES),
        None,
    ),
    "regression": (
        (
            ("label", 0.5, {"target": "labels"}),
            ("teacher_mse", 0.3, {}),
            ("teacher_huber", 0.3, {}),
            ("teacher_bounded", 0.3, {}),
        ),
        Task.regression(num_targets=2),
        None,
    ),
    # The zoo's cross-modal pair (batch norm, convolutions, a recurrent layer), dropout off.
    "av_to_audio": (None, None, None),
    "fixed": (None, None, "fixed"),
    "entropy": (None, None, "entropy"),
    "gate": (None, None, "gate"),
}


def model(name, channels, width, outputs, regularised=False):
    """Image and audio inputs -> conv feature map -> embedding -> outputs. Teachers read
    both inputs, students the audio only (cross-modal routing); no batch norm or dropout,
    whose random or replica-dependent parts are not what is compared."""
    audio = keras.Input((6, 6, 1), name="audio")
    inputs = [audio]
    x = audio
    if name.startswith("teacher"):
        image = keras.Input((6, 6, 1), name="image")
        inputs = [image, audio]
        x = keras.layers.Concatenate()([image, audio])
    regulariser = keras.regularizers.L2(1e-3) if regularised else None
    x = keras.layers.Conv2D(
        channels, 3, padding="same", activation="relu", kernel_regularizer=regulariser
    )(x)
    x = Feature(name="feature_map")(x)
    x = keras.layers.Dense(width, activation="tanh")(keras.layers.GlobalAveragePooling2D()(x))
    x = Feature(name="embedding")(x)
    return keras.Model(inputs, keras.layers.Dense(outputs)(x), name=name)


def labels(task, rng):
    """Labels with two rows marked unlabelled as ``task`` marks them."""
    if task is None:
        y = rng.integers(0, CLASSES, EXAMPLES).astype("int32")
        y[[3, 12]] = -1
    elif task.kind == "multi_label":
        y = rng.integers(0, 2, (EXAMPLES, CLASSES)).astype("float32")
        y[[3, 12]] = -1.0
    else:
        y = rng.standard_normal((EXAMPLES, task.outputs)).astype("float32")
        y[[3, 12]] = np.nan
    return y


def run(name, cached=False):
    """The arrays one setting records (keys prefixed with its name)."""
    terms_spec, task, combination = SETTINGS[name]
    outputs = CLASSES if task is None else task.outputs
    if name in kdzoo.models.list_pairs():
        no_dropout = {"dropout": 0.0}
        teacher, student = kdzoo.models.build_pair(
            name, CLASSES, teacher_overrides=no_dropout, student_overrides=no_dropout
        )
        teachers = [teacher]
    else:
        teachers = [model("teacher", 6, 10, outputs)]
        if combination:
            teachers.append(model("teacher_b", 5, 8, outputs))
        student = model("student", 3, 5, outputs, regularised=True)
    terms = None
    if terms_spec is not None:
        terms = [
            kdzoo.LossTerm(task.label_loss() if loss == "label" else loss, w, name=loss, **kw)
            for loss, w, kw in terms_spec
        ]
    distiller = kdzoo.Distiller(
        teacher=teachers if combination else teachers[0],
        student=student,
        terms=terms,
        task=task,
        **({"teacher_combination": combination} if combination else {}),
    )
    rng = np.random.default_rng(sorted(SETTINGS).index(name))
    # The models' weights only: the term weights and temperatures are variables too.
    for w in [*distiller.trainable_weights, *(v for t in teachers for v in t.weights)]:
        value = 0.3 * rng.standard_normal(w.shape).astype("float32")
        w.assign(1.0 + abs(value) if "moving_variance" in w.path else value)
    metrics = ["accuracy"] if task is None else task.keras_metrics()
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), metrics=metrics)
    x = {
        t.name: rng.standard_normal((EXAMPLES, *t.shape[1:])).astype("float32")
        for t in teachers[0].inputs
    }
    y = labels(task, rng)
    weights = rng.uniform(0.5, 2.0, EXAMPLES).astype("float32")
    if cached:
        x = kdzoo.distillation.arrays_with_teacher_outputs(distiller.ensemble, x, batch_size=BATCH)
    history = distiller.fit(
        x, y, sample_weight=weights, batch_size=BATCH, epochs=1, shuffle=False, verbose=0
    )
    prefix = f"{name}{'+cached' if cached else ''}/"
    out = {prefix + "history/" + k: np.float64(v[-1]) for k, v in history.history.items()}
    trained = [*distiller.student.weights]
    for adapter in distiller.adapters.values():
        trained += adapter.weights
    if distiller.teacher_gate is not None:
        trained += distiller.teacher_gate.weights
    for i, w in enumerate(trained):
        out[f"{prefix}weight/{i}/{w.path}"] = keras.ops.convert_to_numpy(w.value)
    evaluation = distiller.evaluate(
        x, y, sample_weight=weights, batch_size=BATCH, verbose=0, return_dict=True
    )
    out.update({prefix + "evaluate/" + k: np.float64(v) for k, v in evaluation.items()})
    out[prefix + "predict"] = distiller.predict(x, batch_size=BATCH, verbose=0)
    return out


def main(path):
    out = {}
    for name in SETTINGS:
        out.update(run(name))
    out.update(run("classification", cached=True))
    np.savez(path, backend=keras.config.backend(), **out)


if __name__ == "__main__":
    main(sys.argv[1])
