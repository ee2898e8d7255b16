"""Unlabelled examples: the label ``UNLABELLED`` (``-1``) marks a row without a label.

The convention is scikit-learn's for semi-supervised estimators (``LabelSpreading`` and
``SelfTrainingClassifier`` read ``-1`` as "no label"). Such rows may sit in a training set
that a ``Distiller`` fits: the teacher terms apply to every row, and the terms that read
labels (cross-entropy, DKD/NKD, a teacher gate) and the compiled metrics only to labelled
ones (``labelled_weights``). Everything else in kdzoo (a plain ``fit``, validation and test
splits) refuses them.
"""

from __future__ import annotations

from keras import ops

#: The label of an example that has none.
UNLABELLED = -1


def labelled_weights(labels, sample_weight=None):
    """What the label terms of a batch use when some rows may be ``UNLABELLED``.

    Args:
        labels: ``[batch]`` or ``[batch, 1]`` integer class ids, ``UNLABELLED`` (any
            negative id) where a row has no label.
        sample_weight: ``[batch]`` weights, or None.

    Returns:
        ``(labels, weights, count)``: the labels with unlabelled rows set to class 0 (so
        every id is valid), ``[batch]`` float32 weights that are ``sample_weight`` (or 1)
        on labelled rows and 0 elsewhere, and the number of labelled rows (float32).
    """
    labelled = labels >= 0
    safe = ops.where(labelled, labels, ops.zeros_like(labels))
    mask = ops.reshape(ops.cast(labelled, "float32"), (-1,))
    weights = (
        mask
        if sample_weight is None
        else mask * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    )
    return safe, weights, ops.sum(mask)
