"""tf.distribute helpers shared by the Distiller and (later) the strategy resolver."""

from __future__ import annotations

import tensorflow as tf


def num_replicas_in_sync() -> int:
    """Replicas of the current strategy (1 outside any strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def scale_for_replicas(value):
    """``value / num_replicas``: how Keras scales a per-replica loss so that the gradients,
    summed across replicas by ``apply_gradients``, are those of the global-batch mean."""
    n = num_replicas_in_sync()
    return value if n == 1 else value * (1.0 / n)


def unscale_for_replicas(value):
    """Inverse of ``scale_for_replicas``, for reporting a loss as a metric."""
    n = num_replicas_in_sync()
    return value if n == 1 else value * float(n)
