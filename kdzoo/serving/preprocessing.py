"""Raw inputs -> model inputs inside a serving graph, with the training pipeline's own code.

``ServingPreprocessing`` holds the front-end configs a trained model was fitted with (the
``AudioConfig`` with its normalisation statistics, the ``ImageConfig``, the vocabulary file
and sequence length, the ``TabularConfig``) plus the class names. ``RawPreprocessor``
applies them in-graph by calling the functions ``kdzoo.data.pipeline.from_arrays`` calls
(``preprocess_images``, ``audio_features``, ``TextVectorizer.__call__``,
``tabular_features``): there is no second implementation to drift.

Raw inputs are keyed by modality (``"image"``, ``"audio"``, ``"text"``), except the tabular
modality, whose raw inputs are its named columns, one ``[batch]`` tensor each: float64 for a
numeric column, a string for a categorical one, matched to the training values by
``kdzoo.data.tabular.category_key`` (``"3"``, ``"3.0"`` and ``"03"`` are category 3,
``"true"`` is ``True``; a value not seen in training, or ``""`` for a missing one, is read as
unseen, as in training). ``raw_keys`` lists them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

from kdzoo import families
from kdzoo.data.audio import AudioConfig, audio_features, downmix, fix_length
from kdzoo.data.image import ImageConfig, preprocess_images
from kdzoo.data.tabular import (
    INPUT_NAME,
    UNSEEN,
    TabularConfig,
    category_keys,
    tabular_features,
)
from kdzoo.serving.text import ServingTextVectorizer

MODALITIES = ("image", "audio", "text", "tabular")

# Python's str.isspace() characters, which training's ``not text.strip()`` rejects: ASCII
# whitespace, the separators \x1c-\x1f, U+0085 and Unicode's separators (Z). A test checks
# every code point.
_BLANK = r"[\t\n\v\f\r\x1c-\x1f\x{85}\p{Z}]*"

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class ServingPreprocessing:
    """The preprocessing a model was trained with, and the names of its classes.

    Attributes:
        class_names: one name per output class, in logit order.
        audio: the audio front end (with the training split's normalisation statistics,
            if the pipeline normalised). Needed if the model reads ``"audio"``.
        image: the image front end. Needed if the model reads ``"image"``.
        vocabulary_path: the vocabulary file of the training ``TextVectorizer``. Needed,
            with ``sequence_length``, if the model reads ``"text"``.
        sequence_length: the vectoriser's padded length.
        tabular: the tabular front end (columns, statistics, vocabularies). Needed if the
            model reads ``"tabular"``.
        task: a ``kdzoo.tasks.Task`` of kind ``binary``, ``multi_label`` or ``regression``
            (None: single-label classification over ``class_names``). With one,
            ``class_names`` are the task's names (labels, targets; possibly empty) and the
            model's output width must be ``task.outputs``.

    Example:

    >>> data = kdzoo.datasets.load("av_digits", modalities=("audio",))
    >>> prep = ServingPreprocessing.from_dataset(data)
    """

    class_names: tuple
    audio: AudioConfig | None = None
    image: ImageConfig | None = None
    vocabulary_path: str | None = None
    sequence_length: int | None = None
    tabular: TabularConfig | None = None
    task: object = None

    def __post_init__(self):
        names = tuple(str(n) for n in self.class_names)
        if self.task is not None:
            from kdzoo.tasks import Task

            task = Task.from_dict(self.task) if isinstance(self.task, dict) else self.task
            if not isinstance(task, Task):
                raise TypeError(f"`task` must be a kdzoo.tasks.Task; got {self.task!r}.")
            if task.kind == "classification":
                task = None  # the classes are class_names, as without a task
            elif names and names != task.names:
                raise ValueError(f"`class_names` {names} differ from the task's {task.names}.")
            else:
                names = task.names
            object.__setattr__(self, "task", task)
        if self.task is None and (len(names) < 2 or len(set(names)) != len(names)):
            raise ValueError(
                f"`class_names` must hold at least 2 distinct names; got {self.class_names!r}."
            )
        object.__setattr__(self, "class_names", names)
        if (self.vocabulary_path is None) != (self.sequence_length is None):
            raise ValueError("`vocabulary_path` and `sequence_length` must be set together.")
        if self.vocabulary_path is not None:
            object.__setattr__(self, "vocabulary_path", str(self.vocabulary_path))
            if not Path(self.vocabulary_path).is_file():
                raise FileNotFoundError(f"No vocabulary file at {self.vocabulary_path!r}.")
        if self.audio is not None and not isinstance(self.audio, AudioConfig):
            raise TypeError(f"`audio` must be an AudioConfig; got {type(self.audio).__name__}.")
        if self.image is not None and not isinstance(self.image, ImageConfig):
            raise TypeError(f"`image` must be an ImageConfig; got {type(self.image).__name__}.")
        if self.tabular is not None and not isinstance(self.tabular, TabularConfig):
            raise TypeError(
                f"`tabular` must be a TabularConfig; got {type(self.tabular).__name__}."
            )

    @classmethod
    def from_dataset(cls, data, modalities=None) -> ServingPreprocessing:
        """The preprocessing of a ``kdzoo.datasets.LoadedDataset`` (for ``modalities``,
        default all of the dataset's)."""
        modalities = tuple(data.modalities if modalities is None else modalities)
        unknown = [m for m in modalities if m not in data.modalities]
        if unknown:
            raise ValueError(f"{data.name} has no modality {unknown}; it has {data.modalities}.")
        text = "text" in modalities
        return cls(
            class_names=data.class_names,
            audio=data.audio_config if "audio" in modalities else None,
            image=data.image_config if "image" in modalities else None,
            vocabulary_path=data.vocabulary_path if text else None,
            sequence_length=data.text_vectorizer.sequence_length if text else None,
            tabular=data.tabular_config if "tabular" in modalities else None,
            task=getattr(data, "task", None),
        )

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities this preprocessing can feed."""
        have = {
            "image": self.image is not None,
            "audio": self.audio is not None,
            "text": self.vocabulary_path is not None,
            "tabular": self.tabular is not None,
        }
        return tuple(m for m in MODALITIES if have[m])

    def to_dict(self, vocabulary_file=None) -> dict:
        """A JSON-ready dict; ``vocabulary_file`` replaces the stored path (e.g. a path
        relative to where the dict is written)."""
        return {
            "class_names": list(self.class_names),
            "audio": None if self.audio is None else self.audio.to_dict(),
            "image": None if self.image is None else self.image.to_dict(),
            "text": None
            if self.vocabulary_path is None
            else {
                "vocabulary_file": vocabulary_file or self.vocabulary_path,
                "sequence_length": self.sequence_length,
                "lower_case": True,
                "training_tokenizer": "tensorflow_text.WhitespaceTokenizer",
            },
            "tabular": None if self.tabular is None else self.tabular.to_dict(),
            "task": None if self.task is None else self.task.to_dict(),
        }

    @classmethod
    def from_dict(cls, config: dict, base_dir=None) -> ServingPreprocessing:
        """Inverse of ``to_dict``; a relative vocabulary file is read from ``base_dir``."""
        missing = [k for k in ("class_names", "audio", "image", "text") if k not in config]
        if missing:
            raise KeyError(f"Preprocessing config lacks key(s) {missing}; it has {sorted(config)}.")
        text = config["text"]
        vocab = length = None
        if text is not None:
            vocab = Path(text["vocabulary_file"])
            if base_dir is not None and not vocab.is_absolute():
                vocab = Path(base_dir) / vocab
            length = int(text["sequence_length"])
        return cls(
            class_names=tuple(config["class_names"]),
            audio=None if config["audio"] is None else AudioConfig.from_dict(config["audio"]),
            image=None if config["image"] is None else ImageConfig.from_dict(config["image"]),
            vocabulary_path=None if vocab is None else str(vocab),
            sequence_length=length,
            tabular=TabularConfig.from_dict(config["tabular"]) if config.get("tabular") else None,
            task=config.get("task"),
        )

    def check_model(self, model) -> tuple[str, ...]:
        """The modalities ``model`` reads, after checking this preprocessing produces each
        of its inputs in the shape and dtype it expects and that the classes agree."""
        specs = model_input_specs(model)
        unknown = [k for k in specs if k not in MODALITIES]
        if unknown:
            raise ValueError(
                f"Model {model.name!r} has input(s) {unknown}; a serving export knows the raw "
                f"form of {MODALITIES} only."
            )
        lacking = [m for m in specs if m not in self.modalities]
        if lacking:
            raise ValueError(
                f"Model {model.name!r} reads {list(specs)} but the preprocessing has no config "
                f"for {lacking} (it has {list(self.modalities)})."
            )
        expected = {
            "image": (self.image.shape if self.image else None, tf.float32),
            "audio": (self.audio.feature_shape if self.audio else None, tf.float32),
            "text": ((self.sequence_length,), tf.int32),
            "tabular": ((self.tabular.feature_size if self.tabular else None,), tf.float32),
        }
        for m, spec in specs.items():
            shape, dtype = expected[m]
            if tuple(spec.shape[1:]) != tuple(shape) or spec.dtype != dtype:
                raise ValueError(
                    f"Model input {m!r} is {dtype_name(spec.dtype)} {list(spec.shape[1:])} per "
                    f"example; the {m} preprocessing makes {dtype.name} {list(shape)}."
                )
        num_outputs = _num_outputs(model)
        if self.task is not None:
            if num_outputs is not None and num_outputs != self.task.outputs:
                raise ValueError(
                    f"Model {model.name!r} has {num_outputs} outputs but the {self.task.kind} "
                    f"task has {self.task.outputs}."
                )
        elif num_outputs is not None and num_outputs != len(self.class_names):
            raise ValueError(
                f"Model {model.name!r} has {num_outputs} outputs but `class_names` has "
                f"{len(self.class_names)} names."
            )
        raw_keys(tuple(specs), self.tabular)  # the columns must be able to name inputs
        return tuple(specs)


def dtype_name(dtype) -> str:
    return tf.as_dtype(dtype).name


def _num_outputs(model):
    output = model.output
    if isinstance(output, dict):
        output = output.get("logits")
    shape = getattr(output, "shape", None)
    return None if shape is None else shape[-1]


def model_input_specs(model) -> dict:
    """``{input name: tf.TensorSpec with the batch axis}`` of a functional model."""
    return {
        t.name: tf.TensorSpec((None, *t.shape[1:]), tf.as_dtype(t.dtype), name=t.name)
        for t in model.inputs
    }


def raw_keys(modalities, tabular: TabularConfig | None = None) -> list:
    """The raw inputs' names: each modality, the tabular one replaced by its columns."""
    keys = []
    for m in modalities:
        if m != "tabular":
            keys.append(m)
            continue
        if tabular is None:
            raise ValueError("The 'tabular' modality's raw inputs need its TabularConfig.")
        for column in tabular.columns:
            if not INPUT_NAME.fullmatch(column) or column in modalities:
                raise ValueError(
                    f"Tabular column {column!r} cannot name a serving input: it must be a letter "
                    f"then letters, digits or '_', and not {' or '.join(modalities)} (the "
                    "model's inputs). Rename the column (e.g. "
                    f"{families.suggested_name(column)!r}) and train again."
                )
            keys.append(column)
    return keys


def raw_input_specs(modalities, wav_bytes=False, tabular: TabularConfig | None = None) -> dict:
    """The raw-input ``tf.TensorSpec`` of each modality: encoded image bytes ``[batch]``,
    float32 waveforms ``[batch, samples]`` (or, with ``wav_bytes``, wav file bytes
    ``[batch]``), UTF-8 sentences ``[batch]``; for ``"tabular"``, one ``[batch]`` tensor per
    column of ``tabular``, float64 (numeric) or string (categorical)."""
    audio = (
        tf.TensorSpec([None], tf.string, name="audio")
        if wav_bytes
        else tf.TensorSpec([None, None], tf.float32, name="audio")
    )
    specs = {
        "image": tf.TensorSpec([None], tf.string, name="image"),
        "audio": audio,
        "text": tf.TensorSpec([None], tf.string, name="text"),
    }
    if tabular is not None:
        for column in tabular.numeric:
            specs[column] = tf.TensorSpec([None], tf.float64, name=column)
        for column in tabular.categorical:
            specs[column] = tf.TensorSpec([None], tf.string, name=column)
    return {k: specs[k] for k in raw_keys(modalities, tabular)}


def decode_wavs(contents, config: AudioConfig):
    """Wav file bytes ``[batch]`` -> float32 waveforms ``[batch, config.num_samples]``, as
    ``kdzoo.datasets.fsdd.decode_wav`` reads FSDD: the mean of the channels, padded or
    cropped. A clip at another sample rate, or with no samples, is an error (no silent
    resampling, no scoring of silence)."""
    message = f"audio: wav sample rate must be {config.sample_rate} Hz (kdzoo does not resample)"
    empty = "audio: a wav file holds 0 samples; expected at least 1 (it would score as silence)"

    def decode(one):
        audio, rate = tf.audio.decode_wav(one, desired_channels=-1)
        checks = [
            tf.debugging.assert_equal(rate, config.sample_rate, message=message),
            tf.debugging.assert_positive(tf.shape(audio)[0], message=empty),
        ]
        with tf.control_dependencies(checks):
            return fix_length(downmix(audio), config.num_samples)

    return tf.map_fn(
        decode, contents, fn_output_signature=tf.TensorSpec([config.num_samples], tf.float32)
    )


class RawPreprocessor:
    """Maps raw inputs ``{modality: tensor}`` to model inputs, in-graph.

    Args:
        preprocessing: a ``ServingPreprocessing``.
        modalities: the modalities to map (the model's inputs).
        tokenizer: ``"tensorflow_text"`` (default, as in training) or ``"core"`` (portable).
    """

    def __init__(
        self, preprocessing: ServingPreprocessing, modalities, tokenizer="tensorflow_text"
    ):
        self.preprocessing = preprocessing
        self.modalities = tuple(modalities)
        self.vectorizer = None
        if "text" in self.modalities:
            self.vectorizer = ServingTextVectorizer(
                preprocessing.vocabulary_path, preprocessing.sequence_length, tokenizer
            )
        self.keys = raw_keys(self.modalities, preprocessing.tabular)
        self.category_tables = []
        if "tabular" in self.modalities:
            for vocabulary in preprocessing.tabular.vocabularies:
                # A column without training values (all missing) still needs a table:
                # every value is unseen, as in training.
                keys = list(vocabulary) or [""]
                codes = list(range(1, len(vocabulary) + 1)) or [UNSEEN]
                initializer = tf.lookup.KeyValueTensorInitializer(
                    tf.constant(keys, tf.string), tf.constant(codes, tf.int64)
                )
                self.category_tables.append(tf.lookup.StaticHashTable(initializer, UNSEEN))

    @property
    def resources(self) -> list:
        """TF resources the graph uses besides the model (to track in the export)."""
        tables = [] if self.vectorizer is None else [self.vectorizer.table]
        return tables + list(self.category_tables)

    def __call__(self, raw: dict) -> dict:
        """Model inputs of ``raw``; rejects (``InvalidArgumentError`` naming the input) what
        training rejects: empty, whitespace-only or non-UTF-8 text, waveforms without
        samples or with NaN/inf, and inputs of different batch sizes."""
        prep = self.preprocessing
        checks = _same_batch_size(raw, self.keys)
        if "text" in self.modalities:
            checks += _text_checks(raw["text"])
        if "audio" in self.modalities:
            checks.append(_has_samples(raw["audio"]))
        with tf.control_dependencies(checks):
            features = {}
            if "image" in self.modalities:
                features["image"] = preprocess_images(raw["image"], prep.image)
            if "audio" in self.modalities:
                wave = tf.debugging.assert_all_finite(
                    raw["audio"], "audio: the waveform holds NaN or inf values"
                )
                features["audio"] = audio_features(wave, prep.audio)
            if "text" in self.modalities:
                features["text"] = self.vectorizer(raw["text"])
            if "tabular" in self.modalities:
                features["tabular"] = self._tabular(raw)
        return features

    def _tabular(self, raw):
        config = self.preprocessing.tabular
        columns = []
        for c, mean, std in zip(config.numeric, config.mean, config.std, strict=True):
            value = tf.debugging.assert_all_finite(
                tf.cast(raw[c], tf.float64), f"{c}: NaN or inf; expected a finite number"
            )
            # Standardised, it is cast to float32: a finite value beyond that range would
            # become inf there, and the probabilities NaN.
            with tf.control_dependencies([
                tf.debugging.assert_less_equal(
                    tf.abs((value - mean) / std),
                    tf.constant(_FLOAT32_MAX, tf.float64),
                    message=f"{c}: too large a number (beyond float32's range once standardised)",
                )
            ]):  # fmt: skip
                columns.append(tf.identity(value))
        for column, table in zip(config.categorical, self.category_tables, strict=True):
            codes = table.lookup(category_keys(raw[column]))
            columns.append(tf.cast(codes, tf.float64))
        return tabular_features(tf.stack(columns, axis=1), config)

    def from_wav_bytes(self, raw: dict) -> dict:
        """As ``__call__``, with ``raw["audio"]`` wav file bytes instead of waveforms."""
        waves = decode_wavs(raw["audio"], self.preprocessing.audio)
        return self({**raw, "audio": waves})


def text_problems(strings):
    """Two ``tf.bool [batch]`` masks of ``tf.string`` sentences: ``blank`` (empty or
    whitespace-only, as Python's ``str.strip`` sees it) and ``invalid`` (not UTF-8). Core
    ops only, so a portable export keeps them."""
    # Valid UTF-8 transcodes to itself; an invalid byte becomes U+FFFD.
    transcoded = tf.strings.unicode_transcode(
        strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    invalid = tf.not_equal(transcoded, strings)
    blank = tf.logical_and(tf.logical_not(invalid), tf.strings.regex_full_match(strings, _BLANK))
    return blank, invalid


def _text_checks(strings):
    blank, invalid = text_problems(strings)

    def check(bad, problem):
        rows = tf.reshape(tf.where(bad), [-1])
        message = tf.strings.format(
            "text: row(s) {}: " + problem, [rows], summarize=10, placeholder="{}"
        )
        return tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [message])

    return [
        check(blank, "empty or whitespace-only; expected a non-space character, as in training"),
        check(invalid, "not valid UTF-8; expected UTF-8 sentences, as in training"),
    ]


def _has_samples(waves):
    rows, samples = tf.shape(waves)[0], tf.shape(waves)[-1]
    return tf.debugging.Assert(
        tf.logical_or(tf.equal(rows, 0), tf.greater(samples, 0)),
        ["audio: the waveforms have 0 samples; expected float32 [batch, samples >= 1]"],
    )


def _same_batch_size(raw, modalities):
    if len(modalities) < 2:
        return []
    first, *rest = modalities
    return [
        tf.debugging.assert_equal(
            tf.shape(raw[m])[0],
            tf.shape(raw[first])[0],
            message=f"inputs {first!r} and {m!r} must have the same batch size",
        )
        for m in rest
    ]


def raw_examples(arrays, modalities, count=4, tabular: TabularConfig | None = None) -> dict:
    """The first ``count`` rows of pipeline arrays (as ``kdzoo.datasets`` holds them) in the
    raw form ``serving_default`` takes: waveforms as float32, images as PNG bytes (uint8
    arrays, or floats in [0, 1] as MNIST's, which ``round(255 x)`` maps back to their
    bytes exactly), text as UTF-8 bytes, tabular rows as their columns (numbers as float64,
    categories as UTF-8 bytes; an unseen one as a string not in the vocabulary)."""
    out = {}
    for m in modalities:
        if m not in arrays:
            raise KeyError(f"Arrays lack modality {m!r}; they hold {sorted(arrays)}.")
        rows = arrays[m][:count]
        if m == "audio":
            out[m] = np.asarray(rows, np.float32)
        elif m == "text":
            out[m] = np.array([_utf8(t) for t in rows], dtype=object)
        elif m == "image":
            out[m] = np.array([_png(image) for image in rows], dtype=object)
        elif m == "tabular":
            out.update(_raw_columns(np.asarray(rows), tabular))
    return out


def _raw_columns(rows, tabular):
    if tabular is None:
        raise ValueError("Raw tabular examples need the dataset's TabularConfig.")
    out = {c: rows[:, j].astype(np.float64) for j, c in enumerate(tabular.numeric)}
    for j, (column, vocabulary) in enumerate(
        zip(tabular.categorical, tabular.vocabularies, strict=True)
    ):
        unseen = "<unseen>"
        while unseen in vocabulary:
            unseen = f"<{unseen}>"
        codes = np.round(rows[:, len(tabular.numeric) + j]).astype(int)
        values = [vocabulary[k - 1] if 0 < k <= len(vocabulary) else unseen for k in codes]
        out[column] = np.array([_utf8(v) for v in values], dtype=object)
    return out


def _utf8(value):
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _png(image):
    if isinstance(image, bytes):
        return image
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    return tf.io.encode_png(image).numpy()
