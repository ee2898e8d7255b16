"""The recipe (``kdzoo.recipe.run``): validation-driven phases, the candidates, selection on
validation, the test split read last, and the report."""

import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from kdzoo import datasets, models
from kdzoo.datasets.loading import stratified_holdout
from kdzoo.files import NotOwnedError
from kdzoo.losses import HardLabelCrossentropy
from kdzoo.recipe import (
    RECIPE,
    SCRATCH,
    Candidate,
    ValidationStopping,
    phases,
    run,
    scratch_tries,
    with_validation,
)
from kdzoo.recipe.report import FILES, write_report

AV = ("image", "audio")
#: The smallest recipe: one candidate (so one scratch try), one epoch per phase.
ONE_EPOCH = dict(
    candidates=("ce:0.5,kd:0.5@t=2",),
    teacher_epochs=1,
    epochs=1,
    batch_size=32,
    teacher_inputs=AV,
    student_inputs=("audio",),
    verbose=0,
)


@pytest.fixture(scope="module")
def tiny_data():
    return datasets.load(
        "embedded", batch_size=64, seed=0, modalities=AV, num_examples=400, validation_fraction=0.2
    )


def _pair(data, seed=0):
    keras.utils.set_random_seed(seed)
    shapes = {f"{m}_shape": tuple(s.shape) for m, s in data.input_specs.items()}
    return models.build_pair("av_to_audio", data.num_classes, **shapes)


# --------------------------------------------------------------------------- candidates
def test_candidates_parse_describe_and_refuse_with_the_spec_named():
    c = Candidate.parse("ce:0.5,kd_std:0.5@t=2,lr=0.001")
    assert c.distils and c.terms == ("ce:0.5", "kd_std:0.5")
    assert (c.temperature, c.learning_rate, c.label_smoothing) == (2.0, 0.001, 0.0)
    assert c.describe() == "ce:0.5,kd_std:0.5 (τ=2, lr=0.001)"
    assert [t.name for t in c.loss_terms()] == ["ce", "kd_std"]
    assert c.loss_terms()[1].loss.temperature == 2.0
    scratch = Candidate.parse("scratch@ls=0.1")
    assert not scratch.distils and scratch.describe() == "scratch (ls=0.1)"
    for bad, message in [
        ("kd@q=1", "'q=1' is not a setting"),
        ("kd@t=0", "t and lr must be > 0"),
        ("kd@t=2,t=3", "t is set twice"),
        ("ce:1", "has no teacher term"),
        ("scratch@t=2", "a scratch student has no temperature"),
        ("nope", "nope"),
    ]:
        with pytest.raises(ValueError, match=message):
            Candidate.parse(bad)


def test_scratch_gets_as_many_tries_over_its_own_knobs():
    tries = scratch_tries(4, learning_rate=2e-3)
    assert [t.name for t in tries] == [
        "scratch",
        "scratch@ls=0.1",
        "scratch@lr=0.001",
        "scratch@lr=0.001,ls=0.1",
    ]
    assert all(not t.distils for t in tries)
    assert len({t.name for t in scratch_tries(9)}) == 9


def test_label_smoothing_matches_keras_categorical_crossentropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 5)).astype("float32") * 3
    labels = rng.integers(0, 5, 16)
    ours = HardLabelCrossentropy(label_smoothing=0.1)(labels, logits)
    reference = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        keras.ops.one_hot(labels, 5), logits
    )
    np.testing.assert_allclose(float(ours), float(reference), rtol=1e-5)
    with pytest.raises(ValueError, match=r"label_smoothing. must be in \[0, 1\)"):
        HardLabelCrossentropy(label_smoothing=1.0)


def test_the_validation_split_is_stratified_and_seeded():
    labels = np.repeat(np.arange(4), [100, 50, 20, 2])
    held = stratified_holdout(labels, 0.1, seed=3)
    assert [int(held[labels == c].sum()) for c in range(4)] == [10, 5, 2, 1]
    assert (held == stratified_holdout(labels, 0.1, seed=3)).all()
    assert not (held == stratified_holdout(labels, 0.1, seed=4)).all()


def test_with_validation_carves_only_when_there_is_none(tiny_data):
    assert with_validation(tiny_data) is tiny_data
    data = datasets.load("embedded", batch_size=64, seed=0, modalities=AV, num_examples=200)
    carved = with_validation(data, fraction=0.25, seed=1)
    assert carved.num_examples["validation"] + carved.num_examples["train"] == 160
    assert "validation" not in data.arrays  # the original is left as it was


