"""kdzoo.serving: the portable tokeniser, the op report, the export check (fresh process,
saved_model_cli, warmup replay, bad inputs), student bundles, and the example clients."""

import base64
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text
from helpers import REPO, run_python
from tensorflow.core.protobuf import saved_model_pb2

from kdzoo import datasets, models
from kdzoo.data.text import TextVectorizer, _normalize
from kdzoo.datasets import fsdd
from kdzoo.serving import ServingPreprocessing, export_for_serving, op_report, read_metadata
from kdzoo.serving.bundle import load_student, save_student
from kdzoo.serving.check import check_export
from kdzoo.serving.text import CoreWhitespaceTokenizer, ServingTextVectorizer

TFTEXT_OP = "TFText>WhitespaceTokenizeWithOffsetsV2"


@pytest.fixture(scope="module")
def sst2():
    return datasets.load("sst2", batch_size=64)


@pytest.fixture(scope="module")
def text_exports(sst2, tmp_path_factory, text_student):
    """An SST-2 text student exported with the tensorflow-text tokeniser and portably."""
    vectorizer = sst2.text_vectorizer
    student = text_student(vectorizer)
    base = tmp_path_factory.mktemp("text")
    return {
        portable: export_for_serving(
            student, base, name="sst2_student", preprocessing=sst2, portable=portable
        )
        for portable in (False, True)
    }


@pytest.fixture(scope="module")
def audio_export(tmp_path_factory):
    data = datasets.load("embedded", num_examples=200, modalities=("audio",), batch_size=32)
    student = models.build("audio_crnn", "student")
    base = tmp_path_factory.mktemp("audio")
    return export_for_serving(student, base, name="demo_audio_student", preprocessing=data)


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    data = datasets.load("mnist", batch_size=64)
    student = models.build("image_cnn", "student", image_shape=data.image_config.shape)
    base = tmp_path_factory.mktemp("image")
    return export_for_serving(student, base, name="mnist_student", preprocessing=data)


def test_core_tokenizer_splits_like_tensorflow_text_on_every_code_point():
    # After _normalize, both must split "a<c>b" in the same places, for every code point c.
    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    strings = _normalize(tf.constant(["a" + chr(c) + "b" for c in code_points]))
    expected = tf_text.WhitespaceTokenizer().tokenize(strings)
    got = CoreWhitespaceTokenizer().tokenize(strings)
    np.testing.assert_array_equal(got.row_lengths().numpy(), expected.row_lengths().numpy())
    np.testing.assert_array_equal(got.flat_values.numpy(), expected.flat_values.numpy())
    splits = np.flatnonzero(expected.row_lengths().numpy() == 2)
    assert len(splits) == 25  # Unicode White_Space: 6 ASCII, U+0085, 18 separators (Z)
    # _normalize maps U+0085 to " ", so no token keeps tensorflow-text's dangling \xc2 byte.
    assert got[0x85].numpy().tolist() == [b"a", b"b"]


