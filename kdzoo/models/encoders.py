"""Per-modality encoders shared by the single-modality and fusion builders.

Each encoder takes a symbolic input and returns a dict of named symbolic features: always
``"embedding"`` (pooled, rank 2), and ``"feature_map"`` for convolutional encoders. Layer
names start with the modality. ``feature_prefix`` (empty in single-modality models, the
modality in fused ones) names the ``Feature`` markers, e.g. ``"audio_embedding"``.
"""

from __future__ import annotations

import keras
from keras import layers

from kdzoo.models.layers import BatchNormalization, Feature, MaskedGlobalMaxPooling1D

# Batch-norm moving statistics follow the weights within about 20 steps (0.9**20 = 0.12).
# Keras's default, 0.99, needs about 230: on AV digits (2,000 training rows, 31 steps an
# epoch) the image teacher scored 0.995 on train and 0.100 on validation for eight epochs,
# because inference used statistics of weights long gone, and early stopping ended 2 seeds
# of 3 at chance. With 0.9 the same seed and batches reached 0.76 after epoch 2.
BN_MOMENTUM = 0.9


def _conv_block(x, filters, pool, name, kernel_size=3, rank=2):
    conv = layers.Conv2D if rank == 2 else layers.Conv1D
    x = conv(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # kdzoo's BatchNormalization, not keras.layers': global-batch statistics on every
    # backend, so a step gives the same update on 1 or N replicas (see its docstring and
    # tests/recipe/test_distributed.py).
    x = BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if pool:
        pooling = layers.MaxPooling2D if rank == 2 else layers.MaxPooling1D
        x = pooling(pool, name=f"{name}_pool")(x)
    return x


def _feature_name(prefix, name):
    return f"{prefix}_{name}" if prefix else name


def _mark_embedding(x, feature_prefix):
    # In a fused model each encoder's pooled output is a named feature of its own; in a
    # single-modality model the head marks "embedding" after its optional hidden layer.
    return Feature(name=f"{feature_prefix}_embedding")(x) if feature_prefix else x


def image_encoder(image, filters=(32, 64), feature_prefix="", pooling="avg"):
    """Conv blocks (conv, batch norm, ReLU, 2x2 max-pool) then global average pooling
    (``pooling="avg"``) or the flattened map (``"flatten"``, which keeps where things are:
    what a small network with few channels needs).

    Every block pools, the last included, so the global average is taken over a small map
    (3x3 for a 28x28 image and three blocks). Averaging the last block's full-resolution map
    (7x7) threw away where strokes are: on MNIST-5k the teacher preset was 0.7 points below
    the textbook convnet on test and 1.6 on validation (``kdzoo bench zoo``).
    """
    if pooling not in ("avg", "flatten"):
        raise ValueError(f"pooling must be 'avg' or 'flatten'; got {pooling!r}.")
    x = image
    for i, f in enumerate(filters):
        x = _conv_block(x, f, pool=2, name=f"image_block{i}")
    fmap = Feature(name=_feature_name(feature_prefix, "feature_map"))(x)
    if pooling == "flatten":
        pooled = layers.Flatten(name="image_flatten")(fmap)
    else:
        pooled = layers.GlobalAveragePooling2D(name="image_gap")(fmap)
    return {"feature_map": fmap, "embedding": _mark_embedding(pooled, feature_prefix)}


def audio_encoder(log_mel, filters=(32, 64), lstm_units=64, bidirectional=False, feature_prefix=""):
    """CRNN over a log-mel input ``[frames, mels]``.

    Conv blocks pool 2x2 over (time, mel); the map is then read as a sequence over time by
    an LSTM whose final state is the embedding.
    """
    frames, mels = log_mel.shape[1], log_mel.shape[2]
    x = layers.Reshape((frames, mels, 1), name="audio_expand")(log_mel)
    for i, f in enumerate(filters):
        x = _conv_block(x, f, pool=2, name=f"audio_block{i}")
    fmap = Feature(name=_feature_name(feature_prefix, "feature_map"))(x)
    t, m, c = fmap.shape[1], fmap.shape[2], fmap.shape[3]
    seq = layers.Reshape((t, m * c), name="audio_to_sequence")(fmap)
    rnn = layers.LSTM(lstm_units, name="audio_lstm")
    if bidirectional:
        rnn = layers.Bidirectional(rnn, name="audio_bilstm")
    return {"feature_map": fmap, "embedding": _mark_embedding(rnn(seq), feature_prefix)}


def text_encoder(
    tokens,
    vocab_size=2000,
    embed_dim=64,
    lstm_units=64,
    bidirectional=True,
    conv_filters=0,
    feature_prefix="",
    pooling="last",
    embed_dropout=0.0,
):
    """Token embedding (id 0 is padding and masked), an optional Conv1D, then an LSTM/BiLSTM.

    ``pooling="last"`` takes the (Bi)LSTM's final state; ``"max"`` the maximum over time of
    its outputs over the unmasked steps (the BiLSTM-max encoder of Conneau et al., EMNLP
    2017). ``embed_dropout`` drops whole embedding channels (``SpatialDropout1D``), the
    regulariser a randomly initialised embedding of tens of thousands of words needs on a
    few thousand sentences.
    """
    if pooling not in ("last", "max"):
        raise ValueError(f"pooling must be 'last' or 'max'; got {pooling!r}.")
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=not conv_filters, name="text_embed")(
        tokens
    )
    if embed_dropout:
        x = layers.SpatialDropout1D(embed_dropout, name="text_embed_dropout")(x)
    if conv_filters:
        # Conv1D does not propagate masks, so the CNN+LSTM variant reads padding as tokens.
        x = layers.Conv1D(conv_filters, 3, padding="same", activation="relu", name="text_conv")(x)
    rnn = layers.LSTM(lstm_units, return_sequences=pooling == "max", name="text_lstm")
    if bidirectional:
        rnn = layers.Bidirectional(rnn, name="text_bilstm")
    x = rnn(x)
    if pooling == "max":
        # Without a mask (the Conv1D variant) it is a plain maximum over time.
        x = MaskedGlobalMaxPooling1D(name="text_max_pool")(x)
    return {"embedding": _mark_embedding(x, feature_prefix)}


def tabular_encoder(features, hidden_units=(64,), dropout=0.0, feature_prefix=""):
    """An MLP over tabular features (``kdzoo.data.tabular``: standardised numbers and
    one-hot categories): ``Dense`` + ReLU + ``Dropout`` blocks, the "MLP" of Gorishniy et al.
    (NeurIPS 2021, "Revisiting Deep Learning Models for Tabular Data"). The last block's
    output is the embedding. ``hidden_units=()`` passes the features through unchanged."""
    x = features
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, activation="relu", name=f"tabular_dense{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"tabular_dropout{i}")(x)
    return {"embedding": _mark_embedding(x, feature_prefix)}


def classifier_head(embedding, num_classes, hidden_units=0, dropout=0.0):
    """Optional hidden layer, then ``Feature("embedding")``, dropout and the logits."""
    x = embedding
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    x = Feature(name="embedding")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, name="logits")(x)


def model_input(modality, shape, dtype="float32"):
    return keras.Input(shape=tuple(shape), dtype=dtype, name=modality)
