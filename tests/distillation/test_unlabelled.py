"""Rows without a label (``kdzoo.labels.UNLABELLED``) in a Distiller's batches: the teacher
terms apply to every row, the label terms and the metrics to labelled rows only."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import softmax, tiny_model

import kdzoo
from kdzoo.labels import UNLABELLED, labelled_weights

TAU, W_CE, W_KD = 2.0, 0.3, 0.7


def _pair():
    return tiny_model("teacher", 12, seed=1), tiny_model("student", 5, seed=2)


def _distiller(terms=None, lr=0.5):
    teacher, student = _pair()
    terms = terms or kdzoo.default_terms(temperature=TAU, ce_weight=W_CE, kd_weight=W_KD)
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer=keras.optimizers.SGD(lr), metrics=["accuracy"])
    return distiller


def _batch():
    rng = np.random.default_rng(3)
    x = {"x": rng.standard_normal((8, 6)).astype("float32")}
    y = np.array([3, UNLABELLED, 1, UNLABELLED, UNLABELLED, 7, 0, UNLABELLED], "int32")
    return x, y


def test_labelled_weights_zero_the_unlabelled_rows_and_count_the_others():
    labels, weights, count = labelled_weights(
        np.array([[2], [-1], [0]], "int32"), np.array([0.5, 3.0, 2.0], "float32")
    )
    np.testing.assert_array_equal(np.asarray(labels).ravel(), [2, 0, 0])
    np.testing.assert_allclose(np.asarray(weights), [0.5, 0.0, 2.0])
    assert float(count) == 2.0


def test_reported_terms_average_the_rows_they_apply_to():
    x, y = _batch()
    distiller = _distiller()
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)

    t = distiller.teacher.predict(x, verbose=0).astype("float64")
    s = distiller.student.predict(x, verbose=0).astype("float64")
    labelled = y >= 0
    ce = -np.log(softmax(s)[np.arange(8), np.where(labelled, y, 0)])
    p, q = softmax(t / TAU), softmax(s / TAU)
    kd = TAU**2 * np.sum(p * np.log(p / q), -1)
    # CE is reported over the 4 labelled rows, KD over all 8; the objective is per example.
    assert logs["ce_loss"] == pytest.approx(ce[labelled].mean(), rel=1e-4)
    assert logs["kd_loss"] == pytest.approx(kd.mean(), rel=1e-4)
    assert logs["loss"] == pytest.approx(W_CE * ce[labelled].sum() / 8 + W_KD * kd.mean(), rel=1e-4)
    assert logs["accuracy"] == pytest.approx(np.mean(s.argmax(-1)[labelled] == y[labelled]))


@pytest.mark.tensorflow(
    "the reference gradient is taken with tf.GradientTape; tests/distillation/"
    "test_backends.py compares the Distiller's step on each backend with TensorFlow's"
)
def test_one_step_follows_the_gradient_of_the_masked_objective():
    """The SGD step on a half-labelled batch equals the step computed by hand from
    ``W_CE · Σ_labelled CE / B + W_KD · mean KD``."""
    x, y = _batch()
    distiller = _distiller()
    student = distiller.student
    before = [np.array(v) for v in student.trainable_variables]
    teacher_logits = distiller.teacher(x, training=False)
    labelled = tf.constant(y >= 0, "float32")
    with tf.GradientTape() as tape:
        s = student(x, training=True)
        ce = keras.losses.sparse_categorical_crossentropy(np.maximum(y, 0), s, from_logits=True)
        p = tf.nn.softmax(teacher_logits / TAU)
        kd = TAU**2 * tf.reduce_sum(
            p * (tf.nn.log_softmax(teacher_logits / TAU) - tf.nn.log_softmax(s / TAU)), -1
        )
        loss = W_CE * tf.reduce_sum(ce * labelled) / 8 + W_KD * tf.reduce_mean(kd)
    grads = tape.gradient(loss, student.trainable_variables)
    expected = [b - 0.5 * np.array(g) for b, g in zip(before, grads, strict=True)]

    distiller.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
    for e, v in zip(expected, student.trainable_variables, strict=True):
        np.testing.assert_allclose(np.array(v), e, atol=1e-6)


def test_a_batch_without_labels_trains_on_the_teacher_terms_only():
    x, _ = _batch()
    y = np.full(8, UNLABELLED, "int32")
    both = _distiller()
    kd_only = _distiller(terms=[kdzoo.LossTerm(kdzoo.losses.SoftTargetKLDivergence(TAU), W_KD)])
    logs = both.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
    kd_only.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
    for a, b in zip(both.student.weights, kd_only.student.weights, strict=True):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-7)
    assert logs.history["ce_loss"] == [0.0]  # no labelled row: nothing to average
    assert logs.history["kd_loss"][0] > 0


def test_terms_that_read_labels_are_masked_too():
    """DKD reads the label to split target and non-target classes: unlabelled rows are left
    out of it, so changing their (meaningless) class id changes nothing."""
    x, y = _batch()
    terms = [kdzoo.LossTerm("dkd", 1.0, name="dkd")]
    logs = [
        _distiller(terms).evaluate(x, labels, batch_size=8, verbose=0, return_dict=True)
        for labels in (y, np.where(y >= 0, y, UNLABELLED - 5))
    ]
    assert logs[0]["dkd_loss"] == pytest.approx(logs[1]["dkd_loss"], rel=1e-6)
    assert logs[0]["dkd_loss"] > 0


def test_a_batch_with_no_labels_at_all_is_refused_with_the_convention():
    x, _ = _batch()
    distiller = _distiller()
    with pytest.raises(ValueError, match=r"needs labels.*UNLABELLED = -1"):
        distiller.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1, verbose=0)
