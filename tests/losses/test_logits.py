"""Logit losses (``kdzoo.losses.logits``): soft-target KD with τ², logit-standardised KD,
hard-label cross-entropy and the temperature variable, against NumPy references."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import random_logits, ref_kd, ref_standardised_kd, run_serialization_test, softmax
from keras.ops import convert_to_numpy as to_numpy

from kdzoo import losses

TEACHER = np.array([[2.0, 1.0, 0.1, -1.0], [0.5, 0.3, 2.2, 0.0], [-1.0, 3.0, 0.0, 0.2]], "float32")
STUDENT = np.array([[1.5, 0.2, 0.4, 0.0], [0.1, 0.9, 1.0, -0.5], [0.3, 1.0, -0.2, 0.8]], "float32")
LABELS = np.array([0, 2, 1])


@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_soft_target_kl_matches_numpy_with_tau_squared(tau):
    ref = ref_kd(TEACHER.astype("float64"), STUDENT.astype("float64"), tau)
    per_example = keras.ops.convert_to_numpy(
        losses.soft_target_kl_divergence(TEACHER, STUDENT, tau)
    )
    np.testing.assert_allclose(per_example, ref, rtol=1e-5)
    value = float(losses.SoftTargetKLDivergence(temperature=tau)(TEACHER, STUDENT))
    np.testing.assert_allclose(value, ref.mean(), rtol=1e-5)


def test_soft_target_kl_direction_is_teacher_to_student():
    # KL is asymmetric: swapping teacher and student (a keras.io example bug) changes the value.
    right = ref_kd(TEACHER, STUDENT, 2.0).mean()
    swapped = ref_kd(STUDENT, TEACHER, 2.0).mean()
    assert abs(right - swapped) > 1e-3
    value = float(losses.SoftTargetKLDivergence(2.0)(TEACHER, STUDENT))
    np.testing.assert_allclose(value, right, rtol=1e-5)
    assert abs(value - swapped) > 1e-3


def test_soft_target_kl_softmax_is_over_classes():
    # The softmax over the batch axis (a classic bug) gives a different number.
    wrong = 4.0 * np.sum(
        softmax(TEACHER / 2, 0) * np.log(softmax(TEACHER / 2, 0) / softmax(STUDENT / 2, 0)),
        axis=-1,
    )
    value = float(losses.SoftTargetKLDivergence(2.0)(TEACHER, STUDENT))
    assert abs(value - wrong.mean()) > 1e-3
    # One example: softmax over the batch axis would make every probability 1 and the loss 0.
    single = float(losses.SoftTargetKLDivergence(2.0)(TEACHER[:1], STUDENT[:1]))
    np.testing.assert_allclose(single, ref_kd(TEACHER[:1], STUDENT[:1], 2.0)[0], rtol=1e-5)
    assert single > 0.01


def test_soft_target_kl_is_zero_for_equal_logits_and_honours_sample_weight():
    assert float(losses.SoftTargetKLDivergence()(TEACHER, TEACHER)) == pytest.approx(0, abs=1e-6)
    w = np.array([1.0, 0.0, 2.0], "float32")
    ref = np.sum(ref_kd(TEACHER, STUDENT, 4.0) * w) / 3  # sum_over_batch_size
    value = float(losses.SoftTargetKLDivergence()(TEACHER, STUDENT, sample_weight=w))
    np.testing.assert_allclose(value, ref, rtol=1e-5)


def test_hard_label_crossentropy_matches_numpy():
    ref = -np.log(softmax(STUDENT.astype("float64"))[np.arange(3), LABELS])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(losses.hard_label_crossentropy(LABELS, STUDENT)), ref, rtol=1e-5
    )
    np.testing.assert_allclose(
        float(losses.HardLabelCrossentropy()(LABELS, STUDENT)), ref.mean(), rtol=1e-5
    )


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


# ---------------------------------------------------------------- logit-standardised KD
@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_logit_standardized_kd_matches_numpy_and_is_scale_free(tau):
    teacher, student, _, _ = random_logits()
    ref = ref_standardised_kd(teacher, student, tau)
    per_example = to_numpy(losses.soft_target_kl_divergence(teacher, student, tau, True))
    np.testing.assert_allclose(per_example, ref, rtol=1e-4, atol=1e-6)
    loss = losses.LogitStandardizedKLDivergence(temperature=tau)
    np.testing.assert_allclose(float(loss(teacher, student)), ref.mean(), rtol=1e-4)
    option = losses.SoftTargetKLDivergence(temperature=tau, standardize=True)
    assert float(option(teacher, student)) == pytest.approx(float(loss(teacher, student)))
    # A student with the teacher's relations at another scale and offset costs nothing...
    rescaled = 0.1 * teacher + 3.0
    assert float(loss(teacher, rescaled)) == pytest.approx(0.0, abs=1e-5)
    # ...while plain KD penalises the scale gap.
    assert float(losses.SoftTargetKLDivergence(tau)(teacher, rescaled)) > 0.05
    z = to_numpy(losses.standardize_logits(teacher))
    np.testing.assert_allclose(z.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(-1), 1.0, rtol=1e-5)


def test_soft_target_kl_config_keeps_standardize():
    loss = losses.SoftTargetKLDivergence(temperature=3.0, standardize=True)
    clone = run_serialization_test(loss)
    assert clone.standardize is True and clone.temperature == 3.0
    with pytest.raises(ValueError, match="standardize"):
        losses.SoftTargetKLDivergence(standardize="yes")


# ---------------------------------------------------------------- temperature variable
def _traced_step(fn, variable):
    """``fn`` traced once as the backend's trainer traces a train step, and the list that
    records each trace. TensorFlow: a ``tf.function``, which reads ``variable`` as graph
    state. JAX: a ``jax.jit`` that takes ``variable``'s value as an argument and maps it
    onto the variable with a ``keras.StatelessScope``, as Keras' JAX trainer passes the
    non-trainable state; a loss that read the value at trace time (a constant in the
    compiled step) would not see the assignment. Other backends: ``fn`` itself, eager."""
    traces = []

    def traced(*state):
        traces.append(1)
        if not state:
            return fn()
        with keras.StatelessScope(state_mapping=[(variable, state[0])]):
            return fn()

    backend = keras.config.backend()
    if backend == "tensorflow":
        return tf.function(traced), traces
    if backend == "jax":
        import jax

        jitted = jax.jit(traced)
        return lambda: jitted(variable.value), traces
    return fn, [1]  # eager: nothing is traced, so nothing to retrace


@pytest.mark.parametrize("name", ["kd", "kd_std", "dkd", "nkd"])
def test_assigning_the_temperature_variable_changes_a_traced_loss_without_retracing(name):
    teacher, student, labels, _ = random_logits()
    loss = losses.get(name, temperature=2.0)
    target = losses.teacher_with_labels(teacher, labels) if name in ("dkd", "nkd") else teacher
    step, traces = _traced_step(lambda: loss(target, student), loss.temperature_variable)
    at_two = float(step())
    loss.temperature_variable.assign(5.0)
    at_five = float(step())
    assert traces == [1]
    assert loss.temperature == 5.0 and loss.get_config()["temperature"] == 5.0
    reference = losses.get(name, temperature=5.0)
    assert at_five == pytest.approx(float(reference(target, student)), rel=1e-5)
    assert abs(at_five - at_two) > 1e-3
    with pytest.raises(ValueError, match="temperature"):
        loss.temperature = -1.0


def test_one_temperature_variable_can_drive_several_losses():
    shared = keras.Variable(2.0, dtype="float32", trainable=False, name="kd_temperature")
    kd = losses.SoftTargetKLDivergence(temperature=shared)
    dkd = losses.DecoupledKD(temperature=shared)
    assert kd.temperature_variable is shared and dkd.temperature_variable is shared
    shared.assign(3.0)
    assert kd.temperature == dkd.temperature == 3.0
    with pytest.raises(ValueError, match="temperature"):
        losses.SoftTargetKLDivergence(temperature=keras.Variable(-1.0))
