"""The published KD loss family (AT, RKD, DKD, logit-standardised KD, non-target KD) composed
in a Distiller: reported values are the papers' formulas (NumPy references in helpers), per
term weights apply, and the objective survives a .keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    av_pair,
    ref_attention,
    ref_dkd,
    ref_non_target,
    ref_rkd_angle,
    ref_rkd_distance,
    ref_standardised_kd,
)

import kdzoo
from kdzoo.models.layers import feature_model


def _family_terms():
    return [
        kdzoo.LossTerm("ce", weight=0.5, target="labels"),
        kdzoo.LossTerm("dkd", weight=0.3),
        kdzoo.LossTerm("nkd", weight=0.2),
        kdzoo.LossTerm("kd_std", weight=0.4),
        kdzoo.LossTerm(
            "at", weight=2.0, teacher_output="audio_feature_map", student_output="feature_map"
        ),
        kdzoo.LossTerm(
            "rkd_distance", weight=1.5, teacher_output="embedding", student_output="embedding"
        ),
        kdzoo.LossTerm(
            "rkd_angle", weight=0.7, teacher_output="embedding", student_output="embedding"
        ),
    ]


def test_the_family_composes_in_a_distiller_with_per_term_weights(tiny_av_batch, tmp_path):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=_family_terms())
    assert distiller.adapters == {}  # AT and RKD compare different widths themselves
    distiller.compile(optimizer=keras.optimizers.SGD(0.05))
    names = [t.name for t in distiller.loss_terms]
    assert names == [
        "hard_label_crossentropy",
        "decoupled_kd",
        "non_target_kl_divergence",
        "logit_standardized_kl_divergence",
        "attention_transfer",
        "rkd_distance",
        "rkd_angle",
    ]

    # Reported values are the documented formulas, on the models' own outputs.
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    t_out = feature_model(teacher, ["audio_feature_map", "embedding"]).predict(x, verbose=0)
    s_out = feature_model(student, ["feature_map", "embedding"]).predict(
        {"audio": x["audio"]}, verbose=0
    )
    expected = {
        "decoupled_kd": ref_dkd(t_out["logits"], s_out["logits"], y, 1.0, 8.0, 4.0).mean(),
        "non_target_kl_divergence": ref_non_target(t_out["logits"], s_out["logits"], y, 4.0).mean(),
        "logit_standardized_kl_divergence": ref_standardised_kd(
            t_out["logits"], s_out["logits"], 2.0
        ).mean(),
        "attention_transfer": ref_attention(
            t_out["audio_feature_map"], s_out["feature_map"]
        ).mean(),
        "rkd_distance": ref_rkd_distance(t_out["embedding"], s_out["embedding"]),
        "rkd_angle": ref_rkd_angle(t_out["embedding"], s_out["embedding"]),
    }
    for key, value in expected.items():
        assert logs[f"{key}_loss"] == pytest.approx(value, rel=1e-3, abs=1e-6), key
    weights = [t.weight for t in distiller.loss_terms]
    total = sum(w * logs[f"{n}_loss"] for w, n in zip(weights, names, strict=True))
    assert logs["loss"] == pytest.approx(total, rel=1e-5)

    before = [np.array(v) for v in student.trainable_variables]
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    history = distiller.fit(dataset, epochs=1, verbose=0)
    for name in names:
        value = history.history[f"{name}_loss"][0]
        assert np.isfinite(value) and value > 0, name
    assert all(
        not np.allclose(a, np.array(b))
        for a, b in zip(before, student.trainable_variables, strict=True)
        if a.ndim > 1  # every kernel moved
    )

    # The objective, temperatures included, survives a .keras round trip.
    distiller.loss_terms[1].loss.temperature = 3.0
    path = tmp_path / "family.keras"
    distiller.save(path)
    loaded = keras.saving.load_model(path)
    assert [repr(t) for t in loaded.loss_terms] == [repr(t) for t in distiller.loss_terms]
    assert loaded.loss_terms[1].loss.temperature == 3.0
    assert loaded.loss_terms[4].loss.get_config() == distiller.loss_terms[4].loss.get_config()
    loaded_logs = loaded.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert loaded_logs["loss"] == pytest.approx(logs["loss"], rel=1e-5)


def test_a_schedule_can_change_the_temperature_of_a_compiled_distiller(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    terms = [kdzoo.LossTerm("dkd", name="dkd"), kdzoo.LossTerm("kd", name="kd")]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="sgd")
    first = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    traced = distiller.test_function
    for term in distiller.loss_terms:
        term.loss.temperature_variable.assign(1.5)
    second = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert distiller.test_function is traced
    t = teacher.predict(x, verbose=0)
    s = student.predict({"audio": x["audio"]}, verbose=0)
    assert second["dkd_loss"] == pytest.approx(ref_dkd(t, s, y, 1.0, 8.0, 1.5).mean(), rel=1e-3)
    assert abs(second["kd_loss"] - first["kd_loss"]) > 1e-4


def test_label_terms_need_labels_in_the_batch(tiny_av_batch):
    x, _ = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=[kdzoo.LossTerm("nkd")])
    distiller.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="needs labels"):
        distiller.evaluate(x, verbose=0)
