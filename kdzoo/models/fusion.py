"""Fusion classifiers over any subset of the image, audio, text and tabular encoders.

Three families share the per-modality encoders of ``kdzoo.models.encoders`` and differ in
where the modalities meet (Snoek et al., "Early versus late fusion in semantic video
analysis", ACM Multimedia 2005):

- ``fusion_early``: the pooled embeddings are concatenated and classified together.
- ``fusion_late``: each modality has its own classifier head; the logits are averaged
  (``late_weights="mean"``) or mixed by trainable, softmax-normalised global weights
  (``late_weights="learned"``).
- ``fusion_gated``: each embedding is projected to a common width; a small gate network reads
  all projections and outputs per-example modality weights (softmax over modalities) that
  mix them before the head. A scalar-per-modality, softmax form of the gated
  multimodal unit (Arevalo et al., "Gated Multimodal Units for Information Fusion", ICLR
  workshop 2017, arXiv:1702.01992).

Every model reads inputs named by modality (``"image"``, ``"audio"``, ``"text"``) and returns
logits, so it plugs into ``kdzoo.Distiller``. Models with modality weights (gated, and late
with ``"learned"``, over two or more modalities) expose them as the ``Feature``
``"modality_weights"``, shape ``[batch, len(modalities)]``, columns in the order of
``modalities``; ``modality_weights_model(model)`` taps them.

``modality_dropout=r`` inserts a ``ModalityDropout`` on the inputs: in training, a fraction
``r`` of the (example, modality) slots are zeroed (never all of an example's), so the model
learns to read an all-zero input as a missing modality; feed zeros for a missing modality
at inference. The gate reads the projected embeddings of these inputs, so it sees which
modality is blank and can shift its weight to the others.
"""

from __future__ import annotations

import keras
from keras import layers

from kdzoo.models.audio import DEFAULT_AUDIO_SHAPE
from kdzoo.models.encoders import (
    audio_encoder,
    classifier_head,
    image_encoder,
    model_input,
    tabular_encoder,
    text_encoder,
)
from kdzoo.models.layers import (
    Feature,
    LearnedModalityWeights,
    ModalityDropout,
    ModalityWeights,
    WeightedSum,
)

MODALITIES = ("image", "audio", "text", "tabular")
LATE_WEIGHTS = ("mean", "learned")

#: Name of the ``Feature`` holding per-example modality weights ``[batch, M]``.
MODALITY_WEIGHTS = "modality_weights"

# Encoder sizes, shared by the three families' presets (those of ``multimodal_concat``).
_TEACHER_ENCODERS = {
    "image_filters": (32, 64, 128),
    "audio_filters": (32, 64),
    "audio_lstm_units": 64,
    "text_embed_dim": 64,
    "text_lstm_units": 64,
    "tabular_units": (256, 256),
}
_STUDENT_ENCODERS = {
    "image_filters": (8, 16),
    "audio_filters": (8, 16),
    "audio_lstm_units": 16,
    "text_embed_dim": 8,
    "text_lstm_units": 16,
    "tabular_units": (32,),
}
# Both sides are trained to survive a missing modality; in distillation the teacher runs
# with training=False, so its ModalityDropout is an identity there.
_MODALITY_DROPOUT = 0.2

EARLY_PRESETS = {
    "teacher": {
        **_TEACHER_ENCODERS,
        "hidden_units": 128,
        "dropout": 0.2,
        "modality_dropout": _MODALITY_DROPOUT,
    },
    "student": {
        **_STUDENT_ENCODERS,
        "hidden_units": 32,
        "dropout": 0.0,
        "modality_dropout": _MODALITY_DROPOUT,
    },
}
LATE_PRESETS = {
    "teacher": {
        **_TEACHER_ENCODERS,
        "head_units": 64,
        "late_weights": "learned",
        "dropout": 0.2,
        "modality_dropout": _MODALITY_DROPOUT,
    },
    "student": {
        **_STUDENT_ENCODERS,
        "head_units": 0,
        "late_weights": "learned",
        "dropout": 0.0,
        "modality_dropout": _MODALITY_DROPOUT,
    },
}
GATED_PRESETS = {
    "teacher": {
        **_TEACHER_ENCODERS,
        "fusion_units": 128,
        "gate_units": 64,
        "hidden_units": 128,
        "dropout": 0.2,
        "modality_dropout": _MODALITY_DROPOUT,
    },
    "student": {
        **_STUDENT_ENCODERS,
        "fusion_units": 16,
        "gate_units": 8,
        "hidden_units": 0,
        "dropout": 0.0,
        "modality_dropout": _MODALITY_DROPOUT,
    },
}


