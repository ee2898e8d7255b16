"""The recipe beyond single-label classification: the embedded dataset's regression target
and multi-label tags (``with_task``), the candidates and scratch tries per task, selection
on the task's metric with its standard error, and the report."""

import dataclasses

import keras
import numpy as np
import pandas as pd
import pytest

from kdzoo import datasets, models
from kdzoo.data.pipeline import validate_arrays
from kdzoo.datasets import embedded
from kdzoo.datasets.loading import stratified_holdout
from kdzoo.defaults import DEFAULTS
from kdzoo.evaluation import predict_with_labels
from kdzoo.labels import UNLABELLED
from kdzoo.losses import HardLabelCrossentropy
from kdzoo.recipe import RECIPE, SCRATCH, Candidate, run, scratch_tries
from kdzoo.recipe.callbacks import _mode
from kdzoo.recipe.report import FILES
from kdzoo.recipe.selection import BOOTSTRAP_RESAMPLES, paired_gain, paired_metric_gain
from kdzoo.tasks import Task

AV = ("image", "audio")


@pytest.fixture(scope="module")
def tiny_data():
    return datasets.load(
        "embedded", batch_size=64, seed=0, modalities=AV, num_examples=400, validation_fraction=0.2
    )


# --------------------------------------------------------------------------- data
def test_embedded_targets_and_tags_are_seeded_functions_of_the_latent():
    a, b = embedded.generate(600, seed=3), embedded.generate(600, seed=3)
    np.testing.assert_array_equal(a["target"], b["target"])
    np.testing.assert_array_equal(a["tags"], b["tags"])
    assert a["target"].shape == (600, 1) and a["target"].dtype == np.float32
    assert a["tags"].shape == (600, 4) and set(np.unique(a["tags"])) == {0, 1}
    rates = a["tags"].mean(axis=0)
    assert rates[2] > rates[0] > rates[1] > rates[3] > 0.05  # thresholds -0.5 < 0 < 0.5 < 1
    # Both depend on the class (through the latent): the class means differ.
    means = [a["target"][a["label"] == c].mean() for c in range(10)]
    assert np.ptp(means) > 1.0


def test_with_task_standardises_on_train_and_keeps_the_class_label(tiny_data):
    data = datasets.with_task(tiny_data, Task.regression(["target"]), "target")
    train = tiny_data.arrays["train"]["target"].astype(np.float64)
    assert data.task.target_mean == pytest.approx((train.mean(),))
    assert data.task.target_std == pytest.approx((train.std(),))
    np.testing.assert_allclose(data.arrays["train"]["label"].mean(), 0.0, atol=1e-5)
    np.testing.assert_array_equal(
        data.arrays["test"]["class_label"], tiny_data.arrays["test"]["label"]
    )
    _, y = next(iter(data.splits["validation"]))
    assert y.shape[1:] == (1,) and y.dtype == "float32"
    assert tiny_data.task is None  # the original is unchanged
    with pytest.raises(ValueError, match="classification is the datasets' own labels"):
        datasets.with_task(tiny_data, Task.classification(num_classes=10), "label")
    with pytest.raises(KeyError, match="have no 'nope' array"):
        datasets.with_task(tiny_data, Task.regression(num_targets=1), "nope")
    with pytest.raises(ValueError, match="rows of 3 values; got shape"):
        datasets.with_task(tiny_data, Task.multi_label(num_labels=3), "tags")


def test_task_labels_are_checked_row_by_row():
    arrays = {"x": np.zeros((4, 2), "float32"), "label": np.array([[0.5], [np.inf], [1], [-2]])}
    with pytest.raises(ValueError, match=r"row 1: label \[inf\] is not a finite number"):
        validate_arrays(arrays, ["x"], task=Task.regression(num_targets=1))
    arrays["label"] = np.array([[0.5], [np.nan], [1], [-2]])  # NaN: a row without a label
    _, labels, keep = validate_arrays(
        arrays, ["x"], task=Task.regression(num_targets=1), unlabelled=True
    )
    assert keep.all() and labels.dtype == np.float32 and labels[3, 0] == -2
    tags = {"x": np.zeros((3, 2)), "label": np.array([[1, 0], [UNLABELLED] * 2, [0, 2]])}
    with pytest.raises(ValueError, match=r"row 2: label \[0, 2\] is not 0 or 1 in every"):
        validate_arrays(tags, ["x"], task=Task.multi_label(num_labels=2), unlabelled=True)


