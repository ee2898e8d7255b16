"""The recipe on NumPy arrays (``kdzoo.datasets.from_numpy``, ``kdzoo.data.ArrayBatches``),
on every Keras backend: ``make test-jax`` runs this file on JAX too, and
tests/test_backend_imports.py runs the recipe once more with TensorFlow blocked."""

import keras
import numpy as np
import pytest

from kdzoo import backend, datasets, models, tasks
from kdzoo.data import ArrayBatches, MissingInputError, for_model
from kdzoo.datasets.arrays import TRAIN_AND_TRANSFER, TRANSFER
from kdzoo.labels import UNLABELLED
from kdzoo.recipe import RECIPE, SCRATCH, TEACHER, run, with_validation

FEATURES = 6


def _rows(n, seed, classes=3):
    """Tabular rows whose class shifts the first features: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, FEATURES)).astype("float32")
    x[:, :classes] += 2.5 * np.eye(classes, dtype="float32")[y]
    return {"tabular": x}, y


def _pair(classes=3, outputs=None):
    keras.utils.set_random_seed(0)
    return models.build_pair("tabular_mlp", outputs or classes, tabular_shape=(FEATURES,))


# ---------------------------------------------------------------- ArrayBatches
def test_training_batches_are_seeded_per_epoch_and_a_resumed_run_sees_the_same():
    x = {"a": np.arange(10)[:, None], "nested": {"b": np.arange(10) * 2}}
    whole = ArrayBatches(x, np.arange(10), batch_size=3, seed=7, epochs=3)
    assert (whole.steps_per_epoch, len(whole)) == (3, 9)  # the partial batch is dropped
    epochs = [[whole[e * 3 + s][1] for s in range(3)] for e in range(3)]
    for rows in epochs:
        seen = np.concatenate(rows)
        assert len(set(seen)) == 9 and set(seen) <= set(range(10))
    assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))
    x0, y0 = whole[4]
    np.testing.assert_array_equal(x0["a"][:, 0], y0)  # features travel with their labels
    np.testing.assert_array_equal(x0["nested"]["b"], 2 * y0)
    resumed = ArrayBatches(x, np.arange(10), batch_size=3, seed=7, first_epoch=1, epochs=3)
    for i in range(len(resumed)):
        np.testing.assert_array_equal(resumed[i][1], whole[3 + i][1])
    other = ArrayBatches(x, np.arange(10), batch_size=3, seed=8, epochs=1)
    assert not np.array_equal(np.concatenate([b[1] for b in other]), np.concatenate(epochs[0]))
    with pytest.raises(IndexError):
        whole[9]


class _Recording(ArrayBatches):
    """Records the batch indices fit asks for and the labels it is given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked, self.given = [], []

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        self.asked.append(index)
        self.given.append(np.asarray(y))
        return x, y


def _fit(batches, **fit):
    inputs = keras.Input((1,), name="a")
    model = keras.Model({"a": inputs}, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    model.fit(batches, verbose=0, **fit)


def test_fit_reads_a_multi_epoch_instance_in_order_even_with_shuffle():
    x, y = {"a": np.arange(10, dtype="float32")[:, None]}, np.arange(10, dtype="float32")
    spanning = _Recording(x, y, batch_size=4, seed=0, epochs=3)
    # fit's default shuffle=True shuffled the batch indices of all three epochs together.
    _fit(spanning, epochs=3, steps_per_epoch=spanning.steps_per_epoch)
    # (Keras may read the first batches once more to learn their structure.)
    assert spanning.asked[-6:] == list(range(6))
    spanning.given = spanning.given[-6:]
    epochs = [np.concatenate(spanning.given[2 * e : 2 * e + 2]) for e in range(3)]
    assert all(len(set(rows)) == 8 for rows in epochs)
    # An instance with a length (one epoch) is shuffled by fit within that epoch only.
    one = _Recording(x, y, batch_size=4, seed=0)
    _fit(one, epochs=3)
    for e in range(3):
        given = sorted(one.given[-6:][2 * e : 2 * e + 2], key=lambda rows: rows.tolist())
        first = sorted(spanning.given[:2], key=lambda rows: rows.tolist())
        np.testing.assert_array_equal(np.concatenate(given), np.concatenate(first))


def test_evaluation_batches_keep_every_row_in_order_and_select_keys():
    x = {"a": np.arange(10.0)[:, None], "b": np.zeros((10, 2))}
    batches = ArrayBatches(x, np.arange(10), batch_size=4)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), np.arange(10))
    assert sorted(batches.select(("a",))[0][0]) == ["a"]
    with pytest.raises(MissingInputError, match=r"no key\(s\) \['c'\] that the model reads"):
        batches.select(("c",))
    with pytest.raises(ValueError, match="same number of rows"):
        ArrayBatches({"a": np.zeros(3)}, np.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="do not fill one training batch"):
        ArrayBatches({"a": np.zeros(3)}, np.zeros(3), batch_size=4, seed=0)


