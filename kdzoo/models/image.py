"""Image CNN: conv blocks with batch norm, global pooling, a dense head."""

from __future__ import annotations

import keras

from kdzoo.models.encoders import classifier_head, image_encoder, model_input

PRESETS = {
    "teacher": {"filters": (32, 64, 128), "hidden_units": 128, "dropout": 0.2},
    # Three narrow blocks and a flattened map: on MNIST-5k validation 0.97 with 1,710
    # parameters, where (8, 16) filters and global average pooling (1,490) reached 0.84
    # (kdzoo bench zoo).
    "student": {"filters": (4, 8, 8), "hidden_units": 0, "dropout": 0.0, "pooling": "flatten"},
}


def image_cnn(
    num_classes,
    image_shape=(16, 16, 1),
    filters=(32, 64),
    hidden_units=0,
    dropout=0.0,
    pooling="avg",
    name="image_cnn",
):
    """Builds an image CNN reading input ``"image"`` (float ``[H, W, C]``) and returning logits.

    ``pooling``: ``"avg"`` (global average) or ``"flatten"`` (see
    ``kdzoo.models.encoders.image_encoder``). Features: ``"feature_map"`` (last conv block)
    and ``"embedding"`` (pooled or flattened).
    """
    image = model_input("image", image_shape)
    feats = image_encoder(image, filters, pooling=pooling)
    logits = classifier_head(feats["embedding"], num_classes, hidden_units, dropout)
    return keras.Model({"image": image}, logits, name=name)
