"""Layers the zoo's builders share."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="kdzoo")
class Feature(keras.layers.Identity):
    """Marks a named intermediate feature that distillation losses can address.

    An identity at run time. Builders end the pooled embedding with ``Feature(name="embedding")``
    and a CNN's last spatial map with ``Feature(name="feature_map")``;
    ``kdzoo.models.feature_names(model)`` lists them and ``feature_model`` taps them.
    """


def feature_names(model: keras.Model) -> list[str]:
    """Returns the names of the ``Feature`` layers of ``model``, in graph order."""
    return [layer.name for layer in model.layers if isinstance(layer, Feature)]


def feature_model(model: keras.Model, features=()) -> keras.Model:
    """Returns a functional model that shares ``model``'s weights and outputs a dict
    ``{"logits": ..., <feature>: ...}`` for the named ``features``.

    Raises:
        ValueError: a name is not a ``Feature`` of ``model``; the message lists the valid ones.
    """
    available = feature_names(model)
    outputs = {"logits": model.output}
    for name in features:
        if name == "logits":
            continue
        if name not in available:
            raise ValueError(
                f"Model {model.name!r} has no feature {name!r}. "
                f"Available features: {', '.join(['logits', *available])}."
            )
        outputs[name] = model.get_layer(name).output
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")
