"""Loss values against independent NumPy references on fixed inputs."""

import keras
import numpy as np
import pytest

from kdzoo import losses

TEACHER = np.array([[2.0, 1.0, 0.1, -1.0], [0.5, 0.3, 2.2, 0.0], [-1.0, 3.0, 0.0, 0.2]], "float32")
STUDENT = np.array([[1.5, 0.2, 0.4, 0.0], [0.1, 0.9, 1.0, -0.5], [0.3, 1.0, -0.2, 0.8]], "float32")
LABELS = np.array([0, 2, 1])


def np_softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_kd(t, s, tau):
    p, q = np_softmax(t / tau), np_softmax(s / tau)
    return tau**2 * np.sum(p * np.log(p / q), axis=-1)


@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_soft_target_kl_matches_numpy_with_tau_squared(tau):
    ref = np_kd(TEACHER.astype("float64"), STUDENT.astype("float64"), tau)
    per_example = keras.ops.convert_to_numpy(
        losses.soft_target_kl_divergence(TEACHER, STUDENT, tau)
    )
    np.testing.assert_allclose(per_example, ref, rtol=1e-5)
    value = float(losses.SoftTargetKLDivergence(temperature=tau)(TEACHER, STUDENT))
    np.testing.assert_allclose(value, ref.mean(), rtol=1e-5)


def test_soft_target_kl_direction_is_teacher_to_student():
    # KL is asymmetric: swapping teacher and student (a keras.io example bug) changes the value.
    right = np_kd(TEACHER, STUDENT, 2.0).mean()
    swapped = np_kd(STUDENT, TEACHER, 2.0).mean()
    assert abs(right - swapped) > 1e-3
    value = float(losses.SoftTargetKLDivergence(2.0)(TEACHER, STUDENT))
    np.testing.assert_allclose(value, right, rtol=1e-5)
    assert abs(value - swapped) > 1e-3


def test_soft_target_kl_softmax_is_over_classes():
    # The softmax over the batch axis (a classic bug) gives a different number.
    wrong = 4.0 * np.sum(
        np_softmax(TEACHER / 2, 0)
        * np.log(np_softmax(TEACHER / 2, 0) / np_softmax(STUDENT / 2, 0)),
        axis=-1,
    )
    value = float(losses.SoftTargetKLDivergence(2.0)(TEACHER, STUDENT))
    assert abs(value - wrong.mean()) > 1e-3
    # One example: softmax over the batch axis would make every probability 1 and the loss 0.
    single = float(losses.SoftTargetKLDivergence(2.0)(TEACHER[:1], STUDENT[:1]))
    np.testing.assert_allclose(single, np_kd(TEACHER[:1], STUDENT[:1], 2.0)[0], rtol=1e-5)
    assert single > 0.01


def test_soft_target_kl_is_zero_for_equal_logits_and_honours_sample_weight():
    assert float(losses.SoftTargetKLDivergence()(TEACHER, TEACHER)) == pytest.approx(0, abs=1e-6)
    w = np.array([1.0, 0.0, 2.0], "float32")
    ref = np.sum(np_kd(TEACHER, STUDENT, 4.0) * w) / 3  # sum_over_batch_size
    value = float(losses.SoftTargetKLDivergence()(TEACHER, STUDENT, sample_weight=w))
    np.testing.assert_allclose(value, ref, rtol=1e-5)


def test_hard_label_crossentropy_matches_numpy():
    ref = -np.log(np_softmax(STUDENT.astype("float64"))[np.arange(3), LABELS])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(losses.hard_label_crossentropy(LABELS, STUDENT)), ref, rtol=1e-5
    )
    np.testing.assert_allclose(
        float(losses.HardLabelCrossentropy()(LABELS, STUDENT)), ref.mean(), rtol=1e-5
    )


def test_feature_mse_matches_numpy_on_vectors_and_maps():
    rng = np.random.default_rng(0)
    t, s = rng.standard_normal((2, 4, 3, 3, 5)).astype("float32")
    ref = ((t - s) ** 2).reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(losses.feature_mse(t, s)), ref, rtol=1e-5)
    np.testing.assert_allclose(float(losses.FeatureMSE()(t, s)), ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        float(losses.FeatureMSE()(t[:, 0, 0], s[:, 0, 0])),
        ((t[:, 0, 0] - s[:, 0, 0]) ** 2).mean(),
        rtol=1e-5,
    )


def test_feature_cosine_matches_numpy():
    rng = np.random.default_rng(1)
    t, s = rng.standard_normal((2, 4, 6)).astype("float32")
    ref = 1 - np.sum(t * s, 1) / (np.linalg.norm(t, axis=1) * np.linalg.norm(s, axis=1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(losses.feature_cosine(t, s)), ref, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(float(losses.FeatureCosine()(t, s)), ref.mean(), rtol=1e-5)
    # Scale-free: scaling the student leaves the loss unchanged.
    np.testing.assert_allclose(float(losses.FeatureCosine()(t, 3 * s)), ref.mean(), rtol=1e-5)


@pytest.mark.parametrize("bad", [0, -1.0, "4", None])
def test_temperature_is_validated(bad):
    with pytest.raises(ValueError, match="temperature"):
        losses.SoftTargetKLDivergence(temperature=bad)
    with pytest.raises(ValueError, match="temperature"):
        losses.soft_target_kl_divergence(TEACHER, STUDENT, bad)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 3\)"):
        losses.SoftTargetKLDivergence()(TEACHER, STUDENT[:, :3])
    with pytest.raises(ValueError, match="adapter"):
        losses.FeatureMSE()(np.zeros((2, 4)), np.zeros((2, 3)))


def test_losses_serialise_and_resolve_by_name():
    loss = losses.SoftTargetKLDivergence(temperature=3.0)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(clone, losses.SoftTargetKLDivergence) and clone.temperature == 3.0
    assert isinstance(losses.get("kd", temperature=2.0), losses.SoftTargetKLDivergence)
    with pytest.raises(
        ValueError,
        match="Valid names: at, ce, dkd, feature_cosine, feature_mse, kd, kd_std, nkd, rkd_angle",
    ):
        losses.get("dkd_v9")
