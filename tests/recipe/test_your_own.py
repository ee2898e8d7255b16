"""``distil()`` on your own data and with your own teacher and student: a ``LoadedDataset``
from a DataFrame, a ``.keras`` teacher used as it is, a ``"family/preset"`` student, and the
input keys read from the models."""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from kdzoo import models
from kdzoo.datasets import from_dataframe
from kdzoo.recipe import DistilConfig, check_config, distil
from kdzoo.serving.export import METADATA_FILE

INTENTS = {"billing": "invoice charge refund", "travel": "flight hotel trip", "other": "hello hi"}


def _intents(n=90):
    rng = np.random.default_rng(0)
    labels = rng.choice(sorted(INTENTS), n)
    words = [f"please {INTENTS[c]} {rng.integers(100)}" for c in labels]
    return from_dataframe(
        pd.DataFrame({"utterance": words, "intent": labels}),
        label="intent",
        text="utterance",
        test_fraction=0.2,
        sequence_length=8,
        batch_size=16,
    )


TINY = dict(
    pair="text_lstm",
    global_batch_size=16,
    teacher_epochs=1,
    epochs=1,
    candidates=("ce:0.5,kd:0.5@t=2",),
    scratch=("scratch",),
    strategy="default",
    verbose=0,
)


def test_distil_runs_on_a_loaded_dataset_with_inputs_read_from_the_models():
    data = _intents()
    result = distil(DistilConfig(dataset=data, **TINY))
    assert [t.name for t in result.teacher.inputs] == ["text"]
    assert [t.name for t in result.student.inputs] == ["text"]
    assert "teacher" in result.history  # the pair's teacher is trained first
    assert result.table["accuracy"].between(0, 1).all()
    assert result.student.outputs[0].shape[-1] == 3


def test_a_fusion_family_is_built_for_the_inputs_each_side_reads():
    rng = np.random.default_rng(1)
    labels = rng.choice(sorted(INTENTS), 90)
    frame = pd.DataFrame(
        {
            "utterance": [f"please {INTENTS[c]}" for c in labels],
            "words": [len(INTENTS[c].split()) + rng.normal(0, 0.1) for c in labels],
            "channel": rng.choice(["app", "web"], 90),
            "intent": labels,
        }
    )
    data = from_dataframe(
        frame, label="intent", text="utterance", numeric=["words"], categorical=["channel"],
        test_fraction=0.2, sequence_length=8, batch_size=16,
    )  # fmt: skip
    config = DistilConfig(
        dataset=data, **{**TINY, "pair": "fusion_early"},
        teacher_inputs=("text", "tabular"), student_inputs=("tabular",),
    )  # fmt: skip
    result = distil(config)
    assert sorted(t.name for t in result.teacher.inputs) == ["tabular", "text"]
    assert [t.name for t in result.student.inputs] == ["tabular"]
    assert result.student.input["tabular"].shape[-1] == data.tabular_config.feature_size == 4


def test_a_given_teacher_is_used_as_it_is_and_the_student_is_named(tmp_path):
    data = _intents()
    shapes = {"sequence_length": 8, "vocab_size": data.text_vectorizer.vocab_size}
    teacher = models.build("text_cnn_lstm", "teacher", 3, **shapes)
    teacher.save(tmp_path / "teacher.keras")
    before = [w.copy() for w in teacher.get_weights()]
    config = DistilConfig(
        dataset=data,
        teacher=str(tmp_path / "teacher.keras"),
        student="text_lstm/student",
        **{**TINY, "teacher_epochs": 0},
    )
    result = distil(config)
    assert "teacher" not in result.history  # not trained
    assert result.teacher.name == teacher.name
    for was, now in zip(before, result.teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(was, now)
    assert result.student.name.startswith("text_lstm_student")


def test_your_own_keras_student_must_predict_the_data_classes():
    data = _intents()
    text = keras.Input((8,), dtype="int32", name="text")
    wrong = keras.Model(text, keras.layers.Dense(4)(keras.layers.Embedding(50, 4)(text)[:, 0]))
    with pytest.raises(ValueError, match="student .* predicts 4 classes; the data has 3"):
        distil(DistilConfig(dataset=data, student=wrong, **TINY))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"teacher": "no/such/teacher.keras"},
            "DistilConfig.teacher: no/such/teacher.keras: no such",
        ),
        ({"teacher": 3}, "DistilConfig.teacher must be a keras.Model"),
        ({"student": "nope/student"}, "DistilConfig.student: Unknown model 'nope'"),
        ({"student": "text_lstm/huge"}, "'text_lstm' has no preset 'huge'"),
        ({"pair": "nope"}, "DistilConfig.pair: unknown pair 'nope'"),
        (
            {"dataset": pd.DataFrame()},
            "DistilConfig.dataset must be a dataset name or a LoadedDataset",
        ),
        ({"teacher_inputs": ()}, "DistilConfig.teacher_inputs must name input keys"),
    ],
)
def test_bad_models_and_data_are_named_before_anything_loads(change, message):
    with pytest.raises(ValueError, match=message):
        check_config(dataclasses.replace(DistilConfig(**TINY), **change))


