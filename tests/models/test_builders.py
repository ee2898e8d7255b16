"""Every zoo model round-trips through get_config/from_config and .keras save/load."""

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
