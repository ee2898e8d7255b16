"""The Distiller beyond single-label classification (``task=``): which rows count as
unlabelled per task kind, the default terms, the objective against NumPy, and saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import run_model_saving_test, tiny_model

import kdzoo
from kdzoo.labels import UNLABELLED, labelled_weights
from kdzoo.losses.task_terms import MultiLabelKLDivergence, RegressionToTeacher
from kdzoo.tasks import Task

REGRESSION = Task.regression(num_targets=2)
MULTI_LABEL = Task.multi_label(num_labels=3)


def _distiller(task, terms=None, lr=0.1):
    teacher = tiny_model("teacher", 12, seed=1, classes=task.outputs)
    student = tiny_model("student", 5, seed=2, classes=task.outputs)
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms, task=task)
    distiller.compile(optimizer=keras.optimizers.SGD(lr), metrics=task.keras_metrics())
    return distiller


def _x(n=8):
    return {"x": np.random.default_rng(3).standard_normal((n, 6)).astype("float32")}


def test_labelled_weights_per_kind():
    # Regression: -1 is a value, NaN marks a row without a label.
    targets = np.array([[-1.0, 2.0], [np.nan, np.nan], [0.5, -3.0]], "float32")
    labels, weights, count = labelled_weights(targets, kind="regression")
    np.testing.assert_array_equal(np.asarray(labels), [[-1.0, 2.0], [0.0, 0.0], [0.5, -3.0]])
    np.testing.assert_array_equal(np.asarray(weights), [1.0, 0.0, 1.0])
    assert float(count) == 2.0
    # Multi-label: a row of UNLABELLED has no label; sample weights still apply.
    tags = np.array([[1, 0, 1], [UNLABELLED] * 3, [0, 0, 0]], "float32")
    labels, weights, count = labelled_weights(tags, np.array([2.0, 5.0, 0.5]), "multi_label")
    np.testing.assert_array_equal(np.asarray(labels), [[1, 0, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(weights), [2.0, 0.0, 0.5])
    assert float(count) == 2.0
    # Binary: one id per row, as classification.
    _, weights, _ = labelled_weights(np.array([1, UNLABELLED, 0]), kind="binary")
    np.testing.assert_array_equal(np.asarray(weights), [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="`kind` must be one of"):
        labelled_weights(tags, kind="ranking")


def test_default_terms_follow_the_task():
    terms = kdzoo.default_terms(temperature=2.0, task=MULTI_LABEL)
    assert [t.name for t in terms] == ["label", "kd"]
    assert (
        isinstance(terms[0].loss, keras.losses.BinaryCrossentropy) and terms[0].target == "labels"
    )
    assert isinstance(terms[1].loss, MultiLabelKLDivergence) and terms[1].loss.temperature == 2.0
    terms = kdzoo.default_terms(task=REGRESSION)
    assert isinstance(terms[0].loss, keras.losses.MeanSquaredError)
    assert isinstance(terms[1].loss, RegressionToTeacher)
    # Classification keeps its cross-entropy and KL.
    assert [t.name for t in kdzoo.default_terms(task=Task.classification(num_classes=3))] == [
        "ce",
        "kd",
    ]


def test_regression_objective_masks_nan_rows_and_keeps_negative_targets():
    """``0.5 · Σ_labelled MSE(y, s) / B + 0.5 · mean MSE(t, s)`` with NaN rows unlabelled
    and negative targets labelled, reported per the rows each term applies to."""
    x = _x()
    y = np.random.default_rng(4).standard_normal((8, 2)).astype("float32") - 1.0
    y[[1, 4, 6]] = np.nan
    distiller = _distiller(REGRESSION)
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    t = distiller.teacher.predict(x, verbose=0).astype("float64")
    s = distiller.student.predict(x, verbose=0).astype("float64")
    labelled = ~np.isnan(y).any(axis=1)
    label_mse = ((s - np.nan_to_num(y)) ** 2).mean(axis=1)
    teacher_mse = ((s - t) ** 2).mean(axis=1)
    assert labelled.sum() == 5 and (y[labelled] < 0).any()
    assert logs["label_loss"] == pytest.approx(label_mse[labelled].mean(), rel=1e-5)
    assert logs["kd_loss"] == pytest.approx(teacher_mse.mean(), rel=1e-5)
    expected = 0.5 * label_mse[labelled].sum() / 8 + 0.5 * teacher_mse.mean()
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["mse"] == pytest.approx(label_mse[labelled].mean(), rel=1e-5)


def test_multi_label_batch_without_labels_trains_on_the_teacher_term_only():
    x = _x()
    y = np.full((8, 3), UNLABELLED, "float32")
    both = _distiller(MULTI_LABEL)
    teacher_only = _distiller(MULTI_LABEL, terms=[kdzoo.LossTerm(MultiLabelKLDivergence(4.0), 0.5)])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    logs = both.fit(ds, epochs=1, verbose=0)
    teacher_only.fit(ds, epochs=1, verbose=0)
    for a, b in zip(both.student.weights, teacher_only.student.weights, strict=True):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-7)
    assert logs.history["label_loss"] == [0.0]
    assert logs.history["kd_loss"][0] > 0


def test_teacher_bounded_term_reads_the_targets():
    """Chen et al.'s term pays the student's squared error only where it is not better
    than the teacher's (margin 0)."""
    x = _x()
    y = np.random.default_rng(5).standard_normal((8, 2)).astype("float32")
    term = kdzoo.LossTerm.parse("teacher_bounded")
    assert term.target == "teacher" and term.needs_labels
    distiller = _distiller(REGRESSION, terms=[term])
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    t = distiller.teacher.predict(x, verbose=0).astype("float64")
    s = distiller.student.predict(x, verbose=0).astype("float64")
    student_error, teacher_error = ((s - y) ** 2).mean(1), ((t - y) ** 2).mean(1)
    expected = np.where(student_error > teacher_error, student_error, 0.0)
    assert logs["teacher_bounded_loss"] == pytest.approx(expected.mean(), rel=1e-5, abs=1e-7)


