"""Serving exports of binary, multi-label and regression students: what each signature
returns, checked in a fresh interpreter that imports TensorFlow only (as TF Serving would
load the graph), against ``kdzoo.tasks.Task`` computed in this process."""

import json

import keras
import numpy as np
import pytest
from helpers import last_json_line, run_python

from kdzoo import datasets, models
from kdzoo.serving import export_student, read_metadata
from kdzoo.serving.check import check_export
from kdzoo.tasks import Task

#: Loads the export with TensorFlow alone and runs serving_default on raw audio; prints
#: the outputs as JSON and which kdzoo/keras modules the process imported.
_SERVE = """
import json, sys
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
audio = np.load(sys.argv[2])
out = loaded.signatures["serving_default"](audio=tf.constant(audio))
empty = loaded.signatures["serving_default"](audio=tf.zeros([0, audio.shape[1]]))
print(json.dumps({
    "outputs": {k: v.numpy().tolist() if v.dtype != tf.string else [b.decode() for b in
                v.numpy()] for k, v in out.items()},
    "empty": {k: list(v.shape) for k, v in empty.items()},
    "kdzoo": any(m.startswith("kdzoo") for m in sys.modules),
}))
"""


@pytest.fixture(scope="module")
def tiny_audio():
    data = datasets.load("embedded", batch_size=32, seed=0, modalities=("audio",), num_examples=120)
    for split in data.arrays.values():
        split["positive"] = split["tags"][:, 0]
    return data


