"""Input routing: each model reads only its own keys from a batch dict.

A batch is ``{key: tensor}`` (``"image"``, ``"audio"``, ``"text"``, ...) and a model's inputs
are named by the keys it reads, so one dataset can feed a teacher on ``{"image", "audio"}``
and a student on ``{"audio"}``. ``select_inputs`` is the one place that picks a model's keys
out of a batch; the ``Distiller`` and ``kdzoo.evaluation`` both call it.
"""

from __future__ import annotations


class MissingInputError(KeyError, ValueError):
    """A batch lacks a key that a model reads.

    Both a ``KeyError`` (a key is missing) and a ``ValueError`` (the batch does not fit the
    model), so callers written against either keep working.
    """

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def input_names(model) -> tuple[str, ...]:
    """The batch keys ``model`` reads: the names of its inputs, in order."""
    return tuple(t.name for t in model.inputs)


def select_inputs(x, keys, reader="model"):
    """The part of batch ``x`` that a model reading ``keys`` takes.

    Args:
        x: a batch dict ``{key: tensor}``, or a single tensor for a model with one input.
        keys: the keys the model reads (its input names, see ``input_names``).
        reader: who reads them, for error messages, e.g. ``"student"`` or
            ``"teacher 'image_cnn_teacher'"``. Defaults to ``"model"``.

    Returns:
        ``{key: x[key]}`` for each of ``keys``; a single tensor becomes ``{keys[0]: x}``.

    Raises:
        MissingInputError: ``x`` lacks one of ``keys`` (the message names them and the keys
            the batch has), or ``x`` is a single tensor and several keys are read.

    Example:

    >>> select_inputs({"image": i, "audio": a}, ("audio",), "student")
    {'audio': a}
    """
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if not isinstance(x, dict):
        if len(keys) == 1:
            return {keys[0]: x}
        raise MissingInputError(f"The {reader} reads keys {keys}; pass the batch as a dict.")
    missing = [k for k in keys if k not in x]
    if missing:
        raise MissingInputError(
            f"The batch has no key(s) {missing} that the {reader} reads; batch keys: {sorted(x)}."
        )
    return {k: x[k] for k in keys}


def check_input_keys(model, keys, role="model") -> tuple[str, ...]:
    """The batch keys ``model`` reads: ``keys`` if given (a key or several), which must be
    exactly its input names, else its input names. ``role`` (``"teacher"``, ``"student"``)
    names the argument and the model in the error."""
    names = input_names(model)
    if keys is None:
        return names
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if sorted(keys) != sorted(names):
        raise ValueError(
            f"`{role}_inputs={keys}` does not match the {role} model {model.name!r}, whose "
            f"inputs are {names}. Build the {role} over exactly the keys it should read."
        )
    return names


def for_model(dataset, model):
    """``dataset`` with each batch's features cut down to the keys ``model`` reads, so that a
    model on some of the batch's keys trains and evaluates with plain ``fit``/``evaluate``.

    Keras matches a dict batch to a functional model's inputs by position when the keys
    differ, which feeds one modality to another's input (an error if the shapes differ, wrong
    numbers if they agree); this routes by name instead. ``(x, y)`` and ``(x, y, weight)``
    batches keep their other elements. ``ArrayBatches`` (NumPy, any backend) are cut down
    the same way (``ArrayBatches.select``).

    Example:

    >>> teacher.fit(for_model(data.splits["train"], teacher))   # batches hold more keys
    """
    keys = input_names(model)
    reader = f"model {model.name!r}"
    if hasattr(dataset, "select"):  # kdzoo.data.ArrayBatches, which has no tf.data map
        return dataset.select(keys, reader)
    spec = dataset.element_spec
    features = spec[0] if isinstance(spec, tuple) else spec
    if isinstance(features, dict):  # checked here, not inside map's trace (a StagingError)
        select_inputs(features, keys, reader)
    return dataset.map(lambda x, *rest: (select_inputs(x, keys, reader), *rest))
