"""Serving exports: layout and versions, no teacher inside, signatures and metadata, warmup,
and parity of the in-graph preprocessing with the training pipeline (within 1e-5)."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import audio_student, av_pair, serve

import kdzoo
from kdzoo import datasets, models
from kdzoo.data import from_arrays
from kdzoo.evaluation import classification_metrics
from kdzoo.serving import (
    METADATA_FILE,
    ServingPreprocessing,
    bundle_student,
    export_for_serving,
    export_saved_model,
    export_student,
    load_student,
    next_version,
    raw_examples,
    read_metadata,
    read_warmup,
    save_student,
)

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def embedded():
    """The demo's data: generated, 0.5 s waveforms, no normalisation."""
    return datasets.load("embedded", num_examples=200, modalities=("audio",), batch_size=32)


def _probabilities(model, dataset):
    """The training pipeline plus the model, as evaluation computes them."""
    return tf.nn.softmax(model.predict(dataset, verbose=0)).numpy()


def test_versions_are_integers_and_never_overwritten(tmp_path, embedded):
    student = audio_student(embedded)
    first = export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    second = export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    assert (first.name, second.name) == ("1", "2")
    assert (first / "saved_model.pb").exists() and (first / METADATA_FILE).exists()
    assert read_metadata(second)["version"] == 2
    before = sorted(p.relative_to(first) for p in first.rglob("*"))
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_for_serving(student, tmp_path, name="s", version=1, preprocessing=embedded)
    assert sorted(p.relative_to(first) for p in first.rglob("*")) == before
    assert next_version(tmp_path / "s") == 3
    # The bare export shares the layout and the rule.
    assert export_saved_model(student, tmp_path, name="s").name == "3"
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_saved_model(student, tmp_path, name="s", version=3)


def test_versions_are_numbers_as_tf_serving_reads_the_folders(tmp_path, embedded):
    student = audio_student(embedded)
    (tmp_path / "s" / "007").mkdir(parents=True)  # version 7 to TF Serving
    with pytest.raises(FileExistsError, match=r"s/007 exists \(version 7\); versions are never"):
        export_saved_model(student, tmp_path, name="s", version=7)
    (tmp_path / "s" / "8").write_text("a file named 8")  # takes the name: skipped
    assert next_version(tmp_path / "s") == 9
    assert export_saved_model(student, tmp_path, name="s").name == "9"
    for version in (2.5, True, "3"):
        with pytest.raises(TypeError, match="`version` must be a positive integer or None"):
            export_saved_model(student, tmp_path, name="s", version=version)
    assert export_saved_model(student, tmp_path, name="s", version=np.int64(10)).name == "10"
    (tmp_path / "f").write_text("mine")
    with pytest.raises(NotADirectoryError, match=r"f is a file; the model's versions go in"):
        export_saved_model(student, tmp_path, name="f")
    assert (tmp_path / "f").read_text() == "mine"