def test_core_tokenizer_matches_tensorflow_text_on_random_whitespace_mixes():
    alphabet = ["a", "é", "语", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\u0085", "\u00a0", "\u2028"]
    rng = np.random.default_rng(0)
    strings = ["".join(rng.choice(alphabet, size=rng.integers(0, 12))) for _ in range(3000)]
    normalized = _normalize(tf.constant(strings))
    expected = tf_text.WhitespaceTokenizer().tokenize(normalized)
    got = CoreWhitespaceTokenizer().tokenize(normalized)
    assert got.to_list() == expected.to_list()


@pytest.mark.requires_data("sst2", "sms_spam")
def test_core_tokenizer_gives_the_training_ids_on_real_sst2_and_sms_text(sst2):
    for data in (sst2, datasets.load("sms_spam", batch_size=64)):
        vectorizer = data.text_vectorizer
        texts = tf.constant(
            [t for split in data.arrays.values() for t in split["text"].astype(str)]
        )
        expected = vectorizer(texts).numpy()
        for tokenizer in ("core", "tensorflow_text"):
            served = ServingTextVectorizer(
                data.vocabulary_path, vectorizer.sequence_length, tokenizer
            )
            np.testing.assert_array_equal(served(texts).numpy(), expected)
        tokens = tf_text.WhitespaceTokenizer().tokenize(_normalize(texts))
        core = CoreWhitespaceTokenizer().tokenize(_normalize(texts))
        np.testing.assert_array_equal(core.flat_values.numpy(), tokens.flat_values.numpy())
        assert len(texts) > 5000


def test_serving_vectorizer_rejects_a_vocabulary_with_blank_lines(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\ngood\n\nbad\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3 is empty"):
        ServingTextVectorizer(path, 8)
    TextVectorizer(["[PAD]", "good", "bad"]).save(path)
    assert ServingTextVectorizer(path, 8, "core")(tf.constant(["good bad ugly"])).numpy()[
        0, :4
    ].tolist() == [1, 2, 3, 0]


@pytest.mark.requires_data("sst2")
def test_op_report_lists_tensorflow_text_ops_and_portable_exports_have_none(
    text_exports, audio_export
):
    default = op_report(text_exports[False])
    assert default.custom_ops == {TFTEXT_OP: "tensorflow_text"}
    assert default.requires == ["tensorflow_text"] and not default.portable
    assert TFTEXT_OP in default.describe() and "--portable" in default.describe()
    assert "StringLower" in default.ops  # core ops are listed, not reported
    for path in (text_exports[True], audio_export):
        report = op_report(path)
        assert report.portable and report.custom_ops == {}
        assert "none" in report.describe()
    assert read_metadata(text_exports[False])["custom_ops"] == {TFTEXT_OP: "tensorflow_text"}
    assert read_metadata(text_exports[True])["requires"] == []


def _steps(report):
    return {s.name: s for s in report.steps}


@pytest.mark.slow
@pytest.mark.requires_data("sst2")
def test_check_export_portable_loads_with_tensorflow_only(text_exports):
    report = check_export(text_exports[True])
    assert report.passed, report.format()
    steps = _steps(report)
    assert list(steps) == [
        "op report",
        "fresh-process load",
        "saved_model_cli show --all",
        "saved_model_cli run",
        "outputs as exported",
        "warmup replay",
        "bad inputs",
    ]
    assert "imports tensorflow only (kdzoo: False)" in steps["fresh-process load"].detail
    assert "the synthetic input recorded at export matches" in steps["outputs as exported"].detail
    assert "real examples" in report.inputs


@pytest.mark.slow
@pytest.mark.requires_data("sst2")
def test_check_export_imports_tensorflow_text_only_when_the_graph_needs_it(text_exports):
    report = check_export(text_exports[False])
    assert report.passed, report.format()
    steps = _steps(report)
    assert TFTEXT_OP in steps["op report"].detail
    assert "tensorflow + tensorflow_text" in steps["fresh-process load"].detail
    assert "rank 2 instead of 1" in steps["bad inputs"].detail


@pytest.mark.slow
def test_check_export_reports_failures_instead_of_raising(audio_export, tmp_path):
    import shutil

    broken = tmp_path / "1"
    shutil.copytree(audio_export, broken)
    (broken / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"\x00" * 40)
    meta = read_metadata(broken)
    meta["custom_ops"] = {"MadeUpOp": "unknown"}
    (broken / "kdzoo_export.json").write_text(json.dumps(meta))
    report = check_export(broken)
    steps = _steps(report)
    assert not report.passed
    assert not steps["op report"].passed and "MadeUpOp" in steps["op report"].detail
    assert steps["saved_model_cli run"].passed and steps["bad inputs"].passed
    assert "SOME CHECKS FAILED" in report.format()


@pytest.mark.slow
def test_check_export_runs_given_inputs_instead_of_the_data_root(audio_export, tmp_path):
    waves = np.random.default_rng(0).uniform(-0.1, 0.1, (3, 4000)).astype(np.float32)
    report = check_export(audio_export, data_dir=tmp_path / "no-data", inputs={"audio": waves})
    assert report.passed, report.format()
    assert report.inputs == "the given inputs (audio)"
    assert "serving_default on 3 inputs" in report.step("fresh-process load").detail
    with pytest.raises(ValueError, match=r"`inputs` has keys \['text'\]; .* reads \['audio'\]"):
        check_export(audio_export, inputs={"text": [b"a film"]})


def test_reference_strings_survive_packing_with_nul_bytes():
    from kdzoo.serving.export import pack_strings
    from kdzoo.serving.fresh_check import _unpack_strings

    values = np.array([b"ends in nul\x00\x00", b"", b"\xff\x00x"], dtype=object)
    data, offsets = pack_strings(values)
    assert data.dtype == np.uint8 and offsets.tolist() == [13, 13, 16]
    assert _unpack_strings(data, offsets) == values.tolist()


@pytest.mark.slow
@pytest.mark.requires_data("sst2")
def test_check_export_fails_when_a_file_of_the_export_changed(sst2, text_student, tmp_path):
    import shutil

    student = text_student(sst2.text_vectorizer)
    embedding = next(w for w in student.weights if "embedding" in w.path)
    rng = np.random.default_rng(0)  # outputs that depend on every token
    embedding.assign(rng.normal(size=embedding.shape).astype(np.float32))
    sentences = [b"a gripping , moving film", b"dull and far too long"]
    for examples in ({"text": sentences}, None):  # given, and synthetic (vocabulary words)
        base = tmp_path / ("given" if examples else "synthetic")
        export = export_for_serving(
            student, base, name="s", preprocessing=sst2, portable=True, warmup_inputs=examples
        )
        meta = read_metadata(export)
        assert meta["reference"]["rows"] == (2 if examples else 1)
        assert meta["reference"]["outputs"] == ["probabilities"]
        report = check_export(export)
        assert report.passed, report.format()
        assert "max |diff|" in report.step("outputs as exported").detail

        tampered = base / "tampered" / "1"
        shutil.copytree(export, tampered)
        vocabulary = tampered / meta["preprocessing"]["text"]["vocabulary_file"]
        lines = vocabulary.read_text(encoding="utf-8").splitlines()
        vocabulary.write_text("\n".join(lines[:1] + lines[:0:-1]) + "\n", encoding="utf-8")
        report = check_export(tampered)
        step = report.step("outputs as exported")
        assert not step.passed and not report.passed, report.format()
        assert "does not compute what the Keras student did" in step.detail
        assert report.step("saved_model_cli run").passed  # both loaders read the changed file

    reference = tampered / "assets.extra" / "kdzoo_reference.npz"
    reference.write_bytes(reference.read_bytes()[:100])  # cut short
    step = check_export(tampered).step("outputs as exported")
    assert not step.passed
    assert "assets.extra/kdzoo_reference.npz is damaged (BadZipFile)" in step.detail
    del meta["reference"]  # an export that records none cannot be vouched for
    (tampered / "kdzoo_export.json").write_text(json.dumps(meta), encoding="utf-8")
    step = check_export(tampered).step("outputs as exported")
    assert not step.passed and "records no reference outputs" in step.detail


def test_write_warmup_replaces_the_file_whole(audio_export, tmp_path, monkeypatch):
    import kdzoo.serving.warmup as warmup

    logs = warmup.read_warmup(audio_export)
    requests = [log.predict_log.request for log in logs]
    path = warmup.write_warmup(tmp_path, requests)
    assert path.read_bytes() == (audio_export / warmup.WARMUP_FILE).read_bytes()

    def crash(records):
        raise OSError("disk full")

    monkeypatch.setattr(warmup, "_tfrecords", crash)
    with pytest.raises(OSError, match="disk full"):
        warmup.write_warmup(tmp_path, requests[:1])
    assert [log.predict_log.request for log in warmup.read_warmup(tmp_path)] == requests
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_serving_imports_neither_distillation_nor_the_dataset_catalogue():
    # serving sits above data and models, beside (not above) distillation: a student
    # keras.Model goes in, and kdzoo.export is gone (kdzoo.serving.export replaces it).
    code = (
        "import importlib.util, sys\n"
        "import kdzoo.serving\n"
        "bad = sorted(m for m in sys.modules if m.startswith(("
        "'kdzoo.distill', 'kdzoo.datasets', 'kdzoo.recipe', 'kdzoo.training', 'kdzoo.cli')))\n"
        "print(bad, importlib.util.find_spec('kdzoo.export'))\n"
    )
    result = run_python(["-c", code], cwd=REPO, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[] None"


@pytest.mark.requires_data("fsdd")
def test_wav_bytes_signature_matches_the_decoded_waveform(audio_export):
    loaded = tf.saved_model.load(str(audio_export))
    config = datasets.embedded.EmbeddedConfig().audio
    paths = [p for p, *_ in fsdd.list_clips()[:3]]
    wavs = tf.constant([Path(p).read_bytes() for p in paths])
    waves = np.stack([fsdd.decode_wav(p, config) for p in paths])  # the training decoder
    from_bytes = loaded.signatures["serving_wav_bytes"](audio=wavs)["probabilities"]
    from_waves = loaded.signatures["serving_default"](audio=waves)["probabilities"]
    np.testing.assert_allclose(from_bytes.numpy(), from_waves.numpy(), atol=1e-6)
    wrong_rate = tf.audio.encode_wav(tf.zeros([800, 1]), 16000)[None]
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample rate must be 8000 Hz"):
        loaded.signatures["serving_wav_bytes"](audio=wrong_rate)


@pytest.mark.requires_data("sst2")
def test_student_bundle_round_trip(tmp_path, sst2, text_student):
    vectorizer = sst2.text_vectorizer
    student = text_student(vectorizer)
    prep = ServingPreprocessing.from_dataset(sst2)
    examples = {"text": [b"a fine film", "déjà vu\x00".encode()]}  # a trailing NUL survives
    path = save_student(
        student, tmp_path / "b", prep, name="sst2_student", metrics={"acc": 0.5}, examples=examples
    )
    bundle = load_student(path)
    assert bundle.name == "sst2_student" and bundle.metrics == {"acc": 0.5}
    assert bundle.preprocessing.class_names == prep.class_names
    assert Path(bundle.preprocessing.vocabulary_path) == path / "vocabulary.txt"
    assert bundle.examples["text"].tolist() == examples["text"]
    for a, b in zip(bundle.model.get_weights(), student.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    save_student(student, path, prep, name="again")  # replaces the old bundle whole
    assert load_student(path).name == "again" and load_student(path).examples is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folders left
    with pytest.raises(FileNotFoundError, match="No student model"):
        load_student(tmp_path / "missing")


def _load_client():
    spec = importlib.util.spec_from_file_location(
        "serving_client", REPO / "examples" / "serving_client.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _signature_defs(export_dir):
    """The SignatureDefs as TF Serving reads them from saved_model.pb."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    return saved_model.meta_graphs[0].signature_def


def _rest_to_arrays(body, signature_def):
    """TF Serving's REST decoding of a columnar ``"inputs"`` body against a SignatureDef:
    {"b64": ...} is binary, a JSON string is UTF-8 text, numbers take the input's dtype."""
    assert sorted(body["inputs"]) == sorted(signature_def.inputs)
    out = {}
    for key, value in body["inputs"].items():
        dtype = tf.dtypes.as_dtype(signature_def.inputs[key].dtype)
        if dtype == tf.string:
            items = [
                base64.b64decode(v["b64"]) if isinstance(v, dict) else v.encode("utf-8")
                for v in value
            ]
            out[key] = tf.constant(items)
        else:
            assert all(isinstance(v, int | float) for v in np.ravel(value))
            out[key] = tf.constant(np.asarray(value, dtype.as_numpy_dtype))
    return out


def _check_request(client, export_dir, inputs, signature):
    """The gRPC PredictRequest and the REST body built by the example client match the
    export's SignatureDef (names and dtypes) and run."""
    signature_def = _signature_defs(export_dir)[signature]
    request = client.grpc_request(inputs, "m", signature)
    assert sorted(request.inputs) == sorted(signature_def.inputs)
    for key, proto in request.inputs.items():
        assert proto.dtype == signature_def.inputs[key].dtype, key
    loaded = tf.saved_model.load(str(export_dir)).signatures[signature]
    grpc_out = loaded(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
    body = json.loads(json.dumps(client.rest_body(inputs, signature, ("image", "audio"))))
    rest_out = loaded(**_rest_to_arrays(body, signature_def))
    np.testing.assert_allclose(
        grpc_out["probabilities"].numpy(), rest_out["probabilities"].numpy(), atol=1e-6
    )


@pytest.mark.requires_data("fsdd", "mnist", "sst2")
def test_client_requests_match_the_exported_signatures(audio_export, text_exports, image_export):
    client = _load_client()
    wavs = [p for p, *_ in fsdd.list_clips()[:2]]
    inputs, signature = client.read_inputs(wavs=wavs)
    assert signature == "serving_default" and inputs["audio"].dtype == np.float32
    _check_request(client, audio_export, inputs, signature)
    inputs, signature = client.read_inputs(wavs=wavs, wav_bytes=True)
    assert signature == "serving_wav_bytes"
    _check_request(client, audio_export, inputs, signature)
    inputs, _ = client.read_inputs(texts=["a gripping , funny film", "crème brûlée"])
    _check_request(client, text_exports[True], inputs, "serving_default")
    png = tf.io.encode_png(tf.zeros([28, 28, 1], tf.uint8)).numpy()
    _check_request(client, image_export, {"image": np.array([png], object)}, "serving_default")


@pytest.mark.parametrize(
    "request_file, export",
    [
        ("audio_waveform.json", "audio"),
        ("audio_wav_bytes.json", "audio"),
        ("image.json", "image"),
        ("text.json", "text"),
    ],
)
@pytest.mark.requires_data("mnist", "sst2")
def test_example_rest_json_matches_the_exported_signature(
    request_file, export, audio_export, text_exports, image_export
):
    export_dir = {"audio": audio_export, "image": image_export, "text": text_exports[False]}
    body = json.loads((REPO / "examples" / "requests" / request_file).read_text("utf-8"))
    signature_def = _signature_defs(export_dir[export])[body["signature_name"]]
    inputs = _rest_to_arrays(body, signature_def)
    loaded = tf.saved_model.load(str(export_dir[export])).signatures[body["signature_name"]]
    out = loaded(**inputs)
    assert out["probabilities"].shape[0] == len(next(iter(body["inputs"].values())))
