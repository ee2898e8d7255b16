"""Several teachers, one student: fixed, entropy and gated combinations of soft targets."""

import json

import keras
import numpy as np
import pytest
from helpers import batched, log_softmax, run_model_saving_test, softmax

import kdzoo
from kdzoo import models
from kdzoo.distillation import (
    TEACHER_OUTPUTS,
    DistillationScheduler,
    Exponential,
    Linear,
    default_terms,
)
from kdzoo.losses import FeatureMSE, HardLabelCrossentropy, SoftTargetKLDivergence
from kdzoo.models.layers import feature_model


def _linear_teacher(key, shape, name, kernel=None, bias=None, scale=0.2, seed=0, classes=10):
    """A teacher whose logits we control: ``flatten(x[key]) @ kernel + bias``."""
    inputs = keras.Input(shape, name=key)
    flat = keras.layers.Flatten()(inputs) if len(shape) > 1 else inputs
    head = keras.layers.Dense(classes, name="head")
    model = keras.Model({key: inputs}, head(flat), name=name)
    rng = np.random.default_rng(seed)
    width = int(np.prod(shape))
    if kernel is None:
        kernel = scale * rng.standard_normal((width, classes))
    if bias is None:
        bias = np.zeros(classes)
    model.get_layer("head").set_weights(
        [np.asarray(kernel, "float32"), np.asarray(bias, "float32")]
    )
    return model


def _linear_student(key, shape, name="student", classes=10):
    inputs = keras.Input(shape, name=key)
    flat = keras.layers.Flatten()(inputs) if len(shape) > 1 else inputs
    return keras.Model({key: inputs}, keras.layers.Dense(classes)(flat), name=name)


def _registry_models():
    image = models.build("image_cnn", "teacher", image_shape=(16, 16, 1))
    audio = models.build("audio_crnn", "teacher")
    return image, audio, models.build("audio_crnn", "student", dropout=0.0)


def _own_logits(x, *teachers):
    return [t.predict({k: x[k] for k in (i.name for i in t.inputs)}, verbose=0) for t in teachers]


def test_fixed_weights_mix_each_teachers_own_probabilities(tiny_av_batch):
    x, y = tiny_av_batch
    image = _linear_teacher("image", (16, 16, 1), "image_teacher", seed=1)
    audio = _linear_teacher("audio", x["audio"].shape[1:], "audio_teacher", scale=0.1, seed=2)
    student = _linear_student("audio", x["audio"].shape[1:])
    t_image, t_audio = (t.astype("float64") for t in _own_logits(x, image, audio))
    tau = 2.0
    distiller = kdzoo.Distiller(
        teacher=[image, audio],
        student=student,
        teacher_weights=np.array([1, 3], "float32"),
        terms=default_terms(temperature=tau),
    )
    np.testing.assert_allclose(distiller.teacher_weights_for(x), [[0.25, 0.75]] * 8, atol=1e-7)
    mixture = 0.25 * softmax(t_image) + 0.75 * softmax(t_audio)
    combined = np.array(distiller.teacher_outputs(x)["logits"])
    np.testing.assert_allclose(np.exp(combined), mixture, rtol=1e-4, atol=1e-7)  # log p
    np.testing.assert_allclose(softmax(combined), mixture, rtol=1e-4, atol=1e-7)

    # The unchanged KD term reads the mixture, its temperature applied to log p.
    distiller.compile(optimizer="sgd")
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    s = student.predict({"audio": x["audio"]}, verbose=0).astype("float64")
    p, q = softmax(np.log(mixture) / tau), softmax(s / tau)
    assert logs["kd_loss"] == pytest.approx(tau**2 * np.sum(p * np.log(p / q), -1).mean(), rel=1e-4)

    uniform = kdzoo.Distiller(teacher=[image, audio], student=student)
    np.testing.assert_allclose(uniform.teacher_weights_for(x), np.full((8, 2), 0.5))
    # A zero weight drops a teacher exactly, with no log(0) trouble.
    only_audio = kdzoo.Distiller(teacher=[image, audio], student=student, teacher_weights=[0, 2])
    np.testing.assert_allclose(
        np.array(only_audio.teacher_outputs(x)["logits"]), log_softmax(t_audio), atol=1e-4
    )
    # A list of one teacher teaches exactly like the teacher alone (KD is shift-invariant).
    alone = kdzoo.Distiller(teacher=audio, student=student, terms=default_terms(temperature=tau))
    listed = kdzoo.Distiller(teacher=[audio], student=student, terms=default_terms(temperature=tau))
    for d in (alone, listed):
        d.compile(optimizer="sgd")
    a, b = (d.evaluate(x, y, verbose=0, return_dict=True) for d in (alone, listed))
    assert a["kd_loss"] == pytest.approx(b["kd_loss"], rel=1e-5)