def test_a_failed_export_leaves_no_version_behind(tmp_path, monkeypatch, embedded):
    student = audio_student(embedded)
    import kdzoo.serving.warmup

    def crash(path, requests):  # the SavedModel is written by then; the warmup is not
        (path / "assets.extra").mkdir(exist_ok=True)  # the reference file is there
        (path / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(kdzoo.serving.warmup, "write_warmup", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    # No version, no temporary folder, and no empty model folder the export made itself.
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "s").mkdir()  # a model folder that was there stays
    with pytest.raises(RuntimeError, match="disk full"):
        export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    assert list((tmp_path / "s").iterdir()) == []
    with pytest.raises(ValueError, match="plain folder name"):
        export_for_serving(student, tmp_path, name="../escape", preprocessing=embedded)


def test_a_distiller_is_refused_and_its_student_exports_alone(tmp_path, embedded):
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    refused = r"`model` is a Distiller; pass its student \(`distiller.student`\)"
    with pytest.raises(TypeError, match=refused):
        export_for_serving(distiller, tmp_path, name="s", preprocessing=embedded)
    with pytest.raises(TypeError, match=refused):
        export_saved_model(distiller, tmp_path, name="s")
    prep = ServingPreprocessing.from_dataset(embedded)
    with pytest.raises(TypeError, match=refused):
        save_student(distiller, tmp_path / "bundle", prep, name="s")
    with pytest.raises(TypeError, match="`student` is a Distiller"):
        export_student(distiller, tmp_path, name="s", data=embedded)
    with pytest.raises(TypeError, match="must be a keras.Model; got dict"):
        export_saved_model({"audio": None}, tmp_path, name="s")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    path = export_for_serving(
        distiller.student, tmp_path, name="s", preprocessing=embedded, teacher_name=teacher.name
    )
    # By size: the teacher's float32 weights alone would be 4 bytes per parameter.
    variables = sum(f.stat().st_size for f in (path / "variables").iterdir())
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert variables < 4 * teacher.count_params() / 3
    assert total < 4 * teacher.count_params()
    # By variable names and shapes: exactly the student's.
    loaded = tf.saved_model.load(str(path))
    served = sorted((v.name.removesuffix(":0"), tuple(v.shape)) for v in loaded.variables)
    assert served == sorted((v.path, tuple(v.shape)) for v in student.variables)
    teacher_only = {v.path for v in teacher.variables} - {v.path for v in student.variables}
    assert teacher_only and not teacher_only & {name for name, _ in served}
    meta = read_metadata(path)
    assert meta["teacher"] == teacher.name and meta["model"] == student.name
    assert meta["params"] == student.count_params()


def test_signatures_outputs_and_metadata(tmp_path, embedded):
    student = audio_student(embedded)
    metrics = {"test_accuracy": 0.5}
    path = export_for_serving(
        student,
        tmp_path,
        name="s",
        preprocessing=embedded,
        teacher_name="the_teacher",
        metrics=metrics,
    )
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {
        "serving_default",
        "serving_preprocessed",
        "serving_wav_bytes",
    }
    specs = {n: f.structured_input_signature[1] for n, f in loaded.signatures.items()}
    assert specs["serving_default"]["audio"].dtype == tf.float32
    assert specs["serving_default"]["audio"].shape.as_list() == [None, None]
    assert specs["serving_wav_bytes"]["audio"].dtype == tf.string
    assert specs["serving_preprocessed"]["audio"].shape.as_list() == [None, 30, 32]
    waves = embedded.arrays["test"]["audio"][:3]
    out = serve(path, audio=waves)
    assert sorted(out) == ["class_id", "class_name", "probabilities"]
    assert out["probabilities"].shape == (3, 10) and out["class_id"].dtype == np.int64
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
    assert [n.decode() for n in out["class_name"]] == [str(i) for i in out["class_id"]]
    meta = json.loads((path / METADATA_FILE).read_text())
    assert meta["class_names"] == list(embedded.class_names)
    assert meta["preprocessing"]["audio"] == embedded.audio_config.to_dict()
    assert meta["signatures"]["serving_default"]["inputs"] == {
        "audio": {"dtype": "float32", "shape": [-1, -1]}
    }
    assert meta["signatures"]["serving_default"]["outputs"]["probabilities"]["shape"] == [-1, 10]
    assert meta["teacher"] == "the_teacher" and meta["metrics"] == metrics
    assert meta["kdzoo_version"] == kdzoo.__version__ and meta["custom_ops"] == {}
    assert meta["portable"] is True and meta["requires"] == []


def test_without_the_serving_extra_the_export_has_no_warmup_and_says_why(
    tmp_path, embedded, monkeypatch, caplog
):
    from kdzoo.optional import MissingExtraError

    student = audio_student(embedded)
    # As if never installed (an earlier test may have imported some of its modules).
    for module in [m for m in sys.modules if m.startswith("tensorflow_serving")] + [
        "tensorflow_serving",
        "tensorflow_serving.apis",
    ]:
        monkeypatch.setitem(sys.modules, module, None)
    # Asked for explicitly: a clear error naming the extra, before anything is written.
    with pytest.raises(MissingExtraError, match=r"pip install 'kdzoo\[serving\]'"):
        export_for_serving(student, tmp_path, name="s", preprocessing=embedded, warmup=True)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
    # By default: exported without one, logged, and recorded in the metadata.
    with caplog.at_level("WARNING", logger="kdzoo"):
        path = export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    assert "Exporting without a warmup file" in caplog.text
    assert sorted(f.name for f in (path / "assets.extra").iterdir()) == ["kdzoo_reference.npz"]
    assert read_metadata(path)["reference"]["examples"] == "synthetic"  # still checkable
    meta = read_metadata(path)["warmup"]
    assert meta["file"] is None and meta["requests"] == 0
    assert "pip install 'kdzoo[serving]'" in meta["skipped"]
    # The model itself serves as before.
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    audio = raw_examples(embedded.arrays["test"], ["audio"], count=2)["audio"]
    assert served(audio=tf.constant(audio))["probabilities"].shape == (2, 10)
    with pytest.raises(TypeError, match="`warmup` must be None, True or False"):
        export_for_serving(student, tmp_path, name="s", preprocessing=embedded, warmup="yes")


def test_warmup_holds_real_prediction_logs_for_every_signature(tmp_path, embedded):
    student = audio_student(embedded)
    examples = raw_examples(embedded.arrays["test"], ["audio"], count=3)
    path = export_for_serving(
        student, tmp_path, name="s", preprocessing=embedded, warmup_inputs=examples
    )
    logs = read_warmup(path)
    requests = [log.predict_log.request for log in logs]
    assert [r.model_spec.signature_name for r in requests] == [
        "serving_default",
        "serving_default",
        "serving_preprocessed",
        "serving_wav_bytes",
    ]
    assert all(r.model_spec.name == "s" for r in requests)
    np.testing.assert_array_equal(tf.make_ndarray(requests[1].inputs["audio"]), examples["audio"])
    assert requests[3].inputs["audio"].dtype == tf.string.as_datatype_enum
    assert read_metadata(path)["warmup"] == {
        "file": "assets.extra/tf_serving_warmup_requests",
        "requests": 4,
        "inputs": "given",
    }
    # Each request runs against its signature.
    loaded = tf.saved_model.load(str(path))
    for r in requests:
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in r.inputs.items()}
        out = loaded.signatures[r.model_spec.signature_name](**inputs)
        assert out["probabilities"].shape[0] == inputs["audio"].shape[0]


