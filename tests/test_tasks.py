"""Task types (``kdzoo.tasks``): label checks, heads, losses and metrics per kind, and the
exact report metrics against brute-force NumPy references."""

import itertools

import keras
import numpy as np
import pytest
from helpers import run_model_saving_test

from kdzoo.losses import HardLabelCrossentropy, SoftTargetKLDivergence
from kdzoo.losses.task_terms import MultiLabelKLDivergence, RegressionToTeacher
from kdzoo.tasks import KINDS, Task, average_precision, roc_auc


def brute_auc(scores, truth):
    """P(score of a positive > score of a negative), ties half, over every pair."""
    pos, neg = scores[truth], scores[~truth]
    pairs = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)]
    return float(np.mean(pairs))


def brute_average_precision(scores, truth):
    """Σ (R(t) − R(t_prev)) P(t) over the distinct thresholds t, highest first."""
    total, previous_recall = 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        chosen = scores >= t
        precision = (truth & chosen).sum() / chosen.sum()
        recall = (truth & chosen).sum() / truth.sum()
        total += (recall - previous_recall) * precision
        previous_recall = recall
    return total


@pytest.mark.parametrize("ties", [False, True])
def test_roc_auc_and_average_precision_equal_their_definitions(ties):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=60)
    if ties:
        scores = np.round(scores, 0)  # a handful of distinct values: many ties
    truth = rng.random(60) < 1 / (1 + np.exp(-2 * scores))
    assert roc_auc(scores, truth) == pytest.approx(brute_auc(scores, truth), abs=1e-12)
    expected = brute_average_precision(scores, truth)
    assert average_precision(scores, truth) == pytest.approx(expected, abs=1e-12)
    # Keras' bucketed AUC agrees closely.
    keras_auc = keras.metrics.AUC(num_thresholds=2000)
    keras_auc.update_state(truth, 1 / (1 + np.exp(-scores)))
    assert float(keras_auc.result()) == pytest.approx(roc_auc(scores, truth), abs=2e-3)