def test_for_model_routes_array_batches_by_input_name():
    teacher, student = _pair()
    x, y = _rows(8, 0)
    batches = ArrayBatches({**x, "other": np.zeros((8, 3), "float32")}, y, batch_size=4)
    routed = for_model(batches, student)
    assert sorted(routed[0][0]) == ["tabular"]


def test_memory_mapped_arrays_train_from_disk(tmp_path):
    x, y = _rows(64, 0)
    np.save(tmp_path / "x.npy", x["tabular"])
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    data = datasets.from_numpy(({"tabular": mapped}, y), _rows(16, 1), batch_size=32)
    held = data.arrays["train"]["tabular"]
    assert np.shares_memory(held, mapped) and not held.flags.writeable  # not copied
    np.testing.assert_array_equal(
        data.pipeline("train", training=False)[1][0]["tabular"], x["tabular"][32:]
    )


# ---------------------------------------------------------------- from_numpy
def test_from_numpy_infers_classes_and_refuses_bad_input_naming_split_key_and_row():
    x, y = _rows(20, 0)
    data = datasets.from_numpy((x, y), test=_rows(10, 1), name="mine")
    assert data.class_names == ("0", "1", "2") and data.num_examples == {"train": 20, "test": 10}
    assert data.model_shapes() == {"tabular_shape": (FEATURES,)}
    bad = {"tabular": x["tabular"].copy()}
    bad["tabular"][5, 2] = np.nan
    with pytest.raises(ValueError, match=r"mine train: 'tabular' row 5 holds NaN or inf \(1 "):
        datasets.from_numpy((bad, y), name="mine")
    with pytest.raises(ValueError, match=r"mine test labels: row 0: 7 is not a class id in 0..2"):
        datasets.from_numpy(
            (x, y), test=(x, np.full(20, 7)), class_names=("a", "b", "c"), name="mine"
        )
    with pytest.raises(TypeError, match="need one integer class id per row"):
        datasets.from_numpy((x, y.astype(float)))
    with pytest.raises(TypeError, match="must be a non-empty dict"):
        datasets.from_numpy((x["tabular"], y))
    with pytest.raises(ValueError, match=r"test: keys \['other'\] differ from the training"):
        datasets.from_numpy((x, y), test=({"other": x["tabular"]}, y))
    with pytest.raises(ValueError, match="20 rows of features but 19 labels"):
        datasets.from_numpy((x, y[:-1]))
    with pytest.raises(TypeError, match="text as token ids"):
        datasets.from_numpy(({"text": np.array(["a b"] * 20)}, y))


def test_from_numpy_regression_standardises_on_train_and_transfer_rows_are_unlabelled():
    x, _ = _rows(40, 0)
    targets = 1000.0 + 50.0 * np.random.default_rng(0).normal(size=40)
    task = tasks.Task.regression(["price"])
    data = datasets.from_numpy((x, targets), task=task, transfer=_rows(5, 2)[0])
    assert data.task.target_mean == pytest.approx((targets.mean(),))
    assert abs(data.arrays["train"]["label"].mean()) < 1e-5
    assert np.isnan(data.arrays[TRANSFER]["label"]).all()
    assert len(data.split_arrays(TRAIN_AND_TRANSFER)["label"]) == 45
    classes = datasets.from_numpy((x, _rows(40, 0)[1]), transfer=_rows(5, 2)[0])
    assert (classes.arrays[TRANSFER]["label"] == UNLABELLED).all()


