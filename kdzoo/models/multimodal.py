"""Multimodal classifier: one encoder per modality, fused by concatenation."""

from __future__ import annotations

import keras
from keras import layers

from kdzoo.models.audio import DEFAULT_AUDIO_SHAPE
from kdzoo.models.encoders import (
    audio_encoder,
    classifier_head,
    image_encoder,
    model_input,
    text_encoder,
)

PRESETS = {
    "teacher": {
        "image_filters": (32, 64, 128),
        "audio_filters": (32, 64),
        "audio_lstm_units": 64,
        "text_embed_dim": 64,
        "text_lstm_units": 64,
        "hidden_units": 128,
        "dropout": 0.2,
    },
    "student": {
        "image_filters": (8, 16),
        "audio_filters": (8, 16),
        "audio_lstm_units": 16,
        "text_embed_dim": 8,
        "text_lstm_units": 16,
        "hidden_units": 32,
        "dropout": 0.0,
    },
}

MODALITIES = ("image", "audio", "text")


def multimodal_concat(
    num_classes,
    modalities=("image", "audio"),
    image_shape=(16, 16, 1),
    audio_shape=DEFAULT_AUDIO_SHAPE,
    sequence_length=16,
    vocab_size=2000,
    image_filters=(32, 64),
    audio_filters=(32, 64),
    audio_lstm_units=64,
    text_embed_dim=64,
    text_lstm_units=64,
    hidden_units=128,
    dropout=0.0,
    name="multimodal_concat",
):
    """Builds an early-fusion classifier over ``modalities`` (a subset of image/audio/text).

    Each modality has its own encoder; their pooled embeddings are concatenated and passed
    through a dense layer. Features: ``"<modality>_embedding"``, ``"<modality>_feature_map"``
    for CNN encoders, and the fused ``"embedding"``.
    """
    modalities = tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(
            f"`modalities` must be distinct names from {MODALITIES}; got {modalities}."
        )
    inputs, embeddings = {}, []
    for m in modalities:
        if m == "image":
            inputs[m] = model_input("image", image_shape)
            feats = image_encoder(inputs[m], image_filters, feature_prefix="image")
        elif m == "audio":
            inputs[m] = model_input("audio", audio_shape)
            feats = audio_encoder(
                inputs[m], audio_filters, audio_lstm_units, feature_prefix="audio"
            )
        else:
            inputs[m] = model_input("text", (sequence_length,), dtype="int32")
            feats = text_encoder(
                inputs[m], vocab_size, text_embed_dim, text_lstm_units, feature_prefix="text"
            )
        embeddings.append(feats["embedding"])
    fused = (
        layers.Concatenate(name="fusion_concat")(embeddings)
        if len(embeddings) > 1
        else embeddings[0]
    )
    logits = classifier_head(fused, num_classes, hidden_units, dropout)
    return keras.Model(inputs, logits, name=name)
