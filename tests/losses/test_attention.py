"""Attention transfer (``kdzoo.losses.attention``) against a NumPy reference of
Zagoruyko & Komodakis 2017."""

import numpy as np
import pytest
from helpers import gradient, random_logits, ref_attention
from keras.ops import convert_to_numpy as to_numpy

from kdzoo import losses

RNG = np.random.default_rng(7)
WEIGHTS = random_logits()[3]


def test_attention_transfer_matches_numpy_with_different_channels():
    t_map = RNG.normal(size=(3, 4, 5, 6)).astype("float32")
    s_map = RNG.normal(size=(3, 4, 5, 2)).astype("float32")
    for p in (2.0, 1.0):
        ref = ref_attention(t_map, s_map, p)
        np.testing.assert_allclose(
            to_numpy(losses.attention_transfer(t_map, s_map, p)), ref, rtol=1e-5
        )
    loss = losses.AttentionTransfer()
    ref = ref_attention(t_map, s_map)
    np.testing.assert_allclose(float(loss(t_map, s_map)), ref.mean(), rtol=1e-5)
    w = WEIGHTS[:3]
    np.testing.assert_allclose(
        float(loss(t_map, s_map, sample_weight=w)), np.sum(ref * w) / 3, rtol=1e-5
    )
    # Only the normalised map matters: rescaling the student's activations changes nothing.
    np.testing.assert_allclose(float(loss(t_map, 5.0 * s_map)), ref.mean(), rtol=1e-5)
    assert float(loss(t_map, t_map)) == pytest.approx(0.0, abs=1e-6)


def test_attention_transfer_gradient_is_finite_at_equal_maps_and_shapes_are_checked():
    t_map = RNG.normal(size=(2, 3, 3, 4)).astype("float32")
    grad = gradient(lambda s_map: losses.AttentionTransfer()(t_map, s_map), t_map)
    assert np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match=r"\(2, 3, 3, 4\).*\(2, 4, 3, 4\).*spatial"):
        losses.attention_transfer(t_map, np.zeros((2, 4, 3, 4)))
    with pytest.raises(ValueError, match="power"):
        losses.AttentionTransfer(power=0.5)