def test_holdout_of_non_class_labels_is_random_and_seeded():
    targets = np.linspace(0, 1, 50)[:, None]
    held = stratified_holdout(targets, 0.2, seed=1)
    assert held.sum() == 10
    np.testing.assert_array_equal(held, stratified_holdout(targets, 0.2, seed=1))
    assert not np.array_equal(held, stratified_holdout(targets, 0.2, seed=2))


# --------------------------------------------------------------------------- candidates
def test_label_term_is_the_tasks_own_loss():
    regression = Task.regression(num_targets=1)
    terms = Candidate.parse("label:0.5,teacher_huber:0.5").loss_terms(regression)
    assert [t.name for t in terms] == ["label", "teacher_huber"]
    assert isinstance(terms[0].loss, keras.losses.MeanSquaredError)
    assert Candidate.parse("label:0.5,teacher_mse:0.5").describe() == "label:0.5,teacher_mse:0.5"
    terms = Candidate.parse("ce:0.5,kd_multi_label:0.5@ls=0.1").loss_terms(
        Task.multi_label(num_labels=2)
    )
    assert isinstance(terms[0].loss, keras.losses.BinaryCrossentropy)
    assert terms[0].loss.label_smoothing == pytest.approx(0.1)
    # Classification: "label" is the smoothed cross-entropy.
    terms = Candidate.parse("label:0.5,kd:0.5@ls=0.1").loss_terms()
    assert isinstance(terms[0].loss, HardLabelCrossentropy) and terms[0].target == "labels"
    with pytest.raises(ValueError, match="label smoothing does not apply to regression"):
        Candidate.parse("label:0.5,teacher_mse:0.5@ls=0.1").loss_terms(regression)


def test_regression_scratch_tries_vary_the_rate_only():
    names = [t.name for t in scratch_tries(4, learning_rate=2e-3, smoothing=False)]
    assert names == ["scratch", "scratch@lr=0.001", "scratch@lr=0.004", "scratch@lr=0.0005"]


def test_monitored_errors_are_minimised():
    assert _mode("val_mse") == _mode("val_mae") == _mode("val_loss") == "min"
    assert _mode("val_macro_roc_auc") == _mode("val_accuracy") == _mode("val_r2") == "max"


# --------------------------------------------------------------------------- selection
def test_paired_metric_gain_per_example_and_bootstrap():
    rng = np.random.default_rng(0)
    task = Task.regression(num_targets=1)
    y = rng.normal(size=200)
    good, bad = y + 0.1 * rng.normal(size=200), y + 0.5 * rng.normal(size=200)
    gain, se = paired_metric_gain(task, good[:, None], bad[:, None], y)
    expected = paired_gain(-((good - y) ** 2), -((bad - y) ** 2))
    assert (gain, se) == pytest.approx(expected) and gain > 0
    # AUC is not a mean over examples: a seeded paired bootstrap.
    binary = Task.binary()
    truth = (rng.random(300) < 0.5).astype(int)
    strong, weak = truth + rng.normal(size=300), truth + 3 * rng.normal(size=300)
    gain, se = paired_metric_gain(binary, strong, weak, truth, seed=4)
    report = binary.report
    assert gain == pytest.approx(report(strong, truth)["roc_auc"] - report(weak, truth)["roc_auc"])
    assert 0 < se < gain
    assert paired_metric_gain(binary, strong, weak, truth, seed=4)[1] == se
    assert BOOTSTRAP_RESAMPLES >= 100


def _run_tiny(data, **options):
    """The recipe on ``data`` with the av_to_audio pair, one epoch per phase, seed 0."""
    keras.utils.set_random_seed(0)
    shapes = {f"{m}_shape": tuple(s.shape) for m, s in data.input_specs.items()}
    teacher, student = models.build_pair("av_to_audio", data.task.outputs, **shapes)
    settings = {"teacher_epochs": 1, "epochs": 1, "batch_size": 32, "verbose": 0, **options}
    return run(teacher, student, data, teacher_inputs=AV, student_inputs=("audio",), **settings)


