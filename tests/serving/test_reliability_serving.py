"""Nothing lost, nothing silent: bundles, teacher caches and serving exports replace only
what kdzoo wrote, clean up only their own dead temporaries, never race into a raw OSError,
refuse NaN weights, and serving signatures reject what training rejects."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import audio_student, av_pair, run_python, serve

import kdzoo.files
from kdzoo import datasets, models
from kdzoo.data import AudioConfig, from_arrays
from kdzoo.data.image import ImageConfig
from kdzoo.data.text import TextVectorizer
from kdzoo.distillation import cache_teacher_outputs, load_teacher_outputs
from kdzoo.files import MARKER, NotOwnedError, make_sibling_tmp, owner_kind
from kdzoo.serving import (
    METADATA_FILE,
    ServingPreprocessing,
    export_for_serving,
    export_saved_model,
    read_metadata,
)
from kdzoo.serving.bundle import load_student, save_student
from kdzoo.serving.check import check_export


@pytest.fixture(scope="module")
def embedded():
    return datasets.load("embedded", num_examples=64, modalities=("audio",), batch_size=32)


@pytest.fixture(scope="module")
def audio_export(embedded, tmp_path_factory):
    base = tmp_path_factory.mktemp("audio")
    return export_for_serving(audio_student(embedded), base, name="a", preprocessing=embedded)


def _text_student_and_prep(folder):
    vocabulary = folder / "vocab.txt"
    TextVectorizer(["[PAD]", "good", "bad", "film"], 8).save(vocabulary)
    prep = ServingPreprocessing(("neg", "pos"), vocabulary_path=vocabulary, sequence_length=8)
    student = models.build("text_lstm", "student", num_classes=2, sequence_length=8, vocab_size=5)
    return student, prep


@pytest.fixture(scope="module")
def text_exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("text")
    student, prep = _text_student_and_prep(base)
    return {
        portable: export_for_serving(student, base, name="t", preprocessing=prep, portable=portable)
        for portable in (False, True)
    }


def _listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# 1. Student bundles -----------------------------------------------------------------------


def test_save_student_refuses_a_folder_it_did_not_write(tmp_path, embedded):
    student, prep = audio_student(embedded), ServingPreprocessing.from_dataset(embedded)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(NotOwnedError, match=r"mine exists and has no kdzoo marker"):
        save_student(student, mine, prep, name="s")
    assert _listing(mine) == ["thesis.tex"] and (mine / "thesis.tex").read_text() == "years of work"
    assert _listing(tmp_path) == ["mine"]  # nothing was written beside it either
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotOwnedError, match="is a file, not a folder"):
        save_student(student, tmp_path / "file", prep, name="s")
    cache = tmp_path / "cache"
    cache.mkdir()
    kdzoo.files.write_marker(cache, "teacher-cache")
    with pytest.raises(NotOwnedError, match="kdzoo 'teacher-cache' marker"):
        save_student(student, cache, prep, name="s")


def test_save_student_replaces_its_own_bundle(tmp_path, embedded):
    student, prep = audio_student(embedded), ServingPreprocessing.from_dataset(embedded)
    (tmp_path / "empty").mkdir()  # an empty folder is taken over: nothing can be lost
    path = save_student(student, tmp_path / "empty", prep, name="first")
    assert owner_kind(path) == "student-bundle"
    path = save_student(student, path, prep, name="second", metrics={"acc": 0.5})
    bundle = load_student(path)
    assert bundle.name == "second" and bundle.metrics == {"acc": 0.5}
    for a, b in zip(bundle.model.get_weights(), student.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert _listing(tmp_path) == ["empty"]  # no temporary or old folder left
    # A file the user put in the bundle would be lost with the old folder: refused.
    (path / "NOTES.md").write_text("what I changed")
    with pytest.raises(NotOwnedError, match=r"holds 1 file\(s\) kdzoo did not write there "):
        save_student(student, path, prep, name="third")
    assert (path / "NOTES.md").read_text() == "what I changed"
    assert load_student(path).name == "second"


# 2. Teacher caches ------------------------------------------------------------------------


def _teacher_and_data(n=16):
    rng = np.random.default_rng(0)
    arrays = {
        "image": rng.random((n, 16, 16, 1)).astype("float32"),
        "audio": (0.1 * rng.standard_normal((n, 4000))).astype("float32"),
        "label": rng.integers(0, 10, n).astype("int32"),
    }
    teacher, _ = av_pair()
    data = from_arrays(arrays, ("image", "audio"), audio_config=AudioConfig.embedded())
    return teacher, data, arrays


def test_cache_overwrite_refuses_a_folder_it_did_not_write(tmp_path, monkeypatch):
    teacher, data, arrays = _teacher_and_data()
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    import kdzoo.distillation.cache as teacher_cache

    real_feature_model = teacher_cache.feature_model

    def teacher_must_not_run(*args, **kwargs):
        raise AssertionError("the teacher ran before the folder was checked")

    monkeypatch.setattr(teacher_cache, "feature_model", teacher_must_not_run)
    with pytest.raises(NotOwnedError, match=r"cache_dir .*results exists and has no kdzoo"):
        cache_teacher_outputs(teacher, data, mine, overwrite=True)
    assert _listing(mine) == ["notes.txt"] and _listing(tmp_path) == ["results"]
    monkeypatch.setattr(teacher_cache, "feature_model", real_feature_model)
    # Its own cache is replaced, atomically, and still loads.
    path = cache_teacher_outputs(teacher, data, tmp_path / "cache")
    assert owner_kind(path) == "teacher-cache"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        cache_teacher_outputs(teacher, data, path)
    cache_teacher_outputs(teacher, data, path, overwrite=True)
    assert load_teacher_outputs(path, labels=arrays["label"])["logits"].shape == (16, 10)
    assert _listing(tmp_path) == ["cache", "results"]
    # A file the user put in the cache would be lost with the old folder: refused.
    path = Path(path)
    (path / "README.txt").write_text("made with teacher v3")
    with pytest.raises(NotOwnedError, match=r"holds 1 file\(s\) kdzoo did not write there "):
        cache_teacher_outputs(teacher, data, path, overwrite=True)
    assert (path / "README.txt").read_text() == "made with teacher v3"
    # A file at cache_dir is named as one, whatever `overwrite` says.
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotOwnedError, match="is a file, not a folder"):
        cache_teacher_outputs(teacher, data, tmp_path / "file")


# 3. Temporaries of killed exports ---------------------------------------------------------

_MAKE_TMP_IN_A_CHILD = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('files', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "print(module.make_sibling_tmp(sys.argv[2], sys.argv[3]))\n"
)


def test_export_removes_only_stale_kdzoo_temporaries(tmp_path, embedded):
    model_dir = tmp_path / "s"
    model_dir.mkdir()
    # A killed export: its process has exited, its temporary is still there.
    child = run_python(
        ["-I", "-c", _MAKE_TMP_IN_A_CHILD, kdzoo.files.__file__, model_dir / "1", "1"], check=True
    )
    dead = Path(child.stdout.strip())
    (dead / "saved_model.pb").write_bytes(b"half")
    live = make_sibling_tmp(model_dir / "1", "1")  # an export running now (this process)
    other_host = make_sibling_tmp(model_dir / "1", "1")
    dead_pid = json.loads((dead / MARKER).read_text())["pid"]
    kdzoo.files.write_marker(other_host, "tmp", host="elsewhere", pid=dead_pid)
    users = model_dir / ".tmp-foo"
    users.mkdir()
    (users / "data.txt").write_text("mine")
    assert dead.parent == model_dir and owner_kind(dead) == "tmp"

    path = export_saved_model(audio_student(embedded), tmp_path, name="s")
    assert path.name == "1" and not (path / MARKER).exists()
    left = _listing(model_dir)
    assert dead.name not in left
    assert sorted(left) == sorted(["1", live.name, other_host.name, ".tmp-foo"])
    assert (users / "data.txt").read_text() == "mine"


# 4. Two exports at once -------------------------------------------------------------------


def _race(monkeypatch, model_dir, version):
    """Makes another export finish ``version`` while this one writes its warmup file."""
    import kdzoo.serving.warmup

    real = kdzoo.serving.warmup.write_warmup

    def write_warmup(path, requests):
        other = model_dir / str(version)
        if not other.exists():
            other.mkdir(parents=True)
            (other / "saved_model.pb").write_bytes(b"the other export")
        return real(path, requests)

    monkeypatch.setattr(kdzoo.serving.warmup, "write_warmup", write_warmup)


def test_concurrent_exports_take_the_next_free_version(tmp_path, monkeypatch, embedded):
    student = audio_student(embedded)
    _race(monkeypatch, tmp_path / "s", 1)
    path = export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    assert path.name == "2" and read_metadata(path)["version"] == 2
    assert (tmp_path / "s" / "1" / "saved_model.pb").read_bytes() == b"the other export"
    assert _listing(tmp_path / "s") == ["1", "2"]


def test_concurrent_export_to_an_explicit_version_names_it(tmp_path, monkeypatch, embedded):
    student = audio_student(embedded)
    _race(monkeypatch, tmp_path / "s", 3)
    with pytest.raises(FileExistsError, match=r"s/3 exists; versions are never overwritten"):
        export_for_serving(student, tmp_path, name="s", version=3, preprocessing=embedded)
    assert (tmp_path / "s" / "3" / "saved_model.pb").read_bytes() == b"the other export"
    assert _listing(tmp_path / "s") == ["3"]


# 5. Non-finite weights --------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_exports_refuse_non_finite_weights(tmp_path, embedded, value):
    student = audio_student(embedded)
    variable = student.trainable_weights[-1]
    broken = np.array(variable.numpy())
    broken.flat[0] = value
    variable.assign(broken)
    with pytest.raises(ValueError, match=rf"non-finite.*{variable.path}"):
        export_for_serving(student, tmp_path, name="s", preprocessing=embedded)
    with pytest.raises(ValueError, match=rf"non-finite.*{variable.path}"):
        export_saved_model(student, tmp_path, name="s")
    assert not (tmp_path / "s").exists() or _listing(tmp_path / "s") == []


# 6. Serving signatures reject what training rejects --------------------------------------


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize(
    "text, problem",
    [
        (b"", "empty or whitespace-only"),
        (b" \t\n\xc2\xa0\xe2\x80\xa8", "empty or whitespace-only"),
        (b"good \xff\xfe film", "not valid UTF-8"),
    ],
)
def test_text_signature_rejects_what_training_rejects(text_exports, portable, text, problem):
    signature = tf.saved_model.load(str(text_exports[portable])).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"text: row\(s\) \[1\]: {problem}"):
        signature(text=tf.constant([b"good film", text]))
    out = signature(text=tf.constant([b"good film", b"\xc3\xa9t\xc3\xa9 bad"]))  # still serves
    assert out["probabilities"].shape == (2, 2)


def test_serving_blank_text_is_training_blank_text_on_every_code_point():
    from kdzoo.serving.preprocessing import text_problems

    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    strings = [chr(c) * 2 for c in code_points]
    blank, invalid = text_problems(tf.constant([s.encode("utf-8") for s in strings]))
    expected = np.array([not s.strip() for s in strings])
    np.testing.assert_array_equal(blank.numpy(), expected)
    assert not invalid.numpy().any() and expected.sum() == 29


def test_audio_signatures_reject_a_waveform_without_samples(audio_export):
    signatures = tf.saved_model.load(str(audio_export)).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match="audio: the waveforms have 0 samples"):
        signatures["serving_default"](audio=tf.zeros([2, 0]))
    empty_wav = tf.audio.encode_wav(tf.zeros([0, 1]), 8000)[None]
    with pytest.raises(tf.errors.InvalidArgumentError, match="audio: a wav file holds 0 samples"):
        signatures["serving_wav_bytes"](audio=empty_wav)


def test_an_empty_batch_gives_empty_outputs(audio_export, text_exports, tmp_path):
    image_student = models.build("image_cnn", "student", num_classes=3, image_shape=(8, 8, 1))
    image_prep = ServingPreprocessing(("a", "b", "c"), image=ImageConfig(8, 8, 1))
    image_export = export_for_serving(image_student, tmp_path, name="i", preprocessing=image_prep)
    cases = [
        (audio_export, "serving_default", {"audio": np.zeros([0, 4000], np.float32)}, 10),
        (audio_export, "serving_default", {"audio": np.zeros([0, 0], np.float32)}, 10),
        (audio_export, "serving_wav_bytes", {"audio": np.array([], object)}, 10),
        (audio_export, "serving_preprocessed", {"audio": np.zeros([0, 30, 32], np.float32)}, 10),
        (image_export, "serving_default", {"image": np.array([], object)}, 3),
        (text_exports[False], "serving_default", {"text": np.array([], object)}, 2),
        (text_exports[True], "serving_default", {"text": np.array([], object)}, 2),
    ]
    for path, signature, inputs, classes in cases:
        out = serve(path, signature, **inputs)
        assert out["probabilities"].shape == (0, classes), (path, signature)
        assert out["probabilities"].dtype == np.float32
        assert out["class_id"].shape == (0,) and out["class_id"].dtype == np.int64
        assert out["class_name"].shape == (0,) and out["class_name"].dtype == object
    # A non-empty batch still runs the model.
    out = serve(audio_export, audio=np.zeros([2, 4000], np.float32))
    assert out["probabilities"].shape == (2, 10)


# 7. check-export on a corrupt saved_model.pb ----------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "header only"])
def test_check_export_names_a_corrupt_saved_model_pb(audio_export, tmp_path, damage):
    import shutil

    broken = tmp_path / "1"
    shutil.copytree(audio_export, broken)
    pb = broken / "saved_model.pb"
    data = pb.read_bytes()
    pb.write_bytes(
        {
            "garbage": b"\xff\x00 not a protobuf \x8f" * 10,
            "truncated": data[: len(data) // 2],
            "header only": data[:2],
        }[damage]
    )
    report = check_export(broken)
    assert not report.passed
    text = report.format()
    assert f"{pb}" in text and "SOME CHECKS FAILED" in text, text
    assert "DecodeError" not in text and "Traceback" not in text


def test_check_export_names_a_corrupt_metadata_file(audio_export, tmp_path):
    import shutil

    broken = tmp_path / "1"
    shutil.copytree(audio_export, broken)
    (broken / METADATA_FILE).write_text("{ not json")
    with pytest.raises(ValueError, match=rf"{broken / METADATA_FILE}: not valid JSON"):
        check_export(broken)


def test_check_export_takes_the_warmup_inputs_when_the_data_root_lacks_an_input(
    tmp_path, monkeypatch
):
    # A table's columns (or your own modality) have no real examples in the data root: the
    # warmup request's inputs are checked instead of failing on a missing file.
    from kdzoo.serving import check

    monkeypatch.setattr(check, "real_inputs", lambda modalities, data_dir: {})
    monkeypatch.setattr(check, "_warmup_inputs", lambda export_dir: {"age": np.ones(2)})
    report = check.CheckReport(tmp_path, [])
    inputs = check._real_or_warmup_inputs(report, tmp_path, ["age"], None, None, True)
    assert list(inputs) == ["age"]
    assert (
        report.inputs
        == "the warmup request's inputs (no real data: the data root has no real age inputs)"
    )
    with pytest.raises(FileNotFoundError, match="has no warmup file to take inputs from"):
        check._real_or_warmup_inputs(report, tmp_path, ["age"], None, None, False)
