"""A product of experts: trained single-modality classifiers joined with no training.

When the modalities are independent given the label (AV digits pairs each clip with an
image *by label*, so a clip says nothing about its image beyond the label), Bayes' rule
gives the multimodal posterior exactly from the unimodal ones:

    p(y | x_1, …, x_n)  ∝  Π_i p(y | x_i) / p(y)^(n−1)

so ``log p(y | x) = Σ_i log_softmax(z_i) − (n − 1) · log p(y) + const``, with ``z_i`` the
``i``-th model's logits. ``product_of_experts`` builds that as one Keras model whose output
stands in for logits (softmax of it is the posterior). It has no weights of its own: there
is no fusion head to go modality-lazy, and each expert keeps what it learnt alone (a model
trained on both modalities at once can ignore the harder one; Wu et al., ICML 2022).

It is exact only to the extent the experts are calibrated and the independence holds. With
natively paired modalities (the same event seen twice, as a video's frames and its sound)
the product counts their shared evidence twice and is over-confident; a learnt head
(``kdzoo.models.compose.fuse_models``) is the choice there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import layers, ops


@keras.saving.register_keras_serializable(package="kdzoo")
class ProductOfExperts(layers.Layer):
    """``Σ_i log_softmax(logits_i) − (n − 1) · log prior``, the log posterior of a
    product of ``n`` experts up to a constant (see the module docstring).

    Args:
        class_prior: the training label distribution ``p(y)`` (``[classes]``, positive,
            normalised here). None: uniform, which shifts every class alike and so changes
            nothing after softmax.
    """

    def __init__(self, class_prior=None, **kwargs):
        super().__init__(**kwargs)
        if class_prior is not None:
            prior = np.asarray(class_prior, dtype="float64")
            if prior.ndim != 1 or not np.all(np.isfinite(prior)) or np.any(prior <= 0):
                raise ValueError(
                    f"class_prior must be a 1-D array of positive numbers; got {class_prior!r}."
                )
            class_prior = (prior / prior.sum()).tolist()
        self.class_prior = class_prior

    def call(self, inputs):
        if not isinstance(inputs, list | tuple) or len(inputs) < 2:
            raise ValueError("ProductOfExperts joins a list of at least two logits tensors.")
        total = ops.log_softmax(inputs[0], axis=-1)
        for logits in inputs[1:]:
            total = total + ops.log_softmax(logits, axis=-1)
        if self.class_prior is not None:
            log_prior = ops.log(ops.convert_to_tensor(self.class_prior, dtype=total.dtype))
            total = total - (len(inputs) - 1) * log_prior
        return total

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "class_prior": self.class_prior}


def product_of_experts(
    experts: Mapping[str, keras.Model] | Sequence[keras.Model],
    *,
    class_prior=None,
    name: str = "product_of_experts",
) -> keras.Model:
    """One model whose output is the product-of-experts log posterior of ``experts``.

    Args:
        experts: trained classifiers returning logits over the same classes, e.g.
            ``{"image": image_teacher, "audio": audio_teacher}``. Each reads its own named
            inputs; the joint model reads their union (experts that read the same input
            name share it). Their weights are shared, not copied, and their ``trainable``
            flags are left as they are.
        class_prior: the training label distribution; None for uniform (see
            ``ProductOfExperts``).
        name: the model's name.

    Returns:
        A functional ``keras.Model`` from a dict of named inputs to ``[batch, classes]``
        log-probabilities up to a constant per example (use them as logits). Saved as
        ``.keras`` it needs no Lambda layer and no pickle.

    Raises:
        ValueError: fewer than two experts, two with the same model name, or two
            disagreeing on an input's shape or dtype or on the number of classes.
    """
    models = list(experts.values() if isinstance(experts, Mapping) else experts)
    if len(models) < 2:
        raise ValueError(f"A product of experts needs at least two models; got {len(models)}.")
    inputs: dict[str, keras.KerasTensor] = {}
    for model in models:
        for tensor in model.inputs:
            key = tensor.name
            known = inputs.get(key)
            if known is None:
                inputs[key] = keras.Input(
                    shape=tensor.shape[1:], dtype=tensor.dtype, name=key, sparse=tensor.sparse
                )
            elif tuple(known.shape) != tuple(tensor.shape) or known.dtype != tensor.dtype:
                raise ValueError(
                    f"Input {key!r}: {model.name!r} reads {tensor.shape} {tensor.dtype}, "
                    f"another expert {known.shape} {known.dtype}."
                )
    names = [model.name for model in models]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"Experts need distinct model names (Keras names each operation once); "
            f"{repeated} is used more than once: build them with `name=`."
        )
    classes = {model.name: model.outputs[0].shape[-1] for model in models}
    if len(set(classes.values())) != 1:
        raise ValueError(f"The experts disagree on the number of classes: {classes}.")
    logits = []
    for model in models:
        # Called as the model was built: a dict of named inputs, one tensor, or a list.
        if isinstance(model.input, Mapping):
            args = {key: inputs[t.name] for key, t in model.input.items()}
        elif len(model.inputs) == 1:
            args = inputs[model.inputs[0].name]
        else:
            args = [inputs[t.name] for t in model.inputs]
        logits.append(model(args))
    output = ProductOfExperts(class_prior, name="product", dtype="float32")(logits)
    return keras.Model(inputs, output, name=name)
