"""kdzoo.distillation: LossTerm.parse, default_terms, old configs and .keras archives, the
teacher-outputs key and input routing."""

import json
import math
import zipfile

import keras
import numpy as np
import pytest
from helpers import av_pair, run_python

import kdzoo
from kdzoo import losses
from kdzoo.data import MissingInputError, select_inputs
from kdzoo.distillation import TEACHER_OUTPUTS, LossTerm, default_terms, with_teacher_outputs


# ---------------------------------------------------------------- LossTerm.parse
def test_parse_reads_name_and_weight_and_routes_by_what_the_loss_compares():
    ce, kd, dkd = (LossTerm.parse(s, temperature=2.5) for s in ("ce:0.25", "kd", "dkd:0"))
    assert (ce.name, ce.weight, ce.target, ce.teacher_output) == ("ce", 0.25, "labels", None)
    assert (kd.name, kd.weight, kd.target, kd.teacher_output) == ("kd", 1.0, "teacher", "logits")
    assert kd.loss.temperature == 2.5 and dkd.loss.temperature == 2.5 and dkd.weight == 0.0
    assert LossTerm.parse("kd").loss.temperature == kdzoo.DEFAULTS.temperature


def test_every_loss_declares_what_it_compares():
    declared = {name: type(losses.get(name)).compares for name in losses.names()}
    assert declared == {
        "ce": "labels",
        "kd": "logits",
        "kd_std": "logits",
        "dkd": "logits",
        "nkd": "logits",
        "feature_mse": "features",
        "feature_cosine": "features",
        "at": "features",
        "rkd_distance": "features",
        "rkd_angle": "features",
        "logit_mse": "logits",
        "kd_multi_label": "logits",
        "teacher_mse": "logits",
        "teacher_huber": "logits",
        "teacher_bounded": "logits",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kd:x", r"Loss term 'kd:x': weight 'x' is not a number"),
        ("kd:-1", r"weight '-1' must be a finite number >= 0"),
        ("kd:nan", r"weight 'nan' must be a finite number >= 0"),
        ("kd:inf", r"weight 'inf' must be a finite number >= 0"),
        ("kl", r"unknown loss 'kl'. Valid names: at, ce, dkd"),
        ("feature_mse:0.1", r"compares features; build it as kdzoo.LossTerm\(name, weight, "),
        ("rkd_angle", r"teacher_output=..., student_output=..."),
    ],
)
def test_parse_refusals_name_the_spec_and_what_was_expected(spec, message):
    with pytest.raises(ValueError, match=message):
        LossTerm.parse(spec)


@pytest.mark.parametrize("weight", [-0.5, math.nan, math.inf, "1", True])
def test_loss_term_refuses_a_weight_that_is_not_a_finite_number_at_least_zero(weight):
    with pytest.raises(ValueError, match="finite number >= 0"):
        LossTerm("kd", weight)


# ---------------------------------------------------------------- default_terms
def test_label_losses_refuse_a_labels_target():
    with pytest.raises(ValueError, match="target='teacher'"):
        kdzoo.LossTerm("dkd", target="labels")


def test_default_terms_take_their_defaults_from_the_one_table():
    ce, kd = default_terms()
    assert (ce.name, ce.weight, kd.name, kd.weight) == ("ce", 0.5, "kd", 0.5)
    assert (ce.weight, kd.weight) == (kdzoo.DEFAULTS.ce_weight, kdzoo.DEFAULTS.kd_weight)
    assert kd.loss.temperature == kdzoo.DEFAULTS.temperature
    *_, feature = default_terms(feature_weight=0.2, feature_loss="at", teacher_feature="fm")
    assert (feature.name, feature.weight) == ("feature", 0.2)
    assert isinstance(feature.loss, losses.AttentionTransfer)
    assert (feature.teacher_output, feature.student_output) == ("fm", "embedding")
    with pytest.raises(ValueError, match=r"`feature_loss` must be one of \['at', 'cosine'"):
        default_terms(feature_weight=0.2, feature_loss="kd")
    with pytest.raises(ValueError, match="`feature_weight` must be a finite number >= 0"):
        default_terms(feature_weight=-1.0)


