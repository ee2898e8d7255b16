"""Relational KD (Park, Kim, Lu & Cho 2019, "Relational Knowledge Distillation", CVPR):
the student matches the *structure* of the teacher's embeddings within a batch (pairwise
distances, RKD-D, and triplet angles, RKD-A) rather than the embeddings themselves, so the
two widths may differ and no adapter is needed (``needs_adapter = False``).

Batch-relational semantics. These losses have one value per batch, not per example. The
functions return that value repeated once per example, so that the ``keras.losses.Loss``
reduction stays the standard one:

- sample weights: with ``"sum_over_batch_size"`` the reduced loss is
  ``L_batch · mean_i(w_i)``; a weight scales the batch's loss but does not remove its
  example from the relations (a zero-weight example still appears in the pairs/triplets).
  With ``"sum"`` the result is ``L_batch · Σ_i w_i``.
- tf.distribute: each replica computes relations within its local batch only (no
  cross-replica pairs), and Keras scales each replica's loss by ``1/num_replicas``; the
  summed gradients are those of ``mean_r(L_r · mean_{i∈r}(w_i))``, the mean of the
  per-replica batch losses, and the Distiller reports that mean. So an RKD step on 2
  replicas of 8 equals the average of two single-device steps on the two halves, not one
  step on the global batch of 16 (tests/scripts/loss_reduction_parity.py checks exactly this).
  The effective relational batch is the per-replica batch: keep it large enough.
- JAX (``keras.distribution``): the step is one program over the global batch, so the
  relations span the whole global batch, as on a single device.

Small batches. Both losses need at least 3 examples: RKD-A has no triplet of distinct
examples below 3, and RKD-D, whose distances are divided by their own mean, compares
``1`` with ``1`` on the single pair of a batch of 2 (and has no pair in a batch of 1). Such a
batch would be a silent no-op, so:

- a batch size known when the step is traced (an eager call, a dataset batched with
  ``drop_remainder=True``) below 3 raises ``ValueError``;
- a batch size unknown at trace time (the usual ``fit``: Keras traces with ``None``) cannot
  be refused, since the last, partial batch of an epoch may legitimately hold 1 or 2
  examples (65 examples in batches of 64) and a crash there would end real training. Such a
  batch contributes exactly 0 (and a zero gradient) to this term; the other terms still
  train. A warning saying so is logged once per process and loss, at the first trace with
  an unknown batch size.

That is TensorFlow. JAX traces every batch size with its static shape, and PyTorch runs
eagerly, so neither can tell an epoch's last batch from one that is always too small: off
TensorFlow every batch below 3 contributes 0, with the same warning, and none raises.
"""

from __future__ import annotations

import logging

import keras
from keras import ops

from kdzoo.backend import is_tensorflow
from kdzoo.losses.attention import _safe_sqrt

log = logging.getLogger("kdzoo")

#: Examples RKD-D and RKD-A need for a batch to carry any relation (see the module docstring).
MIN_BATCH = 3

#: The losses whose dynamic-batch warning was logged in this process.
_WARNED_DYNAMIC_BATCH = set()


def _flatten_pair(teacher, student, what):
    teacher = ops.convert_to_tensor(teacher, dtype="float32")
    student = ops.convert_to_tensor(student, dtype="float32")
    for role, x in (("teacher", teacher), ("student", student)):
        if len(x.shape) < 2:
            raise ValueError(
                f"{what}: {role} embeddings must be [batch, features]; got shape {tuple(x.shape)}."
            )
    if None not in (teacher.shape[0], student.shape[0]) and teacher.shape[0] != student.shape[0]:
        raise ValueError(
            f"{what}: teacher shape {tuple(teacher.shape)} and student shape "
            f"{tuple(student.shape)} must have the same batch size."
        )
    batch = teacher.shape[0] if teacher.shape[0] is not None else student.shape[0]
    if batch is not None and batch < MIN_BATCH and not is_tensorflow():
        # JAX traces each batch size, and PyTorch runs eagerly: a known small batch may be
        # an epoch's last one, so it contributes 0, as a dynamic one does on TensorFlow
        # (``_too_small``), with the same warning.
        batch = None
    if batch is not None and batch < MIN_BATCH:
        raise ValueError(
            f"{what}: a batch-relational loss needs at least {MIN_BATCH} examples per batch "
            f"(per replica under tf.distribute); got {batch}. {_SMALL_BATCH_REASON[what]} "
            "Use a larger batch."
        )
    if batch is None and what not in _WARNED_DYNAMIC_BATCH:
        _WARNED_DYNAMIC_BATCH.add(what)
        log.warning(
            "%s: a batch of fewer than %d examples (e.g. an epoch's last, partial batch, of a "
            "size TensorFlow does not know when it traces the step, or one JAX traces on its "
            "own) contributes 0 to this term. Keep batches (per replica) >= %d; "
            "drop_remainder=True avoids partial ones.",
            what,
            MIN_BATCH,
            MIN_BATCH,
        )
    return tuple(ops.reshape(x, (ops.shape(x)[0], -1)) for x in (teacher, student))


