"""Reproducible runs: one call seeds every generator and turns on TensorFlow's op
determinism.

``seed_everything(seed)`` is what the recipe (``distil()``, ``kdzoo distil``, ``kdzoo
demo``), the studies and ``kdzoo bench zoo`` call before they build a model. With op
determinism on, TensorFlow picks deterministic kernels and makes ``tf.data`` keep its order
(a ``map`` with stateful random ops runs serially), so the same seed on the same machine and
software gives bit-identical weights. ``benchmarks/determinism.py`` measures what it costs
on kdzoo's own training; ``DEFAULTS.op_determinism`` is the default.

Op determinism is a process-wide TensorFlow setting: once a run turned it on, it stays on
in that process until ``tf.config.experimental.disable_op_determinism()``.
"""

from __future__ import annotations

from kdzoo.defaults import DEFAULTS


def seed_everything(seed: int, *, op_determinism: bool = DEFAULTS.op_determinism) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras with ``seed`` and, when
    ``op_determinism``, turns on TensorFlow's op determinism (left as it is otherwise)."""
    import keras

    keras.utils.set_random_seed(seed)
    if op_determinism:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def op_determinism_enabled() -> bool:
    """Whether TensorFlow's op determinism is on in this process."""
    from tensorflow.python.framework import config

    return bool(config.is_op_determinism_enabled())


__all__ = ["op_determinism_enabled", "seed_everything"]