def test_entropy_weights_follow_the_documented_formula(tiny_av_batch):
    x, _ = tiny_av_batch
    image = _linear_teacher("image", (16, 16, 1), "image_teacher", scale=0.15, seed=3)
    audio = _linear_teacher("audio", x["audio"].shape[1:], "audio_teacher", scale=0.05, seed=4)
    temperature = 0.7
    distiller = kdzoo.Distiller(
        teacher=[image, audio],
        student=_linear_student("audio", x["audio"].shape[1:]),
        teacher_combination="entropy",
        confidence_temperature=temperature,
    )
    logits = [t.astype("float64") for t in _own_logits(x, image, audio)]
    probs = [softmax(t) for t in logits]
    entropy = np.stack([-np.sum(p * np.log(p), -1) for p in probs], axis=1)  # [batch, 2]
    expected = softmax(-entropy / temperature)
    weights = distiller.teacher_weights_for(x)
    assert weights.shape == (8, 2)
    assert np.ptp(weights[:, 0]) > 1e-2  # really per example
    np.testing.assert_allclose(weights, expected, atol=1e-5)
    mixture = expected[:, :1] * probs[0] + expected[:, 1:] * probs[1]
    np.testing.assert_allclose(
        np.exp(np.array(distiller.teacher_outputs(x)["logits"])), mixture, rtol=1e-4, atol=1e-7
    )


def test_a_confident_teacher_outweighs_an_uncertain_one(tiny_av_batch):
    x, _ = tiny_av_batch
    classes, width = 10, int(np.prod(x["audio"].shape[1:]))
    confident_bias = np.r_[6.0, np.zeros(classes - 1)]
    confident = _linear_teacher(
        "image", (16, 16, 1), "confident", kernel=np.zeros((256, classes)), bias=confident_bias
    )
    uncertain = _linear_teacher(
        "audio", x["audio"].shape[1:], "uncertain", kernel=np.zeros((width, classes))
    )
    student = _linear_student("audio", x["audio"].shape[1:])
    p = softmax(confident_bias)
    gap = np.log(classes) - (-np.sum(p * np.log(p)))  # H(uncertain) - H(confident) > 0
    for order, column in (([confident, uncertain], 0), ([uncertain, confident], 1)):
        distiller = kdzoo.Distiller(teacher=order, student=student, teacher_combination="entropy")
        weights = distiller.teacher_weights_for(x)
        assert np.all(weights[:, column] > 0.85)
        np.testing.assert_allclose(weights[:, column], 1 / (1 + np.exp(-gap)), rtol=1e-5)

    # Extreme logits: the log-space mixture stays finite and exact.
    extreme = _linear_teacher(
        "image", (16, 16, 1), "extreme", kernel=np.zeros((256, classes)), bias=1e4 * p
    )
    distiller = kdzoo.Distiller(
        teacher=[extreme, uncertain], student=student, teacher_combination="entropy"
    )
    combined = np.array(distiller.teacher_outputs(x)["logits"])
    weights = distiller.teacher_weights_for(x)
    assert np.isfinite(combined).all() and np.isfinite(weights).all()
    mixture = weights[:, :1] * softmax(1e4 * p)[None] + weights[:, 1:] / classes
    np.testing.assert_allclose(softmax(combined), mixture, rtol=1e-4, atol=1e-7)


