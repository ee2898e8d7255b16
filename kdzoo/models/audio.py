"""Audio CRNN (CNN + LSTM) over a log-mel input.

The model reads ``"audio"`` as a log-mel spectrogram ``[frames, mel_bins]``; the waveform to
log-mel step lives in ``kdzoo.data.audio`` so that it runs once in tf.data (and is cached),
not inside every training step, and the same function is reused by serving exports.
"""

from __future__ import annotations

import keras

from kdzoo.models.encoders import audio_encoder, classifier_head, model_input

PRESETS = {
    # The teacher's LSTM reads the conv map both ways: on voices unseen in training (FSDD,
    # each of five training speakers held out in turn, validation only,
    # ``benchmarks/audio_speakers.py``) it scored 0.756 against 0.677 one way, ahead on
    # every voice (+7.8 +- 2.9 points).
    "teacher": {
        "filters": (32, 64),
        "lstm_units": 128,
        "bidirectional": True,
        "hidden_units": 128,
        "dropout": 0.2,
    },
    "student": {
        "filters": (8, 16),
        "lstm_units": 32,
        "bidirectional": False,
        "hidden_units": 0,
        "dropout": 0.0,
    },
}

# The log-mel shape (frames, mel bins) of ``kdzoo.data.AudioConfig.embedded()``: 0.5 s at
# 8 kHz, 256-sample frames every 128 samples, 32 mel bins. Written out because models sit
# below kdzoo.data; tests/models/test_builders.py checks that the two agree.
DEFAULT_AUDIO_SHAPE = (30, 32)


def audio_crnn(
    num_classes,
    audio_shape=DEFAULT_AUDIO_SHAPE,
    filters=(32, 64),
    lstm_units=64,
    bidirectional=False,
    hidden_units=0,
    dropout=0.0,
    name="audio_crnn",
):
    """Builds a CRNN reading ``"audio"`` log-mel ``[frames, mels]`` and returning logits.

    Features: ``"feature_map"`` (last conv block, ``[time, mel, channels]``) and
    ``"embedding"`` (the LSTM's final state, through the optional hidden layer).
    """
    audio = model_input("audio", audio_shape)
    feats = audio_encoder(audio, filters, lstm_units, bidirectional)
    logits = classifier_head(feats["embedding"], num_classes, hidden_units, dropout)
    return keras.Model({"audio": audio}, logits, name=name)
