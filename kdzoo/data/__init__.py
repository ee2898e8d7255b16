"""tf.data preprocessing shared by training pipelines and serving exports, and the input
routing (``routing``) and the NumPy batches (``batches.ArrayBatches``) that every backend
uses.

Attributes load on first use (PEP 562): ``kdzoo.data.routing``, ``kdzoo.data.select_inputs``
and ``kdzoo.data.ArrayBatches`` need no TensorFlow, so the backend-neutral core routes and
batches on JAX without it, and a run's code fingerprint covers only the front ends it used
(a run without a table never imports the tabular one).
"""

from kdzoo._lazy import attributes as _attributes

_ATTRIBUTES = {
    "AudioConfig": "kdzoo.data.audio",
    "audio_features": "kdzoo.data.audio",
    "log_mel_spectrogram": "kdzoo.data.audio",
    "utterance_normalize": "kdzoo.data.audio",
    "UTTERANCE_NORMS": "kdzoo.data.audio",
    "AugmentConfig": "kdzoo.data.augment",
    "SpecAugment": "kdzoo.data.augment",
    "WaveformAugment": "kdzoo.data.augment",
    "image_augmenter": "kdzoo.data.augment",
    "ArrayBatches": "kdzoo.data.batches",
    "ImageConfig": "kdzoo.data.image",
    "preprocess_images": "kdzoo.data.image",
    "from_arrays": "kdzoo.data.pipeline",
    "is_augmented": "kdzoo.data.pipeline",
    "validate_arrays": "kdzoo.data.pipeline",
    "MissingInputError": "kdzoo.data.routing",
    "for_model": "kdzoo.data.routing",
    "input_names": "kdzoo.data.routing",
    "select_inputs": "kdzoo.data.routing",
    "TabularConfig": "kdzoo.data.tabular",
    "tabular_features": "kdzoo.data.tabular",
    "TextVectorizer": "kdzoo.data.text",
    "read_tfrecords": "kdzoo.data.tfrecord",
    "write_tfrecords": "kdzoo.data.tfrecord",
}

__getattr__, __dir__ = _attributes(__name__, _ATTRIBUTES)

__all__ = sorted(_ATTRIBUTES)
