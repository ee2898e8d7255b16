"""Teacher outputs from a file: NPZ, CSV and Parquet, keyed by example id, and every check
naming the file and the row or id."""

import numpy as np
import pandas as pd
import pytest

from kdzoo.distillation import read_teacher_outputs, with_teacher_outputs
from kdzoo.distillation.outputs_file import PROBABILITY_FLOOR

LOGITS = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, 1.0], [-4.0, 0.0, 4.0]])
FILE_IDS = np.array([10, 11, 12, 13])


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_npz_rows_come_back_in_the_datasets_order_and_other_ids_are_ignored(tmp_path):
    path = tmp_path / "teacher.npz"
    np.savez(path, ids=FILE_IDS, logits=LOGITS)
    out = read_teacher_outputs(path, ids=[13, 10, 12], num_classes=3)
    np.testing.assert_array_equal(out["logits"], LOGITS[[3, 0, 2]].astype(np.float32))
    assert out["logits"].dtype == np.float32
    # Ready for the cached-outputs path of the Distiller.
    extras = with_teacher_outputs(out)
    np.testing.assert_array_equal(extras["teacher_outputs"]["logits"], out["logits"])


def test_csv_probabilities_by_class_name_become_log_probabilities(tmp_path):
    probs = _softmax(LOGITS)
    probs[2] = [0.0, 0.5, 0.5]  # a class given probability 0
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"]})
    for k, name in enumerate(["neg", "neu", "pos"]):
        frame[f"prob_{name}"] = probs[:, k]
    frame = frame[["id", "prob_pos", "prob_neg", "prob_neu"]]  # any column order
    path = tmp_path / "teacher.csv"
    frame.to_csv(path, index=False)
    out = read_teacher_outputs(path, ids=["b", "c"], class_names=["neg", "neu", "pos"])
    np.testing.assert_allclose(_softmax(out["logits"].astype(np.float64)), probs[[1, 2]], atol=1e-6)
    assert out["logits"][1, 0] == pytest.approx(np.log(PROBABILITY_FLOOR), rel=1e-6)
    assert np.isfinite(out["logits"]).all()


def test_parquet_logits_by_index(tmp_path):
    frame = pd.DataFrame({"example": FILE_IDS, **{f"logit_{k}": LOGITS[:, k] for k in range(3)}})
    path = tmp_path / "teacher.parquet"
    frame.to_parquet(path)
    out = read_teacher_outputs(path, ids=np.array([11, 12]), num_classes=3, id_column="example")
    np.testing.assert_allclose(out["logits"], LOGITS[[1, 2]], rtol=1e-6)


def _csv(tmp_path, rows, header="id,logit_0,logit_1,logit_2"):
    path = tmp_path / "t.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    "rows, kwargs, message",
    [
        (
            ["1,0,0,0", "2,0,0,0"],
            {"ids": [1, 3]},
            r"t\.csv: no outputs for 1 of the dataset's 2 ids \(3\)",
        ),
        (["1,0,0,0", "1,1,1,1"], {"ids": [1]}, r"t\.csv: id 1 appears twice \(line 2 and line 3\)"),
        (["1,0,0,0", "2,0,,0"], {"ids": [1]}, r"t\.csv: line 3 \(id 2\): logits of class 1 is nan"),
        (
            ["1,0,0,0", "2,0,x,0"],
            {"ids": [1]},
            r"t\.csv: line 3: column 'logit_1' is not a number: 'x'",
        ),
        (
            ["1,0,0,0"],
            {"ids": [1], "num_classes": 4},
            r"t\.csv: 3 classes per row, but the dataset has 4",
        ),
        (
            ["1,0,0,0"],
            {"ids": [1], "class_names": ["a", "b", "c", "d"]},
            r"class columns logit_\{0, 1, 2\} do not match the dataset's 4 classes, by name "
            r"logit_\{a, b, c, d\} or by index logit_\{0, 1, 2, 3\}",
        ),
    ],
    ids=["missing id", "duplicate id", "nan", "not a number", "class count", "class names"],
)
def test_bad_files_name_the_file_and_the_row_or_id(tmp_path, rows, kwargs, message):
    with pytest.raises(ValueError, match=message):
        read_teacher_outputs(_csv(tmp_path, rows), **kwargs)