def test_demo_student_parity_raw_waveform_vs_pipeline(tmp_path, embedded):
    student = audio_student(embedded)
    path = export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    arrays = embedded.arrays["test"]
    expected = _probabilities(student, embedded.pipeline("test", batch_size=16))
    served = serve(path, audio=arrays["audio"])["probabilities"]
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)
    # Waveforms of another length are padded/cropped as in training.
    short = serve(path, audio=arrays["audio"][:4, :3000])["probabilities"]
    padded = np.pad(arrays["audio"][:4, :3000], ((0, 0), (0, 1000)))
    np.testing.assert_allclose(short, serve(path, audio=padded)["probabilities"], atol=1e-6)


@pytest.fixture(scope="module")
def av_digits_audio():
    # The unseen-voice protocol, whose default front end normalises each clip (CMVN).
    return datasets.load(
        "av_digits", modalities=("audio",), batch_size=64, fsdd_split="speaker:george"
    )


@pytest.mark.requires_data("fsdd", "mnist")
def test_av_digits_audio_student_parity_with_normalisation(tmp_path, av_digits_audio):
    data = av_digits_audio
    assert data.audio_config.normalized  # the train split's statistics are in the config
    assert data.audio_config.utterance_norm == "mean_var"  # "auto" on a held-out speaker
    student = audio_student(data)
    train = from_arrays(
        {k: v[:256] for k, v in data.arrays["train"].items()},
        ("audio",),
        batch_size=64,
        training=True,
        audio_config=data.audio_config,
    )
    student.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    student.fit(train, epochs=1, verbose=0)
    path = export_for_serving(student, tmp_path, name="av_audio", preprocessing=data)
    test = {k: v[:64] for k, v in data.arrays["test"].items()}
    pipeline = from_arrays(test, ("audio",), batch_size=32, audio_config=data.audio_config)
    expected = _probabilities(student, pipeline)
    served = serve(path, audio=test["audio"])["probabilities"]
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)
    meta = read_metadata(path)
    assert meta["preprocessing"]["audio"]["mel_mean"] == list(data.audio_config.mel_mean)
    assert meta["preprocessing"]["audio"]["utterance_norm"] == "mean_var"
    # A clip sent without the loader's zero padding serves as the padded one did.
    voiced = int(np.flatnonzero(test["audio"][0])[-1]) + 1
    short = serve(path, audio=test["audio"][:1, :voiced])["probabilities"]
    np.testing.assert_allclose(short, served[:1], atol=TOLERANCE)


