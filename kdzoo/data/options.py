"""The ``tf.data.Options`` every pipeline kdzoo hands to ``fit`` carries.

tf.data's autotuning *model* is off in them. With it on (TensorFlow 2.21), deleting an
iterator can block until the iterator's ``tf_data_model`` thread wakes up from its current
wait, although the iterator has been cancelled. That thread optimises after about 10 ms, and
then waits twice as long as the time before, up to 60 s, so one deletion can cost up to
tens of seconds. Keras deletes an iterator at the end of every ``fit``, ``evaluate`` and
``predict`` and at each validation pass, and a recipe runs dozens of these.

Measured on 2 CPU cores, TensorFlow 2.21 (README, "Iterator teardown"):

- a ``py-spy`` dump of the main thread during a recipe's idle seconds shows it in
  ``RootDataset::Iterator::~Iterator``, waiting for that thread;
- a recipe's phases lasted 21.3, 42.6 or 84.5 s whatever their number of epochs (10.2, 20.5,
  41 and 82 s are the thread's wake-ups, after about 1 s of set-up): an ``audio_crnn``
  teacher's 17 epochs took 84.4 s and 27 epochs 83.8 s;
- sampled once a second, the ``default-recipe`` runs at b6bd809 spent 7% (SMS spam), 19%
  (MNIST) and 16% (AV digits fusion) of their wall time at under 20% of one core, with no
  time stolen by the hypervisor.

With the model off, ``tf.data.AUTOTUNE`` arguments still work without it: a parallel
``map`` runs ``min(16, cores)`` calls at once, and ``prefetch`` grows its own buffer when
the consumer waits. The order and values of the batches do not change.

``KDZOO_TFDATA_AUTOTUNE=1`` turns the model back on (for a pipeline whose throughput
needs it, e.g. heavy preprocessing feeding a GPU); ``0``, the default, keeps it off.
``benchmarks/tfdata_teardown.py`` measures both.
"""

from __future__ import annotations

import os

import tensorflow as tf

#: The environment variable that turns tf.data's autotuning model back on ("1").
AUTOTUNE_ENV = "KDZOO_TFDATA_AUTOTUNE"


def autotune_model() -> bool:
    """Whether kdzoo's pipelines run tf.data's autotuning model: ``KDZOO_TFDATA_AUTOTUNE``
    is ``1`` (on) or ``0``/unset (off)."""
    value = os.environ.get(AUTOTUNE_ENV, "0").strip()
    if value not in ("0", "1"):
        raise ValueError(
            f"{AUTOTUNE_ENV}={value!r}: use 1 (tf.data's autotuning model on) or 0 (off, "
            "the default)."
        )
    return value == "1"


def pipeline_options() -> tf.data.Options:
    """Options with tf.data's autotuning model off, unless ``KDZOO_TFDATA_AUTOTUNE=1``
    (see the module docstring)."""
    options = tf.data.Options()
    options.autotune.enabled = autotune_model()
    return options


def finish(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` prefetched (``AUTOTUNE``) with ``pipeline_options()``: the last step of
    every pipeline kdzoo builds for ``fit``, ``evaluate`` or ``predict``."""
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(pipeline_options())
