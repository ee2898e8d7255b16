"""Cached teacher outputs: one epoch of cached distillation equals online distillation, and
the NumPy path (``arrays_with_teacher_outputs``) gives the tf.data cache's outputs, keyed as
the Distiller reads them."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import av_pair, batched, tiny_model, tiny_pair

import kdzoo
from kdzoo.data import AudioConfig, MissingInputError, from_arrays
from kdzoo.distillation import (
    TEACHER_OUTPUTS,
    arrays_with_teacher_outputs,
    cache_teacher_outputs,
    default_terms,
    load_teacher_outputs,
    with_teacher_outputs,
)


def _arrays(n=96):
    rng = np.random.default_rng(0)
    return {
        "image": rng.random((n, 16, 16, 1)).astype("float32"),
        "audio": (0.1 * rng.standard_normal((n, 4000))).astype("float32"),
        "label": rng.integers(0, 10, n).astype("int32"),
    }


def _distil(teacher, student, initial, train, feature):
    student.set_weights(initial)
    keras.utils.set_random_seed(1)
    features = (
        {"feature_weight": 0.5, "teacher_feature": "embedding", "student_feature": "embedding"}
        if feature
        else {}  # default_terms refuses feature names without a feature term
    )
    terms = default_terms(ce_weight=1.0, kd_weight=1.0, **features)
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer=keras.optimizers.SGD(0.05))
    history = distiller.fit(train, epochs=1, verbose=0, shuffle=False)
    return [np.array(w) for w in student.weights], history.history


@pytest.mark.parametrize("feature", [False, True])
def test_cached_epoch_equals_online_epoch(tmp_path, feature):
    arrays, cfg = _arrays(), AudioConfig.embedded()
    teacher, student = av_pair()
    initial = student.get_weights()
    kwargs = dict(batch_size=16, seed=5, audio_config=cfg)
    online = from_arrays(arrays, ("image", "audio"), training=True, **kwargs)
    ordered = from_arrays(arrays, ("image", "audio"), training=False, **kwargs)
    cache = cache_teacher_outputs(
        teacher, ordered, tmp_path / "cache", features=["embedding"] if feature else []
    )
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["count"] == 96 and "logits" in manifest["outputs"]
    # The student's pipeline has no "image": a teacher forward pass would fail on it.
    # Built, like `online`, before `_distil` re-seeds TF: the shuffle order depends on `seed`
    # and on TF's global seed when the pipeline is made. Each iteration reshuffles, so peek
    # at a separate copy.
    extras = with_teacher_outputs(cache, labels=arrays["label"])
    cached = from_arrays(arrays, ("audio",), training=True, extras=extras, **kwargs)
    peek = from_arrays(arrays, ("audio",), training=True, extras=extras, **kwargs)
    x, _ = next(iter(peek))
    assert "image" not in x and x["teacher_outputs"]["logits"].shape == (16, 10)

    w_online, h_online = _distil(teacher, student, initial, online, feature)
    w_cached, h_cached = _distil(teacher, student, initial, cached, feature)

    assert max(np.abs(a - b).max() for a, b in zip(w_online, w_cached, strict=True)) < 1e-5
    for key in h_online:
        np.testing.assert_allclose(h_cached[key], h_online[key], rtol=1e-5, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(initial, w_cached, strict=True)) > 1e-3


@pytest.mark.tensorflow(
    "kdzoo's audio augmentation layers (WaveformAugment, SpecAugment) run the backend's ops "
    "inside tf.data"
)
def test_augmented_or_shuffled_pipelines_are_refused(tmp_path):
    arrays, cfg = _arrays(32), AudioConfig.embedded()
    teacher, _ = av_pair()
    augmented = from_arrays(
        arrays, ("image", "audio"), training=True, augment=True, audio_config=cfg, batch_size=16
    )
    with pytest.raises(ValueError, match="augmented.*stale|augmented"):
        cache_teacher_outputs(teacher, augmented, tmp_path / "a", allow_shuffled=True)
    shuffled = from_arrays(arrays, ("image", "audio"), training=True, audio_config=cfg)
    with pytest.raises(ValueError, match="shuffles"):
        cache_teacher_outputs(teacher, shuffled, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # Explicitly allowed: written, and the augmented epoch's labels are still in row order.
    plain_aug = from_arrays(arrays, ("image", "audio"), training=False, audio_config=cfg)
    path = cache_teacher_outputs(teacher, plain_aug, tmp_path / "c")
    with pytest.raises(FileExistsError):
        cache_teacher_outputs(teacher, plain_aug, tmp_path / "c")
    assert load_teacher_outputs(path, labels=arrays["label"])["logits"].shape == (32, 10)
    with pytest.raises(ValueError, match="`inputs` is augmented, so its rows cannot be matched"):
        load_teacher_outputs(path, inputs=augmented)


def test_a_cache_from_other_rows_is_detected(tmp_path):
    arrays, cfg = _arrays(32), AudioConfig.embedded()
    teacher, _ = av_pair()
    ordered = from_arrays(arrays, ("image", "audio"), audio_config=cfg)
    path = cache_teacher_outputs(teacher, ordered, tmp_path / "cache")
    reordered = {k: v[::-1] for k, v in arrays.items()}
    with pytest.raises(ValueError, match="other rows or another order"):
        with_teacher_outputs(path, labels=reordered["label"])
    fewer = {k: v[:20] for k, v in arrays.items()}
    with pytest.raises(ValueError, match="the dataset has 20"):
        with_teacher_outputs(path, labels=fewer["label"])
    with pytest.raises(FileNotFoundError, match="cache_teacher_outputs"):
        load_teacher_outputs(tmp_path / "nowhere")


def test_non_finite_outputs_and_endless_pipelines_are_refused(tmp_path):
    arrays, cfg = _arrays(32), AudioConfig.embedded()
    teacher, _ = av_pair()
    ordered = from_arrays(arrays, ("image", "audio"), audio_config=cfg, batch_size=16)
    with pytest.raises(ValueError, match=r"repeats forever \(.repeat\(\) without a count\)"):
        cache_teacher_outputs(teacher, ordered.repeat(), tmp_path / "endless")
    assert not (tmp_path / "endless").exists()
    logits = np.zeros((32, 10), np.float32)
    logits[5, 3] = np.nan
    with pytest.raises(
        ValueError, match=r"Teacher outputs \(arrays\): 'logits' is not finite at row 5"
    ):
        with_teacher_outputs({"logits": logits})
    path = cache_teacher_outputs(teacher, ordered, tmp_path / "cache")
    path = Path(path)
    stored = np.load(path / "logits.npy")
    stored[7] = np.inf  # a cache file changed after it was written
    np.save(path / "logits.npy", stored)
    with pytest.raises(ValueError, match=r"cache'.*'logits' is not finite at row 7"):
        load_teacher_outputs(path, labels=arrays["label"])


def test_a_cache_keeps_float_and_multi_column_labels(tmp_path):
    # Regression targets (NaN: unlabelled) are kept as they are, not truncated to integers,
    # and a multi-label mismatch names its row.
    x = keras.Input((4,), name="x")
    teacher = keras.Model(x, keras.layers.Dense(2)(x), name="t")
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(8, 4)).astype("float32")
    targets = rng.normal(size=(8, 2)).astype("float32")
    targets[3] = np.nan
    rows = tf.data.Dataset.from_tensor_slices(({"x": inputs}, targets)).batch(4)
    path = cache_teacher_outputs(teacher, rows, tmp_path / "regression")
    assert load_teacher_outputs(path, labels=targets)["logits"].shape == (8, 2)
    moved = targets.copy()
    moved[5, 1] += 1.0
    with pytest.raises(ValueError, match="another order: label .* at row 5,"):
        load_teacher_outputs(path, labels=moved)
    labels = (rng.random((8, 3)) > 0.5).astype("float32")
    rows = tf.data.Dataset.from_tensor_slices(({"x": inputs}, labels)).batch(4)
    path = cache_teacher_outputs(teacher, rows, tmp_path / "multi_label")
    flipped = labels.copy()
    flipped[1, 2] = 1 - flipped[1, 2]
    with pytest.raises(ValueError, match="another order: label .* at row 1,"):
        load_teacher_outputs(path, labels=flipped)
    with pytest.raises(ValueError, match=r"labels of shape \(3,\) per row; the dataset's are"):
        load_teacher_outputs(path, labels=labels[:, :2])


# ---------------------------------------------------------------- NumPy inputs
def _tiny_arrays(n=10):
    rng = np.random.default_rng(4)
    x = {"x": rng.normal(size=(n, 6)).astype("float32")}
    return x, rng.integers(0, 10, n).astype("int32")


def test_numpy_teacher_outputs_equal_the_tf_data_cache(tmp_path):
    teacher, _ = tiny_pair()
    x, y = _tiny_arrays()
    path = cache_teacher_outputs(
        teacher, batched(x, y, batch=4), tmp_path / "cache", features=["embedding"]
    )
    expected = with_teacher_outputs(path, labels=y)[TEACHER_OUTPUTS]
    got = arrays_with_teacher_outputs(teacher, x, features=["embedding"], batch_size=4)
    assert sorted(got) == sorted([*x, TEACHER_OUTPUTS]) and got["x"] is x["x"]
    assert sorted(got[TEACHER_OUTPUTS]) == sorted(expected) == ["embedding", "logits"]
    for name, value in expected.items():
        assert isinstance(got[TEACHER_OUTPUTS][name], np.ndarray)
        np.testing.assert_allclose(got[TEACHER_OUTPUTS][name], value, rtol=1e-6, atol=1e-6)
    assert TEACHER_OUTPUTS not in x  # a new dict; the caller's is untouched


@pytest.mark.parametrize("several", [False, True], ids=["one_teacher", "two_teachers"])
def test_numpy_teacher_outputs_are_keyed_as_the_distiller_reads_them(several):
    teacher, student = tiny_pair()
    if several:
        teacher, terms = [teacher, tiny_model("second_teacher", 8, 2)], default_terms()
    else:
        terms = default_terms(
            feature_weight=0.5, teacher_feature="embedding", student_feature="embedding"
        )
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="sgd")
    x, y = _tiny_arrays()
    cached = arrays_with_teacher_outputs(distiller.ensemble, x, batch_size=4)
    expected = ["second_teacher/logits", "teacher/logits"] if several else ["embedding", "logits"]
    assert sorted(cached[TEACHER_OUTPUTS]) == expected
    online = distiller.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    offline = distiller.evaluate(cached, y, batch_size=4, verbose=0, return_dict=True)
    for key, value in online.items():
        assert offline[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_numpy_teacher_outputs_refuse_what_they_cannot_attach():
    teacher, _ = tiny_pair()
    x, _ = _tiny_arrays()
    with pytest.raises(MissingInputError, match="x"):
        arrays_with_teacher_outputs(teacher, {"image": x["x"]})
    once = arrays_with_teacher_outputs(teacher, x)
    with pytest.raises(ValueError, match="already holds 'teacher_outputs'"):
        arrays_with_teacher_outputs(teacher, once)
    with pytest.raises(ValueError, match="no feature 'nope'"):
        arrays_with_teacher_outputs(teacher, x, features=["nope"])
    ensemble = kdzoo.Distiller(teacher=teacher, student=tiny_pair()[1]).ensemble
    with pytest.raises(ValueError, match="`features` applies to a single model"):
        arrays_with_teacher_outputs(ensemble, x, features=["embedding"])
    with pytest.raises(TypeError, match="built keras.Model or a TeacherEnsemble"):
        arrays_with_teacher_outputs([teacher], x)
    with pytest.raises(ValueError, match="must be a dict"):
        arrays_with_teacher_outputs(teacher, x["x"])


def test_a_cache_of_other_teacher_weights_is_refused_given_the_teacher(tmp_path):
    import json

    arrays, cfg = _arrays(32), AudioConfig.embedded()
    teacher, _ = av_pair()
    ordered = from_arrays(arrays, ("image", "audio"), audio_config=cfg, batch_size=16)
    path = Path(cache_teacher_outputs(teacher, ordered, tmp_path / "cache"))
    labels = arrays["label"]
    assert with_teacher_outputs(path, labels=labels, teacher=teacher)  # its own teacher
    other, _ = av_pair()  # the same architecture and name, other weights
    assert other.name == teacher.name and other.count_params() == teacher.count_params()
    with pytest.raises(ValueError, match="was made by other weights .* Make the cache again"):
        with_teacher_outputs(path, labels=labels, teacher=other)
    variable = teacher.trainable_weights[0]  # the same teacher, trained a little further
    variable.assign(variable + 1e-3)
    with pytest.raises(ValueError, match="was made by other weights"):
        load_teacher_outputs(path, teacher=teacher)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["teacher_weights_sha256"]  # a cache of an older kdzoo
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="records no digest of its teacher's weights"):
        load_teacher_outputs(path, teacher=teacher)
    assert load_teacher_outputs(path, labels=labels)["logits"].shape == (32, 10)  # unchecked


def test_a_cache_of_other_inputs_is_refused_given_the_inputs(tmp_path):
    arrays, cfg = _arrays(32), AudioConfig.embedded()
    teacher, _ = av_pair()

    def ordered(rows):
        return from_arrays(rows, ("image", "audio"), audio_config=cfg, batch_size=16)

    path = Path(cache_teacher_outputs(teacher, ordered(arrays), tmp_path / "cache"))
    labels = arrays["label"]
    assert json.loads((path / "manifest.json").read_text())["inputs"] == ["audio", "image"]
    assert np.load(path / "inputs.npy").shape == (32, 2)
    # The pipeline rebuilt, and the model-ready arrays it yields (float64 too), pass.
    assert with_teacher_outputs(path, labels=labels, inputs=ordered(arrays))
    ready = {"image": [], "audio": []}
    for x, _ in ordered(arrays):
        for key in ready:
            ready[key].append(np.asarray(x[key]))
    ready = {k: np.concatenate(v) for k, v in ready.items()}
    assert load_teacher_outputs(path, inputs=ready)["logits"].shape == (32, 10)
    assert load_teacher_outputs(path, inputs={k: v.astype(np.float64) for k, v in ready.items()})

    # Other preprocessing (the same labels): the first differing row is named.
    brighter = {**arrays, "image": arrays["image"] * 1.01}
    with pytest.raises(
        ValueError, match=r"made from other inputs: 'image' of row 0 .*\(32 of 32 rows differ"
    ):
        with_teacher_outputs(path, labels=labels, inputs=ordered(brighter))
    # Two rows of one class swapped: the labels agree, the inputs do not.
    same = np.flatnonzero(labels == labels[3])
    a, b = int(same[0]), int(same[1])
    swapped = {k: v.copy() for k, v in arrays.items()}
    for key in ("image", "audio"):
        swapped[key][[a, b]] = swapped[key][[b, a]]
    assert with_teacher_outputs(path, labels=swapped["label"])  # unchecked without inputs
    with pytest.raises(ValueError, match=rf"'audio' of row {a} .*\(2 of 32 rows differ"):
        with_teacher_outputs(path, labels=swapped["label"], inputs=ordered(swapped))

    with pytest.raises(ValueError, match="`inputs` shuffles"):
        shuffled = from_arrays(arrays, ("image", "audio"), training=True, audio_config=cfg)
        load_teacher_outputs(path, inputs=shuffled)
    with pytest.raises(ValueError, match="holds 32 rows but `inputs` has at least 48"):
        load_teacher_outputs(path, inputs=ordered(arrays).repeat())  # read no further
    with pytest.raises(ValueError, match=r"rows of shape \(4000,\); .* read \(.*model-ready"):
        load_teacher_outputs(path, inputs={k: arrays[k] for k in ("image", "audio")})  # raw
    with pytest.raises(ValueError, match=r"other numbers of rows: \{'audio': 32, 'image': 16\}"):
        load_teacher_outputs(path, inputs={**ready, "image": ready["image"][:16]})
    with pytest.raises(KeyError, match=r"no key\(s\) \['image'\]"):
        load_teacher_outputs(path, inputs={"audio": ready["audio"]})
    with pytest.raises(ValueError, match="holds 32 rows but `inputs` has 16"):
        load_teacher_outputs(path, inputs={k: v[:16] for k, v in ready.items()})
    with pytest.raises(ValueError, match="outputs given as arrays record none"):
        with_teacher_outputs({"logits": np.zeros((32, 10), np.float32)}, inputs=ready)
    (path / "inputs.npy").unlink()
    with pytest.raises(ValueError, match="is missing inputs.npy; make it again"):
        load_teacher_outputs(path, inputs=ready)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["inputs"], manifest["input_shapes"]  # a cache of an older kdzoo
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="records no digest of its inputs"):
        load_teacher_outputs(path, inputs=ready)
    assert with_teacher_outputs(path, labels=labels, teacher=teacher)  # loads unchecked


def test_input_digests_compare_strings_byte_for_byte():
    from kdzoo.distillation.cache import _row_digests

    text = np.array([b"a film", b"a film\x00", b"", b"a film"], dtype=object)
    digests = _row_digests(text)
    assert digests[0] == digests[3] and len(set(digests[:3].tolist())) == 3
    assert (_row_digests(np.array(["a film"])) == digests[0]).all()  # str as UTF-8
    numbers = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert (_row_digests(numbers) == _row_digests(numbers.astype(np.int64))).all()
    assert _row_digests(numbers.reshape(3, 2, 1))[0] != _row_digests(numbers)[0]  # shape
    # By value: -0.0 is 0.0 and every NaN one NaN; integers past 2**53 stay exact.
    signed = np.array([[0.0, np.nan], [-0.0, -np.nan]])
    assert _row_digests(signed)[0] == _row_digests(signed)[1]
    big = np.array([[2**53], [2**53 + 1]], np.int64)
    assert _row_digests(big)[0] != _row_digests(big)[1]
    # A tf.data batch's ragged and sparse tensors, row by row.
    ragged = tf.ragged.constant([[1, 2], [3], [1, 2]])
    digests = _row_digests(ragged)
    assert digests[0] == digests[2] != digests[1]
    sparse = tf.sparse.from_dense(tf.constant([[0.0, 1.0], [0.0, 1.0], [2.0, 0.0]]))
    digests = _row_digests(sparse)
    assert digests[0] == digests[1] != digests[2]
    with pytest.raises(ValueError, match="not one value per row"):
        _row_digests(np.float32(1.0))


class _RaggedMean(keras.layers.Layer):
    def call(self, x):
        return tf.reduce_mean(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@pytest.mark.tensorflow("ragged tensors are TensorFlow's")
def test_a_teacher_reading_ragged_inputs_is_cached_and_checked(tmp_path):
    tokens = tf.ragged.constant([[1, 2, 3], [4], [5, 6], [7, 8, 9, 1]], dtype=tf.int64)
    labels = np.array([0, 1, 0, 1], np.int32)
    inputs = keras.Input(shape=(None,), name="tokens", dtype="int64", ragged=True)
    pooled = _RaggedMean()(keras.layers.Embedding(10, 4)(inputs))
    teacher = keras.Model(inputs, keras.layers.Dense(2, name="logits")(pooled))
    ragged = tf.data.Dataset.from_tensor_slices(({"tokens": tokens}, labels)).batch(2)
    path = cache_teacher_outputs(teacher, ragged, tmp_path / "cache")
    assert json.loads((Path(path) / "manifest.json").read_text())["input_shapes"] == {
        "tokens": None
    }
    assert load_teacher_outputs(path, labels=labels, inputs=ragged)["logits"].shape == (4, 2)
    other = tf.ragged.constant([[1, 2, 3], [4], [6, 5], [7, 8, 9, 1]], dtype=tf.int64)
    changed = tf.data.Dataset.from_tensor_slices(({"tokens": other}, labels)).batch(2)
    with pytest.raises(ValueError, match="'tokens' of row 2 is not the value"):
        load_teacher_outputs(path, labels=labels, inputs=changed)


def test_a_feature_named_as_a_cache_file_is_refused(tmp_path):
    from kdzoo.models.layers import Feature

    inputs = keras.Input(shape=(3,), name="x")
    hidden = Feature(name="inputs")(keras.layers.Dense(4)(inputs))
    teacher = keras.Model(inputs, keras.layers.Dense(2, name="logits")(hidden))
    data = tf.data.Dataset.from_tensor_slices(({"x": np.ones((4, 3), "float32")}, [0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"\['inputs'\] would be stored as inputs.npy"):
        cache_teacher_outputs(teacher, data.batch(2), tmp_path / "cache", features=["inputs"])
    assert not (tmp_path / "cache").exists()
