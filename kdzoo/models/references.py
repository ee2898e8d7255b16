"""Named reference models: the textbook architectures the zoo's presets are measured against.

They are not zoo families (no presets, no features); ``kdzoo bench zoo``
(``kdzoo.zoo_strength``) trains them beside the presets, under the same validation-driven
rules, so that "is this preset any good?" has an answer measured in the same run.

- ``textbook_cnn``: the Keras example "Simple MNIST convnet" (keras.io/examples/vision/
  mnist_convnet): conv 32 → max-pool → conv 64 → max-pool → flatten → dropout → dense. The
  issue that asked for the zoo benchmark quotes it with dropout 0.3 (keras.io uses 0.5).
- ``logmel_cnn``: the same network read over a log-mel spectrogram as a one-channel image,
  the plain CNN baseline of keyword spotting (Sainath & Parada, Interspeech 2015, in its
  simplest form).
- ``kim_cnn``: Kim (EMNLP 2014), CNN-rand: randomly initialised 300-d embeddings, filter
  widths 3, 4, 5 with 100 maps each, ReLU, max-over-time pooling, dropout 0.5, softmax.
  Kim's l2 max-norm constraint of 3 on the output weights is kept.
- ``tabular_resnet``: the "ResNet" of Gorishniy et al. (NeurIPS 2021, "Revisiting Deep
  Learning Models for Tabular Data"), their strongest simple deep baseline for tables:
  a linear layer to ``width``, then blocks ``x + Dropout(Linear(Dropout(ReLU(Linear(
  BatchNorm(x))))))`` with a hidden width of ``2 × width``, then BatchNorm, ReLU and the
  linear head.
"""

from __future__ import annotations

import keras
from keras import layers

#: Keyword arguments that make each reference about the size of the zoo's student presets
#: (``kdzoo bench zoo`` reports the students against them).
SMALL = {
    "textbook_cnn": {"filters": (4, 8)},
    "logmel_cnn": {"filters": (4, 8)},
    "kim_cnn": {"embed_dim": 16, "maps": 16},
    "tabular_resnet": {"width": 16, "blocks": 1},
}


def _convnet(x, filters, dropout, prefix):
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, activation="relu", name=f"{prefix}_conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"{prefix}_pool{i}")(x)
    x = layers.Flatten(name=f"{prefix}_flatten")(x)
    return layers.Dropout(dropout, name=f"{prefix}_dropout")(x)


def textbook_cnn(num_classes, image_shape=(28, 28, 1), filters=(32, 64), dropout=0.3, name=None):
    """The keras.io MNIST convnet reading ``"image"`` (float ``[H, W, C]``); returns logits."""
    image = keras.Input(shape=tuple(image_shape), name="image")
    x = _convnet(image, filters, dropout, "image")
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model({"image": image}, logits, name=name or "textbook_cnn")


def logmel_cnn(num_classes, audio_shape=(30, 32), filters=(32, 64), dropout=0.3, name=None):
    """The same convnet over ``"audio"`` log-mel ``[frames, mels]`` read as one channel."""
    log_mel = keras.Input(shape=tuple(audio_shape), name="audio")
    x = layers.Reshape((*audio_shape, 1), name="audio_expand")(log_mel)
    x = _convnet(x, filters, dropout, "audio")
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model({"audio": log_mel}, logits, name=name or "logmel_cnn")


def kim_cnn(
    num_classes,
    sequence_length=56,
    vocab_size=20000,
    embed_dim=300,
    widths=(3, 4, 5),
    maps=100,
    dropout=0.5,
    max_norm=3.0,
    name=None,
):
    """Kim's (2014) CNN-rand reading ``"text"`` (int token ids, 0 = padding); returns logits."""
    tokens = keras.Input(shape=(sequence_length,), dtype="int32", name="text")
    x = layers.Embedding(vocab_size, embed_dim, name="text_embed")(tokens)
    pooled = []
    for width in widths:
        conv = layers.Conv1D(maps, width, activation="relu", name=f"text_conv{width}")(x)
        pooled.append(layers.GlobalMaxPooling1D(name=f"text_pool{width}")(conv))
    x = layers.Concatenate(name="text_concat")(pooled) if len(pooled) > 1 else pooled[0]
    x = layers.Dropout(dropout, name="dropout")(x)
    constraint = keras.constraints.MaxNorm(max_norm) if max_norm else None
    logits = layers.Dense(num_classes, kernel_constraint=constraint, name="logits")(x)
    return keras.Model({"text": tokens}, logits, name=name or "kim_cnn")


def tabular_resnet(num_classes, tabular_shape=(8,), width=128, blocks=2, dropout=0.1, name=None):
    """Gorishniy et al.'s (2021) tabular ResNet reading ``"tabular"`` (float
    ``[features]``); returns logits."""
    features = keras.Input(shape=tuple(tabular_shape), name="tabular")
    x = layers.Dense(width, name="tabular_in")(features)
    for i in range(blocks):
        h = layers.BatchNormalization(name=f"tabular_block{i}_bn")(x)
        h = layers.Dense(2 * width, activation="relu", name=f"tabular_block{i}_up")(h)
        h = layers.Dropout(dropout, name=f"tabular_block{i}_dropout_hidden")(h)
        h = layers.Dense(width, name=f"tabular_block{i}_down")(h)
        h = layers.Dropout(dropout, name=f"tabular_block{i}_dropout_out")(h)
        x = layers.Add(name=f"tabular_block{i}_add")([x, h])
    x = layers.BatchNormalization(name="tabular_out_bn")(x)
    x = layers.ReLU(name="tabular_out_relu")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model({"tabular": features}, logits, name=name or "tabular_resnet")


REFERENCES = {
    "textbook_cnn": textbook_cnn,
    "logmel_cnn": logmel_cnn,
    "kim_cnn": kim_cnn,
    "tabular_resnet": tabular_resnet,
}