@pytest.mark.parametrize(
    "task, key",
    [(Task.regression(["target"]), "target"), (Task.multi_label(num_labels=4), "tags")],
    ids=["regression", "multi_label"],
)
def test_recipe_runs_selects_and_reports_per_task(tiny_data, tmp_path, task, key):
    data = datasets.with_task(tiny_data, task, key)
    result = _run_tiny(data, run_dir=tmp_path / "run")
    metric = data.task.selection
    assert result.metric == metric == ("mse" if task.kind == "regression" else "macro_roc_auc")
    table = result.table.set_index("model")
    # Reported against the test split, in the target's own units for regression.
    outputs, labels = predict_with_labels(result.student, data.pipeline("test", training=False))
    expected = data.task.report(outputs, data.task.denormalise(labels))
    assert table.loc[RECIPE, metric] == pytest.approx(expected[metric], rel=1e-5)
    if task.kind == "regression":
        error = data.task.predict(outputs) - tiny_data.arrays["test"]["target"]
        assert table.loc[RECIPE, "mse"] == pytest.approx(np.mean(error**2), rel=1e-4)
    # Three scratch tries against three candidates; the chosen one is never worse than the
    # best scratch try on validation.
    candidates = result.candidates
    assert list(candidates["kind"]).count("scratch") == 3
    assert list(candidates["kind"]).count("distil") == 3
    assert {f"validation_{m}" for m in task.metric_names()} <= set(candidates.columns)
    better = data.task.better
    scratch_value = table.loc[SCRATCH, f"validation_{metric}"]
    assert not better(scratch_value, table.loc[RECIPE, f"validation_{metric}"])
    assert result.selection.metric == metric
    assert metric in result.selection.describe()
    for name in FILES:
        assert (tmp_path / "run" / name).is_file()


# --------------------------------------------------------------------------- your own data
def _frame(n=120):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["price"] = 3 * frame["a"] - frame["b"] + 10
    frame["genres"] = ["rock|pop" if v > 0 else ("pop" if v > -1 else "") for v in frame["a"]]
    frame["spam"] = (frame["b"] > 0).astype(int)
    return frame


def test_from_dataframe_reads_each_task_kind():
    frame = _frame()
    data = datasets.from_dataframe(
        frame, label="price", numeric=["a", "b"], task="regression", test_fraction=0.2
    )
    assert data.task.kind == "regression" and data.task.names == ("price",)
    restored = data.task.denormalise(np.concatenate([data.arrays[s]["label"] for s in data.arrays]))
    np.testing.assert_allclose(np.sort(restored[:, 0]), np.sort(frame["price"]), rtol=1e-5)
    assert "_targets" not in data.arrays["train"] and "class_label" not in data.arrays["train"]

    data = datasets.from_dataframe(frame, label="genres", numeric=["a", "b"], task="multi_label")
    assert data.task.names == ("pop", "rock")
    labels = np.concatenate([data.arrays[s]["label"] for s in data.arrays])
    assert labels.shape == (120, 2) and labels.sum(axis=0).tolist() == [
        int((frame["a"] > -1).sum()),
        int((frame["a"] > 0).sum()),
    ]
    data = datasets.from_dataframe(
        frame, label=["spam"], numeric=["a"], task="binary", test_fraction=0.25
    )
    assert data.task.kind == "binary" and data.arrays["test"]["label"].dtype == np.int32
    with pytest.raises(ValueError, match=r"'price'.*is not 0 or 1"):
        datasets.from_dataframe(
            frame, label=["spam", "price"], numeric=["a"], task=Task.multi_label(num_labels=2)
        )


def test_from_dataframe_names_a_bad_target_by_row_and_column():
    frame = _frame()
    frame["price"] = frame["price"].astype(object)
    frame.loc[7, "price"] = "n/a"
    with pytest.raises(ValueError, match=r"row 7.*'price'.*target 'n/a' is not a number"):
        datasets.from_dataframe(frame, label="price", numeric=["a", "b"], task="regression")
    skipped = datasets.from_dataframe(
        frame, label="price", numeric=["a", "b"], task="regression", skip_bad=True
    )
    assert skipped.skipped == 1
    with pytest.raises(ValueError, match="would leak"):
        datasets.from_dataframe(frame, label=["a", "b"], numeric=["a"], task="regression")
    with pytest.raises(ValueError, match="one 0/1 column per label"):
        datasets.from_dataframe(
            frame, label="genres", numeric=["a"], task="multi_label", unlabelled=True
        )
    with pytest.raises(ValueError, match="`label` must be one column without a task"):
        datasets.from_dataframe(frame, label=["price", "a"], numeric=["b"])


# --------------------------------------------------------------------------- review fixes
def test_distil_without_candidates_uses_the_tasks_own():
    from kdzoo.recipe import DistilConfig
    from kdzoo.recipe.distilling import phase_names

    config = DistilConfig(dataset="embedded", teacher_epochs=0)
    assert config.candidates is None
    regression = phase_names(config, Task.regression(num_targets=1))
    assert regression == [
        "scratch",
        "scratch@lr=0.001",
        "scratch@lr=0.004",
        "label:0.5,teacher_mse:0.5",
        "label:0.5,teacher_huber:0.5",
        "label:0.5,teacher_bounded:0.5",
    ]
    assert phase_names(config)[3:] == list(DEFAULTS.candidates)
    assert phase_names(config, Task.binary())[3:] == list(DEFAULTS.multi_label_candidates)


