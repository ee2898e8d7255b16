"""``load_teacher``: a teacher from a keras.Model, a ``.keras`` file or a SavedModel folder,
with named inputs and logits out, checked against the task."""

import keras
import numpy as np
import pytest

from kdzoo.distillation import Distiller, load_teacher
from kdzoo.distillation.sources import TeacherLoadError


def _dict_model(classes=3, softmax=False):
    audio = keras.Input((6, 4), name="audio")
    image = keras.Input((5, 5, 1), name="image")
    x = keras.layers.Concatenate()([keras.layers.Flatten()(audio), keras.layers.Flatten()(image)])
    out = keras.layers.Dense(classes, activation="softmax" if softmax else None)(x)
    return keras.Model({"audio": audio, "image": image}, out, name="their_teacher")


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "audio": rng.normal(size=(n, 6, 4)).astype("float32"),
        "image": rng.uniform(size=(n, 5, 5, 1)).astype("float32"),
    }


def test_a_keras_model_is_frozen_and_checked_against_the_class_count():
    model = _dict_model()
    teacher = load_teacher(model, num_classes=3)
    assert teacher is model and teacher.trainable  # yours is left as you gave it
    with pytest.raises(
        TeacherLoadError, match="their_teacher: the teacher predicts 3 classes; the data has 4"
    ):
        load_teacher(_dict_model(), num_classes=4)


def test_a_keras_file_round_trips_and_an_unsafe_one_is_refused(tmp_path):
    from kdzoo import models

    zoo = models.build("audio_crnn", "student", 3, audio_shape=(30, 32))
    zoo.save(tmp_path / "zoo.keras")
    teacher = load_teacher(tmp_path / "zoo.keras", num_classes=3)
    x = np.random.default_rng(0).normal(size=(4, 30, 32)).astype("float32")
    x = {"audio": x}
    np.testing.assert_allclose(teacher.predict(x, verbose=0), zoo.predict(x, verbose=0), atol=1e-6)

    inputs = keras.Input((4,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    unsafe.save(tmp_path / "lambda.keras")
    with pytest.raises(TeacherLoadError, match=r"lambda\.keras: cannot load it safely"):
        load_teacher(tmp_path / "lambda.keras")


@pytest.mark.tensorflow("a SavedModel teacher runs through keras.layers.TFSMLayer")
def test_a_saved_model_runs_inside_fit_with_its_input_names(tmp_path):
    model = _dict_model()
    model.export(tmp_path / "exported", verbose=False)
    teacher = load_teacher(tmp_path / "exported", num_classes=3)
    assert sorted(t.name for t in teacher.inputs) == ["audio", "image"]
    batch = _batch()
    np.testing.assert_allclose(teacher(batch), model(batch), atol=1e-5)
    # As a cross-modal teacher: it reads image+audio, the student audio only.
    audio = keras.Input((6, 4), name="audio")
    student = keras.Model(audio, keras.layers.Dense(3)(keras.layers.Flatten()(audio)))
    distiller = Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer="adam")
    history = distiller.fit(batch, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_probabilities_become_logits_with_the_same_softmax(tmp_path):
    model = _dict_model(softmax=True)
    teacher = load_teacher(model, outputs="probabilities")
    batch = _batch()
    probabilities = keras.ops.convert_to_numpy(model(batch))
    logits = keras.ops.convert_to_numpy(teacher(batch))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.softmax(logits)), probabilities, atol=1e-6
    )


def test_sigmoid_probabilities_become_their_log_odds():
    # A binary teacher's P(positive), or a multi-label teacher's per-label probabilities:
    # the logits whose sigmoid they are, not log p (which stands in for softmax logits only).
    x = keras.Input((1,), name="x")
    for width in (1, 3):
        dense = keras.layers.Dense(width, activation="sigmoid", kernel_initializer="ones")
        model = keras.Model(x, dense(x), name="sigmoid_teacher")
        inputs = np.array([[-3.0], [0.0], [3.0]], "float32")
        probabilities = keras.ops.convert_to_numpy(model(inputs))  # one input: an array
        teacher = load_teacher(model, outputs="sigmoid_probabilities", num_classes=width)
        logits = keras.ops.convert_to_numpy(teacher([inputs]))  # inputs as a list
        np.testing.assert_allclose(logits, np.repeat([[-3.0], [0.0], [3.0]], width, 1), atol=1e-5)
        np.testing.assert_allclose(1 / (1 + np.exp(-logits)), probabilities, atol=1e-6)
    with pytest.raises(TeacherLoadError, match="one probability column.*sigmoid_probabilities"):
        load_teacher(
            keras.Model(x, dense.__class__(1, activation="sigmoid")(x)), outputs="probabilities"
        )


def test_sources_that_are_not_teachers_are_named(tmp_path):
    with pytest.raises(TeacherLoadError, match="nowhere.keras: no such file or folder"):
        load_teacher(tmp_path / "nowhere.keras")
    (tmp_path / "logits.npz").write_bytes(b"")
    with pytest.raises(TeacherLoadError, match="read_teacher_outputs"):
        load_teacher(tmp_path / "logits.npz")
    with pytest.raises(TeacherLoadError, match="got 3"):
        load_teacher(3)
    with pytest.raises(TeacherLoadError, match="outputs must be one of"):
        load_teacher(_dict_model(), outputs="scores")
