"""The Keras backend kdzoo runs on, and the one place that asks ``tf.distribute`` about it.

The core of kdzoo (models, losses, labels, tasks, the distillation objective) is written
with ``keras.ops`` and runs on any Keras 3 backend; TensorFlow is imported only where a
TensorFlow-only feature is used. The replica scaling of losses differs by backend:

- TensorFlow: under a ``tf.distribute`` strategy each replica computes the loss of its own
  part of the batch, and Keras divides it by ``num_replicas_in_sync`` so that the gradients,
  summed across replicas, are those of the global-batch mean.
- JAX (and PyTorch): Keras computes the loss on the global batch (``keras.distribution``
  shards one global array over the devices), so there is nothing to scale: ``1`` replica.

This module imports no TensorFlow at import time.
"""

from __future__ import annotations

import keras


def name() -> str:
    """The Keras backend: ``"tensorflow"``, ``"jax"``, ``"torch"`` or ``"numpy"``."""
    return keras.config.backend()


def is_tensorflow() -> bool:
    """Whether Keras runs on TensorFlow (``tf.distribute``, ``tf.data``, XLA via TF)."""
    return name() == "tensorflow"


def num_replicas_in_sync() -> int:
    """Replicas that each compute a loss on part of the batch.

    On TensorFlow, those of the current ``tf.distribute`` strategy (1 outside any strategy).
    Elsewhere 1: on JAX and PyTorch Keras computes the loss on the global batch.
    """
    if not is_tensorflow():
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def scale_for_replicas(value):
    """``value / num_replicas``: how Keras scales a per-replica loss under ``tf.distribute``,
    so that the gradients, summed across replicas by ``apply_gradients``, are those of the
    global-batch mean. ``value`` unchanged with one replica, and always off TensorFlow (the
    loss there is already the global batch's)."""
    n = num_replicas_in_sync()
    return value if n == 1 else value * (1.0 / n)


def unscale_for_replicas(value):
    """Inverse of ``scale_for_replicas``, for reporting a loss as a metric."""
    n = num_replicas_in_sync()
    return value if n == 1 else value * float(n)


def require_tensorflow(feature: str) -> None:
    """Raises ``RuntimeError`` naming ``feature`` unless Keras runs on TensorFlow.

    For the parts of kdzoo built on TensorFlow itself (the recipe's tf.data pipelines,
    tf.distribute strategies and backups, TF Serving exports), which would otherwise fail
    deep inside with another backend's error.
    """
    if not is_tensorflow():
        raise RuntimeError(
            f"{feature} needs Keras's TensorFlow backend; Keras runs on {name()!r} here "
            "(KERAS_BACKEND). On this backend, run the recipe on NumPy arrays "
            "(kdzoo.datasets.from_numpy) or train with kdzoo.Distiller's fit (README: 'Keras "
            "backends'), or set KERAS_BACKEND=tensorflow before importing Keras."
        )