def _check_modalities(modalities):
    modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(
            f"`modalities` must be distinct names from {MODALITIES}; got {modalities}."
        )
    return modalities


def _encode(
    modalities,
    image_shape,
    audio_shape,
    sequence_length,
    vocab_size,
    image_filters,
    audio_filters,
    audio_lstm_units,
    text_embed_dim,
    text_lstm_units,
    modality_dropout,
    seed,
    tabular_shape=(8,),
    tabular_units=(64,),
):
    """Returns ``(modalities, inputs, embeddings)``: the input dict keyed by modality and the
    pooled embeddings (marked ``"<modality>_embedding"``) in the order of ``modalities``."""
    modalities = _check_modalities(modalities)
    if not 0.0 <= modality_dropout < 1.0:
        raise ValueError(f"`modality_dropout` must be in [0, 1); got {modality_dropout}.")
    if len(modalities) > 1 and modality_dropout > (len(modalities) - 1) / len(modalities):
        raise ValueError(
            f"`modality_dropout`={modality_dropout} is too high for {len(modalities)} "
            f"modalities: one per example is always kept, so it must be at most "
            f"{(len(modalities) - 1) / len(modalities):.3g}."
        )
    inputs = {}
    for m in modalities:
        if m == "text":
            inputs[m] = model_input(m, (sequence_length,), dtype="int32")
        else:
            shapes = {"image": image_shape, "audio": audio_shape, "tabular": tabular_shape}
            inputs[m] = model_input(m, shapes[m])
    encoded = [inputs[m] for m in modalities]
    # With one modality there is nothing to fall back on, so the option is moot.
    if modality_dropout and len(modalities) > 1:
        encoded = ModalityDropout(modality_dropout, seed=seed, name="modality_dropout")(encoded)
    embeddings = []
    for m, x in zip(modalities, encoded, strict=True):
        if m == "image":
            feats = image_encoder(x, image_filters, feature_prefix=m)
        elif m == "audio":
            feats = audio_encoder(x, audio_filters, audio_lstm_units, feature_prefix=m)
        elif m == "tabular":
            feats = tabular_encoder(x, tuple(tabular_units), feature_prefix=m)
        else:
            feats = text_encoder(x, vocab_size, text_embed_dim, text_lstm_units, feature_prefix=m)
        embeddings.append(feats["embedding"])
    return modalities, inputs, embeddings


def fusion_early(
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
    modality_dropout=0.0,
    seed=None,
    name="fusion_early",
):
    """Builds an early-fusion classifier: concatenated embeddings, then one head.

    ``multimodal_concat`` plus the ``modality_dropout`` option.

    Args:
        num_classes: number of output logits.
        modalities: a non-empty subset of ``("image", "audio", "text", "tabular")``, in
            the order the model concatenates them. Defaults to ``("image", "audio")``.
        image_shape: ``[H, W, C]`` of the ``"image"`` input. Defaults to ``(16, 16, 1)``.
        audio_shape: ``[frames, mels]`` of the log-mel ``"audio"`` input. Defaults to the
            embedded dataset's ``AudioConfig`` shape.
        sequence_length: length of the int ``"text"`` token ids. Defaults to 16.
        vocab_size: text vocabulary size (id 0 is padding). Defaults to 2000.
        image_filters: channels of the image conv blocks. Defaults to ``(32, 64)``.
        audio_filters: channels of the audio conv blocks. Defaults to ``(32, 64)``.
        audio_lstm_units: width of the audio LSTM. Defaults to 64.
        text_embed_dim: width of the token embedding. Defaults to 64.
        text_lstm_units: width of the text BiLSTM (per direction). Defaults to 64.
        tabular_shape: ``(features,)`` of the ``"tabular"`` input. Defaults to ``(8,)``.
        tabular_units: widths of the tabular MLP's blocks. Defaults to ``(64,)``.
        hidden_units: hidden layer of the head; 0 for none. Defaults to 128.
        dropout: dropout before the logits. Defaults to 0.0.
        modality_dropout: fraction of (example, modality) input slots zeroed in training
            (``ModalityDropout``); ignored with one modality. Defaults to 0.0.
        seed: seed of the ``ModalityDropout`` masks. Defaults to ``None``.
        name: model name. Defaults to ``"fusion_early"``.

    Returns:
        A functional ``keras.Model`` returning logits. Features: ``"<modality>_embedding"``,
        ``"<modality>_feature_map"`` (CNN encoders) and the fused ``"embedding"``.
    """
    _, inputs, embeddings = _encode(
        modalities,
        image_shape,
        audio_shape,
        sequence_length,
        vocab_size,
        image_filters,
        audio_filters,
        audio_lstm_units,
        text_embed_dim,
        text_lstm_units,
        modality_dropout,
        seed,
        tabular_shape,
        tabular_units,
    )
    fused = (
        layers.Concatenate(name="fusion_concat")(embeddings)
        if len(embeddings) > 1
        else embeddings[0]
    )
    logits = classifier_head(fused, num_classes, hidden_units, dropout)
    return keras.Model(inputs, logits, name=name)


