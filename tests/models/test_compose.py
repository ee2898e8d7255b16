"""``fuse_models``: single-modality models joined under a new head, warm-started or not."""

import keras
import numpy as np
import pytest

from kdzoo import models
from kdzoo.models.compose import embedding_model, encoders_of, fuse_models

IMAGE, AUDIO = (12, 12, 1), (16, 8)


def _singles():
    keras.utils.set_random_seed(0)
    return {
        "image": models.build("image_cnn", "student", 4, image_shape=IMAGE),
        "audio": models.build("audio_crnn", "student", 4, audio_shape=AUDIO),
    }


def _batch(n=3):
    rng = np.random.default_rng(0)
    return {
        "image": rng.random((n, *IMAGE)).astype("float32"),
        "audio": rng.standard_normal((n, *AUDIO)).astype("float32"),
    }


def test_the_fused_model_starts_from_each_models_embedding():
    singles = _singles()
    fused = fuse_models(singles, 4)
    x = _batch()
    assert sorted(t.name for t in fused.inputs) == ["audio", "image"]
    assert fused(x).shape == (3, 4)
    for m in ("image", "audio"):
        probe = keras.Model(fused.inputs, fused.get_layer(f"{m}_embedding").output)
        expected = embedding_model(singles[m])(x[m])
        np.testing.assert_allclose(probe(x), expected, atol=1e-6)


def test_training_the_fused_model_leaves_the_given_models_alone_unless_shared():
    singles = _singles()
    before = [w.copy() for w in singles["image"].get_weights()]
    fused = fuse_models(singles, 4)
    for v in encoders_of(fused, ["image"])[0].trainable_weights:
        v.assign(v + 1.0)
    for a, b in zip(before, singles["image"].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    shared = fuse_models(singles, 4, copy=False)
    kernel = encoders_of(shared, ["image"])[0].trainable_weights[0]
    kernel.assign(kernel + 1.0)
    assert not np.array_equal(before[0], singles["image"].get_weights()[0])


def test_frozen_encoders_leave_only_the_head_trainable():
    fused = fuse_models(_singles(), 4, hidden_units=8, trainable_encoders=False)
    trainable = {v.path.split("/")[0] for v in fused.trainable_weights}
    assert trainable == {"hidden", "logits"}
    for encoder in encoders_of(fused, ["image", "audio"]):
        encoder.trainable = True
    assert len(fused.trainable_weights) > 4


def test_the_fused_model_saves_and_loads_safely(tmp_path):
    fused = fuse_models(_singles(), 4, modality_dropout=0.2, seed=1)
    fused.save(tmp_path / "fused.keras")
    loaded = keras.saving.load_model(tmp_path / "fused.keras", safe_mode=True)
    x = _batch()
    np.testing.assert_allclose(loaded(x), fused(x), atol=1e-6)


def test_bad_models_are_named():
    singles = _singles()
    with pytest.raises(ValueError, match="two or more modalities"):
        fuse_models({"image": singles["image"]}, 4)
    plain = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)], name="plain")
    with pytest.raises(ValueError, match="'plain' has no layer named 'embedding'"):
        fuse_models({"image": singles["image"], "tabular": plain}, 4)
    both = models.build("fusion_early", "student", 4, image_shape=IMAGE, audio_shape=AUDIO)
    with pytest.raises(ValueError, match="must read one input"):
        fuse_models({"image": singles["image"], "av": both}, 4)
