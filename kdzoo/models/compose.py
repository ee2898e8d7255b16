"""Fusing single-modality models into one multimodal classifier.

``fuse_models`` takes one model per modality, trained or not (a zoo preset, or a user's own
functional model), and joins their embeddings under a new head. With trained models this is
the warm start that keeps a fused teacher from going modality-lazy: each encoder has
already learnt its modality alone, so the joint model cannot ignore the harder one the way
a fused model trained end to end from scratch does (the "greedy learner" of Wu et al., ICML
2022; OGM-GE, Peng et al., CVPR 2022). With untrained zoo students it builds a small fused
student from the strongest single-modality students of the zoo.

``kdzoo.models.fuse_models`` is this module's ``fuse_models``.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
from keras import layers

from kdzoo.models.encoders import classifier_head
from kdzoo.models.layers import Feature, ModalityDropout

#: The ``Feature`` each single-modality zoo model marks its embedding with.
EMBEDDING = "embedding"


def _single_input(modality: str, model: keras.Model) -> keras.KerasTensor:
    if len(model.inputs) != 1:
        raise ValueError(
            f"The {modality!r} model {model.name!r} must read one input; it reads "
            f"{[t.name for t in model.inputs]}."
        )
    return model.inputs[0]


def embedding_model(model: keras.Model, feature: str = EMBEDDING) -> keras.Model:
    """A model sharing ``model``'s weights that returns its ``feature`` layer's output."""
    try:
        output = model.get_layer(feature).output
    except ValueError:
        raise ValueError(
            f"{model.name!r} has no layer named {feature!r} to fuse on; name the embedding "
            f"layer (e.g. kdzoo.models.layers.Feature(name={feature!r})) or pass `feature=`."
        ) from None
    return keras.Model(model.inputs[0], output, name=f"{model.name}_{feature}")


def copy_model(model: keras.Model) -> keras.Model:
    """A functional copy of ``model`` with its weights copied, not shared."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def fuse_models(
    models: Mapping[str, keras.Model],
    num_classes: int,
    *,
    feature: str = EMBEDDING,
    hidden_units: int = 0,
    dropout: float = 0.0,
    modality_dropout: float = 0.0,
    trainable_encoders: bool = True,
    copy: bool = True,
    seed: int | None = None,
    name: str = "fused",
) -> keras.Model:
    """Builds a classifier over several modalities from one model per modality.

    Each model's ``feature`` output (the zoo's single-modality models mark their embedding
    ``"embedding"``) is concatenated, then a head (``classifier_head``: optional hidden
    layer, ``Feature("embedding")``, dropout, logits) predicts ``num_classes`` logits.

    Args:
        models: modality (the batch key the fused model reads) -> a functional model with
            one input of that modality. Trained models give a warm-started fusion.
        num_classes: the logits of the new head.
        feature: the layer of each model whose output is fused. Defaults to
            ``"embedding"``.
        hidden_units: the head's hidden layer; 0 for none. Defaults to 0.
        dropout: before the logits. Defaults to 0.0.
        modality_dropout: the fraction of (example, modality) inputs blanked in training
            (``ModalityDropout``), so the fused model learns to use each modality alone
            and survives a missing one. Defaults to 0.0.
        trainable_encoders: False freezes the encoders (their batch norm then runs in
            inference mode): only the head trains. Set ``encoder.trainable`` later to
            fine-tune. Defaults to True.
        copy: encode with copies of ``models`` (their weights copied), so training the
            fused model leaves the given models as they were. Defaults to True. With
            False the fused model shares the given models' layers: training it trains them,
            and ``trainable_encoders=False`` (or a later ``encoder.trainable = True``)
            sets every one of their layers' ``trainable`` flag.
        seed: of the ``ModalityDropout`` masks.
        name: of the fused model; each encoder is a nested model ``"<modality>_encoder"``.

    Returns:
        A functional ``keras.Model`` reading a dict keyed by ``models``' modalities and
        returning logits.
    """
    if len(models) < 2:
        raise ValueError(f"fuse_models needs two or more modalities; got {list(models)}.")
    inputs, encoders = {}, {}
    for modality, model in models.items():
        given = _single_input(modality, model)
        inputs[modality] = keras.Input(given.shape[1:], dtype=given.dtype, name=modality)
        body = embedding_model(copy_model(model) if copy else model, feature)
        # A fresh functional wrapper named after the modality: a model fused twice (or two
        # zoo models with the same name) never clash.
        encoder = keras.Model(body.inputs[0], body.outputs[0], name=f"{modality}_encoder")
        encoder.trainable = trainable_encoders
        encoders[modality] = encoder
    modalities = list(models)
    slots = [inputs[m] for m in modalities]
    if modality_dropout:
        slots = ModalityDropout(modality_dropout, seed=seed, name="modality_dropout")(slots)
    embeddings = []
    for modality, x in zip(modalities, slots, strict=True):
        out = encoders[modality](x)
        if len(out.shape) != 2:
            raise ValueError(
                f"The {modality!r} model's {feature!r} output has shape {out.shape}; fusing "
                "needs a flat [batch, units] embedding."
            )
        embeddings.append(Feature(name=f"{modality}_embedding")(out))
    fused = layers.Concatenate(name="fusion_concat")(embeddings)
    logits = classifier_head(fused, num_classes, hidden_units, dropout)
    return keras.Model(inputs, logits, name=name)


def encoders_of(model: keras.Model, modalities) -> list[keras.Model]:
    """The nested ``"<modality>_encoder"`` models of a ``fuse_models`` model."""
    return [model.get_layer(f"{m}_encoder") for m in modalities]