def _right_and_wrong_teachers(classes=4):
    """Both read ``"hint"`` = one-hot labels; ``right`` predicts ``y``, ``wrong`` ``y + 1``."""
    identity = 4.0 * np.eye(classes)
    right = _linear_teacher("hint", (classes,), "right", kernel=identity, classes=classes)
    wrong = _linear_teacher(
        "hint", (classes,), "wrong", kernel=np.roll(identity, 1, axis=1), classes=classes
    )
    return right, wrong


def _hint_task(n=64, classes=4):
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, n).astype("int32")
    x = {
        "hint": np.eye(classes, dtype="float32")[y],
        "noise": rng.standard_normal((n, 3)).astype("float32"),
    }
    return x, y


def test_the_gate_learns_to_trust_the_teacher_that_is_right():
    classes = 4
    x, y = _hint_task(classes=classes)
    right, wrong = _right_and_wrong_teachers(classes)
    distiller = kdzoo.Distiller(
        teacher=[wrong, right],
        student=_linear_student("noise", (3,), classes=classes),
        teacher_combination="gate",
        terms=default_terms(ce_weight=1.0, kd_weight=1.0),
    )
    gate = distiller.teacher_gate
    gate_ids = {id(v) for v in gate.trainable_weights}
    assert gate_ids <= {id(v) for v in distiller.trainable_variables}
    assert not gate_ids & {id(v) for v in distiller.student.weights}
    np.testing.assert_allclose(distiller.teacher_weights_for(x), 0.5)  # zero-initialised
    before = [np.array(v) for v in gate.weights]
    distiller.compile(optimizer=keras.optimizers.Adam(0.05))
    history = distiller.fit(batched(x, y, 16), epochs=5, verbose=0).history
    assert all(np.isfinite(history["gate_loss"]))
    assert history["gate_loss"][-1] < history["gate_loss"][0]
    assert any(not np.allclose(a, np.array(v)) for a, v in zip(before, gate.weights, strict=True))
    weights = distiller.teacher_weights_for(x)
    assert weights[:, 1].mean() > 0.8 and np.all(weights[:, 1] > 0.5), weights.mean(0)
    # "loss" is the student's objective plus the gate's: ce + kd + gate_weight * gate_loss.
    expected = history["ce_loss"][-1] + history["kd_loss"][-1] + history["gate_loss"][-1]
    assert history["loss"][-1] == pytest.approx(expected, rel=1e-5)
    # The teachers themselves never move.
    np.testing.assert_array_equal(right.get_layer("head").kernel, 4.0 * np.eye(classes))


