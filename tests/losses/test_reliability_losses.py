"""Nothing lost, nothing silent: label losses refuse out-of-range labels (eagerly, traced,
under XLA as NaN, in a fit) and relational losses refuse batches too small for a relation.
Conflicting Distiller arguments: tests/distillation/test_reliability_distiller.py.

Per backend (kdzoo/losses/decoupled.py, ``_check_labels``): TensorFlow raises
``tf.errors.InvalidArgumentError`` eagerly and from a ``tf.function``, and gives NaN under XLA,
which drops the Assert; other backends raise ``ValueError`` on concrete labels, and JAX gives
NaN inside ``jax.jit`` (``fit``'s default), where nothing can raise."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import jit_compile, tiny_pair
from keras.ops import convert_to_numpy as to_numpy

import kdzoo
from kdzoo import losses
from kdzoo.losses import relational

RNG = np.random.default_rng(11)
CLASSES = 10
TEACHER = RNG.normal(0, 2.0, (4, CLASSES)).astype("float32")
STUDENT = RNG.normal(0, 1.0, (4, CLASSES)).astype("float32")
# The message of SparseSoftmaxCrossEntropyWithLogits on CPU, which the label losses mirror.
OUT_OF_RANGE = r"(?s)label value of.*{bad}.*outside the valid range of \[0, 10\)"
TENSORFLOW = keras.config.backend() == "tensorflow"
JAX = keras.config.backend() == "jax"
#: What a label loss raises on concrete out-of-range labels.
LABEL_ERROR = tf.errors.InvalidArgumentError if TENSORFLOW else ValueError


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
    with pytest.raises(LABEL_ERROR, match=OUT_OF_RANGE.format(bad=bad)):
        loss(target, STUDENT)


@pytest.mark.parametrize(
    "function", [losses.decoupled_kd, losses.non_target_kl_divergence], ids=["dkd", "nkd"]
)
def test_the_per_example_functions_check_labels_too(function):
    with pytest.raises(LABEL_ERROR, match=function.__name__):
        function(TEACHER, STUDENT, np.array([[0], [1], [2], [12]]))


@pytest.mark.parametrize(
    "name",
    [
        "dkd",
        "nkd",
        "ce",
    ],
)
def test_label_losses_refuse_out_of_range_labels_when_traced(name):
    loss = losses.get(name)

    def step(labels):
        if name == "ce":
            return loss(labels, STUDENT)
        return loss(losses.teacher_with_labels(TEACHER, labels), STUDENT)

    good, too_big, negative = (
        np.array(y, "int32") for y in ([0, 9, 2, 3], [0, 10, 2, 3], [0, -1, 2, 3])
    )
    if TENSORFLOW:  # a tf.debugging.Assert raises when the traced step runs
        step = tf.function(step)
        assert np.isfinite(float(step(good)))
        with pytest.raises(tf.errors.InvalidArgumentError, match=OUT_OF_RANGE.format(bad=10)):
            step(too_big)
        with pytest.raises(tf.errors.InvalidArgumentError, match=OUT_OF_RANGE.format(bad=-1)):
            step(negative)
    elif JAX:  # nothing can raise inside jax.jit: the reduced loss is NaN
        step = jit_compile(step)
        assert np.isfinite(float(step(good)))
        assert np.isnan(float(step(too_big)))
        assert np.isnan(float(step(negative)))
    else:
        pytest.skip(f"no traced step to check on the {keras.config.backend()!r} backend")


@pytest.mark.parametrize("name", ["dkd", "nkd"])
def test_label_losses_compile_with_xla_and_give_nan_for_bad_labels(name):
    # TF 2.21's XLA drops Assert ops, and nothing can raise inside jax.jit; the loss then
    # marks bad labels with NaN, as sparse cross-entropy does under XLA on TensorFlow,
    # rather than training on an all-zero one-hot row.
    loss = losses.get(name)
    per_example = losses.decoupled_kd if name == "dkd" else losses.non_target_kl_divergence
    step = jit_compile(lambda labels: per_example(TEACHER, STUDENT, labels))
    good = np.array([0, 9, 2, 3], "int32")
    np.testing.assert_allclose(
        to_numpy(step(good)), to_numpy(per_example(TEACHER, STUDENT, good)), rtol=1e-5
    )
    values = to_numpy(step(np.array([0, 10, 2, -1], "int32")))
    assert np.isnan(values[[1, 3]]).all() and np.isfinite(values[[0, 2]]).all()
    reduced = jit_compile(lambda labels: loss(losses.teacher_with_labels(TEACHER, labels), STUDENT))
    assert np.isfinite(float(reduced(good)))
    assert np.isnan(float(reduced(np.array([10, 1, 2, 3], "int32"))))


@pytest.mark.parametrize("name", ["dkd", "nkd"])
def test_a_fit_with_out_of_range_labels_raises_and_does_not_train(name):
    teacher, student = tiny_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=[kdzoo.LossTerm(name)])
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    x, _ = _data(8)
    before = [np.array(v) for v in student.trainable_variables]
    bad = np.full(8, CLASSES, "int32")
    if TENSORFLOW:  # the Assert in the tf.function step raises before any update
        with pytest.raises(tf.errors.InvalidArgumentError, match=OUT_OF_RANGE.format(bad=10)):
            distiller.fit(x, bad, batch_size=4, verbose=0)
    elif JAX:  # jax.jit: a NaN loss, and the bad examples add nothing to the gradient
        history = distiller.fit(x, bad, batch_size=4, verbose=0)
        assert np.isnan(history.history["loss"][0])
    else:  # an eager step: the labels are concrete
        with pytest.raises(ValueError, match=OUT_OF_RANGE.format(bad=10)):
            distiller.fit(x, bad, batch_size=4, verbose=0)
    for a, b in zip(before, student.trainable_variables, strict=True):
        np.testing.assert_array_equal(a, np.array(b))
    # The same distiller trains on valid labels.
    history = distiller.fit(x, np.arange(8, dtype="int32"), batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    if JAX:  # an eager JAX step sees concrete labels and raises
        teacher, student = tiny_pair()
        eager = kdzoo.Distiller(teacher=teacher, student=student, terms=[kdzoo.LossTerm(name)])
        eager.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
        with pytest.raises(ValueError, match=OUT_OF_RANGE.format(bad=10)):
            eager.fit(x, bad, batch_size=4, verbose=0)
        # Not checked: Keras 3.15's JAX fit detaches the variables' values before the first
        # step and restores them only from a completed step, so after a first-step error
        # the student's variables hold no value (reading one raises TypeError).


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
def test_rkd_refuses_a_static_batch_too_small_for_its_relations(loss, batch, caplog):
    t = RNG.normal(size=(batch, 5)).astype("float32")
    s = RNG.normal(size=(batch, 3)).astype("float32")
    if not TENSORFLOW:  # no shape tells an always-small batch from an epoch's last one
        relational._WARNED_DYNAMIC_BATCH.clear()
        with caplog.at_level(logging.WARNING, logger="kdzoo"):
            assert float(loss(t, s)) == 0.0
        assert "fewer than 3" in caplog.text
        return
    with pytest.raises(ValueError, match=rf"{loss.name}.*at least 3 examples.*got {batch}"):
        loss(t, s)
    with pytest.raises(ValueError, match=loss.name):
        tf.function(lambda: loss(t, s))()


def test_rkd_accepts_a_static_batch_of_three():
    t = RNG.normal(size=(3, 5)).astype("float32")
    s = RNG.normal(size=(3, 3)).astype("float32")
    for loss in (losses.RKDDistance(), losses.RKDAngle()):
        assert float(loss(t, s)) > 0, loss.name


@pytest.mark.tensorflow(
    "a batch size unknown at trace time (tf.function with a None input_signature); jax.jit "
    "traces every batch size statically: test_rkd_fit_survives_a_last_partial_batch_of_one"
)
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
