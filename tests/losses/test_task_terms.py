"""Multi-label and regression distillation losses and the logit MSE
(``kdzoo.losses.task_terms``) against NumPy references written from their formulas. Distributed
reduction is checked by tests/scripts/loss_reduction_parity.py."""

import keras
import numpy as np
import pytest
from helpers import gradient, random_logits, run_serialization_test
from keras.ops import convert_to_numpy as to_numpy

from kdzoo.losses import teacher_with_labels
from kdzoo.losses.task_terms import (
    LogitMSE,
    MultiLabelKLDivergence,
    RegressionToTeacher,
    TeacherBoundedRegression,
    logit_mse,
    multi_label_kl_divergence,
    regression_to_teacher,
    teacher_bounded_regression,
)

TEACHER, STUDENT, _, WEIGHTS = random_logits()  # 5 examples, 4 outputs
RNG = np.random.default_rng(3)
TARGETS = (TEACHER + RNG.normal(0, 1.0, TEACHER.shape)).astype("float32")


def ref_binary_kl(t, s, tau):
    """τ² · mean over labels of KL(Bern(σ(t/τ)) ‖ Bern(σ(s/τ))), in float64."""
    p = 1 / (1 + np.exp(-t.astype("float64") / tau))
    q = 1 / (1 + np.exp(-s.astype("float64") / tau))
    kl = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    return tau**2 * kl.mean(axis=-1)


def ref_huber(e, delta):
    a = np.abs(e)
    return np.where(a <= delta, 0.5 * e**2, delta * (a - 0.5 * delta))


def ref_bounded(t, s, y, m):
    e_s, e_t = ((s - y) ** 2).mean(-1), ((t - y) ** 2).mean(-1)
    return np.where(e_s + m > e_t, e_s, 0.0)


@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_multi_label_kl_matches_numpy_and_weights_reduce_as_keras_does(tau):
    ref = ref_binary_kl(TEACHER, STUDENT, tau)
    np.testing.assert_allclose(
        to_numpy(multi_label_kl_divergence(TEACHER, STUDENT, tau)), ref, 1e-5
    )
    loss = MultiLabelKLDivergence(temperature=tau)
    np.testing.assert_allclose(float(loss(TEACHER, STUDENT)), ref.mean(), rtol=1e-5)
    weighted = float(loss(TEACHER, STUDENT, sample_weight=WEIGHTS))
    np.testing.assert_allclose(weighted, np.sum(ref * WEIGHTS) / 5, rtol=1e-5)


def test_multi_label_kl_is_zero_only_at_the_teacher_and_each_label_is_its_own_sigmoid():
    assert float(MultiLabelKLDivergence()(TEACHER, TEACHER)) == pytest.approx(0.0, abs=1e-6)
    # Not a softmax: adding a constant to every logit changes each label's probability.
    shifted = float(MultiLabelKLDivergence()(TEACHER, TEACHER + 1.0))
    assert shifted > 1e-3
    # Stable where a naive log(σ) would overflow: logits of ±200.
    big = np.array([[200.0, -200.0]], "float32")
    value = to_numpy(multi_label_kl_divergence(big, -big, 1.0))
    # Each label: KL(Bern(≈1) ‖ Bern(σ(−200))) = −log σ(−200) ≈ 200.
    np.testing.assert_allclose(value, [200.0], rtol=1e-5)


def test_multi_label_gradient_matches_the_closed_form():
    # d/ds of τ²·mean_j KL at one label is τ·(σ(s/τ) − σ(t/τ)) / labels.
    tau = 2.0
    grad = gradient(lambda s: multi_label_kl_divergence(TEACHER, s, tau), STUDENT)
    sigma = lambda z: 1 / (1 + np.exp(-z / tau))  # noqa: E731
    expected = tau * (sigma(STUDENT) - sigma(TEACHER)) / TEACHER.shape[1]
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


def test_logit_mse_matches_numpy():
    ref = ((STUDENT - TEACHER) ** 2).mean(-1)
    np.testing.assert_allclose(to_numpy(logit_mse(TEACHER, STUDENT)), ref, rtol=1e-6)
    weighted = float(LogitMSE()(TEACHER, STUDENT, sample_weight=WEIGHTS))
    np.testing.assert_allclose(weighted, np.sum(ref * WEIGHTS) / 5, rtol=1e-6)
    # Equal to Keras' own MSE, which averages over the last axis too.
    keras_mse = float(keras.losses.MeanSquaredError()(TEACHER, STUDENT))
    assert float(LogitMSE()(TEACHER, STUDENT)) == pytest.approx(keras_mse, rel=1e-6)


