"""Nothing lost, nothing silent: bad labels, degenerate relational batches and conflicting
Distiller arguments raise (or are documented and logged) instead of training quietly."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import kdzoo
from kdzoo import losses
from kdzoo.distiller import OBJECTIVE_DEFAULTS
from kdzoo.losses import relational
from kdzoo.models.layers import Feature

RNG = np.random.default_rng(11)
CLASSES = 10
TEACHER = RNG.normal(0, 2.0, (4, CLASSES)).astype("float32")
STUDENT = RNG.normal(0, 1.0, (4, CLASSES)).astype("float32")
# The message of SparseSoftmaxCrossEntropyWithLogits on CPU, which the label losses mirror.
OUT_OF_RANGE = r"(?s)label value of.*{bad}.*outside the valid range of \[0, 10\)"


def _tiny_model(name, width, seed):
    """``{"x": [batch, 6]}`` → Dense(width) → Feature("embedding") → Dense(10) logits."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,), name="x")
    hidden = keras.layers.Dense(width, activation="tanh", name="hidden")(inputs)
    embedding = Feature(name="embedding")(hidden)
    logits = keras.layers.Dense(CLASSES, name="head")(embedding)
    return keras.Model({"x": inputs}, logits, name=name)


def _pair():
    return _tiny_model("teacher", 16, 0), _tiny_model("student", 4, 1)


def _data(n, labels=None):
    x = {"x": RNG.normal(size=(n, 6)).astype("float32")}
    y = RNG.integers(0, CLASSES, size=n).astype("int32") if labels is None else labels
    return x, np.asarray(y, "int32")


def _label_loss(name, labels):
    loss = losses.get(name)
    return loss, losses.teacher_with_labels(TEACHER, np.asarray(labels, "int32"))


# ---------------------------------------------------------------- 1. labels out of range
@pytest.mark.parametrize("name", ["dkd", "nkd"])
@pytest.mark.parametrize("bad", [10, -1])
def test_label_losses_refuse_out_of_range_labels_eagerly(name, bad):
    loss, target = _label_loss(name, [1, bad, 2, 3])
    with pytest.raises(tf.errors.InvalidArgumentError, match=OUT_OF_RANGE.format(bad=bad)):
        loss(target, STUDENT)


@pytest.mark.parametrize(
    "function", [losses.decoupled_kd, losses.non_target_kl_divergence], ids=["dkd", "nkd"]
)
def test_the_per_example_functions_check_labels_too(function):
    with pytest.raises(tf.errors.InvalidArgumentError, match=function.__name__):
        function(TEACHER, STUDENT, np.array([[0], [1], [2], [12]]))


