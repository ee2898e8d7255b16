"""Every zoo model round-trips through get_config/from_config and .keras save/load."""

import keras
import numpy as np
import pytest
from helpers import run_model_config_test, run_model_saving_test

from kdzoo import models
from kdzoo.data.audio import AudioConfig


def _inputs_for(model, batch=3):
    rng = np.random.default_rng(1)
    out = {}
    for t in model.inputs:
        shape = (batch, *t.shape[1:])
        if t.dtype == "int32":
            out[t.name] = rng.integers(0, 50, size=shape).astype("int32")
        else:
            out[t.name] = rng.standard_normal(shape).astype("float32")
    return out


@pytest.mark.parametrize("name", sorted(models.list_models()))
def test_config_and_keras_file_round_trip(name, tmp_path):
    model = (
        models.build(name, "student", vocab_size=60)
        if "text" in name
        else models.build(name, "student")
    )
    x = _inputs_for(model)
    run_model_config_test(model, x)
    loaded = run_model_saving_test(model, x, tmp_path / f"{name}.keras")
    assert models.feature_names(loaded) == models.feature_names(model)


def test_audio_model_reads_the_log_mel_shape_of_its_front_end():
    model = models.build("audio_crnn")
    assert tuple(model.input["audio"].shape[1:]) == AudioConfig.embedded().feature_shape


def test_multimodal_rejects_unknown_modalities():
    with pytest.raises(ValueError, match="modalities"):
        models.build("multimodal_concat", modalities=("image", "smell"))


def test_text_teacher_pools_the_maximum_over_real_tokens_and_round_trips(tmp_path):
    # The text_lstm teacher is a BiLSTM-max: its embedding is the maximum over the
    # unmasked steps only, so padding a sentence further does not change it.
    model = models.build("text_lstm", "teacher", vocab_size=60, sequence_length=8)
    tokens = np.array([[5, 9, 3, 0, 0, 0, 0, 0], [5, 9, 3, 7, 7, 0, 0, 0]], "int32")
    embed = models.feature_model(model, ["embedding"])
    short = embed({"text": tokens[:1]})["embedding"]
    # The same sentence read with a longer padded length: the same embedding.
    longer = models.build("text_lstm", "teacher", vocab_size=60, sequence_length=12)
    longer.set_weights(model.get_weights())
    padded = np.array([[5, 9, 3] + [0] * 9], "int32")
    assert np.allclose(
        short, models.feature_model(longer, ["embedding"])({"text": padded})["embedding"], atol=1e-6
    )
    run_model_config_test(model, {"text": tokens})
    run_model_saving_test(model, {"text": tokens}, tmp_path / "text_teacher.keras")


def test_masked_max_pooling_ignores_masked_steps():
    from kdzoo.models.layers import MaskedGlobalMaxPooling1D

    x = np.array([[[1.0, -5], [3, -2], [9, 9]], [[-1, -1], [-2, -3], [7, 7]]], "float32")
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
    pool = MaskedGlobalMaxPooling1D()
    assert np.array_equal(pool(x, mask=mask), [[3, -2], [-1, -1]])
    assert np.array_equal(pool(x), x.max(axis=1))
    assert np.array_equal(pool(x, mask=np.zeros((2, 3), bool)), np.zeros((2, 2)))
    assert pool.compute_mask(x, mask) is None


@pytest.mark.parametrize(
    "name, pooling", [("image_cnn", "max"), ("text_lstm", "mean")], ids=["image", "text"]
)
def test_an_unknown_pooling_is_an_error_naming_the_choices(name, pooling):
    with pytest.raises(ValueError, match="pooling must be"):
        models.build(name, "teacher", pooling=pooling)


@pytest.mark.parametrize("name", ["image_cnn", "audio_crnn"])
def test_batch_norm_statistics_catch_up_within_one_small_epoch(name):
    # A small dataset gives few steps an epoch (AV digits: 31). The moving statistics used
    # at inference must follow the data within that many steps, or validation scores a
    # model that no longer exists (at Keras's default momentum, 0.99, 73% of the initial
    # statistics would remain after 31 steps).
    model = models.build(name, "teacher")
    bn = next(layer for layer in model.layers if layer.name.endswith("block0_bn"))
    rng = np.random.default_rng(0)
    key, shape = next(iter((t.name, tuple(t.shape[1:])) for t in model.inputs))
    pre_bn = keras.Model(model.inputs, model.get_layer(bn.name.replace("_bn", "_conv")).output)
    x = (3.0 + 2.0 * rng.standard_normal((16, *shape))).astype("float32")
    for _ in range(31):
        model({key: x}, training=True)
    batch_mean = np.asarray(pre_bn({key: x})).reshape(-1, bn.moving_mean.shape[0]).mean(axis=0)
    moving_mean = np.asarray(bn.moving_mean)
    assert np.allclose(moving_mean, batch_mean, rtol=0.1, atol=0.05 * np.abs(batch_mean).max())
