"""Nothing lost, nothing silent: the Distiller takes its objective as ``terms`` only,
refuses conflicting arguments, and its config records exactly the objective it built
(configs saved by the old constructor still load)."""

import logging

import numpy as np
import pytest
from helpers import run_model_saving_test, tiny_pair

import kdzoo
from kdzoo.distillation import default_terms


def _data(n):
    rng = np.random.default_rng(11)
    x = {"x": rng.normal(size=(n, 6)).astype("float32")}
    return x, rng.integers(0, 10, size=n).astype("int32")


# ---------------------------------------------------------------- conflicting arguments
CONVENIENCE = {
    "temperature": 7.0,
    "ce_weight": 3.0,
    "kd_weight": 0.5,
    "feature_weight": 0.5,
    "teacher_feature": "embedding",
    "student_feature": "embedding",
    "feature_loss": "cosine",
}


@pytest.mark.parametrize("argument", sorted(CONVENIENCE))
def test_the_constructor_takes_the_objective_as_terms_only(argument):
    teacher, student = tiny_pair()
    for terms in ([kdzoo.LossTerm("kd")], None):
        with pytest.raises(TypeError, match=rf"`terms` only.*`{argument}`.*default_terms"):
            kdzoo.Distiller(
                teacher=teacher, student=student, terms=terms, **{argument: CONVENIENCE[argument]}
            )


def test_a_convenience_argument_is_refused_even_at_its_default_value():
    teacher, student = tiny_pair()
    with pytest.raises(TypeError, match=r"`temperature`, `ce_weight`"):
        kdzoo.Distiller(
            teacher=teacher,
            student=student,
            terms=[kdzoo.LossTerm("kd")],
            temperature=4.0,
            ce_weight=1.0,
        )


@pytest.mark.parametrize("argument", ["teacher_feature", "student_feature", "feature_loss"])
def test_feature_arguments_refuse_a_disabled_feature_term(argument):
    for weight in ({}, {"feature_weight": 0.0}):
        with pytest.raises(ValueError, match=rf"`{argument}`.*feature_weight"):
            default_terms(**weight, **{argument: CONVENIENCE[argument]})


def test_config_records_exactly_the_objective_that_was_built():
    teacher, student = tiny_pair()
    with_terms = kdzoo.Distiller(teacher=teacher, student=student, terms=[kdzoo.LossTerm("kd")])
    config = with_terms.get_config()
    assert not set(CONVENIENCE) & set(config)  # only the terms describe the objective
    clone = kdzoo.Distiller.from_config(config)
    assert [repr(t) for t in clone.loss_terms] == [repr(t) for t in with_terms.loss_terms]

    default = kdzoo.Distiller(teacher=teacher, student=student)
    assert [repr(t) for t in default.loss_terms] == [repr(t) for t in default_terms()]
    assert [(t.name, t.weight) for t in default.loss_terms] == [("ce", 0.5), ("kd", 0.5)]
    assert default.loss_terms[1].loss.temperature == 4.0
    kdzoo.Distiller.from_config(default.get_config())
    feature = kdzoo.Distiller(
        teacher=teacher, student=student, terms=default_terms(feature_weight=0.5)
    ).get_config()
    hint = kdzoo.Distiller.from_config(feature).loss_terms[2]
    assert (hint.teacher_output, hint.loss.name) == ("embedding", "feature_mse")
    assert [t.name for t in kdzoo.Distiller.from_config(feature).loss_terms] == [
        "ce",
        "kd",
        "feature",
    ]


#: The convenience arguments of the Distiller before `terms` replaced them, with the
#: defaults the constructor had then (ce/kd 1.0/1.0), written out as saved configs hold them.
OLD_OBJECTIVE_DEFAULTS = {
    "temperature": 4.0,
    "ce_weight": 1.0,
    "kd_weight": 1.0,
    "feature_weight": 0.0,
    "teacher_feature": "embedding",
    "student_feature": "embedding",
    "feature_loss": "mse",
}


def _legacy(config, terms=None, **values):
    """A config as saved by the old constructor: the seven convenience arguments (at the
    old defaults unless given) next to `terms` (serialised, or None)."""
    legacy = {k: v for k, v in config.items() if k != "terms"}
    legacy.update(OLD_OBJECTIVE_DEFAULTS, terms=terms, **values)
    return legacy


def test_configs_saved_before_load_and_keep_their_terms(caplog):
    teacher, student = tiny_pair()
    terms = [kdzoo.LossTerm("kd", 0.7, name="soft"), kdzoo.LossTerm("ce", 0.3, target="labels")]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    expected = [repr(t) for t in distiller.loss_terms]
    saved_terms = distiller.get_config()["terms"]
    with caplog.at_level(logging.WARNING, logger="kdzoo"):
        clone = kdzoo.Distiller.from_config(_legacy(distiller.get_config(), saved_terms))
    assert [repr(t) for t in clone.loss_terms] == expected
    assert "ignored" not in caplog.text
    # Values that the old constructor silently ignored are dropped, with a warning.
    with caplog.at_level(logging.WARNING, logger="kdzoo"):
        clone = kdzoo.Distiller.from_config(
            _legacy(distiller.get_config(), saved_terms, temperature=7.0, ce_weight=3.0)
        )
    assert [repr(t) for t in clone.loss_terms] == expected
    assert "temperature=7.0" in caplog.text and "ce_weight=3.0" in caplog.text
    # A legacy config without terms keeps its weights; the unused feature names are dropped.
    plain = kdzoo.Distiller(teacher=teacher, student=student).get_config()
    clone = kdzoo.Distiller.from_config(_legacy(plain, temperature=2.0, ce_weight=0.4))
    assert [t.name for t in clone.loss_terms] == ["ce", "kd"]  # feature_weight 0: no term
    assert clone.loss_terms[1].loss.temperature == 2.0
    assert [t.weight for t in clone.loss_terms] == [0.4, 1.0]


def test_keras_round_trip_of_a_distiller_with_terms(tmp_path):
    teacher, student = tiny_pair()
    terms = [kdzoo.LossTerm("dkd", 0.5), kdzoo.LossTerm("ce", 0.5, target="labels")]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="sgd")
    x, y = _data(8)
    distiller.fit(x, y, batch_size=4, verbose=0)
    loaded = run_model_saving_test(distiller, x, tmp_path / "terms.keras", atol=0)
    assert [repr(t) for t in loaded.loss_terms] == [repr(t) for t in distiller.loss_terms]
    assert "temperature" not in loaded.get_config()