# --------------------------------------------------------------------------- training rules
def test_early_stopping_restores_the_best_validation_epoch():
    """Validation labels are the training labels flipped, so validation accuracy falls as
    the model learns: the best epoch is the first, and training stops after ``patience``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="x")
    model = keras.Model({"x": inputs}, keras.layers.Dense(2)(inputs))
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(model.get_weights())
    )
    train = tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(32)
    validation = tf.data.Dataset.from_tensor_slices(({"x": x}, 1 - y)).batch(64)
    history = phases.train_supervised(
        model,
        train,
        phase="scratch",
        epochs=30,
        learning_rate=0.05,
        validation=validation,
        stopping=phases.Stopping(patience=3, plateau_patience=10),
        callbacks=[record],
        verbose=0,
    )
    accuracy = history.history["val_accuracy"]
    best = int(np.argmax(accuracy))
    assert len(accuracy) == best + 4 < 30  # stopped `patience` epochs after the best
    assert accuracy[-1] < accuracy[best]
    for restored, kept in zip(model.get_weights(), seen[best], strict=True):
        np.testing.assert_array_equal(restored, kept)


def test_the_stopping_state_survives_a_resume(tmp_path):
    state = tmp_path / "phase"
    first = ValidationStopping(patience=5, state_dir=str(state))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    first.set_model(model)
    first.on_train_begin()
    for epoch, accuracy in enumerate([0.5, 0.7, 0.6]):
        first.on_epoch_end(epoch, {"val_accuracy": accuracy})
    resumed = ValidationStopping(patience=5, state_dir=str(state))
    resumed.set_model(model)
    resumed.on_train_begin()
    assert (resumed.best, resumed.best_epoch, resumed.wait) == (0.7, 1, 1)
    for a, b in zip(resumed.best_weights, first.best_weights, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- the recipe
def test_scratch_wins_when_the_teacher_cannot_help(tiny_data):
    """A teacher of random weights with large logits: distilling from it pulls the student
    towards noise, so scratch is chosen and the recipe ships the scratch student."""
    teacher, student = _pair(tiny_data)
    head = teacher.layers[-1]
    head.set_weights([w * 20 for w in head.get_weights()])
    result = run(
        teacher,
        student,
        tiny_data,
        candidates=("ce:0.1,kd:0.9@t=1", "ce:0.1,kd_std:0.9@t=1"),
        teacher_epochs=0,
        epochs=6,
        batch_size=32,
        learning_rate=5e-3,
        teacher_inputs=AV,
        student_inputs=("audio",),
        verbose=0,
    )
    frame = result.candidates.set_index("candidate")
    assert not result.chosen.distils
    assert result.student is result.scratch
    assert result.validation_gain == 0.0 and result.gain == 0.0
    best_scratch = frame[frame["kind"] == "scratch"]["validation_accuracy"].max()
    assert (frame[frame["kind"] == "distil"]["validation_accuracy"] < best_scratch).all()
    assert best_scratch > 0.2  # the student did learn (10 classes)
    # The selection compares the best of each kind on the same validation examples.
    selection = result.selection
    best_distil = frame[frame["kind"] == "distil"]["validation_accuracy"].max()
    assert selection.gain == pytest.approx(best_distil - best_scratch, abs=1e-6)
    assert not selection.chose_distilled and selection.standard_error > 0


def test_the_one_standard_error_rule_on_paired_validation_results():
    from kdzoo.recipe import decide, paired_gain

    scratch = np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 1], bool)  # 6 of 10
    distilled = np.array([1, 1, 1, 0, 1, 0, 1, 1, 1, 1], bool)  # 8 of 10, right where it was
    gain, se = paired_gain(distilled, scratch)
    d = distilled.astype(float) - scratch
    assert gain == pytest.approx(0.2)
    assert se == pytest.approx(np.std(d, ddof=1) / np.sqrt(10))  # 0.1333
    assert decide("s", "d", scratch, distilled, 1.0).chose_distilled  # 0.2 > 0.133
    assert not decide("s", "d", scratch, distilled, 2.0).chose_distilled  # 0.2 < 0.267
    # One more right answer in 500 is within the noise; with margin 0 any gain counts.
    a = np.zeros(500, bool)
    b = a.copy()
    b[7] = True
    assert not decide("s", "d", a, b, 1.0).chose_distilled
    assert decide("s", "d", a, b, 0.0).chose_distilled
    # A tie, or a loss, never ships the distilled student.
    assert not decide("s", "d", a, a, 0.0).chose_distilled
    # Fractional scores that tie (multi-label accuracy in thirds) average to 7.9e-18, not 0.
    thirds = np.array([0, 0, 3, 0, 2, 0, 1]) / 3
    permuted = np.array([3, 1, 0, 0, 0, 2, 0]) / 3
    assert paired_gain(thirds, permuted)[0] > 0  # the rounding this guards against
    assert not decide("s", "d", permuted, thirds, 0.0).chose_distilled
    assert not decide("s", "d", b, a, 0.0).chose_distilled
    text = decide("scratch (ls=0.1)", "kd", scratch, distilled, 1.0).describe()
    assert text == (
        "kd vs scratch (ls=0.1) on validation: +20.00 points, 1 SE 13.33: distilled chosen "
        "(the rule: > 1 SE)"
    )
    with pytest.raises(ValueError, match="equal-length"):
        paired_gain(a, a[:3])


def test_the_test_split_is_read_only_after_every_phase(tiny_data, monkeypatch):
    events = []
    fit = phases._fit

    def logged_fit(*args, **kwargs):
        events.append("fit")
        return fit(*args, **kwargs)

    monkeypatch.setattr(phases, "_fit", logged_fit)
    build = type(tiny_data).pipeline

    def logged_pipeline(self, split, *args, **kwargs):
        ds = build(self, split, *args, **kwargs)
        if split != "test":
            return ds

        def note(x, y):
            events.append("test read")
            return y

        return ds.map(lambda x, y: (x, tf.py_function(note, [x["audio"], y], y.dtype)))

    monkeypatch.setattr(type(tiny_data), "pipeline", logged_pipeline)
    teacher, student = _pair(tiny_data)
    result = run(teacher, student, tiny_data, **ONE_EPOCH)
    assert events.count("fit") == 3  # teacher, one scratch try, one candidate
    first_read = events.index("test read")
    assert "fit" not in events[first_read:]
    assert result.evaluated_on == "test"


@pytest.mark.slow
def test_the_report_is_written_and_a_foreign_run_dir_refused(
    tiny_data, tmp_path, monkeypatch, caplog
):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("mine")
    teacher, student = _pair(tiny_data)
    options = dict(
        candidates=("ce:0.5,kd:0.5@t=2",),
        teacher_epochs=2,
        epochs=2,
        batch_size=32,
        teacher_inputs=AV,
        student_inputs=("audio",),
        verbose=0,
    )
    with pytest.raises(NotOwnedError, match="run_dir .*mine exists and has no kdzoo marker"):
        run(teacher, student, tiny_data, run_dir=str(mine), **options)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.md"]

    result = run(teacher, student, tiny_data, run_dir=str(tmp_path / "run"), **options)
    folder = tmp_path / "run"
    assert {p.name for p in folder.iterdir()} >= set(FILES)
    assert (folder / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    candidates = pd.read_csv(folder / "candidates.csv")
    assert list(candidates["candidate"]) == ["scratch", "ce:0.5,kd:0.5@t=2"]
    assert candidates["chosen"].sum() == 1
    assert candidates[["validation_accuracy", "test_accuracy"]].notna().all().all()
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary["model"]) == ["teacher", SCRATCH, RECIPE]
    assert "Chosen on validation" in (folder / "report.md").read_text()
    assert result.report_dir == str(folder)
    # The recipe wrote that folder, so a second run may write over it.
    run(teacher, student, tiny_data, run_dir=str(folder), **{**options, "teacher_epochs": 0})

    # Without matplotlib (the kdzoo[plots] extra) the tables are still written; the
    # earlier figure, which would no longer match, goes; report.md and the log say why.
    for module in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, module, None)
    with caplog.at_level("WARNING", logger="kdzoo"):
        write_report(result, folder)
    assert not (folder / "report.png").exists()
    assert {p.name for p in folder.iterdir()} >= set(FILES) - {"report.png"}
    note = "was not drawn. The recipe report's figure needs matplotlib"
    assert note in (folder / "report.md").read_text()
    assert "pip install 'kdzoo[plots]'" in caplog.text


@pytest.mark.slow
def test_with_augmentation_the_teacher_runs_online_on_the_augmented_batch():
    """Cached outputs would describe the un-augmented example: with augmentation on, the
    recipe caches nothing and each candidate's Distiller runs the teacher on its batch."""
    data = datasets.load(
        "embedded",
        batch_size=32,
        seed=0,
        modalities=AV,
        num_examples=200,
        validation_fraction=0.2,
        augment=True,
    )
    teacher, student = _pair(data)
    result = run(teacher, student, data, **ONE_EPOCH)
    assert "teacher outputs" not in result.seconds  # nothing was cached
    distiller = result.distillers["ce:0.5,kd:0.5@t=2"]
    assert distiller.history.history["loss"][0] > 0


