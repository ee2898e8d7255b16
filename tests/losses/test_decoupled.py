"""Decoupled KD and non-target KD (``kdzoo.losses.decoupled``) against NumPy references
written from the papers' formulas. Distributed reduction is checked by
tests/scripts/loss_reduction_parity.py."""

import numpy as np
import pytest
from helpers import random_logits, ref_dkd, ref_non_target, softmax
from keras.ops import convert_to_numpy as to_numpy

from kdzoo import losses

TEACHER, STUDENT, LABELS, WEIGHTS = random_logits()


# ---------------------------------------------------------------- DKD
@pytest.mark.parametrize("alpha,beta,tau", [(1.0, 8.0, 4.0), (0.5, 2.0, 1.0), (1.0, 0.0, 2.0)])
def test_dkd_matches_numpy(alpha, beta, tau):
    ref = ref_dkd(TEACHER, STUDENT, LABELS, alpha, beta, tau)
    per_example = to_numpy(losses.decoupled_kd(TEACHER, STUDENT, LABELS, alpha, beta, tau))
    np.testing.assert_allclose(per_example, ref, rtol=1e-4, atol=1e-6)
    loss = losses.DecoupledKD(alpha=alpha, beta=beta, temperature=tau)
    target = losses.teacher_with_labels(TEACHER, LABELS)
    np.testing.assert_allclose(float(loss(target, STUDENT)), ref.mean(), rtol=1e-4)
    weighted = float(loss(target, STUDENT, sample_weight=WEIGHTS))
    np.testing.assert_allclose(weighted, np.sum(ref * WEIGHTS) / 5, rtol=1e-4)


def test_dkd_decomposes_classic_kd():
    # Zhao et al. eq. (3): KD = TCKD + (1 − p^T_y) · NCKD, per example.
    tau = 3.0
    tckd = to_numpy(losses.decoupled_kd(TEACHER, STUDENT, LABELS, 1.0, 0.0, tau))
    nckd = to_numpy(losses.decoupled_kd(TEACHER, STUDENT, LABELS, 0.0, 1.0, tau))
    p_target = softmax(TEACHER.astype("float64") / tau)[np.arange(5), LABELS]
    kd = to_numpy(losses.soft_target_kl_divergence(TEACHER, STUDENT, tau))
    np.testing.assert_allclose(tckd + (1 - p_target) * nckd, kd, rtol=1e-4)


def test_dkd_accepts_column_labels_and_rejects_bad_targets():
    loss = losses.DecoupledKD()
    flat = float(loss({"teacher": TEACHER, "labels": LABELS}, STUDENT))
    column = float(loss({"teacher": TEACHER, "labels": LABELS[:, None]}, STUDENT))
    assert flat == pytest.approx(column)
    with pytest.raises(ValueError, match="teacher_with_labels"):
        loss(TEACHER, STUDENT)
    with pytest.raises(ValueError, match=r"labels.*\(5, 4\)"):
        loss({"teacher": TEACHER, "labels": np.eye(4)[[0, 1, 2, 3, 0]]}, STUDENT)
    with pytest.raises(ValueError, match=r"\(5, 4\).*\(5, 3\)"):
        loss({"teacher": TEACHER, "labels": LABELS}, STUDENT[:, :3])
    for bad in ({"alpha": -1.0}, {"beta": "8"}, {"temperature": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            losses.DecoupledKD(**bad)


# ---------------------------------------------------------------- non-target KD
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_non_target_kl_matches_numpy_and_ignores_the_target_logit(tau):
    ref = ref_non_target(TEACHER, STUDENT, LABELS, tau)
    np.testing.assert_allclose(
        to_numpy(losses.non_target_kl_divergence(TEACHER, STUDENT, LABELS, tau)), ref, rtol=1e-4
    )
    loss = losses.NonTargetKLDivergence(temperature=tau)
    target = losses.teacher_with_labels(TEACHER, LABELS)
    np.testing.assert_allclose(
        float(loss(target, STUDENT, sample_weight=WEIGHTS)), np.sum(ref * WEIGHTS) / 5, rtol=1e-4
    )
    # The target logits (teacher's and student's) do not enter: change them, same loss.
    moved_s, moved_t = STUDENT.copy(), TEACHER.copy()
    moved_s[np.arange(5), LABELS] += 10.0
    moved_t[np.arange(5), LABELS] -= 5.0
    moved = float(loss(losses.teacher_with_labels(moved_t, LABELS), moved_s))
    assert moved == pytest.approx(ref.mean(), rel=1e-4)
    # ...whereas plain KD changes a lot.
    kd = losses.SoftTargetKLDivergence(tau)
    assert abs(float(kd(moved_t, moved_s)) - float(kd(TEACHER, STUDENT))) > 0.1
