"""Unlabelled examples: the label ``UNLABELLED`` (``-1``) marks a row without a label.

The convention is scikit-learn's for semi-supervised estimators (``LabelSpreading`` and
``SelfTrainingClassifier`` read ``-1`` as "no label"). Such rows may sit in a training set
that a ``Distiller`` fits: the teacher terms apply to every row, and the terms that read
labels (cross-entropy, DKD/NKD, a teacher gate) and the compiled metrics only to labelled
ones (``labelled_weights``). Everything else in kdzoo (a plain ``fit``, validation and test
splits) refuses them.

Per task kind (``kdzoo.tasks``) the mark is:

==================================  =============================================
kind                                a row without a label
==================================  =============================================
``classification``, ``binary``      its class id is negative (``UNLABELLED``)
``multi_label``                     any of its ``L`` entries is negative (kdzoo's
                                    pipelines let through only whole rows of
                                    ``UNLABELLED``)
``regression``                      any of its targets is NaN (``-1`` is a value)
==================================  =============================================
"""

from __future__ import annotations

from keras import ops

#: The label of an example that has none.
UNLABELLED = -1
#: The task kinds whose labels are one class id per row.
_CLASS_IDS = ("classification", "binary")
_KINDS = (*_CLASS_IDS, "multi_label", "regression")


def labelled_weights(labels, sample_weight=None, kind="classification"):
    """What the label terms of a batch use when some rows may have no label.

    Args:
        labels: classification and binary: ``[batch]`` or ``[batch, 1]`` integer class
            ids, ``UNLABELLED`` (any negative id) where a row has no label; multi-label:
            ``[batch, L]`` 0/1, a negative entry where a row has none; regression:
            ``[batch, T]`` (or ``[batch]``) floats, NaN where a row has none.
        sample_weight: ``[batch]`` weights, or None.
        kind: the task kind (``kdzoo.tasks.KINDS``). Defaults to ``"classification"``.

    Returns:
        ``(labels, weights, count)``: the labels with unlabelled rows replaced by valid
        values (class 0, all-zero labels or targets), ``[batch]`` float32 weights that are
        ``sample_weight`` (or 1) on labelled rows and 0 elsewhere, and the number of
        labelled rows (float32).
    """
    if kind not in _KINDS:
        raise ValueError(f"labelled_weights: `kind` must be one of {list(_KINDS)}; got {kind!r}.")
    if kind in _CLASS_IDS:
        labelled = labels >= 0
        row_labelled = ops.reshape(labelled, (-1,))
    else:
        entries = ops.logical_not(ops.isnan(labels)) if kind == "regression" else labels >= 0
        rank = len(labels.shape)
        row_labelled = ops.all(entries, axis=-1) if rank > 1 else entries
        labelled = ops.reshape(row_labelled, (-1, 1)) if rank > 1 else row_labelled
    safe = ops.where(labelled, labels, ops.zeros_like(labels))
    mask = ops.cast(row_labelled, "float32")
    weights = (
        mask
        if sample_weight is None
        else mask * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    )
    return safe, weights, ops.sum(mask)