# ---------------------------------------------------------------- old configs and archives
def _old_style(config, **objective):
    """The Distiller config as kdzoo wrote it before `terms` was the only objective: the
    seven convenience arguments, `terms` None, the class in module `kdzoo.distiller`."""
    old = {key: config[key] for key in ("name", "trainable", "teacher", "student")}
    old.update(
        teacher_inputs=config["teacher_inputs"],
        student_inputs=config["student_inputs"],
        temperature=4.0,
        ce_weight=1.0,
        kd_weight=1.0,
        feature_weight=0.0,
        teacher_feature=None,
        student_feature=None,
        feature_loss=None,
        terms=None,
        teacher_combination="fixed",
        teacher_weights=None,
        confidence_temperature=1.0,
        gate_weight=1.0,
    )
    old.update(objective)
    return old


def test_a_keras_archive_saved_by_the_old_code_loads_with_its_objective(tiny_av_batch, tmp_path):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    terms = default_terms(temperature=3.0, ce_weight=0.3, kd_weight=0.7, feature_weight=0.5)
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="adam", metrics=["accuracy"])
    distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    logs = distiller.evaluate(x, y, verbose=0, return_dict=True)
    distiller.save(tmp_path / "new.keras")
    # The same archive with the config the old code wrote: the weights file is laid out the
    # same way (teachers, student, adapters, gate; term weights), only config.json differs.
    with zipfile.ZipFile(tmp_path / "new.keras") as new:
        saved = json.loads(new.read("config.json"))
        parts = {n: new.read(n) for n in new.namelist() if n != "config.json"}
    old_objective = {
        "temperature": 3.0,
        "ce_weight": 0.3,
        "kd_weight": 0.7,
        "feature_weight": 0.5,
        "teacher_feature": "embedding",
        "student_feature": "embedding",
        "feature_loss": "mse",
    }
    saved.update(module="kdzoo.distiller", config=_old_style(saved["config"], **old_objective))
    with zipfile.ZipFile(tmp_path / "old.keras", "w") as old:
        old.writestr("config.json", json.dumps(saved))
        for name, data in parts.items():
            old.writestr(name, data)
    loaded = keras.saving.load_model(tmp_path / "old.keras")
    assert [repr(t) for t in loaded.loss_terms] == [repr(t) for t in distiller.loss_terms]
    assert loaded.loss_terms[1].loss.temperature == 3.0
    np.testing.assert_allclose(loaded.predict(x, verbose=0), distiller.predict(x, verbose=0))
    np.testing.assert_allclose(
        loaded.adapters["feature"].kernel, distiller.adapters["feature"].kernel
    )
    reloaded = loaded.evaluate(x, y, verbose=0, return_dict=True)
    for key in ("loss", "ce_loss", "kd_loss", "feature_loss"):
        assert reloaded[key] == pytest.approx(logs[key], rel=1e-5)


def test_an_old_config_without_terms_takes_the_old_default_weights():
    teacher, student = av_pair()
    config = kdzoo.Distiller(teacher=teacher, student=student).get_config()
    old = _old_style(config)
    del old["ce_weight"], old["kd_weight"]  # missing: the old defaults, 1.0 and 1.0
    clone = kdzoo.Distiller.from_config(old)
    assert [(t.name, t.weight) for t in clone.loss_terms] == [("ce", 1.0), ("kd", 1.0)]


# ---------------------------------------------------------------- layering
def test_the_data_layer_never_imports_distillation():
    code = (
        "import sys, kdzoo.data, kdzoo.data.pipeline, kdzoo.evaluation; "
        "print(sorted(m for m in sys.modules if m.startswith('kdzoo.distillation')))"
    )
    out = run_python(["-c", code], check=True)
    assert out.stdout.strip() == "[]"


def test_cached_outputs_ride_as_generic_extras_under_the_one_key():
    labels = np.array([0, 1, 2], "int32")
    extras = with_teacher_outputs({"logits": np.eye(3, dtype="float32")}, labels=labels)
    assert list(extras) == [TEACHER_OUTPUTS] == ["teacher_outputs"]
    with pytest.raises(ValueError, match="holds .* rows but the dataset has 2"):
        with_teacher_outputs({"logits": np.eye(3)}, labels=labels[:2])


def test_select_inputs_is_the_one_router():
    batch = {"image": 1, "audio": 2}
    assert select_inputs(batch, ("audio",), "student") == {"audio": 2}
    assert select_inputs(7, ("audio",)) == {"audio": 7}
    with pytest.raises(MissingInputError, match=r"no key\(s\) \['text'\] that the student"):
        select_inputs(batch, ("text", "audio"), "student")
    with pytest.raises(KeyError):  # also a ValueError, for callers written against either
        select_inputs(batch, ("text",))
    with pytest.raises(ValueError, match="pass the batch as a dict"):
        select_inputs(7, ("image", "audio"), "teacher")