def test_a_given_teacher_is_not_trained_so_teacher_epochs_must_stay_default(tmp_path):
    inputs = keras.Input((8,), name="text")
    keras.Model(inputs, keras.layers.Dense(3)(inputs)).save(tmp_path / "t.keras")
    config = DistilConfig(teacher=str(tmp_path / "t.keras"), teacher_epochs=5)
    with pytest.raises(ValueError, match="used as it is, not trained; leave teacher_epochs"):
        check_config(config)
    check_config(dataclasses.replace(config, teacher_epochs=0))


def test_loaded_data_refuses_the_options_of_named_datasets():
    data = _intents()
    with pytest.raises(
        ValueError, match="DistilConfig.num_examples applies to a dataset kdzoo loads"
    ):
        check_config(DistilConfig(dataset=data, num_examples=100, **TINY))


@pytest.mark.slow
def test_a_student_of_your_own_data_exports_and_passes_check_export(tmp_path):
    from kdzoo.serving.check import check_export

    data = _intents()
    data.name = "intents"
    result = distil(DistilConfig(dataset=data, export_dir=str(tmp_path), **TINY))
    assert Path(result.export_path).parent.name == "intents_student"  # after the data
    report = check_export(result.export_path)
    assert report.passed, report.format()
    assert report.inputs == "the warmup request's inputs (intents's examples, taken at export)"
    assert (
        "tensorflow_text"
        in json.loads((Path(result.export_path) / METADATA_FILE).read_text())["requires"]
    )
    # portable=True: core-op tokenising, so stock TF Serving loads it (`kdzoo distil --portable`)
    portable = distil(DistilConfig(dataset=data, export_dir=str(tmp_path), portable=True, **TINY))
    metadata = json.loads((Path(portable.export_path) / METADATA_FILE).read_text())
    assert (metadata["portable"], metadata["requires"]) == (True, [])
    assert check_export(portable.export_path).passed


