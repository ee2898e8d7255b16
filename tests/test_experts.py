"""``kdzoo.models.experts``: the product-of-experts log posterior, its prior correction,
input routing, save/load, and its errors."""

import keras
import numpy as np
import pytest

from kdzoo.models import build
from kdzoo.models.experts import ProductOfExperts, product_of_experts

IMAGE, AUDIO = (12, 12, 1), (16, 8)


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _experts(classes=4):
    keras.utils.set_random_seed(0)
    return {
        "image": build("image_cnn", "student", classes, image_shape=IMAGE),
        "audio": build("audio_crnn", "student", classes, audio_shape=AUDIO),
    }


def _image_model(name, classes=3, shape=IMAGE):
    image = keras.Input(shape, name="image")
    logits = keras.layers.Dense(classes)(keras.layers.Flatten()(image))
    return keras.Model({"image": image}, logits, name=name)


def _inputs(n=5):
    rng = np.random.default_rng(0)
    return {
        "image": rng.random((n, *IMAGE), dtype="float32"),
        "audio": rng.normal(size=(n, *AUDIO)).astype("float32"),
    }


def test_the_output_is_the_sum_of_the_experts_log_probabilities(tmp_path):
    experts = _experts()
    model = product_of_experts(experts)
    assert sorted(t.name for t in model.inputs) == ["audio", "image"]
    assert model.count_params() == sum(m.count_params() for m in experts.values())
    x = _inputs()
    image = experts["image"].predict({"image": x["image"]}, verbose=0)
    audio = experts["audio"].predict({"audio": x["audio"]}, verbose=0)
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, _log_softmax(image) + _log_softmax(audio), atol=1e-5)
    # Its softmax is the normalised product of the experts' distributions.
    product = np.exp(_log_softmax(image)) * np.exp(_log_softmax(audio))
    np.testing.assert_allclose(
        np.asarray(keras.ops.softmax(out)), product / product.sum(-1, keepdims=True), atol=1e-5
    )
    # Saved and loaded as .keras (a registered layer: no Lambda, no pickle).
    model.save(tmp_path / "poe.keras")
    loaded = keras.models.load_model(tmp_path / "poe.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), out, atol=1e-6)


def test_a_class_prior_is_divided_out_once_per_extra_expert():
    logits = [keras.ops.convert_to_tensor(np.array([[1.0, 2.0, 0.5]], "float32")) for _ in range(3)]
    prior = np.array([2.0, 1.0, 1.0])  # normalised to 0.5, 0.25, 0.25
    out = np.asarray(ProductOfExperts(class_prior=prior)(logits))
    expected = 3 * _log_softmax(np.array([[1.0, 2.0, 0.5]])) - 2 * np.log([0.5, 0.25, 0.25])
    np.testing.assert_allclose(out, expected, atol=1e-5)
    layer = ProductOfExperts.from_config(ProductOfExperts(class_prior=prior).get_config())
    assert layer.class_prior == pytest.approx([0.5, 0.25, 0.25])


def test_experts_reading_the_same_input_share_it():
    keras.utils.set_random_seed(0)
    a, b = _image_model("a"), _image_model("b")
    model = product_of_experts([a, b])
    assert [t.name for t in model.inputs] == ["image"]
    x = _inputs()["image"]
    expected = sum(_log_softmax(m.predict({"image": x}, verbose=0)) for m in (a, b))
    np.testing.assert_allclose(model.predict({"image": x}, verbose=0), expected, atol=1e-5)


def test_bad_experts_are_refused_by_name():
    experts = _experts()
    with pytest.raises(ValueError, match="at least two"):
        product_of_experts({"image": experts["image"]})
    other = build("audio_crnn", "student", 5, audio_shape=AUDIO)
    with pytest.raises(ValueError, match="number of classes"):
        product_of_experts({"image": experts["image"], "audio": other})
    wider = _image_model("wider", classes=4, shape=(14, 14, 1))
    with pytest.raises(ValueError, match="Input 'image'"):
        product_of_experts([experts["image"], wider])
    twin = build("image_cnn", "student", 4, image_shape=IMAGE)
    with pytest.raises(ValueError, match="distinct model names"):
        product_of_experts([experts["image"], twin])
    with pytest.raises(ValueError, match="positive"):
        ProductOfExperts(class_prior=[0.5, 0.0, 0.5])