def test_the_kd_terms_read_a_constant_target_so_they_never_train_the_gate():
    classes = 4
    x, y = _hint_task(classes=classes)
    right, wrong = _right_and_wrong_teachers(classes)
    distiller = kdzoo.Distiller(
        teacher=[wrong, right],
        student=_linear_student("noise", (3,), classes=classes),
        teacher_combination="gate",
        gate_weight=0.0,
        terms=default_terms(ce_weight=0.0, kd_weight=1.0),
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    student_before = [np.array(v) for v in distiller.student.weights]
    distiller.fit(batched(x, y, 16), epochs=1, verbose=0)
    np.testing.assert_array_equal(np.array(distiller.teacher_gate.kernel), 0.0)
    np.testing.assert_array_equal(np.array(distiller.teacher_gate.bias), 0.0)
    assert any(
        not np.allclose(a, np.array(v))
        for a, v in zip(student_before, distiller.student.weights, strict=True)
    )


def test_each_model_reads_only_its_own_keys(tiny_av_batch):
    x, y = tiny_av_batch
    image, audio, student = _registry_models()
    distiller = kdzoo.Distiller(
        teacher=[image, audio], student=student, teacher_combination="entropy"
    )
    assert distiller.student_inputs == ("audio",)
    assert distiller.teacher_inputs == (("image",), ("audio",))
    assert [t.name for t in distiller.student.inputs] == ["audio"]
    routed = []
    route = distiller._route

    def spy(batch, keys, role):
        out = route(batch, keys, role)
        routed.append((role, tuple(sorted(out))))
        return out

    distiller._route = spy
    distiller.compile(optimizer="sgd")
    distiller.fit(batched(x, y), epochs=1, verbose=0)
    assert set(routed) == {
        ("student", ("audio",)),
        ("teacher 'image_cnn_teacher'", ("image",)),
        ("teacher 'audio_crnn_teacher'", ("audio",)),
    }
    np.testing.assert_allclose(
        distiller.predict(x, verbose=0),
        student.predict({"audio": x["audio"]}, verbose=0),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match=r"\['image'\] that the teacher 'image_cnn_teacher'"):
        distiller.evaluate({"audio": x["audio"]}, y, verbose=0)
    with pytest.raises(ValueError, match="one entry .* per teacher"):
        kdzoo.Distiller(teacher=[image, audio], student=student, teacher_inputs=[("image",)])
    with pytest.raises(ValueError, match="teacher_inputs"):
        kdzoo.Distiller(teacher=[image, audio], student=student, teacher_inputs=["audio", "audio"])


def test_feature_terms_name_one_teacher(tiny_av_batch):
    x, y = tiny_av_batch
    image, audio, student = _registry_models()
    terms = [
        kdzoo.LossTerm(HardLabelCrossentropy(), 1.0, target="labels", name="ce"),
        kdzoo.LossTerm(SoftTargetKLDivergence(4.0), 1.0, name="kd"),
        kdzoo.LossTerm(
            FeatureMSE(),
            0.5,
            teacher_output="audio_crnn_teacher/embedding",
            student_output="embedding",
            name="hint",
        ),
    ]
    distiller = kdzoo.Distiller(teacher=[image, audio], student=student, terms=terms)
    teacher_width = audio.get_layer("embedding").output.shape[-1]
    student_width = student.get_layer("embedding").output.shape[-1]
    assert tuple(distiller.adapters["hint"].kernel.shape) == (student_width, teacher_width)
    expected = feature_model(audio, ["embedding"]).predict({"audio": x["audio"]}, verbose=0)
    outputs = distiller.teacher_outputs(x)
    assert set(outputs) == {"logits", "audio_crnn_teacher/embedding"}
    np.testing.assert_allclose(
        outputs["audio_crnn_teacher/embedding"], expected["embedding"], atol=1e-5
    )
    before = np.array(distiller.adapters["hint"].kernel)
    distiller.compile(optimizer="adam")
    logs = distiller.fit(batched(x, y), epochs=1, verbose=0).history
    assert np.isfinite(logs["hint_loss"][0])
    assert not np.allclose(before, np.array(distiller.adapters["hint"].kernel))

    # One teacher's own logits, next to the mixture: a KD term per source.
    per_teacher = kdzoo.Distiller(
        teacher=[image, audio],
        student=student,
        terms=[
            kdzoo.LossTerm("kd", teacher_output="audio_crnn_teacher/logits", name="kd_audio"),
            kdzoo.LossTerm("kd", name="kd_mixture"),
        ],
    )
    outputs = per_teacher.teacher_outputs(x)
    np.testing.assert_allclose(
        outputs["audio_crnn_teacher/logits"], _own_logits(x, audio)[0], atol=1e-5
    )
    assert not np.allclose(outputs["audio_crnn_teacher/logits"], outputs["logits"])

    # A plain name two teachers share is ambiguous; the error lists the qualified names.
    with pytest.raises(ValueError, match="ambiguous") as error:
        kdzoo.Distiller(
            teacher=[image, audio], student=student, terms=default_terms(feature_weight=0.5)
        )
    assert "image_cnn_teacher/embedding" in str(error.value)
    assert "audio_crnn_teacher/embedding" in str(error.value)
    # A plain name exactly one teacher has is that teacher's.
    linear = _linear_teacher("audio", x["audio"].shape[1:], "linear_audio")
    only_image = kdzoo.Distiller(
        teacher=[image, linear], student=student, terms=default_terms(feature_weight=0.5)
    )
    assert set(only_image.teacher_outputs(x)) == {"logits", "embedding"}
    with pytest.raises(ValueError, match="names no teacher"):
        kdzoo.Distiller(
            teacher=[image, audio],
            student=student,
            terms=default_terms(feature_weight=0.5, teacher_feature="video_teacher/embedding"),
        )
    with pytest.raises(ValueError, match="no teacher has a feature 'nope'.*image_cnn_teacher/"):
        kdzoo.Distiller(
            teacher=[image, audio],
            student=student,
            terms=default_terms(feature_weight=0.5, teacher_feature="nope"),
        )
    with pytest.raises(ValueError, match="has no feature 'nope'"):
        kdzoo.Distiller(
            teacher=[image, audio],
            student=student,
            terms=default_terms(feature_weight=0.5, teacher_feature="audio_crnn_teacher/nope"),
        )


def test_cached_outputs_hold_each_teachers_outputs(tiny_av_batch):
    x, y = tiny_av_batch
    image, audio, student = _registry_models()
    distiller = kdzoo.Distiller(
        teacher=[image, audio], student=student, teacher_combination="entropy"
    )
    distiller.compile(optimizer="sgd")
    online = distiller.evaluate(x, y, verbose=0, return_dict=True)
    t_image, t_audio = _own_logits(x, image, audio)
    # No "image" in the batch: the image teacher cannot run, so its cached logits are used.
    cached = {
        "audio": x["audio"],
        TEACHER_OUTPUTS: {
            "image_cnn_teacher/logits": t_image,
            "audio_crnn_teacher/logits": t_audio,
        },
    }
    offline = distiller.evaluate(cached, y, verbose=0, return_dict=True)
    assert offline["loss"] == pytest.approx(online["loss"], rel=1e-5)
    np.testing.assert_allclose(
        distiller.teacher_weights_for(cached), distiller.teacher_weights_for(x), atol=1e-6
    )
    combined_only = {"audio": x["audio"], TEACHER_OUTPUTS: {"logits": t_audio}}
    with pytest.raises(ValueError, match="image_cnn_teacher/logits.*combined logits alone"):
        distiller.evaluate(combined_only, y, verbose=0)


@pytest.mark.slow
def test_keras_round_trip_of_a_gated_distiller(tiny_av_batch, tmp_path):
    x, y = tiny_av_batch
    image, audio, student = _registry_models()
    distiller = kdzoo.Distiller(
        teacher=[image, audio], student=student, teacher_combination="gate", gate_weight=0.5
    )
    distiller.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["accuracy"])
    distiller.fit(batched(x, y), epochs=1, verbose=0)
    assert np.abs(np.array(distiller.teacher_gate.kernel)).max() > 0
    loaded = run_model_saving_test(distiller, x, tmp_path / "distiller.keras", atol=0)
    assert isinstance(loaded, kdzoo.Distiller)
    assert loaded.teacher_combination == "gate" and loaded.gate_weight == 0.5
    assert [t.name for t in loaded.teachers] == ["image_cnn_teacher", "audio_crnn_teacher"]
    assert all(t.trainable is False for t in loaded.teachers)
    for a, b in zip(loaded.teacher_gate.weights, distiller.teacher_gate.weights, strict=True):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    np.testing.assert_allclose(
        loaded.teacher_weights_for(x), distiller.teacher_weights_for(x), atol=1e-7
    )
    logs = loaded.fit(batched(x, y), epochs=1, verbose=0).history  # keeps training
    assert np.isfinite(logs["gate_loss"][0])