def test_export_options_are_checked_before_anything_trains(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    with pytest.raises(ValueError, match=f"DistilConfig.export_dir: {taken} is a file"):
        check_config(DistilConfig(dataset=_intents(), export_dir=str(taken), **TINY))
    with pytest.raises(ValueError, match="portable must be one of True, False"):
        check_config(DistilConfig(dataset=_intents(), portable="yes", **TINY))


def test_a_text_pair_reads_text_without_input_flags():
    # `kdzoo distil --dataset sst2 --pair text_lstm` once loaded sst2 for image and audio.
    from kdzoo.recipe.distilling import _reads, _sides

    teacher, student = _sides(DistilConfig(dataset="sst2", pair="text_lstm"))
    assert (_reads(teacher), _reads(student)) == (("text",), ("text",))
    teacher, student = _sides(DistilConfig())  # the demo's pair: image+audio -> audio
    assert (_reads(teacher), _reads(student)) == (("image", "audio"), ("audio",))


def test_without_a_pair_the_datas_family_is_built():
    from kdzoo.recipe.config import DataConfigError
    from kdzoo.recipe.distilling import _pair_for

    catalog = {name: _pair_for(DistilConfig(dataset=name)) for name in ("mnist", "sst2", "fsdd")}
    assert catalog == {"mnist": "image_cnn", "sst2": "text_lstm", "fsdd": "audio_crnn"}
    assert _pair_for(DistilConfig(dataset="embedded")) == "av_to_audio"  # image, audio, text
    assert _pair_for(DistilConfig(dataset="sst2", pair="text_cnn_lstm")) == "text_cnn_lstm"
    data = _intents()
    tiny = {k: v for k, v in TINY.items() if k != "pair"}
    result = distil(DistilConfig(dataset=data, **tiny))
    assert (result.teacher.name, result.student.name) == ("text_lstm_teacher", "text_lstm_student")
    rng = np.random.default_rng(2)
    mixed = from_dataframe(
        pd.DataFrame({"t": ["a b", "c d"] * 20, "x": rng.normal(size=40), "y": ["u", "v"] * 20}),
        label="y",
        text="t",
        numeric=["x"],
    )
    with pytest.raises(DataConfigError, match="gives tabular and text, which no one family"):
        _pair_for(DistilConfig(dataset=mixed), mixed)
    both = DistilConfig(dataset=mixed, teacher="t.keras", student="tabular_mlp/student")
    assert _pair_for(both, mixed) is None  # nothing to build from a pair


def test_fewer_training_examples_than_one_batch_names_the_batch_to_give():
    from kdzoo.recipe.config import DataConfigError

    data = _intents()  # 90 rows: 72 after test, 64 after validation
    with pytest.raises(
        DataConfigError,
        match=r"64 training examples, fewer than one global "
        r"batch \(global_batch_size=128\); give global_batch_size=64 or less",
    ):
        distil(DistilConfig(dataset=data, **{**TINY, "global_batch_size": 128}))  # fmt: skip


def test_a_subset_smaller_than_one_batch_is_refused_before_anything_loads():
    config = DistilConfig(dataset=_intents(), **{**TINY, "train_examples": 8})
    with pytest.raises(ValueError, match=r"train_examples=8 keeps fewer training examples "
                       r"than one global batch \(global_batch_size=16\)"):  # fmt: skip
        check_config(config)


def test_data_too_small_for_its_batch_claims_no_backup(tmp_path):
    from kdzoo.recipe.config import DataConfigError

    backup = tmp_path / "backup"
    config = DistilConfig(
        dataset=_intents(), backup_dir=str(backup), **{**TINY, "global_batch_size": 128}
    )
    with pytest.raises(DataConfigError, match="give global_batch_size=64 or less"):
        distil(config)
    assert not backup.exists() or not any(backup.iterdir())  # the advice can be followed


def test_a_class_without_a_validation_example_is_warned_of(caplog):
    from kdzoo.recipe.distilling import _warn_unseen_classes

    labels = ["billing"] * 30 + ["travel"] * 30 + ["other"]  # one row of "other"
    data = from_dataframe(
        pd.DataFrame({"t": [f"w{i}" for i in range(61)], "y": labels}), label="y", text="t"
    )
    assert np.bincount(data.arrays["train"]["label"]).tolist() == [27, 1, 27]
    with caplog.at_level("WARNING", logger="kdzoo"):
        _warn_unseen_classes(data)
    assert caplog.messages == [
        "dataframe: class 'other' has no validation example (1 in train), so the validation "
        "accuracy that chooses the student cannot see it."
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="kdzoo"):
        _warn_unseen_classes(_intents())  # every class in both
    assert caplog.messages == []


def _outputs_file(data, path, correct=True):
    """A teacher's logits for every row of ``data``, keyed by id: the true class scores 5
    (``correct``), or a wrong class does."""
    rows = []
    for arrays in data.arrays.values():
        for uid, label in zip(arrays["id"], arrays["label"], strict=True):
            scores = np.zeros(3)
            scores[label if correct else (label + 1) % 3] = 5.0
            rows.append({"id": uid, **{f"logit_{k}": scores[k] for k in range(3)}})
    pd.DataFrame(rows).to_csv(path, index=False)


def _intents_with_ids(n=90):
    data = _intents(n)
    for split, arrays in data.arrays.items():
        arrays["id"] = np.array([f"{split}-{i}" for i in range(len(arrays["label"]))])
    return data


def test_a_file_of_teacher_outputs_is_the_teacher_matched_by_id(tmp_path):
    data = _intents_with_ids()
    _outputs_file(data, tmp_path / "llm_scores.csv")
    config = DistilConfig(
        dataset=data,
        teacher=str(tmp_path / "llm_scores.csv"),
        student="text_lstm/student",
        **{**TINY, "teacher_epochs": 0},
    )
    result = distil(config)
    table = result.table.set_index("model")
    assert table.loc["teacher", "accuracy"] == 1.0  # its rows, matched to the test ids
    assert result.teacher.count_params() == 0 and result.teacher.name == "file_teacher_llm_scores"
    assert "teacher" not in result.history
    assert [t.name for t in result.student.inputs] == ["text"]


def test_a_file_of_teacher_outputs_needs_the_ids_of_every_row(tmp_path):
    data = _intents_with_ids()
    _outputs_file(data, tmp_path / "scores.csv")
    rows = pd.read_csv(tmp_path / "scores.csv")
    rows[rows["id"] != "test-0"].to_csv(tmp_path / "scores.csv", index=False)
    config = DistilConfig(
        dataset=data, teacher=str(tmp_path / "scores.csv"), **{**TINY, "teacher_epochs": 0}
    )
    with pytest.raises(ValueError, match=r"scores\.csv.*test-0"):
        distil(config)
    with pytest.raises(ValueError, match="has no ids in"):
        distil(dataclasses.replace(config, dataset=_intents()))


def test_a_column_the_export_would_refuse_is_refused_before_training(tmp_path):
    from kdzoo.recipe.config import DataConfigError

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"monthly spend": rng.normal(size=60), "y": ["u", "v"] * 30})
    data = from_dataframe(frame, label="y", numeric=["monthly spend"])
    tiny = {**TINY, "pair": "tabular_mlp"}
    exports = tmp_path / "exports"
    with pytest.raises(
        DataConfigError,
        match=r"column\(s\) 'monthly spend' cannot name a serving input .*\('monthly spend' -> "
        r"'monthly_spend'\) in the data, or leave out export_dir\.",
    ):
        distil(DistilConfig(dataset=data, export_dir=str(exports), **tiny))
    assert not exports.exists()  # refused before anything trained or was written