def fusion_late(
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
    head_units=0,
    late_weights="mean",
    dropout=0.0,
    modality_dropout=0.0,
    seed=None,
    name="fusion_late",
):
    """Builds a late-fusion classifier: one head per modality, then combined logits.

    ``logits = sum_m w_m * logits_m`` with ``w_m = 1 / M`` (``late_weights="mean"``) or
    ``w = softmax(v)`` for a trainable ``v`` of one logit per modality, starting at zero
    (``"learned"``; ``LearnedModalityWeights``).

    Args:
        num_classes: number of output logits.
        modalities, image_shape, audio_shape, sequence_length, vocab_size, image_filters,
            audio_filters, audio_lstm_units, text_embed_dim, text_lstm_units,
            tabular_shape, tabular_units: as in ``fusion_early``.
        head_units: hidden layer of each per-modality head; 0 for none. Defaults to 0.
        late_weights: ``"mean"`` or ``"learned"``. Defaults to ``"mean"``.
        dropout: dropout before each head's logits. Defaults to 0.0.
        modality_dropout, seed: as in ``fusion_early``.
        name: model name. Defaults to ``"fusion_late"``.

    Returns:
        A functional ``keras.Model`` returning logits (layer ``"logits"``). Features:
        ``"<modality>_embedding"``, ``"<modality>_feature_map"`` (CNN encoders),
        ``"<modality>_logits"`` and, with ``"learned"`` and two or more modalities,
        ``"modality_weights"``. There is no
        fused ``"embedding"``: the modalities meet only at the logits.
    """
    if late_weights not in LATE_WEIGHTS:
        raise ValueError(f"`late_weights` must be one of {LATE_WEIGHTS}; got {late_weights!r}.")
    modalities, inputs, embeddings = _encode(
        modalities,
        image_shape,
        audio_shape,
        sequence_length,
        vocab_size,
        image_filters,
        audio_filters,
        audio_lstm_units,
        text_embed_dim,
        text_lstm_units,
        modality_dropout,
        seed,
        tabular_shape,
        tabular_units,
    )
    per_modality = []
    for m, x in zip(modalities, embeddings, strict=True):
        if head_units:
            x = layers.Dense(head_units, activation="relu", name=f"{m}_hidden")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{m}_dropout")(x)
        x = layers.Dense(num_classes, name=f"{m}_head")(x)
        per_modality.append(Feature(name=f"{m}_logits")(x))
    # With one modality there is nothing to weigh (and a softmax over one value is 1).
    if late_weights == "mean" or len(modalities) == 1:
        logits = layers.Average(name="logits")(per_modality)
    else:
        weights = LearnedModalityWeights(len(modalities), name="late_weights")(per_modality[0])
        weights = ModalityWeights(modalities, name=MODALITY_WEIGHTS)(weights)
        logits = WeightedSum(name="logits")(per_modality, weights)
    return keras.Model(inputs, logits, name=name)