def test_with_validation_carves_a_stratified_seeded_split_once():
    data = datasets.from_numpy(_rows(100, 0))
    carved = with_validation(data, 0.2, seed=3)
    assert carved.num_examples == {"train": 80, "validation": 20}
    assert carved is with_validation(carved, 0.2, seed=4)
    again = with_validation(data, 0.2, seed=3)
    np.testing.assert_array_equal(
        again.arrays["validation"]["tabular"], carved.arrays["validation"]["tabular"]
    )


# ---------------------------------------------------------------- the recipe
def test_the_recipe_runs_on_arrays_and_reports_the_chosen_student():
    teacher, student = _pair()
    data = datasets.from_numpy(_rows(240, 0), _rows(60, 1), _rows(90, 2), name="shifted")
    result = run(
        teacher,
        student,
        data,
        candidates=("ce:0.5,kd:0.5@t=2",),
        teacher_epochs=4,
        epochs=4,
        batch_size=32,
        verbose=0,
    )
    assert list(result.table["model"]) == [TEACHER, SCRATCH, RECIPE]
    assert result.evaluated_on == "test" and "teacher outputs" in result.seconds
    # Learnable data: every model is well above chance (1/3) on the untouched test rows.
    assert (result.table["accuracy"] > 0.6).all(), result.table
    assert set(result.candidates["candidate"]) == {"scratch", "ce:0.5,kd:0.5@t=2"}
    test = data.arrays["test"]
    logits = keras.ops.convert_to_numpy(
        result.student({"tabular": test["tabular"]}, training=False)
    )
    accuracy = float(np.mean(logits.argmax(-1) == test["label"]))
    assert result.table["accuracy"].iloc[2] == pytest.approx(accuracy)
    assert result.history["ce:0.5,kd:0.5@t=2"]["val_accuracy"]


def test_the_recipe_on_arrays_reports_regression_in_the_targets_units():
    x, _ = _rows(200, 0)
    y = 1000.0 + 40.0 * x["tabular"][:, :1] + np.random.default_rng(0).normal(size=(200, 1))
    test_x, _ = _rows(60, 1)
    test_y = 1000.0 + 40.0 * test_x["tabular"][:, :1]
    data = datasets.from_numpy((x, y), test=(test_x, test_y), task=tasks.Task.regression(["v"]))
    teacher, student = _pair(outputs=1)
    result = run(
        teacher,
        student,
        data,
        candidates=("label:0.5,teacher_mse:0.5",),
        teacher_epochs=3,
        epochs=3,
        batch_size=32,
        verbose=0,
    )
    prediction = keras.ops.convert_to_numpy(result.student(test_x, training=False))
    expected = float(np.mean((data.task.denormalise(prediction) - test_y) ** 2))
    assert result.table["mse"].iloc[2] == pytest.approx(expected, rel=1e-4)


def test_the_recipe_on_arrays_refuses_a_strategy_and_off_tensorflow_backups(tmp_path):
    teacher, student = _pair()
    data = datasets.from_numpy(_rows(64, 0))
    with pytest.raises(ValueError, match="trains on one device"):
        run(teacher, student, data, strategy=object(), verbose=0)
    if not backend.is_tensorflow():
        with pytest.raises(RuntimeError, match="`backup_dir` and `tensorboard`"):
            run(teacher, student, data, backup_dir=str(tmp_path), verbose=0)


@pytest.mark.tensorflow("backups write through tf.io.gfile")
def test_a_finished_recipe_on_arrays_is_not_trained_again_from_its_backups(tmp_path):
    data = datasets.from_numpy(_rows(128, 0), test=_rows(32, 1))
    options = dict(
        candidates=("ce:0.5,kd:0.5@t=2",),
        teacher_epochs=2,
        epochs=2,
        batch_size=32,
        verbose=0,
        backup_dir=str(tmp_path / "backup"),
    )
    first = run(*_pair(), data, **options)
    again = run(*_pair(), data, **options)
    assert all(not epochs for epochs in again.epochs_run.values())
    for a, b in zip(first.student.get_weights(), again.student.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.table.equals(again.table)