# --------------------------------------------------------------------------- transfer set
def _unlabelled_rows(n, seed=7):
    from kdzoo.datasets.embedded import generate

    arrays = generate(n, seed=seed)
    return {m: arrays[m] for m in AV}


def test_with_transfer_adds_unlabelled_rows_and_refuses_labelled_ones(tiny_data):
    data = datasets.with_transfer(tiny_data, _unlabelled_rows(40))
    assert "transfer" not in tiny_data.arrays  # the original is untouched
    assert data.num_examples["transfer"] == 40
    assert set(data.arrays["transfer"]["label"]) == {-1}
    both = data.split_arrays("train+transfer")
    assert len(both["label"]) == tiny_data.num_examples["train"] + 40
    labels = np.concatenate([y.numpy() for _, y in data.pipeline("transfer", training=False)])
    assert (labels == -1).all() and len(labels) == 40

    rows = _unlabelled_rows(5)
    with pytest.raises(ValueError, match="row 2 has label 4"):
        datasets.with_transfer(tiny_data, {**rows, "label": np.array([-1, -1, 4, -1, -1])})
    with pytest.raises(KeyError, match=r"lacks modality key\(s\) \['image'\]"):
        datasets.with_transfer(tiny_data, {"audio": rows["audio"]})
    with pytest.raises(ValueError, match="already has a 'transfer' split"):
        datasets.with_transfer(data, rows)
    # Anywhere else a label of -1 is still a bad row.
    from kdzoo.data import from_arrays

    with pytest.raises(ValueError, match="label -1 is outside 0..9"):
        from_arrays({**rows, "label": np.full(5, -1)}, ("image",), num_classes=10)