@pytest.mark.requires_data("mnist")
def test_image_student_parity_png_bytes_vs_pipeline(tmp_path):
    data = datasets.load("mnist", batch_size=64)
    student = models.build("image_cnn", "student", image_shape=data.image_config.shape)
    path = export_for_serving(student, tmp_path, name="img", preprocessing=data)
    test = {k: v[:48] for k, v in data.arrays["test"].items()}
    expected = _probabilities(
        student, from_arrays(test, ("image",), batch_size=16, image_config=data.image_config)
    )
    pngs = raw_examples(test, ["image"], count=48)["image"]
    served = serve(path, image=pngs)["probabilities"]
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.requires_data("sst2")
def test_text_student_parity_strings_vs_pipeline(tmp_path, portable, text_student):
    data = datasets.load("sst2", batch_size=64)
    vectorizer = data.text_vectorizer
    student = text_student(vectorizer)
    path = export_for_serving(student, tmp_path, name="txt", preprocessing=data, portable=portable)
    assert (path / "assets" / os.path.basename(data.vocabulary_path)).is_file()
    test = {k: v[:200] for k, v in data.arrays["test"].items()}
    pipeline = from_arrays(test, ("text",), batch_size=64, text_vectorizer=vectorizer)
    expected = _probabilities(student, pipeline)
    served = serve(path, text=[t.encode("utf-8") for t in test["text"]])
    np.testing.assert_allclose(served["probabilities"], expected, atol=TOLERANCE)
    assert set(served["class_name"]) <= {b"negative", b"positive"}
    meta = read_metadata(path)
    assert meta["preprocessing"]["text"]["serving_tokenizer"] == (
        "core" if portable else "tensorflow_text"
    )
    assert meta["portable"] is portable


