"""Range checks of integer class labels for the label-reading losses (``ce``, DKD, NKD), per
backend, and the NaN that marks an out-of-range label where nothing can raise."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kdzoo.backend import is_tensorflow


def _check_labels(labels, classes, what):
    """Checks that integer ``labels`` lie in ``[0, classes)``; returns ``(labels, valid)``.

    The message follows the one of ``SparseSoftmaxCrossEntropyWithLogits`` on CPU
    ("Received a label value of 10 which is outside the valid range of [0, 10)"), prefixed
    with ``what``. ``ops.one_hot`` would turn such a label into an all-zero row, and a loss
    built on it would train on nothing, silently.

    On TensorFlow:

    - Eagerly: raises ``tf.errors.InvalidArgumentError`` at once.
    - In a ``tf.function`` (``fit``, ``evaluate``): a ``tf.debugging.Assert`` raises the same
      error when the step runs. The returned labels carry a control dependency on it, so
      nothing computed from them (the loss, its gradient, the optimizer update) runs first.
    - Under XLA (``jit_compile=True``), TF 2.21 compiles the step but drops Assert ops: no
      error is raised. The caller must then mark the invalid examples with ``valid``; the
      label losses give them a NaN loss, as sparse cross-entropy does under XLA.

    On other backends:

    - Concrete labels (eager JAX, e.g. ``run_eagerly=True``; PyTorch; NumPy): raises
      ``ValueError`` with the same message.
    - Inside ``jax.jit`` (Keras' ``fit``/``evaluate`` on JAX by default) the labels are
      tracers whose values are unknown and nothing can raise: as under XLA on TensorFlow,
      the invalid examples get a NaN loss through ``valid`` (their one-hot row is all
      zero), so the reported loss is NaN, and they add nothing to the gradient.

    Args:
        labels: ``[batch]`` integer class ids.
        classes: the static number of classes.
        what: the loss named in the message.

    Returns:
        ``(labels as int32, [batch] boolean valid mask)``.
    """
    labels = ops.cast(labels, "int32")
    valid = ops.logical_and(labels >= 0, labels < classes)
    expected = f"which is outside the valid range of [0, {classes})."
    if is_tensorflow():
        return _check_labels_tensorflow(labels, valid, expected, what)
    if _is_jax_tracer(labels):
        return labels, valid
    values = ops.convert_to_numpy(labels)
    bad = values[~ops.convert_to_numpy(valid)]
    if bad.size:
        raise ValueError(
            f"{what}: Received a label value of {bad[0]} {expected} Label values: {values.tolist()}"
        )
    return labels, valid


def _check_labels_tensorflow(labels, valid, expected, what):
    """``_check_labels`` on TensorFlow: an eager error, or an Assert the labels depend on."""
    import tensorflow as tf

    if tf.executing_eagerly():
        bad = np.asarray(labels)[~np.asarray(valid)]
        if bad.size:
            raise tf.errors.InvalidArgumentError(
                None,
                None,
                f"{what}: Received a label value of {bad[0]} {expected} Label values: "
                f"{np.asarray(labels).tolist()}",
            )
        return labels, valid
    first_bad = tf.gather(labels, tf.argmax(tf.cast(tf.logical_not(valid), "int32")))
    check = tf.debugging.Assert(
        tf.reduce_all(valid),
        [f"{what}: Received a label value of", first_bad, f"{expected} Label values:", labels],
        summarize=16,
    )
    with tf.control_dependencies([check]):
        return tf.identity(labels), valid


def _is_jax_tracer(value) -> bool:
    """Whether ``value`` is traced by JAX (``jit``, ``grad``): its values are unknown."""
    if keras.config.backend() != "jax":
        return False
    import jax

    return isinstance(value, jax.core.Tracer)


def _nan_where_invalid(values, valid):
    """``values`` with NaN for examples whose label ``_check_labels`` found invalid; only
    reached where the check cannot raise (XLA on TensorFlow, which drops its Assert, and
    ``jax.jit``). The NaN is a constant: those examples show in the reported loss but give
    a zero (not NaN) gradient."""
    return ops.where(valid, values, float("nan"))