@pytest.mark.parametrize(
    "task, key, outputs",
    [
        (
            Task.binary(("no", "yes"), threshold=0.4),
            "positive",
            ("probabilities", "class_id", "class_name"),
        ),
        (
            Task.multi_label(("a", "b", "c", "d"), threshold=0.6),
            "tags",
            ("probabilities", "labels"),
        ),
        (Task.regression(["target"]), "target", ("values",)),
    ],
    ids=["binary", "multi_label", "regression"],
)
def test_task_signatures_in_a_fresh_tensorflow_process(tiny_audio, tmp_path, task, key, outputs):
    data = datasets.with_task(tiny_audio, task, key)
    task = data.task  # standardised, for regression
    keras.utils.set_random_seed(0)
    student = models.build(
        "audio_crnn",
        "student",
        num_classes=task.outputs,
        audio_shape=data.audio_config.feature_shape,
    )
    path = export_student(student, tmp_path / "models", name="tasked", data=data)
    metadata = read_metadata(path)
    assert metadata["task"] == task.to_dict()
    assert sorted(metadata["signatures"]["serving_default"]["outputs"]) == sorted(outputs)
    # The recorded metrics are the task's, e.g. test_mse for regression.
    assert {f"test_{m}" for m in task.metric_names()} <= set(metadata["metrics"])

    waves = data.arrays["test"]["audio"][:5].astype(np.float32)
    np.save(tmp_path / "audio.npy", waves)
    proc = run_python(["-I", "-c", _SERVE, path, tmp_path / "audio.npy"], check=True)
    served = last_json_line(proc.stdout)
    assert served["kdzoo"] is False
    raw = student.predict(data.pipeline("test", training=False).take(1), verbose=0)[:5]
    got = {k: np.asarray(v) for k, v in served["outputs"].items()}
    assert sorted(got) == sorted(outputs)
    if task.kind == "regression":
        np.testing.assert_allclose(got["values"], task.predict(raw), rtol=1e-4, atol=1e-5)
        assert task.target_std[0] != 1.0  # the standardisation was undone in the graph
    elif task.kind == "multi_label":
        np.testing.assert_allclose(got["probabilities"], task.probabilities(raw), atol=1e-5)
        np.testing.assert_array_equal(got["labels"], task.predict(raw))
    else:
        positive = task.probabilities(raw)
        np.testing.assert_allclose(got["probabilities"][:, 1], positive, atol=1e-5)
        np.testing.assert_allclose(got["probabilities"].sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(got["class_id"], task.predict(raw))
        assert list(got["class_name"]) == [("no", "yes")[i] for i in task.predict(raw)]
    assert all(shape[0] == 0 for shape in served["empty"].values())
    assert set(served["empty"]) == set(outputs)
    json.dumps(metadata)  # the metadata stays plain JSON


def _flip_threshold(meta, served, key):
    """A threshold that turns at least one served 0/1 answer over (whatever the untrained
    student outputs): 1.0 if some answer is 1, else 0.0."""
    meta["task"]["threshold"] = 1.0 if np.asarray(served[key]).any() else 0.0


def _declare_two_values(meta, served):
    meta["signatures"]["serving_default"]["outputs"]["values"]["shape"] = [-1, 2]


def _reverse_class_names(meta, served):
    meta["class_names"] = meta["class_names"][::-1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, key, shown, break_it, failure",
    [
        (
            None,  # single-label classification: the dataset's own classes
            "label",
            "class_name ['",
            _reverse_class_names,
            "class_name does not match class_id: row 0 has class_id",
        ),
        (
            Task.binary(("no", "yes"), threshold=0.4),
            "positive",
            "class_name ['",
            lambda meta, served: _flip_threshold(meta, served, "class_id"),
            "class_id is not the positive probability above the threshold",
        ),
        (
            Task.multi_label(("a", "b", "c", "d"), threshold=0.6),
            "tags",
            "labels [[",
            lambda meta, served: _flip_threshold(meta, served, "labels"),
            "labels are not the probabilities above the threshold",
        ),
        (
            Task.regression(["target"]),
            "target",
            "values [[",
            _declare_two_values,
            "values is float32 [5, 1], declared float32 [5, 2]",
        ),
    ],
    ids=["classification", "binary", "multi_label", "regression"],
)
def test_check_export_checks_every_task_kind(
    tiny_audio, tmp_path, task, key, shown, break_it, failure
):
    import shutil

    from helpers import serve

    data = tiny_audio if task is None else datasets.with_task(tiny_audio, task, key)
    keras.utils.set_random_seed(0)
    student = models.build(
        "audio_crnn",
        "student",
        num_classes=10 if task is None else data.task.outputs,
        audio_shape=data.audio_config.feature_shape,
    )
    path = export_student(student, tmp_path / "models", name="tasked", data=data)
    waves = {"audio": data.arrays["test"]["audio"][:5].astype(np.float32)}
    report = check_export(path, inputs=waves)
    assert report.passed, report.format()
    assert shown in report.step("fresh-process load").detail
    outputs = "values" if task is not None and task.kind == "regression" else "probabilities"
    assert f"{outputs} max |diff|" in report.step("saved_model_cli run").detail
    if outputs == "probabilities":  # the session loader's answers, row by row
        assert "the same on 5 of 5 rows" in report.step("saved_model_cli run").detail
    assert f"{outputs} max |diff|" in report.step("outputs as exported").detail

    broken = tmp_path / "broken" / "1"  # metadata that no longer describes the graph
    shutil.copytree(path, broken)
    meta = read_metadata(broken)
    break_it(meta, serve(path, **waves))
    (broken / "kdzoo_export.json").write_text(json.dumps(meta), encoding="utf-8")
    report = check_export(broken, inputs=waves)
    step = report.step("fresh-process load")
    assert not step.passed and not report.passed, report.format()
    assert failure in step.detail


def test_the_fresh_check_knows_each_task_kind_outputs():
    # fresh_check.py runs without kdzoo, so it keeps its own copy of the outputs per kind.
    from kdzoo.serving.export import OUTPUT_KEYS, TASK_OUTPUTS
    from kdzoo.serving.fresh_check import KIND_OUTPUTS
    from kdzoo.tasks import KINDS

    assert sorted(KIND_OUTPUTS) == sorted(KINDS)
    expected = {"classification": OUTPUT_KEYS, **TASK_OUTPUTS}
    assert {k: sorted(v) for k, v in KIND_OUTPUTS.items()} == {
        k: sorted(v) for k, v in expected.items()
    }
