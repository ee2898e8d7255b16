"""Feature losses (``kdzoo.losses.features``): FitNets MSE and cosine, against NumPy."""

import keras
import numpy as np

from kdzoo import losses


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