@pytest.mark.parametrize(
    "spec, task",
    [
        ("ce:0.5,kd:0.5", Task.binary()),
        ("label:0.5,kd_std:0.5", Task.regression(num_targets=1)),
        ("ce:0.5,dkd:0.5", Task.multi_label(num_labels=3)),
        ("ce:0.5,teacher_bounded:0.5", None),
    ],
)
def test_terms_a_task_cannot_train_are_refused_before_training(spec, task):
    kind = "classification" if task is None else task.kind
    with pytest.raises(ValueError, match=f"cannot train a {kind} student"):
        Candidate.parse(spec).loss_terms(task)


def test_binary_frames_hold_out_both_classes_and_name_them():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=200), "rare": [True] * 6 + [False] * 194})
    data = datasets.from_dataframe(
        frame, label="rare", numeric=["a"], task="binary", test_fraction=0.2, seed=3
    )
    for split in ("validation", "test"):
        assert data.arrays[split]["label"].sum() >= 1, split  # stratified on the 0/1 labels
    assert data.task.names == ("negative", "positive") == Task("binary").names


def test_a_task_other_than_the_datas_is_refused(tiny_data):
    data = datasets.with_task(tiny_data, Task.regression(["target"]), "target")
    with pytest.raises(ValueError, match="differs from the data's"):
        run(None, None, data, task=Task.regression(["target"]))


# --------------------------------------------------------------------------- transfer sets
@pytest.mark.parametrize(
    "task, key",
    [
        (Task.regression(["target"]), "target"),
        (Task.multi_label(num_labels=4), "tags"),
        (Task.binary(), "binary"),
    ],
    ids=["regression", "multi_label", "binary"],
)
def test_transfer_rows_are_marked_as_the_task_marks_them(tiny_data, task, key):
    data = tiny_data
    if key == "binary":  # a binary label from the class: even digits
        arrays = {
            s: {**a, "binary": (a["label"] % 2).astype(np.int32)} for s, a in data.arrays.items()
        }
        data = dataclasses.replace(data, arrays=arrays)
    data = datasets.with_task(data, task, key)
    train = data.arrays["train"]
    if task.kind == "binary":  # per class works for 0/1 labels: 3 of each
        per_class = datasets.scarce_labels(data, 3, seed=5)
        assert sorted(per_class.arrays["train"]["label"].tolist()) == [0, 0, 0, 1, 1, 1]
    else:
        with pytest.raises(ValueError, match="`labels_per_class` needs class labels"):
            datasets.scarce_labels(data, 3)
    with pytest.raises(ValueError, match="Give one of"):
        datasets.scarce_labels(data, 3, labelled_rows=40)
    scarce = datasets.scarce_labels(data, labelled_rows=40, seed=5)
    labelled = scarce.arrays["train"]["label"]
    marks = scarce.arrays["transfer"]["label"]
    assert len(labelled) == 40 and len(marks) == len(train["label"]) - 40
    # The kept rows are training rows with their labels; the others carry the task's mark.
    audio = train["audio"].reshape(len(train["audio"]), -1)
    for row, values in zip(scarce.arrays["train"]["audio"], labelled, strict=True):
        (i,) = np.flatnonzero((audio == row.reshape(-1)).all(axis=1))
        np.testing.assert_array_equal(train["label"][i], values)
    if task.kind == "regression":
        assert marks.shape == (len(marks), 1) and np.isnan(marks).all()
    elif task.kind == "multi_label":
        assert marks.shape == (len(marks), 4) and (marks == UNLABELLED).all()
    else:
        assert marks.shape == (len(marks),) and (marks == UNLABELLED).all()
    assert not task.labelled_rows(marks).any() and task.labelled_rows(labelled).all()
    # The pipelines take the marked rows on train+transfer (validate_arrays) only.
    _, y = next(iter(scarce.pipeline("train+transfer", training=False, batch_size=400)))
    assert y.shape[0] == len(train["label"])
    transfer = {**scarce.arrays["transfer"], "x": np.zeros((len(marks), 1), np.float32)}
    with pytest.raises(ValueError, match="row 0"):
        validate_arrays(transfer, ["x"], task=task)
    # A "label" given for transfer rows must be the task's mark.
    rows = {m: train[m][:3] for m in data.modalities}
    with pytest.raises(ValueError, match=r"row 0 has label .*as a \w+ task does"):
        datasets.with_transfer(data, {**rows, "label": train["label"][:3]})
    kept = datasets.with_transfer(data, {**rows, "label": task.unlabelled(3)})
    assert kept.num_examples["transfer"] == 3
    # A regression task's standardisation stays the one fitted on all training rows.
    assert scarce.task == data.task


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, key",
    [(Task.regression(["target"]), "target"), (Task.multi_label(num_labels=4), "tags")],
    ids=["regression", "multi_label"],
)
def test_recipe_distils_on_a_transfer_set_per_task(tiny_data, task, key):
    data = datasets.scarce_labels(datasets.with_task(tiny_data, task, key), labelled_rows=64)
    result = _run_tiny(data, epochs=2, distil_margin_se=0.0)
    candidates = result.candidates.set_index("candidate")
    transfer = data.num_examples["transfer"]
    for name, row in candidates.iterrows():
        # The candidates train on the 64 labelled rows and the transfer rows; scratch on
        # the labelled rows only. The unlabelled rows never make a loss or metric NaN.
        expected = 64 + transfer if row["kind"] == "distil" else 64
        assert row["train_examples"] == expected, name
        assert np.isfinite(row[f"validation_{task.selection}"]), name
        losses = result.history[name]["loss"]
        assert np.isfinite(losses).all(), name


