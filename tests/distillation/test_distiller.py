import logging

import keras
import numpy as np
import pytest
from helpers import av_pair, batched, run_model_saving_test, softmax

import kdzoo
from kdzoo import models
from kdzoo.distillation import TEACHER_OUTPUTS, default_terms
from kdzoo.losses import FeatureCosine, HardLabelCrossentropy, SoftTargetKLDivergence


def _weights(model):
    return [np.array(v) for v in model.weights]


def test_models_are_keyword_only_and_swaps_are_flagged(caplog):
    teacher, student = av_pair()
    with pytest.raises(TypeError):
        kdzoo.Distiller(teacher, student)  # positional: refused, so they cannot be swapped
    big, small = models.build("audio_crnn", "teacher"), models.build("audio_crnn", "student")
    with caplog.at_level(logging.WARNING, logger="kdzoo"):
        kdzoo.Distiller(teacher=small, student=big)
    assert "swapped" in caplog.text


def test_call_and_predict_return_the_students_outputs(tiny_av_batch):
    x, _ = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    expected = student.predict({"audio": x["audio"]}, verbose=0)
    np.testing.assert_allclose(distiller.predict(x, verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(distiller(x), expected, atol=1e-6)


def test_cross_modal_routing_never_gives_the_student_teacher_only_keys(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(
        teacher=teacher,
        student=student,
        teacher_inputs=("image", "audio"),
        student_inputs=("audio",),
    )
    # The student's input signature holds only "audio": it has no way to receive "image".
    assert [t.name for t in distiller.student.inputs] == ["audio"]
    assert distiller.student_inputs == ("audio",)
    assert set(distiller.teacher_inputs) == {"image", "audio"}
    routed = distiller._route(x, distiller.student_inputs, "student")
    assert set(routed) == {"audio"}
    # A batch without the teacher-only key fails for the teacher, naming the key.
    distiller.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"no key\(s\) \['image'\] that the teacher reads"):
        distiller.evaluate({"audio": x["audio"]}, y, verbose=0)
    with pytest.raises(ValueError, match="student_inputs"):
        kdzoo.Distiller(teacher=teacher, student=student, student_inputs=("image",))


def test_reported_loss_is_the_documented_formula(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    tau, w_ce, w_kd = 3.0, 0.3, 0.7
    distiller = kdzoo.Distiller(
        teacher=teacher,
        student=student,
        terms=default_terms(temperature=tau, ce_weight=w_ce, kd_weight=w_kd),
    )
    distiller.compile(optimizer="sgd", metrics=["accuracy"])
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)

    t = teacher.predict(x, verbose=0).astype("float64")
    s = student.predict({"audio": x["audio"]}, verbose=0).astype("float64")
    ce = -np.log(softmax(s)[np.arange(len(y)), y]).mean()
    p, q = softmax(t / tau), softmax(s / tau)
    kd = tau**2 * np.sum(p * np.log(p / q), -1).mean()
    assert logs["ce_loss"] == pytest.approx(ce, rel=1e-4)
    assert logs["kd_loss"] == pytest.approx(kd, rel=1e-4)
    assert logs["loss"] == pytest.approx(w_ce * ce + w_kd * kd, rel=1e-4)
    assert logs["accuracy"] == pytest.approx(np.mean(s.argmax(-1) == y))


def test_teacher_is_frozen_and_unchanged_by_fit(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    before_teacher, before_student = _weights(teacher), _weights(student)
    distiller = kdzoo.Distiller(
        teacher=teacher, student=student, terms=default_terms(feature_weight=0.5)
    )
    assert teacher.trainable is False
    teacher_ids = {id(v) for v in teacher.weights}
    assert not teacher_ids & {id(v) for v in distiller.trainable_variables}
    distiller.compile(optimizer=keras.optimizers.Adam(0.01))
    distiller.fit(batched(x, y), epochs=2, verbose=0)
    # Every teacher weight, batch-norm moving statistics included, is bit-identical.
    for a, b in zip(before_teacher, _weights(teacher), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.allclose(a, b) for a, b in zip(before_student, _weights(student), strict=True)
    )


def test_metrics_report_every_loss_component(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(
        teacher=teacher, student=student, terms=default_terms(feature_weight=0.1)
    )
    distiller.compile(optimizer="adam", metrics=["accuracy"])
    history = distiller.fit(batched(x, y), validation_data=batched(x, y), epochs=1, verbose=0)
    for key in ("loss", "ce_loss", "kd_loss", "feature_loss", "accuracy"):
        assert key in history.history and f"val_{key}" in history.history
        assert np.isfinite(history.history[key][0])


def test_sample_weights_are_honoured(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    w = np.array([1, 0, 2, 0, 1, 1, 0, 3], "float32")
    weighted = distiller.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0, return_dict=True)
    s = student.predict({"audio": x["audio"]}, verbose=0).astype("float64")
    ce = -np.log(softmax(s)[np.arange(8), y])
    assert weighted["ce_loss"] == pytest.approx(np.sum(w * ce) / 8, rel=1e-4)

    # All-zero weights: zero gradients, so SGD leaves every trainable weight unchanged.
    before = [np.array(v) for v in student.trainable_variables]
    distiller.fit(batched(x, y, sample_weight=np.zeros(8, "float32")), epochs=1, verbose=0)
    for a, v in zip(before, student.trainable_variables, strict=True):
        np.testing.assert_array_equal(a, np.array(v))


def test_feature_term_trains_an_adapter_that_stays_outside_the_student(tiny_av_batch, tmp_path):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(
        teacher=teacher,
        student=student,
        terms=default_terms(
            feature_weight=1.0,
            feature_loss="cosine",
            teacher_feature="audio_feature_map",
            student_feature="feature_map",
        ),
    )
    adapter = distiller.adapters["feature"]
    assert tuple(adapter.kernel.shape) == (16, 64)  # student channels -> teacher channels
    adapter_ids = {id(v) for v in adapter.weights}
    assert adapter_ids <= {id(v) for v in distiller.trainable_variables}
    assert not adapter_ids & {id(v) for v in student.weights}
    before = np.array(adapter.kernel)
    distiller.compile(optimizer="adam")
    distiller.fit(batched(x, y), epochs=1, verbose=0)
    assert not np.allclose(before, np.array(adapter.kernel))
    distiller.student.save(tmp_path / "student.keras")
    loaded = keras.saving.load_model(tmp_path / "student.keras")
    assert len(loaded.weights) == len(student.weights)
    with pytest.raises(ValueError, match="only the last"):
        kdzoo.Distiller(
            teacher=teacher,
            student=student,
            terms=default_terms(
                feature_weight=1.0,
                teacher_feature="audio_feature_map",
                student_feature="embedding",
            ),
        )


def test_a_list_of_loss_terms_replaces_the_default_objective(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    terms = [
        kdzoo.LossTerm(HardLabelCrossentropy(), 0.2, target="labels", name="hard"),
        kdzoo.LossTerm(SoftTargetKLDivergence(2.0), 0.8, name="soft"),
        kdzoo.LossTerm(
            FeatureCosine(),
            0.5,
            teacher_output="embedding",
            student_output="embedding",
            name="hint",
        ),
    ]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="adam")
    logs = distiller.evaluate(x, y, verbose=0, return_dict=True)
    assert {"hard_loss", "soft_loss", "hint_loss"} <= set(logs)
    expected = 0.2 * logs["hard_loss"] + 0.8 * logs["soft_loss"] + 0.5 * logs["hint_loss"]
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="unique names"):
        kdzoo.Distiller(teacher=teacher, student=student, terms=[terms[0], terms[0]])


def test_config_round_trip_keeps_hyperparameters():
    teacher, student = av_pair()
    terms = [kdzoo.LossTerm("kd", 0.9, name="soft"), kdzoo.LossTerm("ce", 0.1, target="labels")]
    defaults = {"temperature": 2.5, "ce_weight": 0.2, "kd_weight": 0.8, "feature_weight": 0.3}
    for case in (default_terms(**defaults), terms):
        distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=case)
        config = distiller.get_config()
        clone = kdzoo.Distiller.from_config(config)
        assert [repr(t) for t in clone.loss_terms] == [repr(t) for t in distiller.loss_terms]
        assert clone.teacher.trainable is False
        if case is not terms:  # the hyperparameters of the default objective are kept
            assert {t.name: t.weight for t in clone.loss_terms} == {
                "ce": 0.2,
                "kd": 0.8,
                "feature": 0.3,
            }
            assert clone.loss_terms[1].loss.temperature == 2.5


def test_keras_save_and_load_of_the_whole_distiller(tiny_av_batch, tmp_path):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(
        teacher=teacher, student=student, terms=default_terms(temperature=3.0, feature_weight=0.5)
    )
    distiller.compile(optimizer="adam", metrics=["accuracy"])
    distiller.fit(batched(x, y), epochs=1, verbose=0)
    loaded = run_model_saving_test(distiller, x, tmp_path / "distiller.keras")
    assert isinstance(loaded, kdzoo.Distiller)
    assert loaded.loss_terms[1].loss.temperature == 3.0
    np.testing.assert_allclose(
        loaded.adapters["feature"].kernel, distiller.adapters["feature"].kernel
    )
    assert loaded.teacher.trainable is False
    # The loaded distiller keeps training.
    loaded.fit(batched(x, y), epochs=1, verbose=0)


def test_student_saved_alone_holds_no_teacher(tiny_av_batch, tmp_path):
    x, _ = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    distiller.student.save(tmp_path / "student.keras")
    loaded = keras.saving.load_model(tmp_path / "student.keras")
    assert [t.name for t in loaded.inputs] == ["audio"]
    assert loaded.count_params() == student.count_params()
    assert not any("image" in v.path for v in loaded.weights)
    np.testing.assert_allclose(
        loaded.predict({"audio": x["audio"]}, verbose=0), distiller.predict(x, verbose=0), atol=1e-6
    )


def test_callbacks_early_stopping_checkpoint_and_backup(tiny_av_batch, tmp_path):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer="adam", metrics=["accuracy"])
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=1e9),
        keras.callbacks.ModelCheckpoint(tmp_path / "best.keras", monitor="val_loss"),
        keras.callbacks.ModelCheckpoint(tmp_path / "w.weights.h5", save_weights_only=True),
        keras.callbacks.BackupAndRestore(tmp_path / "backup"),
    ]
    history = distiller.fit(
        batched(x, y), validation_data=batched(x, y), epochs=5, callbacks=callbacks, verbose=0
    )
    assert len(history.history["loss"]) == 2  # stopped by EarlyStopping (huge min_delta)
    assert (tmp_path / "best.keras").exists() and (tmp_path / "w.weights.h5").exists()
    restored = keras.saving.load_model(tmp_path / "best.keras")
    assert isinstance(restored, kdzoo.Distiller)
    fresh = kdzoo.Distiller(teacher=teacher, student=models.build("audio_crnn"))
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_allclose(
        fresh.predict(x, verbose=0), distiller.predict(x, verbose=0), atol=1e-6
    )


def test_compile_rejects_a_loss():
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    with pytest.raises(ValueError, match="constructor"):
        distiller.compile(optimizer="adam", loss="mse")


def test_cached_teacher_outputs_replace_the_teacher_pass(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer="sgd")
    online = distiller.evaluate(x, y, verbose=0, return_dict=True)
    # No "image" in the batch: the teacher cannot run, so the cached logits must be used.
    cached = {"audio": x["audio"], TEACHER_OUTPUTS: {"logits": teacher.predict(x, verbose=0)}}
    offline = distiller.evaluate(cached, y, verbose=0, return_dict=True)
    assert offline["loss"] == pytest.approx(online["loss"], rel=1e-5)