def test_probabilities_must_be_distributions(tmp_path):
    header = "id,prob_0,prob_1"
    with pytest.raises(ValueError, match=r"line 3 \(id 2\) sums to 0\.9, not a probability"):
        read_teacher_outputs(_csv(tmp_path, ["1,0.5,0.5", "2,0.4,0.5"], header), ids=[1, 2])
    with pytest.raises(ValueError, match=r"line 2 \(id 1\) has a negative probability"):
        read_teacher_outputs(_csv(tmp_path, ["1,-0.5,1.5"], header), ids=[1])


def test_malformed_files_are_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="No teacher outputs file at"):
        read_teacher_outputs(tmp_path / "none.npz", ids=[1])
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(ValueError, match=r"t\.json: unsupported format '\.json'"):
        read_teacher_outputs(tmp_path / "t.json", ids=[1])
    with pytest.raises(ValueError, match=r"t\.csv: no id column 'id' \(columns: key, logit_0\)"):
        read_teacher_outputs(_csv(tmp_path, ["1,0"], "key,logit_0"), ids=[1])
    with pytest.raises(ValueError, match=r"one kind\); found \['logits', 'probabilities'\]"):
        read_teacher_outputs(_csv(tmp_path, ["1,0,1"], "id,logit_0,prob_0"), ids=[1])
    np.savez(tmp_path / "t.npz", ids=FILE_IDS, scores=LOGITS)
    with pytest.raises(ValueError, match=r"t\.npz: expected arrays 'ids' and one of"):
        read_teacher_outputs(tmp_path / "t.npz", ids=[10])
    np.savez(tmp_path / "t.npz", ids=FILE_IDS[:3], logits=LOGITS)
    with pytest.raises(
        ValueError, match=r"one row per id; got shape \(4, 3\) for ids of shape \(3,\)"
    ):
        read_teacher_outputs(tmp_path / "t.npz", ids=[10])


def test_distilling_from_a_file_equals_distilling_from_the_teacher_that_wrote_it(tmp_path):
    import keras
    from helpers import av_pair

    import kdzoo
    from kdzoo.data import AudioConfig, from_arrays
    from kdzoo.distillation import FILE_TEACHER_KEY, default_terms, file_teacher

    rng = np.random.default_rng(0)
    n = 64
    arrays = {
        "image": rng.random((n, 16, 16, 1)).astype("float32"),
        "audio": (0.1 * rng.standard_normal((n, 4000))).astype("float32"),
        "label": rng.integers(0, 10, n).astype("int32"),
    }
    ids = np.arange(1000, 1000 + n)
    kwargs = dict(batch_size=16, seed=3, audio_config=AudioConfig.embedded(), training=True)
    teacher, student = av_pair()
    initial = student.get_weights()
    # The teacher's logits, written to a file keyed by id, rows shuffled.
    ordered = from_arrays(arrays, ("image", "audio"), **{**kwargs, "training": False})
    logits = teacher.predict(ordered, verbose=0)
    order = rng.permutation(n)
    np.savez(tmp_path / "teacher.npz", ids=ids[order], logits=logits[order])

    def one_epoch(teacher_model, train):
        student.set_weights(initial)
        keras.utils.set_random_seed(1)
        distiller = kdzoo.Distiller(
            teacher=teacher_model, student=student, terms=default_terms(1.0, 1.0)
        )
        distiller.compile(optimizer=keras.optimizers.SGD(0.05))
        history = distiller.fit(train, epochs=1, verbose=0, shuffle=False)
        return [np.array(w) for w in student.weights], history.history

    def pipeline(modalities, extras=None):
        # The shuffle order depends on TF's global seed when the pipeline is made.
        keras.utils.set_random_seed(7)
        return from_arrays(arrays, modalities, extras=extras, **kwargs)

    online = one_epoch(teacher, pipeline(("image", "audio")))
    outputs = read_teacher_outputs(tmp_path / "teacher.npz", ids=ids, num_classes=10)
    from_file = one_epoch(
        file_teacher(10), pipeline(("audio",), {FILE_TEACHER_KEY: outputs["logits"]})
    )
    assert max(np.abs(a - b).max() for a, b in zip(online[0], from_file[0], strict=True)) < 1e-5
    for key in online[1]:
        np.testing.assert_allclose(from_file[1][key], online[1][key], rtol=1e-5, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(initial, from_file[0], strict=True)) > 1e-3


