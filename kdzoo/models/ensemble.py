"""An ensemble of trained classifiers of one task, joined as one Keras model.

An ensemble of independently trained networks is a stronger and better calibrated model
than its members (Lakshminarayanan et al., NeurIPS 2017), and the teacher Hinton et al.
(2015) distilled from. ``average_of_models`` joins the members into one functional model
that reads their inputs and returns the log of their **mean predicted distribution**, so
the ensemble is a teacher like any other: the recipe trains nothing in it (pass it with
``teacher_epochs=0``), caches its outputs, evaluates and saves it.

- Softmax classifiers (several logits): the output is ``log mean_i softmax(z_i)``,
  computed as ``logsumexp_i log_softmax(z_i) − log n``; its softmax is exactly the mean
  distribution, so it stands in for logits.
- Sigmoid outputs (binary with one logit, multi-label): per unit, the logit of the mean
  probability, ``log mean_i σ(z_i) − log mean_i (1 − σ(z_i))``, from ``log σ`` terms, so a
  confident member neither underflows nor gives ``log 0``.

Unlike ``kdzoo.models.experts.product_of_experts``, which multiplies models that each see
another modality (independent evidence), the members here see the same input: their
evidence is shared, and a product would count it ``n`` times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers, ops

#: How the members' outputs are read (``average_of_models``' ``activation``).
ACTIVATIONS = ("auto", "softmax", "sigmoid")


@keras.saving.register_keras_serializable(package="kdzoo")
class MeanOfPredictions(layers.Layer):
    """Logits of the mean of ``n`` models' predicted distributions (module docstring).

    Args:
        activation: ``"softmax"`` (one distribution over the last axis) or ``"sigmoid"``
            (an independent probability per unit).
    """

    def __init__(self, activation="softmax", **kwargs):
        super().__init__(**kwargs)
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be 'softmax' or 'sigmoid'; got {activation!r}.")
        self.activation = activation

    def call(self, inputs):
        if not isinstance(inputs, list | tuple) or len(inputs) < 2:
            raise ValueError("MeanOfPredictions joins a list of at least two logits tensors.")
        logits = ops.stack([ops.cast(z, self.compute_dtype) for z in inputs], axis=0)
        log_n = math.log(len(inputs))
        if self.activation == "softmax":
            return ops.logsumexp(ops.log_softmax(logits, axis=-1), axis=0) - log_n
        positive = ops.logsumexp(ops.log_sigmoid(logits), axis=0)
        negative = ops.logsumexp(ops.log_sigmoid(-logits), axis=0)
        return positive - negative

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


def average_of_models(
    members: Sequence[keras.Model], *, activation="auto", name: str = "ensemble"
) -> keras.Model:
    """One model whose output is the logits of ``members``' mean predicted distribution.

    Args:
        members: at least two trained classifiers of one task returning logits of one
            shape, each reading the same named inputs (names, shapes, dtypes). Their
            weights are shared, not copied, and their ``trainable`` flags are left as
            they are. Members with one name (copies of one preset) are wrapped as
            ``f"{name}_{i}"``.
        activation: ``"softmax"`` (single-label classes), ``"sigmoid"`` (multi-label, or
            binary with one logit), or ``"auto"``: sigmoid for one output unit, else
            softmax.
        name: the model's name.

    Returns:
        A functional ``keras.Model`` from a dict of named inputs to ``[batch, outputs]``
        logits, in float32. Saved as ``.keras`` it needs no Lambda layer and no pickle.

    Raises:
        ValueError: fewer than two members, one model given twice, members that read
            other inputs or return other shapes, or an unknown ``activation``.
    """
    members = list(members)
    if len(members) < 2:
        raise ValueError(f"An ensemble needs at least two models; got {len(members)}.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}.")
    if len({id(model) for model in members}) < len(members):
        raise ValueError("A model is given twice: an ensemble's members are distinct models.")
    names = [model.name for model in members]
    if len(set(names)) < len(names):
        # Keras names each layer of a model once: several copies of one preset (one per
        # seed) are wrapped under numbered names, their layers and weights shared.
        members = [
            keras.Model(model.input, model.output, name=f"{model.name}_{i}")
            for i, model in enumerate(members)
        ]

    def signature(model):
        return {t.name: (tuple(t.shape[1:]), t.dtype) for t in model.inputs}

    first = members[0]
    for model in members[1:]:
        if signature(model) != signature(first):
            raise ValueError(
                f"Members must read the same inputs: {first.name!r} reads "
                f"{signature(first)}, {model.name!r} {signature(model)}."
            )
        if tuple(model.outputs[0].shape[1:]) != tuple(first.outputs[0].shape[1:]):
            raise ValueError(
                f"Members must return logits of one shape: {first.name!r} returns "
                f"{first.outputs[0].shape[1:]}, {model.name!r} {model.outputs[0].shape[1:]}."
            )
    if activation == "auto":
        activation = "sigmoid" if first.outputs[0].shape[-1] == 1 else "softmax"
    inputs = {
        t.name: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name, sparse=t.sparse)
        for t in first.inputs
    }
    # Each member is called as it was built (a dict of named inputs, one tensor or a list),
    # with the joint model's input of the same name in place of its own.
    logits = [
        model(keras.tree.map_structure(lambda t: inputs[t.name], model.input)) for model in members
    ]
    output = MeanOfPredictions(activation, name="mean_of_predictions", dtype="float32")(logits)
    return keras.Model(inputs, output, name=name)
