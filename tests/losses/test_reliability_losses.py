"""Nothing lost, nothing silent: label losses refuse out-of-range labels (eagerly, traced,
under XLA as NaN, in a fit) and relational losses refuse batches too small for a relation.
Conflicting Distiller arguments: tests/distillation/test_reliability_distiller.py."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_pair

import kdzoo
from kdzoo import losses
from kdzoo.losses import relational

RNG = np.random.default_rng(11)
CLASSES = 10
TEACHER = RNG.normal(0, 2.0, (4, CLASSES)).astype("float32")
STUDENT = RNG.normal(0, 1.0, (4, CLASSES)).astype("float32")
# The message of SparseSoftmaxCrossEntropyWithLogits on CPU, which the label losses mirror.
OUT_OF_RANGE = r"(?s)label value of.*{bad}.*outside the valid range of \[0, 10\)"


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
    teacher, student = tiny_pair()
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
    teacher, student = tiny_pair()
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