def test_config_round_trip_of_the_combinations(tiny_av_batch):
    x, _ = tiny_av_batch
    image, audio, student = _registry_models()
    for kwargs in (
        {"teacher_combination": "fixed", "teacher_weights": [0.2, 0.6]},
        {"teacher_combination": "entropy", "confidence_temperature": 0.5},
        {"teacher_combination": "gate", "gate_weight": 2.0},
    ):
        distiller = kdzoo.Distiller(teacher=[image, audio], student=student, **kwargs)
        config = json.loads(json.dumps(distiller.get_config()))  # JSON-safe
        clone = kdzoo.Distiller.from_config(config)
        for key, value in kwargs.items():
            assert config[key] == value and getattr(clone, key) == value
        assert config["teacher_inputs"] == [["image"], ["audio"]]
        assert clone.teacher_inputs == (("image",), ("audio",))
        if kwargs["teacher_combination"] == "fixed":
            np.testing.assert_allclose(clone.teacher_weights_for(x), [[0.25, 0.75]] * 8)


def test_scheduler_drives_a_multi_teacher_distiller(tiny_av_batch):
    x, y = tiny_av_batch
    image, audio, student = _registry_models()
    distiller = kdzoo.Distiller(
        teacher=[image, audio],
        student=student,
        teacher_combination="gate",
        terms=default_terms(temperature=4.0, ce_weight=1.0, kd_weight=1.0),
    )
    distiller.compile(optimizer="sgd")
    scheduler = DistillationScheduler(
        weights={"kd": Linear(0.0, 0.5, epochs=2)}, temperature=Exponential(8.0, 2.0, epochs=2)
    )
    h = distiller.fit(batched(x, y), epochs=3, verbose=0, callbacks=[scheduler]).history
    assert h["temperature"] == pytest.approx([8.0, 4.0, 2.0])
    assert h["kd_weight"] == pytest.approx([0.0, 0.25, 0.5])
    kd_term = [t for t in distiller.loss_terms if t.name == "kd"][0]
    assert float(kd_term.loss.temperature_variable.numpy()) == pytest.approx(2.0)
    for epoch, w in enumerate([0.0, 0.25, 0.5]):
        expected = h["ce_loss"][epoch] + w * h["kd_loss"][epoch] + h["gate_loss"][epoch]
        assert h["loss"][epoch] == pytest.approx(expected, rel=1e-4)