def test_class_columns_are_names_or_indices_in_class_order(tmp_path):
    names = ["neg", "neu", "pos"]
    by_index = read_teacher_outputs(_csv(tmp_path, ["1,0,1,2"]), ids=[1], class_names=names)
    np.testing.assert_array_equal(by_index["logits"], [[0, 1, 2]])
    header = "id,logit_pos,logit_neg,logit_neu"  # by name, in any column order
    by_name = read_teacher_outputs(_csv(tmp_path, ["1,2,0,1"], header), ids=[1], class_names=names)
    np.testing.assert_array_equal(by_name["logits"], [[0, 1, 2]])
    # Digit names: a column names its class, not an index (here the two differ).
    digits = ["0", "1", "10", "2"]  # labels read as strings, in string order
    header = "id,logit_0,logit_1,logit_2,logit_10"
    out = read_teacher_outputs(_csv(tmp_path, ["1,0,1,2,10"], header), ids=[1], class_names=digits)
    np.testing.assert_array_equal(out["logits"], [[0, 1, 10, 2]])
    with pytest.raises(ValueError, match=r"logit_\{pos, neg, x\} do not match the dataset's 3"):
        read_teacher_outputs(
            _csv(tmp_path, ["1,2,0,1"], "id,logit_pos,logit_neg,logit_x"),
            ids=[1],
            class_names=names,
        )


def test_values_are_checked_in_float32_and_ids_must_be_there(tmp_path):
    from kdzoo.distillation.outputs_file import TeacherOutputsError

    path = tmp_path / "teacher.csv"
    frame = pd.DataFrame({"id": ["a", "b"], "logit_0": [1.0, 1e39], "logit_1": [0.0, 0.0]})
    frame.to_csv(path, index=False)
    # Finite in float64, inf in the float32 that trains: refused by line and id.
    with pytest.raises(TeacherOutputsError, match=r"line 3 \(id 'b'\).*beyond float32's range"):
        read_teacher_outputs(path, ids=["a", "b"], num_classes=2)
    pd.DataFrame({"id": ["a", None], "logit_0": [1.0, 2.0], "logit_1": [0.0, 0.0]}).to_csv(
        path, index=False
    )  # an empty id would have been the id "nan"
    with pytest.raises(TeacherOutputsError, match=r"line 3: the id \('id'\) is empty"):
        read_teacher_outputs(path, ids=["a"], num_classes=2)
    path.write_text("id,logit_0,logit_1\n")
    with pytest.raises(TeacherOutputsError, match=r"teacher.csv: no rows"):
        read_teacher_outputs(path, ids=["a"], num_classes=2)
    path.write_text("")
    with pytest.raises(TeacherOutputsError, match=r"teacher.csv: the file is empty"):
        read_teacher_outputs(path, ids=["a"], num_classes=2)
    npz = tmp_path / "teacher.npz"
    np.savez(npz, ids=FILE_IDS[:, None], logits=LOGITS)
    with pytest.raises(TeacherOutputsError, match=r"teacher.npz: .*ids of shape \(4, 1\)"):
        read_teacher_outputs(npz, ids=[10], num_classes=3)