def fusion_gated(
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
    fusion_units=64,
    gate_units=32,
    hidden_units=0,
    dropout=0.0,
    modality_dropout=0.0,
    seed=None,
    name="fusion_gated",
):
    """Builds a gated (attention) fusion classifier with per-example modality weights.

    ``h_m = tanh(W_m e_m)`` projects each embedding ``e_m`` to ``fusion_units``;
    ``a = softmax(gate([h_1; ...; h_M]))`` with ``gate`` an optional ReLU layer of
    ``gate_units`` and a linear layer to ``M`` scores; the head reads ``sum_m a_m h_m``.
    The gate reads the bounded projections, not the raw embeddings: on the raw ones its
    scores grew until the softmax was one-hot on one modality, chosen by the seed, and the
    other modality's projection stopped learning (the teacher preset on av-digits,
    validation speaker, 6 seeds: 0.62-0.98 on the embeddings, 0.97-0.99 on the
    projections).
    Arevalo et al. 2017 (arXiv:1702.01992) gate each dimension of two modalities with a
    sigmoid; one softmax weight per modality generalises to ``M`` modalities and gives a
    per-example distribution over modalities that can be plotted.

    Args:
        num_classes: number of output logits.
        modalities, image_shape, audio_shape, sequence_length, vocab_size, image_filters,
            audio_filters, audio_lstm_units, text_embed_dim, text_lstm_units,
            tabular_shape, tabular_units: as in ``fusion_early``.
        fusion_units: common width of the projected embeddings. Defaults to 64.
        gate_units: hidden ReLU layer of the gate; 0 for a linear gate. Defaults to 32.
        hidden_units: hidden layer of the head; 0 for none. Defaults to 0.
        dropout: dropout before the logits. Defaults to 0.0.
        modality_dropout, seed: as in ``fusion_early``. The gate reads the projections of
            the possibly blanked inputs, so it can learn to down-weigh a missing modality.
        name: model name. Defaults to ``"fusion_gated"``.

    Returns:
        A functional ``keras.Model`` returning logits. Features: ``"<modality>_embedding"``,
        ``"<modality>_feature_map"`` (CNN encoders), ``"modality_weights"`` (``[batch, M]``,
        rows sum to 1, columns in the order of ``modalities``; absent with one modality)
        and the fused ``"embedding"``.
    """
    if fusion_units < 1:
        raise ValueError(f"`fusion_units` must be a positive int; got {fusion_units}.")
    modalities, inputs, embeddings = _encode(
        modalities,
        image_shape,
        audio_shape,
        sequence_length,
        vocab_size,
        image_filters,
        audio_filters,
        audio_lstm_units,
        text_embed_dim,
        text_lstm_units,
        modality_dropout,
        seed,
        tabular_shape,
        tabular_units,
    )
    projected = [
        layers.Dense(fusion_units, activation="tanh", name=f"{m}_projection")(x)
        for m, x in zip(modalities, embeddings, strict=True)
    ]
    if len(modalities) == 1:  # nothing to gate: the weight would always be 1
        fused = projected[0]
    else:
        gate = layers.Concatenate(name="gate_concat")(projected)
        if gate_units:
            gate = layers.Dense(gate_units, activation="relu", name="gate_hidden")(gate)
        gate = layers.Dense(len(modalities), name="gate_scores")(gate)
        gate = layers.Softmax(name="gate_softmax")(gate)
        weights = ModalityWeights(modalities, name=MODALITY_WEIGHTS)(gate)
        fused = WeightedSum(name="fusion_weighted_sum")(projected, weights)
    logits = classifier_head(fused, num_classes, hidden_units, dropout)
    return keras.Model(inputs, logits, name=name)


def modality_weights_model(model: keras.Model) -> keras.Model:
    """Returns a model sharing ``model``'s weights that outputs its modality weights.

    The output has shape ``[batch, M]``; column ``m`` is the weight of the modality
    ``model.get_layer("modality_weights").modalities[m]`` (the builder's ``modalities``).

    Example:

    >>> weights = modality_weights_model(model).predict({"image": x_img, "audio": x_aud})

    Raises:
        ValueError: ``model`` has no ``"modality_weights"`` feature (early fusion, late
            fusion with ``late_weights="mean"``, or a single modality).
    """
    layer = next((lyr for lyr in model.layers if lyr.name == MODALITY_WEIGHTS), None)
    if not isinstance(layer, ModalityWeights):
        raise ValueError(
            f"Model {model.name!r} has no {MODALITY_WEIGHTS!r} feature; build it with "
            "fusion_gated, or fusion_late with late_weights='learned'."
        )
    return keras.Model(model.input, layer.output, name=f"{model.name}_{MODALITY_WEIGHTS}")