def test_from_dataframe_unlabelled_rows_per_task():
    frame = _frame()
    frame["price"] = frame["price"].astype(object)
    frame.loc[:29, "price"] = None  # 30 rows without a target
    data = datasets.from_dataframe(
        frame,
        label="price",
        numeric=["a", "b"],
        task="regression",
        unlabelled=True,
        test_fraction=0.2,
    )
    assert data.num_examples["transfer"] == 30
    assert np.isnan(data.arrays["transfer"]["label"]).all()
    assert sum(data.num_examples[s] for s in ("train", "validation", "test")) == 90
    # The standardisation is fitted on labelled training rows only.
    restored = data.task.denormalise(data.arrays["train"]["label"])
    prices = np.round(frame["price"][30:].astype(float), 3)
    assert np.isin(np.round(restored[:, 0], 3), prices).all()
    assert data.task.target_mean[0] == pytest.approx(restored[:, 0].mean(), rel=1e-5)

    # A regression row missing some of its targets is a bad row, not an unlabelled one.
    frame["size"] = (frame["a"] * 2).astype(object)
    frame.loc[:29, "size"] = None  # rows 0-29 still lack both: unlabelled
    frame.loc[40, "size"] = None
    with pytest.raises(ValueError, match=r"row 40.*'size'.*no target"):
        datasets.from_dataframe(
            frame, label=["price", "size"], numeric=["b"], task="regression", unlabelled=True
        )
    # Binary and multi-label (one 0/1 column per label): an empty label row is unlabelled.
    frame = _frame()
    frame["spam"] = frame["spam"].astype(object)
    frame.loc[:19, "spam"] = None
    binary = datasets.from_dataframe(
        frame, label="spam", numeric=["a"], task="binary", unlabelled=True
    )
    assert (binary.arrays["transfer"]["label"] == UNLABELLED).all()
    assert binary.num_examples["transfer"] == 20
    frame["pop"] = (frame["a"] > 0).astype(object)
    frame["rock"] = (frame["b"] > 0).astype(object)
    frame.loc[:9, ["pop", "rock"]] = None
    tags = datasets.from_dataframe(
        frame, label=["pop", "rock"], numeric=["a"], task="multi_label", unlabelled=True
    )
    assert tags.arrays["transfer"]["label"].shape == (10, 2)
    assert (tags.arrays["transfer"]["label"] == UNLABELLED).all()


def test_a_selection_on_a_task_metric_says_better_or_worse_without_a_signed_gain():
    from kdzoo.recipe import Selection

    worse = Selection("scratch", "label:0.5,teacher_mse:0.5", -0.108, 0.05, 1.0, False, "mse")
    assert "mse worse by 0.108, 1 SE 0.05: scratch kept" in worse.describe()
    better = Selection("scratch", "label:0.5,teacher_mse:0.5", 0.2, 0.05, 1.0, True, "mse")
    assert "mse better by 0.2, 1 SE 0.05: distilled chosen" in better.describe()
