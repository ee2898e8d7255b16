"""tf.data preprocessing shared by training pipelines and serving exports."""

from kdzoo.data.audio import AudioConfig, audio_features, log_mel_spectrogram
from kdzoo.data.augment import AugmentConfig, SpecAugment, WaveformAugment, image_augmenter
from kdzoo.data.image import ImageConfig, preprocess_images
from kdzoo.data.pipeline import from_arrays, is_augmented, validate_arrays
from kdzoo.data.teacher_cache import cache_teacher_outputs, load_teacher_outputs
from kdzoo.data.text import TextVectorizer
from kdzoo.data.tfrecord import read_tfrecords, write_tfrecords

__all__ = [
    "AudioConfig",
    "AugmentConfig",
    "ImageConfig",
    "SpecAugment",
    "TextVectorizer",
    "WaveformAugment",
    "audio_features",
    "cache_teacher_outputs",
    "from_arrays",
    "image_augmenter",
    "is_augmented",
    "load_teacher_outputs",
    "log_mel_spectrogram",
    "preprocess_images",
    "read_tfrecords",
    "validate_arrays",
    "write_tfrecords",
]