def test_only_the_distillation_candidates_see_the_transfer_rows(tiny_data, monkeypatch):
    data = datasets.with_transfer(tiny_data, _unlabelled_rows(96))
    seen = {}
    fit = phases._fit

    def logged_fit(model, train, *, phase, steps_per_epoch, **kwargs):
        labels = np.concatenate([y.numpy() for _, y in train.take(steps_per_epoch)])
        seen[phase] = (len(labels), int((labels == -1).sum()))
        return fit(model, train, phase=phase, steps_per_epoch=steps_per_epoch, **kwargs)

    monkeypatch.setattr(phases, "_fit", logged_fit)
    teacher, student = _pair(data)
    result = run(teacher, student, data, **ONE_EPOCH)
    n_train = data.num_examples["train"]
    assert seen["teacher"][1] == 0 and seen["scratch"][1] == 0
    assert seen["teacher"][0] == n_train // 32 * 32
    shown, unlabelled = seen["distil ce:0.5,kd:0.5@t=2"]
    assert shown == (n_train + 96) // 32 * 32 and unlabelled > 0
    frame = result.candidates.set_index("candidate")
    assert frame["train_examples"].to_dict() == {
        "scratch": n_train,
        "ce:0.5,kd:0.5@t=2": n_train + 96,
    }
    distiller = result.distillers["ce:0.5,kd:0.5@t=2"]
    assert np.isfinite(distiller.history.history["ce_loss"][0])


def test_scarce_labels_keeps_k_labels_per_class_and_moves_the_rest_to_transfer(tiny_data):
    data = datasets.scarce_labels(tiny_data, 3, seed=1)
    labels = data.arrays["train"]["label"]
    assert np.bincount(labels, minlength=10).tolist() == [3] * 10
    n = tiny_data.num_examples["train"]
    assert data.num_examples["transfer"] == n - 30
    assert data.arrays["validation"] is tiny_data.arrays["validation"]
    # The same seed keeps the same rows; the image rows of both parts are the original ones.
    again = datasets.scarce_labels(tiny_data, 3, seed=1)
    np.testing.assert_array_equal(again.arrays["train"]["audio"], data.arrays["train"]["audio"])
    both = np.concatenate([data.arrays["train"]["image"], data.arrays["transfer"]["image"]])
    assert sorted(map(bytes, both)) == sorted(map(bytes, tiny_data.arrays["train"]["image"]))
    with pytest.raises(ValueError, match=">= 1"):
        datasets.scarce_labels(tiny_data, 0)
