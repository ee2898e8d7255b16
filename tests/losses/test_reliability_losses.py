"""Nothing lost, nothing silent: bad labels, degenerate relational batches and conflicting
Distiller arguments raise (or are documented and logged) instead of training quietly."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import kdzoo
from kdzoo import losses
from kdzoo.distillation import default_terms
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
def test_the_constructor_takes_the_objective_as_terms_only(argument):
    teacher, student = _pair()
    for terms in ([kdzoo.LossTerm("kd")], None):
        with pytest.raises(TypeError, match=rf"`terms` only.*`{argument}`.*default_terms"):
            kdzoo.Distiller(
                teacher=teacher, student=student, terms=terms, **{argument: CONVENIENCE[argument]}
            )


def test_a_convenience_argument_is_refused_even_at_its_default_value():
    teacher, student = _pair()
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
    teacher, student = _pair()
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
    teacher, student = _pair()
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
    teacher, student = _pair()
    terms = [kdzoo.LossTerm("dkd", 0.5), kdzoo.LossTerm("ce", 0.5, target="labels")]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="sgd")
    x, y = _data(8)
    distiller.fit(x, y, batch_size=4, verbose=0)
    distiller.save(tmp_path / "terms.keras")
    loaded = keras.saving.load_model(tmp_path / "terms.keras")
    assert [repr(t) for t in loaded.loss_terms] == [repr(t) for t in distiller.loss_terms]
    assert "temperature" not in loaded.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), distiller.predict(x, verbose=0))