@pytest.mark.parametrize("kind, delta", [("mse", 1.0), ("huber", 1.0), ("huber", 0.3)])
def test_regression_to_teacher_matches_numpy(kind, delta):
    error = (STUDENT - TEACHER).astype("float64")
    ref = (error**2).mean(-1) if kind == "mse" else ref_huber(error, delta).mean(-1)
    got = to_numpy(regression_to_teacher(TEACHER, STUDENT, kind, delta))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    loss = RegressionToTeacher(kind=kind, delta=delta)
    np.testing.assert_allclose(float(loss(TEACHER, STUDENT)), ref.mean(), rtol=1e-5)
    if kind == "huber":  # Keras' Huber agrees
        expected = float(keras.losses.Huber(delta=delta)(TEACHER, STUDENT))
        assert float(loss(TEACHER, STUDENT)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("margin", [0.0, 0.5, 3.0])
def test_teacher_bounded_regression_matches_numpy(margin):
    ref = ref_bounded(TEACHER, STUDENT, TARGETS, margin)
    got = to_numpy(teacher_bounded_regression(TEACHER, STUDENT, TARGETS, margin))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    loss = TeacherBoundedRegression(margin=margin)
    value = float(loss(teacher_with_labels(TEACHER, TARGETS), STUDENT, sample_weight=WEIGHTS))
    np.testing.assert_allclose(value, np.sum(ref * WEIGHTS) / 5, rtol=1e-5)


def test_teacher_bounded_regression_pays_only_until_the_student_beats_the_teacher():
    y = np.array([[0.0], [0.0], [0.0]], "float32")
    teacher = np.array([[1.0], [1.0], [1.0]], "float32")  # squared error 1 everywhere
    student = np.array([[2.0], [0.5], [0.9]], "float32")  # errors 4, 0.25, 0.81
    got = to_numpy(teacher_bounded_regression(teacher, student, y[:, 0]))  # [batch] targets
    np.testing.assert_allclose(got, [4.0, 0.0, 0.0])
    # With a margin of 0.5 the student must be better by 0.5: 0.81 + 0.5 > 1 still pays.
    got = to_numpy(teacher_bounded_regression(teacher, student, y, margin=0.5))
    np.testing.assert_allclose(got, [4.0, 0.0, 0.81], rtol=1e-6)
    # No gradient where the student already beats the teacher.
    grad = gradient(lambda s: teacher_bounded_regression(teacher, s, y), student)
    np.testing.assert_allclose(grad, [[4.0], [0.0], [0.0]])


def test_shapes_and_arguments_are_checked_by_name():
    with pytest.raises(ValueError, match=r"multi_label_kl_divergence.*\(5, 4\).*\(5, 3\)"):
        multi_label_kl_divergence(TEACHER, STUDENT[:, :3])
    with pytest.raises(ValueError, match="targets of shape"):
        teacher_bounded_regression(TEACHER, STUDENT, TARGETS[:, :2])
    with pytest.raises(ValueError, match="teacher_with_labels"):
        TeacherBoundedRegression()(TEACHER, STUDENT)
    # [batch] predictions would average over the batch: refused, naming the fix.
    with pytest.raises(ValueError, match=r"logit_mse: expected \[batch, outputs\].*\[batch, 1\]"):
        logit_mse(TEACHER[:, 0], STUDENT[:, 0])
    # The functions check their arguments as the classes do.
    with pytest.raises(ValueError, match="delta"):
        regression_to_teacher(TEACHER, STUDENT, "huber", delta=-1.0)
    with pytest.raises(ValueError, match="margin"):
        teacher_bounded_regression(TEACHER, STUDENT, TARGETS, margin=-5.0)
    with pytest.raises(ValueError, match="margin"):
        teacher_bounded_regression(TEACHER, STUDENT, TARGETS, margin=float("nan"))
    for build, bad in [
        (RegressionToTeacher, {"kind": "mae"}),
        (RegressionToTeacher, {"delta": 0, "kind": "huber"}),
        (TeacherBoundedRegression, {"margin": -1.0}),
        (TeacherBoundedRegression, {"margin": True}),
        (MultiLabelKLDivergence, {"temperature": 0}),
    ]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            build(**bad)


@pytest.mark.parametrize(
    "loss",
    [
        MultiLabelKLDivergence(temperature=2.0),
        LogitMSE(),
        RegressionToTeacher(kind="huber", delta=0.5),
        TeacherBoundedRegression(margin=0.25),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_each_loss_round_trips_its_config(loss):
    revived = run_serialization_test(loss)
    needs_labels = getattr(loss, "needs_labels", False)
    target = teacher_with_labels(TEACHER, TARGETS) if needs_labels else TEACHER
    assert float(revived(target, STUDENT)) == pytest.approx(float(loss(target, STUDENT)))
