import inspect

import keras
import pytest

from kdzoo import models
from kdzoo.models import registry


def test_list_models_has_four_families_with_presets():
    names = models.list_models()
    assert {"image_cnn", "audio_crnn", "text_lstm", "multimodal_concat"} <= set(names)
    for name in names:
        presets = models.get_spec(name).presets
        assert {"teacher", "student"} <= set(presets)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        models.build("resnet9000")
    for name in models.list_models():
        assert name in str(err.value)


def test_unknown_preset_and_argument_raise_with_choices():
    with pytest.raises(ValueError, match="Valid presets: teacher, student"):
        models.build("image_cnn", preset="huge")
    with pytest.raises(ValueError, match="image_shape"):
        models.build("image_cnn", filterz=(4,))


def test_duplicate_registration_raises():
    spec = models.get_spec("image_cnn")
    with pytest.raises(ValueError, match="already registered"):
        models.register(spec)
    pair = registry.get_pair("av_to_audio")
    with pytest.raises(ValueError, match="already registered"):
        models.register_pair(pair)


def test_unknown_pair_lists_pairs():
    with pytest.raises(ValueError, match="av_to_audio"):
        models.build_pair("nope")


@pytest.mark.parametrize(
    "name",
    ["image_cnn", "audio_crnn", "text_lstm", "text_cnn_lstm", "multimodal_concat", "tabular_mlp"],
)
def test_student_is_at_most_one_eighth_of_teacher(name):
    teacher, student = models.build_pair(name)
    assert student.count_params() * 8 <= teacher.count_params()


@pytest.mark.parametrize("features", [4, 64, 784, 5000])
def test_tabular_student_is_under_one_eighth_at_any_input_width(features):
    teacher, student = models.build_pair("tabular_mlp", tabular_shape=(features,))
    assert student.count_params() * 8 <= teacher.count_params()


def test_inputs_are_named_after_modalities_and_features_exposed():
    expected = {
        "image_cnn": {"image"},
        "audio_crnn": {"audio"},
        "text_lstm": {"text"},
        "text_cnn_lstm": {"text"},
        "multimodal_concat": {"image", "audio"},
        "tabular_mlp": {"tabular"},
    }
    for name, inputs in expected.items():
        model = models.build(name)
        assert {t.name for t in model.inputs} == inputs
        assert set(models.get_spec(name).modalities) == inputs
        features = models.feature_names(model)
        assert "embedding" in features
        if name in ("image_cnn", "audio_crnn"):
            assert "feature_map" in features
            assert len(model.get_layer("feature_map").output.shape) == 4


def test_overrides_reach_the_builder():
    model = models.build("image_cnn", image_shape=(28, 28, 3), num_classes=4)
    assert tuple(model.input["image"].shape) == (None, 28, 28, 3)
    assert model.output.shape[-1] == 4
    fused = models.build("multimodal_concat", modalities=("image", "audio", "text"))
    assert {t.name for t in fused.inputs} == {"image", "audio", "text"}


def test_pair_helper_returns_teacher_then_student():
    teacher, student = models.build_pair("av_to_audio", num_classes=7)
    assert {t.name for t in teacher.inputs} == {"image", "audio"}
    assert {t.name for t in student.inputs} == {"audio"}
    assert teacher.output.shape[-1] == student.output.shape[-1] == 7
    assert teacher.count_params() > student.count_params()


def test_feature_model_shares_weights_and_rejects_unknown_names():
    model = models.build("image_cnn")
    tap = models.feature_model(model, ["embedding", "feature_map"])
    assert set(tap.output) == {"logits", "embedding", "feature_map"}
    assert {id(v) for v in tap.weights} == {id(v) for v in model.weights}
    with pytest.raises(ValueError, match="Available features: logits, feature_map, embedding"):
        models.feature_model(model, ["nope"])


def test_builders_use_no_lambda_layers():
    for name in models.list_models():
        for preset in ("teacher", "student"):
            model = models.build(name, preset)
            assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
        assert "num_classes" in inspect.signature(models.get_spec(name).builder).parameters