def test_mismatched_preprocessing_and_inputs_fail_clearly(tmp_path, embedded):
    student = models.build("audio_crnn", "student", audio_shape=(61, 32))  # 1 s clips
    with pytest.raises(ValueError, match=r"'audio' is float32 \[61, 32\].*\[30, 32\]"):
        export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    student = audio_student(embedded)
    wrong_classes = ServingPreprocessing(("a", "b"), audio=embedded.audio_config)
    with pytest.raises(ValueError, match="10 outputs but `class_names` has 2"):
        export_for_serving(student, tmp_path, name="s", preprocessing=wrong_classes)
    no_audio = ServingPreprocessing(embedded.class_names)
    with pytest.raises(ValueError, match=r"no config\s+for \['audio'\]"):
        export_for_serving(student, tmp_path, name="s", preprocessing=no_audio)
    with pytest.raises(ValueError, match="`warmup_inputs` has keys"):
        export_for_serving(
            student, tmp_path, name="s", preprocessing=embedded, warmup_inputs={"wave": [[0.0]]}
        )
    with pytest.raises(TypeError, match="ServingPreprocessing or a LoadedDataset"):
        export_for_serving(student, tmp_path, name="s", preprocessing={"audio": None})
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_wrong_dtype_or_shape_gives_a_clear_error(tmp_path, embedded):
    path = export_for_serving(audio_student(embedded), tmp_path, name="s", preprocessing=embedded)
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor"):
        signature(audio=tf.zeros([1, 100], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"audio \[100\] is not compatible"):
        signature(audio=tf.zeros([100]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="holds NaN or inf"):
        signature(audio=tf.fill([1, 100], np.nan))
    with pytest.raises(TypeError, match="missing a required argument: 'audio'"):
        signature(wave=tf.zeros([1, 100]))
    assert signature(audio=tf.zeros([1, 100]))["probabilities"].shape == (1, 10)  # still serves


def test_export_student_takes_preprocessing_examples_and_metrics_from_its_dataset(
    tmp_path, embedded
):
    student = audio_student(embedded)
    path = export_student(student, tmp_path, name="s", data=embedded, teacher_name="t")
    meta = read_metadata(path)
    # metrics=None: evaluated on the split, as kdzoo.evaluation computes them.
    expected = classification_metrics(student, embedded.splits["test"])
    assert meta["metrics"] == pytest.approx({f"test_{k}": v for k, v in expected.items()})
    assert meta["teacher"] == "t" and meta["modalities"] == ["audio"]
    assert meta["preprocessing"]["audio"] == embedded.audio_config.to_dict()
    assert meta["warmup"] == {
        "file": "assets.extra/tf_serving_warmup_requests",
        "requests": 4,
        "inputs": "given",
    }
    requests = [log.predict_log.request for log in read_warmup(path)]
    np.testing.assert_array_equal(
        tf.make_ndarray(requests[1].inputs["audio"]), embedded.arrays["test"]["audio"][:4]
    )
    # Given metrics and another split; an explicit version.
    path = export_student(
        student,
        tmp_path,
        name="s",
        data=embedded,
        split="train",
        metrics={"train_accuracy": np.float32(0.25)},
        version=7,
    )
    assert path.name == "7" and read_metadata(path)["metrics"] == {"train_accuracy": 0.25}
    requests = [log.predict_log.request for log in read_warmup(path)]
    np.testing.assert_array_equal(
        tf.make_ndarray(requests[1].inputs["audio"]), embedded.arrays["train"]["audio"][:4]
    )
    with pytest.raises(KeyError, match=r"embedded has no split 'dev'; it has \["):
        export_student(student, tmp_path, name="s", data=embedded, split="dev", metrics={})


def test_bundle_student_round_trips_into_the_same_export(tmp_path, embedded):
    student = audio_student(embedded)
    metrics = {"test_accuracy": 0.5}
    folder = bundle_student(
        student, tmp_path / "b", name="s", data=embedded, metrics=metrics, teacher_name="t"
    )
    bundle = load_student(folder)
    assert (bundle.name, bundle.teacher_name, bundle.metrics) == ("s", "t", metrics)
    assert bundle.dataset == "embedded"  # check-export replays real examples only of kdzoo's
    assert bundle.preprocessing == ServingPreprocessing.from_dataset(embedded, ["audio"])
    np.testing.assert_array_equal(bundle.examples["audio"], embedded.arrays["test"]["audio"][:4])
    direct = export_student(student, tmp_path / "x", name="s", data=embedded, metrics=metrics)
    path = export_for_serving(
        bundle.model,
        tmp_path / "y",
        name=bundle.name,
        preprocessing=bundle.preprocessing,
        metrics=bundle.metrics,
        warmup_inputs=bundle.examples,
    )
    waves = embedded.arrays["test"]["audio"][:5]
    np.testing.assert_allclose(
        serve(path, audio=waves)["probabilities"],
        serve(direct, audio=waves)["probabilities"],
        atol=1e-6,
    )
    assert read_metadata(path)["metrics"] == read_metadata(direct)["metrics"] == metrics


def _customers(n=60, columns=("age", "plan")):
    rng = np.random.default_rng(5)
    import pandas as pd

    frame = pd.DataFrame(
        {
            columns[0]: rng.normal(40, 10, n),
            columns[1]: rng.choice(["basic", "pro"], n),
            "churn": rng.choice(["leaves", "stays"], n),
        }
    )
    return datasets.from_dataframe(
        frame, label="churn", numeric=[columns[0]], categorical=[columns[1]], test_fraction=0.2
    )


def test_a_tabular_student_serves_named_columns_and_bundles_them(tmp_path):
    data = _customers()
    student = models.build("tabular_mlp", "student", num_classes=2, **data.model_shapes())
    path = export_student(student, tmp_path / "x", name="churn", data=data)
    signature = read_metadata(path)["signatures"]["serving_default"]["inputs"]
    assert signature == {
        "age": {"dtype": "float64", "shape": [-1]},
        "plan": {"dtype": "string", "shape": [-1]},
    }
    examples = raw_examples(data.arrays["test"], ["tabular"], tabular=data.tabular_config)
    served = serve(path, **examples)["probabilities"]
    np.testing.assert_allclose(
        served, _probabilities(student, data.pipeline("test", batch_size=4).take(1)), atol=1e-6
    )
    # A plan training never saw is read as unseen, as training reads it: not refused.
    from kdzoo.data import tabular_features
    from kdzoo.data.tabular import UNSEEN

    # A finite number beyond float32's range once standardised would be served as NaN
    # probabilities under a normal-looking class; it is refused, naming the column.
    with pytest.raises(tf.errors.InvalidArgumentError, match="age: too large a number"):
        serve(path, age=np.array([40.0, 1e300]), plan=np.array([b"pro", b"pro"]))
    unseen = serve(path, age=np.array([40.0]), plan=np.array([b"enterprise"]))
    features = tabular_features(np.array([[40.0, UNSEEN]]), data.tabular_config)
    expected = keras.ops.softmax(student({"tabular": features}, training=False))
    np.testing.assert_allclose(unseen["probabilities"], expected, atol=1e-6)
    folder = bundle_student(student, tmp_path / "b", name="churn", data=data)
    bundle = load_student(folder)
    assert bundle.preprocessing.tabular == data.tabular_config
    assert bundle.examples["age"].dtype == np.float64
    np.testing.assert_array_equal(bundle.examples["plan"], examples["plan"])
    again = export_for_serving(
        bundle.model, tmp_path / "y", name="churn", preprocessing=bundle.preprocessing,
        warmup_inputs=bundle.examples,
    )  # fmt: skip
    np.testing.assert_allclose(serve(again, **examples)["probabilities"], served, atol=1e-6)
    # `kdzoo export` carries the bundle's dataset into the export, so check-export takes the
    # bundle's own examples, not a kdzoo dataset's, for a student of your own data.
    from kdzoo.cli import main

    assert bundle.dataset == data.name
    assert main(["export", str(folder), "--base-dir", str(tmp_path / "cli")]) == 0
    assert read_metadata(tmp_path / "cli" / "churn" / "1")["dataset"] == data.name
    config = json.loads((folder / "serving.json").read_text())
    (folder / "serving.json").write_text(json.dumps({**config, "dataset": ["x"]}))
    with pytest.raises(ValueError, match=r"serving.json: \"dataset\" is \['x'\], not a data"):
        load_student(folder)


def test_a_column_that_cannot_name_a_serving_input_is_refused_before_writing(tmp_path):
    data = _customers(columns=("monthly spend", "plan"))
    student = models.build("tabular_mlp", "student", num_classes=2, **data.model_shapes())
    with pytest.raises(
        ValueError,
        match=r"'monthly spend' cannot name a serving input: it "
        r"must be a letter then letters, digits or '_', and not tabular \(the model's "
        r"inputs\)\. Rename the column \(e\.g\. 'monthly_spend'\)",
    ):  # fmt: skip
        export_student(student, tmp_path, name="churn", data=data)
    assert not any(tmp_path.iterdir())


def test_served_categories_match_training_however_pandas_typed_the_column(tmp_path):
    import pandas as pd

    from kdzoo.data import tabular_features
    from kdzoo.data.tabular import UNSEEN, category_key, category_keys

    # Every way of writing a category, in training (left) and from a client (right).
    written = ["1", "1.0", "01", " 1 ", "+1", "1e0", "true", "TRUE", " False", "1.5", "pro",
               "Pro", "", "-0", "2.50", "12345678901234567890"]  # fmt: skip
    in_graph = [k.decode() for k in category_keys(tf.constant(written)).numpy()]
    assert in_graph == [category_key(w) for w in written]
    assert in_graph[:9] == ["1"] * 6 + ["True", "True", "False"]
    assert category_key(1.0) == category_key(np.int64(1)) == category_key("01") == "1"
    assert category_key(True) == "True" and category_key(1.5) == "1.5"
    # A CSV whose category columns pandas reads as floats, booleans and ints.
    frame = pd.DataFrame({
        "grade": [1.0, 2.0] * 15, "member": [True, False, False] * 10,
        "code": [1, 2, 3] * 10, "churn": ["leaves", "stays"] * 15,
    })  # fmt: skip
    path = tmp_path / "members.csv"
    frame.to_csv(path, index=False)
    data = datasets.from_csv(path, label="churn", categorical=["grade", "member", "code"],
                             test_fraction=0.2)  # fmt: skip
    assert data.tabular_config.vocabularies == (("1", "2"), ("False", "True"), ("1", "2", "3"))
    student = models.build("tabular_mlp", "student", num_classes=2, **data.model_shapes())
    export = export_student(student, tmp_path / "x", name="members", data=data)
    sent = serve(export, grade=np.array([b"1.0", b"2"]), member=np.array([b"true", b"FALSE"]),
                 code=np.array([b"03", b"1"]))  # fmt: skip
    rows = np.array([[1, 2, 3], [2, 1, 1]], np.float64)  # codes: index in the vocabulary + 1
    assert (rows != UNSEEN).all()
    features = tabular_features(rows, data.tabular_config)
    expected = keras.ops.softmax(student({"tabular": features}, training=False))
    np.testing.assert_allclose(sent["probabilities"], expected, atol=1e-6)
