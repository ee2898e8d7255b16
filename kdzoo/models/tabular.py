"""Tabular MLP: numeric and categorical columns (``kdzoo.data.tabular``) -> logits."""

from __future__ import annotations

import keras

from kdzoo.models.encoders import classifier_head, model_input, tabular_encoder

PRESETS = {
    # Three 256-wide blocks with dropout, the size range Gorishniy et al. (2021) tune their
    # MLP baseline over; the student is one 32-wide block, under 1/8 of the teacher's
    # parameters at any input width.
    "teacher": {"hidden_units": (256, 256, 256), "dropout": 0.2},
    "student": {"hidden_units": (32,), "dropout": 0.0},
}


def tabular_mlp(
    num_classes,
    tabular_shape=(8,),
    hidden_units=(64,),
    dropout=0.0,
    name="tabular_mlp",
):
    """Builds an MLP reading input ``"tabular"`` (float ``[features]``: the standardised
    numbers and one-hot categories of ``kdzoo.data.tabular_features``) and returning logits.

    Args:
        num_classes: number of output logits.
        tabular_shape: ``(features,)``, ``TabularConfig.feature_size`` (what
            ``LoadedDataset.model_shapes()`` gives). Defaults to ``(8,)``.
        hidden_units: width of each ``Dense`` + ReLU block. Defaults to ``(64,)``.
        dropout: dropout after each block. Defaults to 0.0.
        name: model name. Defaults to ``"tabular_mlp"``.

    Returns:
        A functional ``keras.Model``. Feature: ``"embedding"`` (the last block's output).
    """
    if len(tuple(tabular_shape)) != 1:
        raise ValueError(f"`tabular_shape` must be (features,); got {tabular_shape}.")
    features = model_input("tabular", tabular_shape)
    encoded = tabular_encoder(features, tuple(hidden_units), dropout)
    logits = classifier_head(encoded["embedding"], num_classes)
    return keras.Model({"tabular": features}, logits, name=name)