def _too_small(x):
    """Whether ``x``'s batch is known to be below ``MIN_BATCH`` (off TensorFlow, where
    ``_flatten_pair`` lets it through)."""
    return x.shape[0] is not None and x.shape[0] < MIN_BATCH


_SMALL_BATCH_REASON = {
    "rkd_distance": "Its distances are divided by their mean, so the one pair of a batch of 2 "
    "always gives 0.",
    "rkd_angle": "Its angles need triplets of distinct examples.",
}


def _huber(x):
    """Smooth-L1 / Huber with ``δ = 1``: ``x²/2`` if ``|x| ≤ 1`` else ``|x| − 1/2``."""
    a = ops.abs(x)
    return ops.where(a <= 1.0, 0.5 * ops.square(x), a - 0.5)


def _per_example(value, x):
    """The batch value repeated once per example: ``[batch]``."""
    return ops.zeros_like(x[:, 0]) + value


def _pairwise_distances(x):
    """``[B, B]`` Euclidean distances, with a zero gradient where a distance is 0."""
    squared = ops.sum(ops.square(x), axis=-1)
    gram = ops.matmul(x, ops.transpose(x))
    return _safe_sqrt(ops.maximum(squared[:, None] + squared[None, :] - 2.0 * gram, 0.0))


def _distance_potentials(x, off_diagonal):
    """``ψ_D(x_i, x_j) = ‖x_i − x_j‖ / μ``, ``μ`` the mean distance over pairs ``i ≠ j``."""
    distances = _pairwise_distances(x)
    mean = ops.divide_no_nan(ops.sum(distances * off_diagonal), ops.sum(off_diagonal))
    return ops.divide_no_nan(distances, mean)


def rkd_distance(teacher_embeddings, student_embeddings):
    """Distance-wise RKD (RKD-D), the batch value repeated per example.

    ``mean_{i≠j} l_δ(ψ_D(s_i, s_j), ψ_D(t_i, t_j))`` with ``ψ_D(x_i, x_j) = ‖x_i − x_j‖₂ / μ_x``,
    ``μ_x`` the mean of ``‖x_i − x_j‖₂`` over the pairs ``i ≠ j`` of the batch (each model
    normalised by its own ``μ``), and ``l_δ`` the Huber (smooth-L1) loss with ``δ = 1``
    (Park et al. 2019, eq. 4-5). The mean runs over the ``B(B − 1)`` ordered pairs of
    distinct examples; the paper writes a sum (its ``λ_D = 25``, like any constant, goes in
    the term weight) and the authors' code averages over all ``B²`` entries, zero diagonal
    included. See the module docstring for sample weights and tf.distribute.

    Args:
        teacher_embeddings: ``[batch, D_t]`` (trailing axes are flattened).
        student_embeddings: ``[batch, D_s]``; ``D_s`` may differ from ``D_t``.

    Returns:
        ``[batch]``: the batch's RKD-D value for every example.

    Raises:
        ValueError: the static batch size is below 3, on TensorFlow. A batch of 1 or 2
            whose size is only known at run time, or any off TensorFlow, gives 0 (see the
            module docstring).
    """
    t, s = _flatten_pair(teacher_embeddings, student_embeddings, "rkd_distance")
    if _too_small(t):
        return ops.zeros_like(t[:, 0])
    index = ops.arange(ops.shape(t)[0])
    off_diagonal = ops.cast(index[:, None] != index[None, :], "float32")
    difference = _distance_potentials(s, off_diagonal) - _distance_potentials(t, off_diagonal)
    value = ops.divide_no_nan(ops.sum(_huber(difference) * off_diagonal), ops.sum(off_diagonal))
    return _per_example(value, t)


