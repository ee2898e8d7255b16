"""Image CNN: conv blocks with batch norm, global pooling, a dense head."""

from __future__ import annotations

import keras

from kdzoo.models.encoders import classifier_head, image_encoder, model_input

PRESETS = {
    "teacher": {"filters": (32, 64, 128), "hidden_units": 128, "dropout": 0.2},
    "student": {"filters": (8, 16), "hidden_units": 0, "dropout": 0.0},
}


def image_cnn(
    num_classes,
    image_shape=(16, 16, 1),
    filters=(32, 64),
    hidden_units=0,
    dropout=0.0,
    name="image_cnn",
):
    """Builds an image CNN reading input ``"image"`` (float ``[H, W, C]``) and returning logits.

    Features: ``"feature_map"`` (last conv block) and ``"embedding"`` (pooled).
    """
    image = model_input("image", image_shape)
    feats = image_encoder(image, filters)
    logits = classifier_head(feats["embedding"], num_classes, hidden_units, dropout)
    return keras.Model({"image": image}, logits, name=name)