def test_invalid_arguments_raise_naming_them(tiny_av_batch):
    x, y = tiny_av_batch
    image, audio, student = _registry_models()
    pair = [image, audio]
    cases = [
        ({"teacher": audio, "teacher_combination": "gate"}, "list of models"),
        ({"teacher": audio, "teacher_weights": [1.0]}, "list of models"),
        ({"teacher": pair, "teacher_combination": "mean"}, "`teacher_combination` must be"),
        ({"teacher": pair, "teacher_weights": [1, 2, 3]}, "`teacher_weights` must hold 2"),
        ({"teacher": pair, "teacher_weights": [-1, 2]}, "`teacher_weights` must hold 2"),
        ({"teacher": pair, "teacher_weights": [0, 0]}, "positive sum"),
        (
            {"teacher": pair, "teacher_combination": "entropy", "teacher_weights": [1, 1]},
            "'fixed' only",
        ),
        ({"teacher": pair, "confidence_temperature": 0}, "`confidence_temperature`"),
        ({"teacher": pair, "gate_weight": -1}, "`gate_weight`"),
        ({"teacher": [audio, audio]}, "distinct"),
        ({"teacher": []}, "empty list"),
        ({"teacher": [image, student]}, "different models"),
    ]
    for kwargs, message in cases:
        kwargs.setdefault("student", student)
        with pytest.raises(ValueError, match=message):
            kdzoo.Distiller(**kwargs)
    five_classes = _linear_teacher("audio", x["audio"].shape[1:], "five", classes=5)
    with pytest.raises(ValueError, match="one shape.*five: \\(None, 5\\)"):
        kdzoo.Distiller(teacher=[image, five_classes], student=student)
    gated = kdzoo.Distiller(
        teacher=pair, student=student, teacher_combination="gate", terms=[kdzoo.LossTerm("kd")]
    )
    gated.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="gate.*labels"):
        gated.evaluate(x, verbose=0)