@pytest.mark.parametrize("name", ["dkd", "nkd", "ce"])
def test_label_losses_refuse_out_of_range_labels_in_a_tf_function(name):
    loss = losses.get(name)

    @tf.function
    def step(labels):
        if name == "ce":
            return loss(labels, STUDENT)
        return loss(losses.teacher_with_labels(TEACHER, labels), STUDENT)

    assert np.isfinite(float(step(tf.constant([0, 9, 2, 3]))))
    with pytest.raises(tf.errors.InvalidArgumentError, match=OUT_OF_RANGE.format(bad=10)):
        step(tf.constant([0, 10, 2, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=OUT_OF_RANGE.format(bad=-1)):
        step(tf.constant([0, -1, 2, 3]))


@pytest.mark.parametrize("name", ["dkd", "nkd"])
def test_label_losses_compile_with_xla_and_give_nan_for_bad_labels(name):
    # TF 2.21's XLA drops Assert ops; the loss then marks bad labels with NaN, as sparse
    # cross-entropy does under XLA, rather than training on an all-zero one-hot row.
    loss = losses.get(name)
    per_example = losses.decoupled_kd if name == "dkd" else losses.non_target_kl_divergence
    step = tf.function(lambda labels: per_example(TEACHER, STUDENT, labels), jit_compile=True)
    good = np.array([0, 9, 2, 3], "int32")
    np.testing.assert_allclose(
        step(good).numpy(), per_example(TEACHER, STUDENT, good).numpy(), rtol=1e-5
    )
    values = step(np.array([0, 10, 2, -1], "int32")).numpy()
    assert np.isnan(values[[1, 3]]).all() and np.isfinite(values[[0, 2]]).all()
    reduced = tf.function(
        lambda labels: loss(losses.teacher_with_labels(TEACHER, labels), STUDENT), jit_compile=True
    )
    assert np.isfinite(float(reduced(good)))
    assert np.isnan(float(reduced(np.array([10, 1, 2, 3], "int32"))))


@pytest.mark.parametrize("name", ["dkd", "nkd"])
def test_a_fit_with_out_of_range_labels_raises_and_does_not_train(name):
    teacher, student = _pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=[kdzoo.LossTerm(name)])
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    x, _ = _data(8)
    before = [np.array(v) for v in student.trainable_variables]
    with pytest.raises(tf.errors.InvalidArgumentError, match=OUT_OF_RANGE.format(bad=10)):
        distiller.fit(x, np.full(8, CLASSES, "int32"), batch_size=4, verbose=0)
    for a, b in zip(before, student.trainable_variables, strict=True):
        np.testing.assert_array_equal(a, np.array(b))
    # The same distiller trains on valid labels.
    history = distiller.fit(x, np.arange(8, dtype="int32"), batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ---------------------------------------------------------------- 2. relational batch size
@pytest.mark.parametrize(
    ("loss", "batch"),
    [
        (losses.RKDDistance(), 1),
        (losses.RKDDistance(), 2),  # one pair, divided by its own mean: always 1 vs 1
        (losses.RKDAngle(), 1),
        (losses.RKDAngle(), 2),
    ],
)
def test_rkd_refuses_a_static_batch_too_small_for_its_relations(loss, batch):
    t = RNG.normal(size=(batch, 5)).astype("float32")
    s = RNG.normal(size=(batch, 3)).astype("float32")
    with pytest.raises(ValueError, match=rf"{loss.name}.*at least 3 examples.*got {batch}"):
        loss(t, s)
    with pytest.raises(ValueError, match=loss.name):
        tf.function(lambda: loss(t, s))()


def test_rkd_accepts_a_static_batch_of_three():
    t = RNG.normal(size=(3, 5)).astype("float32")
    s = RNG.normal(size=(3, 3)).astype("float32")
    for loss in (losses.RKDDistance(), losses.RKDAngle()):
        assert float(loss(t, s)) > 0, loss.name


@pytest.mark.parametrize("function", [losses.rkd_distance, losses.rkd_angle])
def test_rkd_with_a_dynamic_batch_logs_once_and_gives_zero_below_three(function, caplog):
    relational._WARNED_DYNAMIC_BATCH.clear()
    spec = [tf.TensorSpec((None, 5)), tf.TensorSpec((None, 3))]
    with caplog.at_level(logging.WARNING, logger="kdzoo"):
        step = tf.function(function, input_signature=spec)
        step.get_concrete_function()
        tf.function(function, input_signature=spec).get_concrete_function()  # a second trace
    warnings = [r for r in caplog.records if function.__name__ in r.getMessage()]
    assert len(warnings) == 1
    assert "fewer than 3" in warnings[0].getMessage()
    t = RNG.normal(size=(5, 5)).astype("float32")
    s = RNG.normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(step(t, s).numpy(), function(t, s).numpy(), rtol=1e-5)
    for batch in (1, 2):
        np.testing.assert_array_equal(step(t[:batch], s[:batch]).numpy(), np.zeros(batch))


def test_rkd_fit_survives_a_last_partial_batch_of_one():
    teacher, student = _pair()
    terms = [
        kdzoo.LossTerm("ce", target="labels"),
        kdzoo.LossTerm(
            "rkd_distance", teacher_output="embedding", student_output="embedding", name="rkd"
        ),
    ]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="sgd")
    x, y = _data(9)  # batches of 4, 4 and 1
    history = distiller.fit(x, y, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and history.history["rkd_loss"][0] > 0


# ---------------------------------------------------------------- 3. conflicting arguments
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
def test_terms_refuse_the_convenience_arguments_they_replace(argument):
    teacher, student = _pair()
    with pytest.raises(ValueError, match=rf"`terms`.*`{argument}`"):
        kdzoo.Distiller(
            teacher=teacher,
            student=student,
            terms=[kdzoo.LossTerm("kd")],
            **{argument: CONVENIENCE[argument]},
        )


def test_terms_refuse_a_convenience_argument_even_at_its_default_value():
    teacher, student = _pair()
    with pytest.raises(ValueError, match=r"`temperature`, `ce_weight`"):
        kdzoo.Distiller(
            teacher=teacher,
            student=student,
            terms=[kdzoo.LossTerm("kd")],
            temperature=4.0,
            ce_weight=1.0,
        )


@pytest.mark.parametrize("argument", ["teacher_feature", "student_feature", "feature_loss"])
def test_feature_arguments_refuse_a_disabled_feature_term(argument):
    teacher, student = _pair()
    for weight in ({}, {"feature_weight": 0.0}):
        with pytest.raises(ValueError, match=rf"`{argument}`.*feature_weight"):
            kdzoo.Distiller(
                teacher=teacher, student=student, **weight, **{argument: CONVENIENCE[argument]}
            )


def test_config_records_exactly_the_objective_that_was_built():
    teacher, student = _pair()
    with_terms = kdzoo.Distiller(teacher=teacher, student=student, terms=[kdzoo.LossTerm("kd")])
    config = with_terms.get_config()
    assert all(config[key] is None for key in CONVENIENCE)
    assert with_terms.temperature is None and with_terms.ce_weight is None
    clone = kdzoo.Distiller.from_config(config)
    assert [repr(t) for t in clone.loss_terms] == [repr(t) for t in with_terms.loss_terms]

    default = kdzoo.Distiller(teacher=teacher, student=student).get_config()
    assert {k: default[k] for k in CONVENIENCE} == {
        "temperature": 4.0,
        "ce_weight": 1.0,
        "kd_weight": 1.0,
        "feature_weight": 0.0,
        "teacher_feature": None,  # no feature term: nothing to record
        "student_feature": None,
        "feature_loss": None,
    }
    kdzoo.Distiller.from_config(default)
    feature = kdzoo.Distiller(teacher=teacher, student=student, feature_weight=0.5).get_config()
    assert (feature["teacher_feature"], feature["feature_loss"]) == ("embedding", "mse")
    assert [t.name for t in kdzoo.Distiller.from_config(feature).loss_terms] == [
        "ce",
        "kd",
        "feature",
    ]


def _legacy(config, **values):
    """A config as saved before the convenience arguments defaulted to None."""
    legacy = {**config, **OBJECTIVE_DEFAULTS}  # the old constructor's defaults
    legacy.update(values)
    return legacy


def test_configs_saved_before_load_and_keep_their_terms(caplog):
    teacher, student = _pair()
    terms = [kdzoo.LossTerm("kd", 0.7, name="soft"), kdzoo.LossTerm("ce", 0.3, target="labels")]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    expected = [repr(t) for t in distiller.loss_terms]
    with caplog.at_level(logging.WARNING, logger="kdzoo"):
        clone = kdzoo.Distiller.from_config(_legacy(distiller.get_config()))
    assert [repr(t) for t in clone.loss_terms] == expected and clone.temperature is None
    assert "ignored" not in caplog.text
    # Values that the old constructor silently ignored are dropped, with a warning.
    with caplog.at_level(logging.WARNING, logger="kdzoo"):
        clone = kdzoo.Distiller.from_config(
            _legacy(distiller.get_config(), temperature=7.0, ce_weight=3.0)
        )
    assert [repr(t) for t in clone.loss_terms] == expected
    assert "temperature=7.0" in caplog.text and "ce_weight=3.0" in caplog.text
    # A legacy config without terms keeps its weights; the unused feature names are dropped.
    plain = kdzoo.Distiller(teacher=teacher, student=student, temperature=2.0).get_config()
    clone = kdzoo.Distiller.from_config(_legacy(plain, temperature=2.0, ce_weight=0.4))
    assert (clone.temperature, clone.ce_weight, clone.feature_weight) == (2.0, 0.4, 0.0)
    assert [t.weight for t in clone.loss_terms] == [0.4, 1.0]


def test_keras_round_trip_of_a_distiller_with_terms(tmp_path):
    teacher, student = _pair()
    terms = [kdzoo.LossTerm("dkd", 0.5), kdzoo.LossTerm("ce", 0.5, target="labels")]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="sgd")
    x, y = _data(8)
    distiller.fit(x, y, batch_size=4, verbose=0)
    distiller.save(tmp_path / "terms.keras")
    loaded = keras.saving.load_model(tmp_path / "terms.keras")
    assert [repr(t) for t in loaded.loss_terms] == [repr(t) for t in distiller.loss_terms]
    assert loaded.get_config()["temperature"] is None
    np.testing.assert_allclose(loaded.predict(x, verbose=0), distiller.predict(x, verbose=0))