def test_an_upper_case_extension_is_read_by_its_format(tmp_path):
    path = tmp_path / "TEACHER.CSV"
    pd.DataFrame({"id": [1, 2], "logit_0": [0.5, 1.0], "logit_1": [2.0, -1.0]}).to_csv(
        path, index=False
    )
    out = read_teacher_outputs(path, ids=[2], num_classes=2)
    np.testing.assert_array_equal(out["logits"], [[1.0, -1.0]])
    from kdzoo.recipe.distilling import is_outputs_file

    assert is_outputs_file(path) and is_outputs_file("t.NPZ") and not is_outputs_file("t.keras")


def test_sigmoid_tasks_read_probabilities_as_log_odds(tmp_path):
    from kdzoo.distillation.outputs_file import TeacherOutputsError

    path = tmp_path / "teacher.csv"
    # Binary: one column, P(positive); it need not sum to 1.
    pd.DataFrame({"id": [1, 2], "prob_0": [0.9, 0.2]}).to_csv(path, index=False)
    out = read_teacher_outputs(path, ids=[1, 2], num_classes=1, task_kind="binary")
    np.testing.assert_allclose(out["logits"][:, 0], np.log([9.0, 0.25]), rtol=1e-6)
    # A two-class softmax file: the positive class's logit, whose sigmoid is its p_1.
    pd.DataFrame({"id": [1], "prob_0": [0.2], "prob_1": [0.8]}).to_csv(path, index=False)
    out = read_teacher_outputs(path, ids=[1], num_classes=1, task_kind="binary")
    np.testing.assert_allclose(1 / (1 + np.exp(-out["logits"])), [[0.8]], rtol=1e-6)
    pd.DataFrame({"id": [1], "logit_0": [1.5], "logit_1": [-0.5]}).to_csv(path, index=False)
    out = read_teacher_outputs(path, ids=[1], num_classes=1, task_kind="binary")
    np.testing.assert_allclose(out["logits"], [[-2.0]])
    # Multi-label probabilities that happen to sum to 1 are still each label's own.
    pd.DataFrame({"id": [1], "prob_0": [0.9], "prob_1": [0.1]}).to_csv(path, index=False)
    out = read_teacher_outputs(path, ids=[1], num_classes=2, task_kind="multi_label")
    np.testing.assert_allclose(out["logits"], [[np.log(9.0), -np.log(9.0)]], rtol=1e-6)
    pd.DataFrame({"id": [1], "prob_0": [1.2], "prob_1": [0.1]}).to_csv(path, index=False)
    with pytest.raises(TeacherOutputsError, match=r"line 2 \(id 1\) has a probability above 1"):
        read_teacher_outputs(path, ids=[1], num_classes=2, task_kind="multi_label")
    pd.DataFrame({"id": [1], "prob_0": [0.5]}).to_csv(path, index=False)
    with pytest.raises(TeacherOutputsError, match="regression task's teacher outputs are values"):
        read_teacher_outputs(path, ids=[1], num_classes=1, task_kind="regression")


def test_logit_columns_holding_probabilities_get_a_warning(tmp_path, caplog):
    path = tmp_path / "teacher.csv"
    frame = pd.DataFrame({"id": [1, 2], "logit_0": [0.25, 0.5], "logit_1": [0.75, 0.5]})
    frame.to_csv(path, index=False)
    with caplog.at_level("WARNING", logger="kdzoo"):
        read_teacher_outputs(path, ids=[1, 2], num_classes=2)
    assert "these look like probabilities" in caplog.text and "prob_<k>" in caplog.text
    caplog.clear()
    frame.assign(logit_0=[2.0, 0.5]).to_csv(path, index=False)  # real logits: no warning
    with caplog.at_level("WARNING", logger="kdzoo"):
        read_teacher_outputs(path, ids=[1, 2], num_classes=2)
    assert "look like probabilities" not in caplog.text
