"""Multimodal classifier: one encoder per modality, fused by concatenation."""

from __future__ import annotations

from kdzoo.models.audio import DEFAULT_AUDIO_SHAPE
from kdzoo.models.fusion import fusion_early

PRESETS = {
    "teacher": {
        "image_filters": (32, 64, 128),
        "audio_filters": (32, 64),
        "audio_lstm_units": 64,
        "text_embed_dim": 64,
        "text_lstm_units": 64,
        "tabular_units": (256, 256),
        "hidden_units": 128,
        "dropout": 0.2,
    },
    "student": {
        "image_filters": (8, 16),
        "audio_filters": (8, 16),
        "audio_lstm_units": 16,
        "text_embed_dim": 8,
        "text_lstm_units": 16,
        "tabular_units": (32,),
        "hidden_units": 32,
        "dropout": 0.0,
    },
}


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
    tabular_shape=(8,),
    tabular_units=(64,),
    hidden_units=128,
    dropout=0.0,
    name="multimodal_concat",
):
    """Builds an early-fusion classifier over ``modalities`` (a subset of image/audio/text/tabular).

    Each modality has its own encoder; their pooled embeddings are concatenated and passed
    through a dense layer. Features: ``"<modality>_embedding"``, ``"<modality>_feature_map"``
    for CNN encoders, and the fused ``"embedding"``.
    """
    # The same graph as ``fusion_early`` without modality dropout (one implementation).
    return fusion_early(
        num_classes,
        modalities=modalities,
        image_shape=image_shape,
        audio_shape=audio_shape,
        sequence_length=sequence_length,
        vocab_size=vocab_size,
        image_filters=image_filters,
        audio_filters=audio_filters,
        audio_lstm_units=audio_lstm_units,
        text_embed_dim=text_embed_dim,
        text_lstm_units=text_lstm_units,
        tabular_shape=tabular_shape,
        tabular_units=tabular_units,
        hidden_units=hidden_units,
        dropout=dropout,
        modality_dropout=0.0,
        name=name,
    )
