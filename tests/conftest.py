import os

# Before TensorFlow is imported anywhere.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Tests never download: missing data must fail fast with the DataNotFoundError message.
os.environ.setdefault("KDZOO_NO_DOWNLOAD", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "requires_data(*names): needs the shared datasets (default: fsdd, mnist, sst2, "
        "sms_spam) under $KDZOO_DATA_DIR; skipped where they are missing, except in CI "
        "(CI=true), where a missing dataset fails the test",
    )
    config.addinivalue_line(
        "markers",
        "tensorflow(reason): runs on the TensorFlow backend only (tf.data, tf.function, "
        "tf.distribute, SavedModel...); skipped, with the reason, under another "
        "KERAS_BACKEND (`make test-jax`)",
    )


def pytest_runtest_setup(item):
    """The policies for tests that need the TensorFlow backend (``@pytest.mark.tensorflow``)
    and for tests that need the shared data (``@pytest.mark.requires_data``)."""
    backend_only = item.get_closest_marker("tensorflow")
    if backend_only is not None and keras.config.backend() != "tensorflow":
        reason = backend_only.args[0] if backend_only.args else "TensorFlow-only API"
        pytest.skip(f"TensorFlow backend only: {reason}")
    marker = item.get_closest_marker("requires_data")
    if marker is None:
        return
    from kdzoo.datasets import data_root

    names = marker.args or ("fsdd", "mnist", "sst2", "sms_spam")
    missing = [n for n in names if not (data_root() / n).exists()]
    if not missing:
        return
    message = f"no {', '.join(missing)} under the data root {data_root()} ($KDZOO_DATA_DIR)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must have ../shared/data", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    # free_memory=False: its full gc.collect() cost ~0.5 s per test with TensorFlow loaded,
    # half of the fast suite's time; Python's own collector frees the old models anyway.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield
    # Op determinism is process-wide (a seeded run sets it): every test starts with it off,
    # as a fresh process does, so no test leaks it into another (Keras turns XLA off under it).
    if keras.config.backend() == "tensorflow":
        from tensorflow.python.framework import config  # disable_op_determinism is not public

        config.disable_op_determinism()


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
