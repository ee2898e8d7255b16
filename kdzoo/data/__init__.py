"""tf.data preprocessing shared by training pipelines and serving exports."""

from kdzoo._lazy import attributes as _attributes
from kdzoo.data.audio import AudioConfig, audio_features, log_mel_spectrogram
from kdzoo.data.augment import AugmentConfig, SpecAugment, WaveformAugment, image_augmenter
from kdzoo.data.image import ImageConfig, preprocess_images
from kdzoo.data.pipeline import from_arrays, is_augmented, validate_arrays
from kdzoo.data.routing import MissingInputError, for_model, input_names, select_inputs
from kdzoo.data.text import TextVectorizer
from kdzoo.data.tfrecord import read_tfrecords, write_tfrecords

# The tabular front end loads on first use (PEP 562), so that runs without a table do not
# import it and their results' code fingerprints do not cover it.
__getattr__, __dir__ = _attributes(
    __name__,
    {"TabularConfig": "kdzoo.data.tabular", "tabular_features": "kdzoo.data.tabular"},
)

__all__ = [
    "AudioConfig",
    "AugmentConfig",
    "ImageConfig",
    "MissingInputError",
    "SpecAugment",
    "TabularConfig",
    "TextVectorizer",
    "WaveformAugment",
    "audio_features",
    "for_model",
    "from_arrays",
    "image_augmenter",
    "input_names",
    "is_augmented",
    "log_mel_spectrogram",
    "preprocess_images",
    "read_tfrecords",
    "select_inputs",
    "tabular_features",
    "validate_arrays",
    "write_tfrecords",
]