def test_task_is_checked_and_saved(tmp_path):
    teacher = tiny_model("teacher", 12, seed=1, classes=2)
    student = tiny_model("student", 5, seed=2, classes=3)
    with pytest.raises(ValueError, match="returns 3 outputs per example; the regression task"):
        kdzoo.Distiller(teacher=teacher, student=student, task=REGRESSION)
    teachers = [tiny_model(f"t{i}", 12, seed=i, classes=2) for i in range(2)]
    small = tiny_model("s", 5, seed=3, classes=2)
    with pytest.raises(ValueError, match="a regression task takes one teacher"):
        kdzoo.Distiller(teacher=teachers, student=small, task=REGRESSION)
    with pytest.raises(TypeError, match="`task` must be a kdzoo.tasks.Task"):
        kdzoo.Distiller(teacher=teacher, student=small, task="regression")

    distiller = _distiller(REGRESSION.fit_normalisation(np.array([[0.0, 1.0], [2.0, 5.0]])))
    loaded = run_model_saving_test(distiller, _x(), tmp_path / "distiller.keras")
    assert loaded.task == distiller.task and loaded.task.target_mean == (1.0, 3.0)
    # ... and trains on after loading, with the unlabelled rows still masked.
    y = np.zeros((8, 2), "float32")
    y[0] = np.nan
    logs = loaded.evaluate(_x(), y, batch_size=8, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"])


def test_new_losses_are_named_in_the_registry():
    assert {
        "logit_mse",
        "kd_multi_label",
        "teacher_mse",
        "teacher_huber",
        "teacher_bounded",
    } <= set(kdzoo.losses.names())
    assert kdzoo.losses.get("teacher_huber").kind == "huber"
    assert kdzoo.losses.get("teacher_mse").kind == "mse"
    assert kdzoo.LossTerm.parse("kd_multi_label:0.5", temperature=3.0).loss.temperature == 3.0


@pytest.mark.parametrize(
    "task",
    [Task.binary(), MULTI_LABEL, REGRESSION.fit_normalisation(np.array([[0.0, 1.0], [2.0, 5.0]]))],
    ids=["binary", "multi_label", "regression"],
)
def test_keras_round_trip_per_task_kind(tmp_path, task):
    """A Distiller of each kind saves to ``.keras`` and loads (safe mode) with its task, its
    default terms and the same outputs; so does its student alone."""
    distiller = _distiller(task)
    loaded = run_model_saving_test(distiller, _x(), tmp_path / "distiller.keras")
    assert loaded.task == task
    assert [type(t.loss) for t in loaded.loss_terms] == [type(t.loss) for t in distiller.loss_terms]
    run_model_saving_test(distiller.student, _x(), tmp_path / "student.keras")


@pytest.mark.parametrize(
    ("task", "spec", "instead"),
    [
        (Task.binary(), "kd", "'kd_multi_label', 'logit_mse'"),
        (Task.binary(), "ce", "'kd_multi_label', 'logit_mse'"),
        (MULTI_LABEL, "dkd", "'kd_multi_label', 'logit_mse'"),
        (MULTI_LABEL, "nkd", "'kd_multi_label', 'logit_mse'"),
        (REGRESSION, "kd_std", "'teacher_mse', 'teacher_huber', 'teacher_bounded', 'logit_mse'"),
    ],
    ids=["binary-kd", "binary-ce", "multi_label-dkd", "multi_label-nkd", "regression-kd_std"],
)
def test_softmax_terms_are_refused_beyond_classification(task, spec, instead):
    """On a binary task's one logit a softmax is constant: ``kd`` would be 0 and the teacher
    would teach nothing. The Distiller refuses what ``TERMS_BY_KIND`` refuses the recipe."""
    teacher = tiny_model("teacher", 12, seed=1, classes=task.outputs)
    student = tiny_model("student", 5, seed=2, classes=task.outputs)
    terms = [kdzoo.LossTerm(task.label_loss(), 0.5, target="labels", name="label")]
    terms.append(kdzoo.LossTerm.parse(f"{spec}:0.5"))
    message = (
        f"Loss term '{spec}' \\('{spec}'\\) trains classification students, not a {task.kind} "
        f"task's: use {instead} against the teacher"
    )
    with pytest.raises(ValueError, match=message):
        kdzoo.Distiller(teacher=teacher, student=student, terms=terms, task=task)


def test_term_check_names_a_renamed_loss_and_keeps_task_terms():
    task = Task.binary()
    teacher = tiny_model("teacher", 12, seed=1, classes=1)
    student = tiny_model("student", 5, seed=2, classes=1)
    renamed = kdzoo.LossTerm(kdzoo.losses.SoftTargetKLDivergence(2.0), name="soft")
    with pytest.raises(ValueError, match=r"Loss term 'soft' \('kd'\) .* not a binary task's"):
        kdzoo.Distiller(teacher=teacher, student=student, terms=[renamed], task=task)
    # The binary terms, the label loss and a feature term all build.
    terms = [
        kdzoo.LossTerm(task.label_loss(), target="labels", name="label"),
        kdzoo.LossTerm.parse("kd_multi_label"),
        kdzoo.LossTerm.parse("logit_mse"),
        kdzoo.LossTerm("feature_mse", 0.1, teacher_output="embedding", student_output="embedding"),
    ]
    kdzoo.Distiller(teacher=teacher, student=student, terms=terms, task=task)
    kdzoo.Distiller(teacher=teacher, student=student, task=task)


def test_classification_keeps_every_term():
    """The check leaves single-label classification (``task=None`` or a classification
    task) as it was, softmax terms and all."""
    teacher = tiny_model("teacher", 12, seed=1, classes=3)
    student = tiny_model("student", 5, seed=2, classes=3)
    specs = ("ce", "kd", "kd_std", "dkd", "nkd", "logit_mse", "kd_multi_label")
    for task in (None, Task.classification(num_classes=3)):
        terms = [kdzoo.LossTerm.parse(spec) for spec in specs]
        kdzoo.Distiller(teacher=teacher, student=student, terms=terms, task=task)
