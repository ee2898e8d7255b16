"""Layers the zoo's builders share."""

from __future__ import annotations

import keras

from kdzoo.backend import is_tensorflow


@keras.saving.register_keras_serializable(package="kdzoo")
class Feature(keras.layers.Identity):
    """Marks a named intermediate feature that distillation losses can address.

    An identity at run time. Builders end the pooled embedding with ``Feature(name="embedding")``
    and a CNN's last spatial map with ``Feature(name="feature_map")``;
    ``kdzoo.models.feature_names(model)`` lists them and ``feature_model`` taps them.
    """


@keras.saving.register_keras_serializable(package="kdzoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training statistics are those of the
    global batch on every backend, so that a step gives the same update on 1 or N devices.

    - TensorFlow: ``synchronized=True``, which all-reduces the mean and variance across the
      replicas of a ``tf.distribute`` strategy (tests/recipe/test_distributed.py).
    - JAX: Keras refuses ``synchronized=True`` off TensorFlow, and needs no flag: its
      trainer jit-compiles the step over global arrays that ``keras.distribution`` shards
      across the devices (``jax.make_array_from_process_local_data``), so the
      ``jnp.mean``/``jnp.var`` of ``ops.moments`` already reduce over the whole global batch.

    The flag is therefore chosen from the backend when the layer is made, and left out of
    the config (saved as ``kdzoo>BatchNormalization``): a model saved on TensorFlow loads on
    JAX, where a plain ``BatchNormalization`` saved with ``synchronized=True`` raises
    ``ValueError``, and one saved on JAX synchronises again on TensorFlow. The computation
    is Keras' own on each backend.

    Named like Keras' layer on purpose: Keras weight files address a layer's variables by
    its snake-cased class name (``batch_normalization``), so ``.weights.h5`` files of models
    built with the plain layer load into models built with this one, and back. (A ``.keras``
    file saved before the encoders used this layer holds the plain layer and loads on
    TensorFlow only: to take it to JAX, save its weights and load them into the model built
    again with ``kdzoo.models``.)

    Args:
        **kwargs: those of ``keras.layers.BatchNormalization`` except ``synchronized``.
    """

    def __init__(self, **kwargs):
        if "synchronized" in kwargs:
            raise ValueError(
                f"kdzoo's BatchNormalization {kwargs.get('name', '')!r} sets `synchronized` "
                f"from the backend; got synchronized={kwargs['synchronized']!r}. Use "
                "keras.layers.BatchNormalization for per-replica statistics."
            )
        super().__init__(synchronized=is_tensorflow(), **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["synchronized"]
        return config


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


@keras.saving.register_keras_serializable(package="kdzoo")
class ModalityWeights(Feature):
    """Marks per-example modality weights ``[batch, num_modalities]`` and records their order.

    A ``Feature`` (so ``feature_model(model, ["modality_weights"])`` taps it) that also keeps
    the modality name of each column, saved with the model, so a loaded model can label a
    plot of its weights: ``model.get_layer("modality_weights").modalities``.

    Args:
        modalities: the modality names, in column order, e.g. ``("image", "audio")``.
    """

    def __init__(self, modalities, **kwargs):
        super().__init__(**kwargs)
        modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
        if not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(
                f"`modalities` must be a non-empty sequence of distinct names; got {modalities}."
            )
        self.modalities = modalities

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.modalities):
            raise ValueError(
                f"Layer {self.name!r}: the weights have {input_shape[-1]} columns but "
                f"`modalities` names {len(self.modalities)}: {self.modalities}."
            )
        super().build(input_shape)

    def get_config(self):
        return {**super().get_config(), "modalities": list(self.modalities)}


@keras.saving.register_keras_serializable(package="kdzoo")
class LearnedModalityWeights(keras.layers.Layer):
    """Global, trainable modality weights ``softmax(w)``, broadcast to ``[batch, M]``.

    The weights do not depend on the example: ``w`` is one trainable logit per modality,
    initialised to zero (so training starts from the plain mean). The input only supplies
    the batch size, so that the weights can be tapped per example like gated ones.

    Args:
        num_modalities: ``M``, the number of weights.

    Example:

    >>> weights = LearnedModalityWeights(2)(image_logits)      # [batch, 2]
    >>> logits = WeightedSum()([image_logits, audio_logits], weights)
    """

    def __init__(self, num_modalities, **kwargs):
        super().__init__(**kwargs)
        if int(num_modalities) < 1:
            raise ValueError(f"`num_modalities` must be at least 1; got {num_modalities}.")
        self.num_modalities = int(num_modalities)
        self.weight_logits = self.add_weight(
            shape=(self.num_modalities,), initializer="zeros", name="weight_logits"
        )

    def call(self, inputs):
        weights = keras.ops.softmax(self.weight_logits)
        batch = keras.ops.shape(inputs)[0]
        return keras.ops.broadcast_to(
            keras.ops.cast(weights[None, :], self.compute_dtype), (batch, self.num_modalities)
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_modalities)

    def get_config(self):
        return {**super().get_config(), "num_modalities": self.num_modalities}


@keras.saving.register_keras_serializable(package="kdzoo")
class WeightedSum(keras.layers.Layer):
    """``sum_m weights[:, m] * values[m]``: fuses per-modality tensors of one shape.

    Called as ``WeightedSum()(values, weights)`` with ``values`` a list of ``M`` tensors of
    the same shape ``[batch, ...]`` and ``weights`` of shape ``[batch, M]`` (per example, e.g.
    a gate's softmax) whose column ``m`` weighs ``values[m]``.
    """

    def build(self, values_shape, weights_shape):
        shapes = {tuple(s) for s in values_shape}
        if len(shapes) != 1:
            raise ValueError(
                f"Layer {self.name!r}: `values` must all have the same shape; got "
                f"{[tuple(s) for s in values_shape]}."
            )
        if weights_shape[-1] is not None and weights_shape[-1] != len(values_shape):
            raise ValueError(
                f"Layer {self.name!r}: `weights` has {weights_shape[-1]} columns for "
                f"{len(values_shape)} `values`; expected one column per value."
            )

    def call(self, values, weights):
        stacked = keras.ops.stack(values, axis=1)  # [batch, M, ...]
        weights = keras.ops.cast(weights, stacked.dtype)
        weights = keras.ops.reshape(weights, (-1, len(values)) + (1,) * (len(stacked.shape) - 2))
        return keras.ops.sum(stacked * weights, axis=1)

    def compute_output_shape(self, values_shape, weights_shape):
        return tuple(values_shape[0])


def _slot_drop_probability(rate, num_modalities):
    """Returns ``p`` with ``p - p**M / M == rate``: the independent per-slot drop probability
    that, once a random modality is restored in all-blank examples, blanks ``rate`` of the
    slots. The left side increases on [0, 1] (derivative ``1 - p**(M-1)``), so bisect."""
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if mid - mid**num_modalities / num_modalities < rate:
            low = mid
        else:
            high = mid
    return high


@keras.saving.register_keras_serializable(package="kdzoo")
class ModalityDropout(keras.layers.Layer):
    """Blanks whole modalities at random during training (ModDrop).

    Called on a list of ``M >= 2`` per-modality tensors (inputs or embeddings, any shape
    ``[batch, ...]``, float or int), it returns the list with each (example, modality) slot
    either unchanged or set to zeros. A fraction ``rate`` of the slots is blanked on average,
    but never all modalities of one example: per-slot drops are independent Bernoulli draws
    with probability ``p`` (``p - p**M / M = rate``), and in an example where all were drawn,
    a uniformly chosen modality is kept. Kept slots are not rescaled, so a model trained
    with it reads an all-zero modality as "missing" at inference. An identity when
    ``training`` is false or ``rate`` is 0.

    Reference: Neverova et al., "ModDrop: adaptive multi-modal gesture recognition",
    IEEE TPAMI 2016 (arXiv:1501.00102).

    Args:
        rate: the expected fraction of (example, modality) slots blanked, in ``[0, 1)``;
            at most ``(M - 1) / M`` since one modality per example is always kept.
        seed: an int that makes the masks reproducible; ``None`` draws one from Keras'
            global seed. Defaults to ``None``.

    Example:

    >>> image, audio = ModalityDropout(0.2, seed=1)([image, audio], training=True)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"`rate` must be in [0, 1); got {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._drop_probability = None

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not all(
            isinstance(s, (list, tuple)) for s in input_shape
        ):
            raise ValueError(
                f"Layer {self.name!r} must be called on a list of per-modality tensors; "
                f"got input shape {input_shape}."
            )
        num = len(input_shape)
        if num < 2 and self.rate > 0:
            raise ValueError(
                f"Layer {self.name!r} got {num} modality; with `rate` > 0 it needs at least 2, "
                "since it never blanks every modality of an example."
            )
        if self.rate > (num - 1) / num:
            raise ValueError(
                f"`rate`={self.rate} is too high for {num} modalities: one per example is "
                f"always kept, so at most {(num - 1) / num:.3g} of the slots can be blanked."
            )
        self._drop_probability = _slot_drop_probability(self.rate, num) if self.rate else 0.0
        self.built = True

    def call(self, inputs, training=None):
        inputs = list(inputs)
        if not training or self.rate == 0:
            return inputs
        num = len(inputs)
        draws = keras.random.uniform((keras.ops.shape(inputs[0])[0], num), seed=self.seed_generator)
        drop = draws < self._drop_probability
        # Where every modality was drawn, keep the one with the smallest draw: given that all
        # draws are below p, each modality is that one with probability 1 / M.
        all_dropped = keras.ops.all(drop, axis=1, keepdims=True)
        keeper = keras.ops.equal(
            keras.ops.arange(num)[None, :], keras.ops.argmin(draws, axis=1)[:, None]
        )
        keep = keras.ops.logical_not(drop) | (all_dropped & keeper)
        outputs = []
        for i, x in enumerate(inputs):
            mask = keras.ops.reshape(keep[:, i], (-1,) + (1,) * (len(x.shape) - 1))
            outputs.append(x * keras.ops.cast(mask, x.dtype))
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kdzoo")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Maximum over time of ``[batch, time, channels]``, over the unmasked steps only.

    ``keras.layers.GlobalMaxPooling1D`` ignores a mask (and warns that it drops it), so a
    backward RNN's outputs on padding would enter the maximum. Masked steps are set to the
    row's minimum over time here (no sentinel value, so float16 is safe); a row with no
    unmasked step gives zeros. The output carries no mask.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return keras.ops.max(inputs, axis=1)
        valid = keras.ops.expand_dims(keras.ops.cast(mask, "bool"), -1)
        lowest = keras.ops.min(inputs, axis=1, keepdims=True)
        pooled = keras.ops.max(keras.ops.where(valid, inputs, lowest), axis=1)
        any_valid = keras.ops.any(valid, axis=1)
        return keras.ops.where(any_valid, pooled, keras.ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
