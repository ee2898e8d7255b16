"""tf.data preprocessing shared by training pipelines and serving exports."""

from kdzoo.data.audio import AudioConfig, audio_features, log_mel_spectrogram
from kdzoo.data.augment import AugmentConfig, SpecAugment, WaveformAugment, image_augmenter
from kdzoo.data.image import ImageConfig, preprocess_images
from kdzoo.data.pipeline import from_arrays, is_augmented, validate_arrays
from kdzoo.data.routing import MissingInputError, for_model, input_names, select_inputs
from kdzoo.data.tabular import TabularConfig, tabular_features
from kdzoo.data.text import TextVectorizer
from kdzoo.data.tfrecord import read_tfrecords, write_tfrecords

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
