"""Relational KD (``kdzoo.losses.relational``): RKD distance and angle against NumPy
references of Park et al. 2019."""

import keras
import numpy as np
import pytest
from helpers import gradient, ref_rkd_angle, ref_rkd_distance
from keras.ops import convert_to_numpy as to_numpy

from kdzoo import losses

RNG = np.random.default_rng(7)


def test_rkd_distance_and_angle_match_numpy_with_different_widths():
    t = RNG.normal(size=(6, 7)).astype("float32")
    s = RNG.normal(size=(6, 3)).astype("float32")
    for fn, cls, ref_fn in (
        (losses.rkd_distance, losses.RKDDistance, ref_rkd_distance),
        (losses.rkd_angle, losses.RKDAngle, ref_rkd_angle),
    ):
        ref = ref_fn(t, s)
        per_example = to_numpy(fn(t, s))
        # A batch value, repeated once per example.
        assert per_example.shape == (6,)
        np.testing.assert_allclose(per_example, np.full(6, ref), rtol=1e-4)
        np.testing.assert_allclose(float(cls()(t, s)), ref, rtol=1e-4)
        # sum_over_batch_size with weights: L_batch · mean(w).
        w = np.array([1.0, 0.0, 2.0, 0.5, 1.5, 1.0], "float32")
        np.testing.assert_allclose(float(cls()(t, s, sample_weight=w)), ref * w.mean(), rtol=1e-4)
        # Relations are invariant to scaling and translating the student's embedding.
        np.testing.assert_allclose(float(cls()(t, 4.0 * s + 1.0)), ref, rtol=1e-4)


def test_rkd_is_zero_for_a_matching_structure_and_refuses_small_batches():
    t = RNG.normal(size=(5, 4)).astype("float32")
    rotation, _ = np.linalg.qr(RNG.normal(size=(4, 4)))
    s = (2.0 * t @ rotation.astype("float32")) - 1.0  # same geometry, other basis and scale
    assert float(losses.RKDDistance()(t, s)) == pytest.approx(0.0, abs=1e-5)
    assert float(losses.RKDAngle()(t, s)) == pytest.approx(0.0, abs=1e-5)
    # Batches too small for any relation: refused on TensorFlow, 0 elsewhere, where no shape
    # tells them from an epoch's last batch (tests/losses/test_reliability_losses.py).
    for loss in (losses.RKDDistance(), losses.RKDAngle()):
        if keras.config.backend() == "tensorflow":
            with pytest.raises(ValueError, match=f"{loss.name}.*at least 3"):
                loss(t[:2], s[:2])
        else:
            assert float(loss(t[:2], s[:2])) == 0.0
    with pytest.raises(ValueError, match="same batch size"):
        losses.RKDDistance()(t, s[:4])


def test_rkd_gradients_are_finite_with_duplicate_examples():
    t = RNG.normal(size=(4, 3)).astype("float32")
    s = np.repeat(RNG.normal(size=(2, 2)), 2, axis=0).astype("float32")
    for loss in (losses.RKDDistance(), losses.RKDAngle()):
        assert np.isfinite(float(loss(t, s)))
        assert np.all(np.isfinite(gradient(lambda s, loss=loss: loss(t, s), s)))
