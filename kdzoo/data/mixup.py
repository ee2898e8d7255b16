"""Consistent mixup for distillation: teacher and student see the same mixed example.

Function matching (Beyer et al., "Knowledge distillation: A good teacher is patient and
consistent", CVPR 2022): the student learns to match the teacher's function, so it should
match it on inputs *between* training examples too, and the teacher must see exactly the
view the student sees. ``mix_batches`` mixes each batch of a ``tf.data`` pipeline with a
shuffled copy of itself (mixup, Zhang et al. 2018): every continuous input key of a row
gets the same weight ``λ ~ Beta(α, α)`` and the same partner row, so a cross-modal pair
(an image and its clip) stays one mixed example in both modalities.

A mixed row has no single class, so its label becomes ``kdzoo.labels.UNLABELLED``: in a
``Distiller`` only the teacher terms train on it, from an online teacher (cached teacher
outputs belong to the unmixed rows). Rows left unmixed (``rate`` < 1) keep their labels.

Each pass over the mixed dataset (each epoch of ``fit``) draws fresh weights and partners,
as the "patient" function matching of Beyer et al. wants: batch ``i`` of a pass draws from
the stateless seed ``(v, i)``, ``v`` being that pass's ``i``-th value of
``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``. The same pipeline and
seed give the same sequence of passes on every run.

Example:

>>> from kdzoo.data.mixup import mix_batches
>>> train = mix_batches(data.pipeline("train"), alpha=1.0, seed=0)
>>> distiller.fit(train, epochs=30)  # teacher terms on every row, CE on unmixed ones
"""

from __future__ import annotations

import tensorflow as tf

from kdzoo.labels import UNLABELLED


def mixing(batch_size, alpha, seed, rate=1.0):
    """The draws of one batch: ``(lam, partner, mixed)``, each ``[batch_size]``.

    ``lam`` is each row's weight on itself (``Beta(alpha, alpha)``), ``partner`` the row it
    is mixed with (a seeded permutation), ``mixed`` whether the row is mixed at all (a
    fraction ``rate`` of rows, less any row drawn as its own partner); an unmixed row has
    ``lam = 1``. ``seed``: a ``[2]`` stateless seed, split into independent streams
    (``stateless_split``), so no two batches or seeds share a draw.
    """
    keys = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    # Beta(alpha, alpha) as a / (a + b) of two gamma draws, in float64 and scaled by their
    # maximum: for a small alpha float32 draws underflow to 0 often enough (a third of rows
    # at alpha = 0.02) to bias the weight towards one side.
    a = tf.random.stateless_gamma([batch_size], keys[0], alpha=alpha, dtype=tf.float64)
    b = tf.random.stateless_gamma([batch_size], keys[1], alpha=alpha, dtype=tf.float64)
    top = tf.maximum(a, b)
    safe = tf.where(top > 0, top, tf.ones_like(top))
    lam = tf.where(
        top > 0,
        (a / safe) / (a / safe + b / safe),
        tf.fill(tf.shape(a), tf.constant(0.5, tf.float64)),
    )
    lam = tf.cast(lam, tf.float32)
    partner = tf.argsort(tf.random.stateless_uniform([batch_size], keys[2]))
    mixed = tf.random.stateless_uniform([batch_size], keys[3]) < rate
    mixed &= partner != tf.range(batch_size, dtype=partner.dtype)
    return tf.where(mixed, lam, tf.ones_like(lam)), partner, mixed


def mix_batches(dataset, *, alpha=1.0, seed=0, keys=None, rate=1.0):
    """``dataset`` (batches ``(x dict, labels[, sample_weight])``) with consistent mixup.

    Args:
        dataset: batched ``tf.data.Dataset`` whose elements are ``(x, y)`` or
            ``(x, y, sample_weight)`` with ``x`` a dict of inputs.
        alpha: the Beta distribution's parameter (> 0); 1.0 mixes uniformly, small values
            keep rows close to one of the two. Defaults to 1.0.
        seed: an int: the seed of the sequence of passes (the module docstring says how
            each batch draws). Defaults to 0.
        keys: the inputs mixed. Defaults to every floating-point key; the others (token
            ids, ids, cached outputs with an integer type) ride along unmixed, from the row
            itself. Naming a non-float key raises.
        rate: the fraction of rows mixed, in ``(0, 1]``. Defaults to 1.0.

    Returns:
        The mixed dataset: mixed rows carry ``UNLABELLED`` labels and their own sample
        weight; the others are unchanged.

    Raises:
        ValueError: ``alpha`` or ``rate`` out of range, a named key missing or not float,
            labels that are not signed integer classes of shape ``[batch]`` (unsigned
            labels cannot hold ``UNLABELLED``, -1: cast them first).
    """
    if not alpha > 0:
        raise ValueError(f"`alpha` must be > 0; got {alpha}.")
    if not 0 < rate <= 1:
        raise ValueError(f"`rate` must be in (0, 1]; got {rate}.")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3) or not isinstance(spec[0], dict):
        raise ValueError(
            "mix_batches needs batches (x dict, labels) or (x dict, labels, sample_weight); "
            f"got elements {spec}."
        )
    nested = [k for k, v in spec[0].items() if not isinstance(v, tf.TensorSpec)]
    if nested:
        raise ValueError(
            f"mix_batches mixes batches of plain tensors; {nested} hold(s) a nested structure, "
            "e.g. cached teacher outputs (kdzoo.distillation's 'teacher_outputs'), which belong "
            "to the unmixed rows: mix the batches of an online teacher instead."
        )
    labels = spec[1]
    if (
        not isinstance(labels, tf.TensorSpec)
        or labels.shape.rank != 1
        or not (labels.dtype.is_integer and not labels.dtype.is_unsigned)
    ):
        raise ValueError(
            "mix_batches needs signed integer class labels of shape [batch], which can mark a "
            f"mixed row as unlabelled (-1); got {labels}. Cast unsigned labels, e.g. "
            "dataset.map(lambda x, y: (x, tf.cast(y, tf.int32)))."
        )
    floats = [k for k, s in spec[0].items() if s.dtype.is_floating]
    if keys is None:
        keys = floats
    else:
        keys = list(keys)
        bad = [k for k in keys if k not in spec[0] or k not in floats]
        if bad:
            raise ValueError(
                f"mix_batches mixes floating-point inputs; {bad} "
                f"{'is' if len(bad) == 1 else 'are'} not among them ({floats})."
            )
    if not keys:
        raise ValueError(f"mix_batches found no floating-point input to mix in {list(spec[0])}.")

    def mix(numbered, draw):
        index, (x, y, *rest) = numbered
        lam, partner, mixed = mixing(tf.shape(y)[0], alpha, tf.stack([draw, index]), rate)
        out = dict(x)
        for key in keys:
            value = x[key]
            weight = tf.reshape(tf.cast(lam, value.dtype), [-1] + [1] * (value.shape.rank - 1))
            out[key] = weight * value + (1 - weight) * tf.gather(value, partner)
        labels = tf.where(mixed, tf.cast(tf.fill(tf.shape(y), UNLABELLED), y.dtype), y)
        return (out, labels, *rest)

    passes = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(dataset.enumerate(), passes).map(mix)
