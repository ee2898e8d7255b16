"""tf.data preprocessing shared by training pipelines and serving exports."""

from kdzoo.data.audio import AudioConfig, log_mel_spectrogram
from kdzoo.data.pipeline import from_arrays
from kdzoo.data.text import TextVectorizer

__all__ = ["AudioConfig", "TextVectorizer", "from_arrays", "log_mel_spectrogram"]
