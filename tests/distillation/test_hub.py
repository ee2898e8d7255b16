"""KerasHub teachers: a tiny randomly initialised BERT classifier saved as a local preset (no
download), loaded as a teacher that reads raw sentences while the student reads kdzoo's
token ids."""

import sys

import keras
import keras_hub
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from kdzoo.datasets import from_dataframe
from kdzoo.distillation import RAW_TEXT, hub_teacher, load_teacher, with_raw_text
from kdzoo.distillation.hub import is_hub_preset, load_hub_task
from kdzoo.distillation.sources import TeacherLoadError
from kdzoo.optional import MissingExtraError
from kdzoo.recipe import DistilConfig, distil

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "please", "invoice", "charge",
         "refund", "flight", "hotel", "trip", "hello", "hi"]  # fmt: skip
INTENTS = {"billing": "invoice charge refund", "travel": "flight hotel trip", "other": "hello hi"}


def _task(num_classes=3, preprocessor=True):
    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCAB), num_layers=1, num_heads=1, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8,
    )  # fmt: skip
    pre = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8)
    return keras_hub.models.BertTextClassifier(
        backbone, num_classes=num_classes, preprocessor=pre if preprocessor else None
    )


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_bert")
    _task().save_to_preset(str(folder))
    return folder


def _intents(n=90):
    rng = np.random.default_rng(0)
    labels = rng.choice(sorted(INTENTS), n)
    frame = pd.DataFrame({"utterance": [f"please {INTENTS[c]}" for c in labels], "intent": labels})
    return from_dataframe(frame, label="intent", text="utterance", test_fraction=0.2,
                          sequence_length=8, batch_size=16)  # fmt: skip


@pytest.mark.tensorflow(
    "KerasHub's string preprocessors run TensorFlow (tf-text) ops on raw strings"
)
def test_a_preset_folder_becomes_a_teacher_reading_raw_sentences(preset):
    assert is_hub_preset(preset) and not is_hub_preset(preset.parent)
    teacher = load_teacher(preset, num_classes=3)
    assert [(t.name, t.dtype) for t in teacher.inputs] == [(RAW_TEXT, "string")]
    sentences = np.array(["please invoice charge", "hello hi", "a word it never saw"])
    task = keras_hub.models.TextClassifier.from_preset(str(preset))
    np.testing.assert_allclose(
        teacher({RAW_TEXT: tf.constant(sentences)}, training=False),
        task.predict(sentences, verbose=0),
        atol=1e-6,
    )
    with pytest.raises(TeacherLoadError, match="predicts 3 classes; the data has 2"):
        load_teacher(preset, num_classes=2)


@pytest.mark.tensorflow(
    "KerasHub's string preprocessors run TensorFlow (tf-text) ops on raw strings"
)
def test_a_task_object_is_wrapped_and_one_without_a_preprocessor_refused():
    teacher = load_teacher(_task(), num_classes=3)
    assert [t.name for t in teacher.inputs] == [RAW_TEXT]
    with pytest.raises(ValueError, match="has no preprocessor"):
        hub_teacher(_task(preprocessor=False))


def test_raw_sentences_ride_beside_the_token_ids():
    data = with_raw_text(_intents())
    x, _ = next(iter(data.pipeline("train", training=False)))
    assert x["text"].dtype == "int32" and x[RAW_TEXT].dtype == "string"
    assert x[RAW_TEXT][0].numpy().decode() == data.arrays["train"]["text"][0]
    assert not hasattr(_intents().pipeline("train"), RAW_TEXT)  # the original is unchanged


@pytest.mark.slow  # about 20 s
@pytest.mark.tensorflow(
    "KerasHub's string preprocessors run TensorFlow (tf-text) ops on raw strings"
)
def test_distil_from_a_preset_teacher_into_a_token_id_student(preset):
    config = DistilConfig(
        dataset=_intents(), teacher=str(preset), student="text_lstm/student",
        global_batch_size=16, teacher_epochs=0, epochs=1, candidates=("ce:0.5,kd:0.5@t=2",),
        scratch=("scratch",), strategy="default", verbose=0,
    )  # fmt: skip
    result = distil(config)
    assert [t.name for t in result.teacher.inputs] == [RAW_TEXT]
    assert [t.name for t in result.student.inputs] == ["text"]
    assert result.table["accuracy"].between(0, 1).all()


def test_without_keras_hub_a_preset_names_the_extra(preset, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'kdzoo\[hub\]'"):
        load_hub_task(preset)
