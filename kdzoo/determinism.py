"""Reproducible runs: one call seeds every generator and sets TensorFlow's op determinism.

``seed_everything(seed)`` is what the recipe (``distil()``, ``kdzoo distil``, ``kdzoo
demo``), the studies and ``kdzoo bench zoo`` call before they build a model. With op
determinism on, TensorFlow picks deterministic kernels and makes ``tf.data`` keep its order
(a ``map`` with stateful random ops runs serially), so the same seed on the same machine and
software gives bit-identical weights. ``benchmarks/determinism.py`` measures what it costs
on kdzoo's own training.

Keras turns XLA off while op determinism is on (``keras.src.trainers.trainer.
model_supports_jit``: "not all ops are supported by XLA with determinism enabled"), so the
default, ``"auto"`` (``DEFAULTS.op_determinism``), turns it on only where XLA would not be
used anyway: no GPU or TPU is visible and ``jit_compile`` is not True. On an accelerator a
run keeps XLA and is reproducible only up to the accelerator's own non-determinism; pass
``op_determinism=True`` to trade XLA for bit-identical reruns.

Op determinism is a process-wide TensorFlow setting; each seeded run sets it, on or off.
"""

from __future__ import annotations

from kdzoo.defaults import DEFAULTS

SETTINGS = (True, False, "auto")


def resolve_op_determinism(setting=DEFAULTS.op_determinism, jit_compile="auto") -> bool:
    """``setting`` (True, False or ``"auto"``) as on or off: ``"auto"`` is on unless
    ``jit_compile`` is True or a GPU or TPU is visible (where Keras would compile with XLA,
    which op determinism turns off)."""
    if setting not in SETTINGS:
        raise ValueError(f"op_determinism must be True, False or 'auto'; got {setting!r}.")
    if setting != "auto":
        return bool(setting)
    if jit_compile is True:
        return False
    import tensorflow as tf

    return not any(tf.config.list_physical_devices(kind) for kind in ("GPU", "TPU"))


def seed_everything(seed: int, *, op_determinism=DEFAULTS.op_determinism, jit_compile="auto"):
    """Seeds Python, NumPy, TensorFlow and Keras with ``seed`` and sets TensorFlow's op
    determinism on or off (``resolve_op_determinism``). Returns whether it is on."""
    import keras

    # TensorFlow exports enable_op_determinism only; its disable lives beside it.
    from tensorflow.python.framework import config

    keras.utils.set_random_seed(seed)
    on = resolve_op_determinism(op_determinism, jit_compile)
    if on:
        config.enable_op_determinism()
    else:
        config.disable_op_determinism()
    return on


def op_determinism_enabled() -> bool:
    """Whether TensorFlow's op determinism is on in this process."""
    from tensorflow.python.framework import config

    return bool(config.is_op_determinism_enabled())


__all__ = ["SETTINGS", "op_determinism_enabled", "resolve_op_determinism", "seed_everything"]
