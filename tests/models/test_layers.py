"""kdzoo's ``BatchNormalization``: synchronised on TensorFlow only, without the flag in its
config, and weight-compatible with ``keras.layers.BatchNormalization``. Loading on JAX a model
saved on TensorFlow: tests/test_backend_imports.py."""

import keras
import numpy as np
import pytest

from kdzoo.models.layers import BatchNormalization

#: What kdzoo's layer sets, and the only value Keras' own layer accepts off TensorFlow.
SYNCHRONIZED = keras.config.backend() == "tensorflow"


def _plain(**kwargs):
    """Keras' own layer, synchronised where kdzoo's is (TensorFlow)."""
    return keras.layers.BatchNormalization(synchronized=SYNCHRONIZED, **kwargs)


def _model(norm):
    inputs = keras.Input((3, 3, 2), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = norm(momentum=0.9, name="bn")(x)
    return keras.Model(inputs, x)


def test_synchronized_on_tensorflow_and_not_in_the_config():
    layer = BatchNormalization(momentum=0.9, name="bn")
    assert layer.synchronized is SYNCHRONIZED  # True on TensorFlow only
    config = layer.get_config()
    assert "synchronized" not in config and config["momentum"] == 0.9
    assert BatchNormalization.from_config(config).synchronized is SYNCHRONIZED
    assert keras.saving.get_registered_name(BatchNormalization) == "kdzoo>BatchNormalization"
    with pytest.raises(ValueError, match="sets `synchronized` from the backend"):
        BatchNormalization(synchronized=False)


def test_weight_files_of_the_keras_layer_load_into_it_and_back(tmp_path):
    plain = _model(_plain)
    rng = np.random.default_rng(0)
    plain.set_weights([w + np.abs(rng.normal(size=w.shape)) for w in plain.get_weights()])
    plain.save_weights(tmp_path / "plain.weights.h5")
    ours = _model(BatchNormalization)
    ours.load_weights(tmp_path / "plain.weights.h5")
    for a, b in zip(plain.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    ours.save_weights(tmp_path / "ours.weights.h5")
    again = _model(_plain)
    again.load_weights(tmp_path / "ours.weights.h5")
    for a, b in zip(plain.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