def test_a_binary_task_without_a_validation_positive_is_warned_of(caplog):
    from kdzoo.recipe.distilling import _warn_unseen_classes

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(size=80), "y": [0] * 79 + [1]})  # one positive
    data = from_dataframe(frame, label="y", numeric=["a"], task="binary")
    with caplog.at_level("WARNING", logger="kdzoo"):
        _warn_unseen_classes(data)
    assert len(caplog.messages) == 1
    assert "class 'positive' has no validation example (1 in train)" in caplog.messages[0]
    assert "the validation ROC AUC that chooses the student cannot see it" in caplog.messages[0]


def test_the_default_batch_is_halved_for_a_small_training_set():
    from kdzoo.recipe.config import AUTO_BATCH_MIN_STEPS, SMALLEST_AUTO_BATCH, auto_batch_size

    assert AUTO_BATCH_MIN_STEPS == 16 and SMALLEST_AUTO_BATCH == 8
    rows = (100_000, 1024, 1023, 512, 511, 400, 256, 255, 7)
    sizes = {n: auto_batch_size(n) for n in rows}  # 64 while an epoch has 16 steps or more
    assert sizes == {100_000: 64, 1024: 64, 1023: 32, 512: 32, 511: 16, 400: 16, 256: 16,
                     255: 8, 7: 8}  # fmt: skip
    assert auto_batch_size(200, replicas=2) == 16  # 8 per replica at least
    assert auto_batch_size(100_000, replicas=8) == 64 and auto_batch_size(400, replicas=8) == 64
    assert auto_batch_size(100_000, replicas=3) == 63  # a multiple of the replicas


def test_distil_sizes_the_batch_for_the_data_unless_given():
    data = _intents()  # 64 training rows: an epoch of 8 steps at 8
    result = distil(DistilConfig(dataset=data, **{**TINY, "global_batch_size": None}))
    assert result.global_batch_size == 8
    assert result.candidates["train_examples"].iloc[0] == 64
    result = distil(DistilConfig(dataset=data, **TINY))
    assert result.global_batch_size == 16