def _angle_potentials(x):
    """``[B, B, B]``: entry ``[j, i, k] = cos ∠x_i x_j x_k = ⟨e_ji, e_jk⟩``,
    ``e_ji = (x_i − x_j) / ‖x_i − x_j‖₂`` (0 where ``x_i = x_j``)."""
    differences = x[None, :, :] - x[:, None, :]  # [j, i] = x_i - x_j
    norms = _safe_sqrt(ops.sum(ops.square(differences), axis=-1, keepdims=True))
    unit = ops.divide_no_nan(differences, norms)
    return ops.matmul(unit, ops.transpose(unit, (0, 2, 1)))


def rkd_angle(teacher_embeddings, student_embeddings):
    """Angle-wise RKD (RKD-A), the batch value repeated per example.

    ``mean_{i,j,k distinct} l_δ(ψ_A(s_i, s_j, s_k), ψ_A(t_i, t_j, t_k))`` with
    ``ψ_A(x_i, x_j, x_k) = cos ∠x_i x_j x_k = ⟨e_ij, e_kj⟩``, ``e_ij = (x_i − x_j)/‖x_i − x_j‖₂``
    (the angle at ``x_j``), and ``l_δ`` the Huber loss with ``δ = 1`` (Park et al. 2019,
    eq. 6-7). The mean runs over the ``B(B − 1)(B − 2)`` ordered triplets of distinct
    examples (the authors' code averages over all ``B³`` entries, degenerate ones included;
    the paper's ``λ_A = 50`` goes in the term weight). Memory grows as ``B²·D + B³``. See the
    module docstring for sample weights and tf.distribute.

    Args:
        teacher_embeddings: ``[batch, D_t]`` (trailing axes are flattened).
        student_embeddings: ``[batch, D_s]``; ``D_s`` may differ from ``D_t``.

    Returns:
        ``[batch]``: the batch's RKD-A value for every example.

    Raises:
        ValueError: the static batch size is below 3, on TensorFlow. A batch of 1 or 2
            whose size is only known at run time, or any off TensorFlow, gives 0 (see the
            module docstring).
    """
    t, s = _flatten_pair(teacher_embeddings, student_embeddings, "rkd_angle")
    if _too_small(t):
        return ops.zeros_like(t[:, 0])
    index = ops.arange(ops.shape(t)[0])
    distinct = index[:, None] != index[None, :]
    triplets = ops.cast(
        distinct[:, :, None] & distinct[:, None, :] & distinct[None, :, :], "float32"
    )
    difference = _angle_potentials(s) - _angle_potentials(t)
    value = ops.divide_no_nan(ops.sum(_huber(difference) * triplets), ops.sum(triplets))
    return _per_example(value, t)


@keras.saving.register_keras_serializable(package="kdzoo")
class RKDDistance(keras.losses.Loss):
    """Distance-wise relational KD (RKD-D; Park et al. 2019, CVPR).

    Huber loss between the teacher's and the student's mean-normalised pairwise distances
    within the batch; see ``rkd_distance``. Called as ``loss(teacher_embeddings,
    student_embeddings)``; the widths may differ. Batch-relational: read the module
    docstring for how sample weights and tf.distribute replicas enter. The paper weights it
    by 25 (and RKD-A by 50).

    Args:
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"rkd_distance"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).

    Example:

    >>> loss = RKDDistance()
    >>> loss(teacher_embeddings, student_embeddings)  # [B, 128] and [B, 32]
    """

    compares = "features"
    #: Any widths: the Distiller must not insert an adapter.
    needs_adapter = False

    def __init__(self, reduction="sum_over_batch_size", name="rkd_distance", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return rkd_distance(y_true, y_pred)


@keras.saving.register_keras_serializable(package="kdzoo")
class RKDAngle(keras.losses.Loss):
    """Angle-wise relational KD (RKD-A; Park et al. 2019, CVPR).

    Huber loss between the cosines of the angles that triplets of teacher embeddings and of
    student embeddings form within the batch; see ``rkd_angle``. Called as
    ``loss(teacher_embeddings, student_embeddings)``; the widths may differ.
    Batch-relational: read the module docstring for how sample weights and tf.distribute
    replicas enter.

    Args:
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"rkd_angle"``.
        dtype: the dtype of the loss's computations. Defaults to None (Keras' floatx).
    """

    compares = "features"
    #: Any widths: the Distiller must not insert an adapter.
    needs_adapter = False

    def __init__(self, reduction="sum_over_batch_size", name="rkd_angle", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return rkd_angle(y_true, y_pred)