def test_auc_of_perfect_reversed_and_one_class_scores():
    truth = np.array([0, 0, 1, 1], bool)
    assert roc_auc([0.1, 0.2, 0.8, 0.9], truth) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], truth) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], truth) == 0.5
    assert average_precision([0.1, 0.2, 0.8, 0.9], truth) == 1.0
    with pytest.raises(ValueError, match="needs both classes.*0 positive of 3"):
        roc_auc([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(ValueError, match="score 1 is not finite"):
        roc_auc([0.1, np.nan, 0.3], [0, 1, 1])


def test_aucs_rank_the_logits_so_confident_outputs_do_not_tie():
    # σ in float64 rounds 50, 40 and 38 to 1.0: ranked on probabilities they would tie.
    task = Task.binary()
    logits = np.array([50.0, 40.0, 38.0, -38.0, -40.0, -50.0])
    labels = np.array([1, 1, 0, 1, 0, 0])
    got = task.report(logits, labels)  # [rows] outputs are read as one column
    assert got["roc_auc"] == pytest.approx(brute_auc(logits, labels == 1))  # 8/9
    assert got["roc_auc"] == pytest.approx(8 / 9)
    assert got["pr_auc"] == pytest.approx(brute_average_precision(logits, labels == 1))
    # Full relative precision for negative logits: σ(−700) = e^−700 / (1 + e^−700).
    assert task.probabilities(np.array([[-700.0]]))[0] == pytest.approx(np.exp(-700.0))


def test_classification_report_and_losses():
    rng = np.random.default_rng(1)
    task = Task.classification(["cat", "dog", "owl"])
    logits = rng.normal(size=(40, 3))
    labels = rng.integers(0, 3, 40)
    got = task.report(logits, labels)
    predicted = logits.argmax(-1)
    assert got["accuracy"] == pytest.approx(np.mean(predicted == labels))
    f1 = keras.metrics.F1Score(average="macro")
    f1.update_state(np.eye(3)[labels], np.eye(3)[predicted])
    assert got["macro_f1"] == pytest.approx(float(f1.result()), abs=1e-6)
    assert isinstance(task.label_loss(0.1), HardLabelCrossentropy)
    assert isinstance(task.distillation_loss(2.0), SoftTargetKLDivergence)
    assert task.selection == "accuracy" and task.better(0.9, 0.8)


def test_classification_macro_f1_averages_the_classes_that_occur():
    # Four classes; "owl" (2) is neither a label nor a prediction, so it adds no F1 of 0.
    task = Task.classification(["cat", "dog", "owl", "bat"])
    labels = np.array([0, 0, 1, 1, 3, 3])
    predicted = np.array([0, 1, 1, 1, 3, 0])
    got = task.report(np.eye(4)[predicted], labels)
    # cat: P 1/2, R 1/2 -> 1/2; dog: P 2/3, R 1 -> 4/5; bat: P 1, R 1/2 -> 2/3.
    assert got["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    # A class that is only predicted still counts, with its F1 of 0.
    got = task.report(np.eye(4)[np.array([0, 1, 1, 1, 3, 2])], labels)
    assert got["macro_f1"] == pytest.approx((2 / 3 + 4 / 5 + 2 / 3 + 0) / 4)


def test_binary_report_matches_keras_precision_recall():
    rng = np.random.default_rng(2)
    task = Task.binary(("ham", "spam"), threshold=0.7)
    logits = rng.normal(size=(50, 1))
    labels = rng.integers(0, 2, 50)
    got = task.report(logits, labels)
    probability = 1 / (1 + np.exp(-logits[:, 0]))
    predicted = probability > 0.7
    precision, recall = keras.metrics.Precision(), keras.metrics.Recall()
    precision.update_state(labels, predicted)
    recall.update_state(labels, predicted)
    p, r = float(precision.result()), float(recall.result())
    assert got["precision"] == pytest.approx(p) and got["recall"] == pytest.approx(r)
    assert got["f1"] == pytest.approx(2 * p * r / (p + r))
    assert got["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert got["roc_auc"] == pytest.approx(brute_auc(logits[:, 0], labels == 1))
    assert got["pr_auc"] == pytest.approx(brute_average_precision(logits[:, 0], labels == 1))
    np.testing.assert_array_equal(task.predict(logits), predicted.astype(int))
    np.testing.assert_allclose(task.probabilities(logits), probability)
    assert isinstance(task.distillation_loss(), MultiLabelKLDivergence)


def test_multi_label_report_is_per_label_and_skips_labels_with_one_class():
    rng = np.random.default_rng(3)
    task = Task.multi_label(["red", "round", "big"])
    logits = rng.normal(size=(30, 3))
    labels = (rng.random((30, 3)) < 0.5).astype(int)
    labels[:, 2] = 1  # "big" is present everywhere: its AUC is undefined
    got = task.report(logits, labels)
    truth = labels == 1
    aucs = [brute_auc(logits[:, j], truth[:, j]) for j in (0, 1)]
    assert got["macro_roc_auc"] == pytest.approx(np.mean(aucs)) and got["auc_labels"] == 2
    aps = [brute_average_precision(logits[:, j], truth[:, j]) for j in (0, 1)]
    assert got["macro_pr_auc"] == pytest.approx(np.mean(aps))
    guess = logits > 0
    assert got["accuracy"] == pytest.approx(np.mean(guess == truth))
    assert got["exact_match"] == pytest.approx(np.mean((guess == truth).all(1)))
    tp, fp, fn = (guess & truth).sum(), (guess & ~truth).sum(), (~guess & truth).sum()
    assert got["micro_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    f1 = keras.metrics.F1Score(average="macro", threshold=0.5)
    f1.update_state(labels.astype("float32"), guess.astype("float32"))
    assert got["macro_f1"] == pytest.approx(float(f1.result()), abs=1e-6)
    assert task.selection == "macro_roc_auc"
    with pytest.raises(ValueError, match="no label has both classes"):
        task.report(logits, np.ones_like(labels))


def test_regression_report_in_original_units_with_train_statistics():
    rng = np.random.default_rng(4)
    train = rng.normal(50.0, 10.0, size=(200, 2))
    task = Task.regression(["price", "rent"]).fit_normalisation(train)
    mean = train.sum(0) / len(train)
    np.testing.assert_allclose(task.target_mean, mean)
    np.testing.assert_allclose(task.target_std, np.sqrt(((train - mean) ** 2).mean(0)))
    normalised = task.normalise(train)
    np.testing.assert_allclose(normalised.mean(0), 0, atol=1e-5)
    truth = rng.normal(50.0, 10.0, size=(40, 2))
    outputs = task.normalise(truth) + rng.normal(0, 0.3, size=(40, 2))  # what a model gives
    got = task.report(outputs, truth)
    predicted = task.predict(outputs)
    np.testing.assert_allclose(predicted, outputs * train.std(0) + train.mean(0), rtol=1e-6)
    assert got["mse"] == pytest.approx(np.mean((predicted - truth) ** 2))
    assert got["mae"] == pytest.approx(np.mean(np.abs(predicted - truth)))
    r2 = keras.metrics.R2Score()
    r2.update_state(truth, predicted)
    assert got["r2"] == pytest.approx(float(r2.result()), abs=1e-5)
    assert task.selection == "mse" and task.better(1.0, 2.0)
    assert isinstance(task.distillation_loss(), RegressionToTeacher)
    constant = Task.regression(num_targets=1).fit_normalisation(np.full(5, 3.0))
    assert constant.target_std == (1.0,)


def test_report_edge_cases_give_defined_numbers_or_clear_errors():
    one = Task.regression(num_targets=1)
    # [rows] outputs of a one-target task are one column, not a broadcast [rows, rows].
    assert one.report([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]) == {
        "mse": 0.0,
        "mae": 0.0,
        "r2": 1.0,
    }
    # A constant target: R² 1 if predicted exactly, else 0 (scikit-learn's force_finite).
    assert one.report([3.0, 3.0], [3.0, 3.0])["r2"] == 1.0
    assert one.report([3.0, 4.0], [3.0, 3.0])["r2"] == 0.0
    with pytest.raises(ValueError, match="no rows"):
        one.report(np.zeros((0, 1)), np.zeros((0, 1)))
    with pytest.raises(ValueError, match="row 1 is not finite.*diverge"):
        one.report([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="has 3 outputs per row; got shape \\(2, 2\\)"):
        Task.classification(num_classes=3).report(np.zeros((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="needs both classes"):
        Task.binary().report([0.3, -0.2], [1, 1])
    # NaN never wins a selection; np.int64 widths are ints.
    task = Task.regression(num_targets=np.int64(2))
    assert task.outputs == 2 and task.better(1.0, float("nan"))
    assert not task.better(float("nan"), 1.0)
    assert Task(kind="binary").outputs == 1


@pytest.mark.parametrize(
    "task, labels, message",
    [
        (Task.classification(num_classes=3), [0, 1, 3], r"row 2: 3 is not a class id in 0..2 \("),
        (Task.binary(), [0, 1, 0.5], "row 2"),
        (Task.multi_label(num_labels=2), [[0, 1], [1, 2]], "row 1.*not 0 or 1"),
        (Task.regression(num_targets=2), [[0.0, 1.0], [np.nan, 2.0]], "row 1.*finite"),
        (Task.regression(num_targets=2), [0.0, 1.0], "rows of 2 values"),
    ],
)
def test_bad_labels_are_named_by_row(task, labels, message):
    with pytest.raises(ValueError, match=message):
        task.check_labels(labels, "train.csv labels")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "ranking"}, "`kind` must be one of"),
        ({"kind": "classification", "outputs": 1}, "has >= 2 outputs"),
        ({"kind": "binary", "outputs": 2}, "has 1 outputs"),
        ({"kind": "multi_label", "outputs": 2, "names": ("a",)}, "1 names for 2 outputs"),
        ({"kind": "multi_label", "outputs": 2, "threshold": 1.0}, "threshold"),
        ({"kind": "classification", "outputs": 3, "target_mean": (0.0,)}, "regression only"),
        ({"kind": "regression"}, "`outputs` must be an int; got None"),
        ({"kind": "regression", "outputs": 1, "target_mean": (0,), "target_std": (0,)}, "> 0"),
        ({"kind": "regression", "outputs": 1, "selection": "accuracy"}, "not a regression"),
    ],
)
def test_invalid_tasks_are_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Task(**kwargs)


def test_a_task_round_trips_through_its_dict():
    task = Task.regression(["y"]).fit_normalisation(np.arange(10.0))
    assert Task.from_dict(task.to_dict()) == task
    with pytest.raises(ValueError, match="unknown key 'classes'"):
        Task.from_dict({**task.to_dict(), "classes": 3})


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_trains_with_its_head_loss_and_metrics_and_round_trips(kind, tmp_path):
    task = {
        "classification": Task.classification(num_classes=3),
        "binary": Task.binary(),
        "multi_label": Task.multi_label(num_labels=4),
        "regression": Task.regression(num_targets=2),
    }[kind]
    rng = np.random.default_rng(5)
    x = rng.normal(size=(32, 6)).astype("float32")
    labels = {
        "classification": rng.integers(0, 3, 32),
        "binary": rng.integers(0, 2, 32),
        "multi_label": (rng.random((32, 4)) < 0.5).astype(int),
        "regression": rng.normal(size=(32, 2)),
    }[kind]
    y = task.check_labels(labels)
    inputs = keras.Input((6,), name="features")
    model = keras.Model(inputs, task.head()(keras.layers.Dense(8, activation="relu")(inputs)))
    model.compile(optimizer="adam", loss=task.label_loss(), metrics=task.keras_metrics())
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    # Keras logs the metrics under the report's names, the selection metric among them.
    names = {m.name for m in task.keras_metrics()}
    assert task.selection in names and names <= set(history.history)
    run_model_saving_test(model, x, tmp_path / f"{kind}.keras")
    report = task.report(model.predict(x, verbose=0), labels)
    assert set(task.metric_names()) <= set(report)


@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_keras_accuracy_at_a_threshold_equals_the_reports(threshold):
    rng = np.random.default_rng(6)
    task = Task.multi_label(num_labels=3, threshold=threshold)
    logits = rng.normal(0, 2, size=(64, 3)).astype("float32")
    labels = (rng.random((64, 3)) < 0.5).astype("float32")
    accuracy = task.keras_metrics()[0]
    accuracy.update_state(labels, logits)
    expected = np.mean((1 / (1 + np.exp(-logits)) > threshold) == labels)
    assert float(accuracy.result()) == pytest.approx(expected, abs=1e-6)
    assert task.report(logits, labels)["accuracy"] == pytest.approx(expected)
