import os

# Before TensorFlow is imported anywhere.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Tests never download: missing data must fail fast with the DataNotFoundError message.
os.environ.setdefault("KDZOO_NO_DOWNLOAD", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def tiny_av_batch():
    """A tiny image+audio batch in the shapes of the embedded dataset's default models."""
    from kdzoo.data.audio import AudioConfig

    rng = np.random.default_rng(0)
    frames, mels = AudioConfig.embedded().feature_shape
    x = {
        "image": rng.standard_normal((8, 16, 16, 1)).astype("float32"),
        "audio": rng.standard_normal((8, frames, mels)).astype("float32"),
    }
    y = rng.integers(0, 10, size=8).astype("int32")
    return x, y


@pytest.fixture(scope="session")
def text_student():
    """``text_student(vectorizer)``: the ``text_lstm`` student preset sized for a
    ``TextVectorizer`` (binary by default)."""

    def build(vectorizer, num_classes=2):
        from kdzoo import models

        return models.build(
            "text_lstm",
            "student",
            num_classes=num_classes,
            sequence_length=vectorizer.sequence_length,
            vocab_size=vectorizer.vocab_size,
        )

    return build
