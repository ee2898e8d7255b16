"""Keras 3.15 limits under tf.distribute, worked around or refused in this one place.

**Multi-worker fit (worked around).**
Out of the box, ``fit`` with several workers fails in two places of
``keras/src/backend/tensorflow/trainer.py`` (keras-team/keras#20585, #20329):

1. ``TensorFlowTrainer._maybe_symbolic_build`` reduces the first distributed batch with
   ``strategy.reduce("MEAN", batch, axis=None)`` to build the model symbolically. Under
   multi-worker collectives that reduction does not accept a ``PerReplica`` batch:
   ``ValueError: Attempt to convert a value (PerReplica:{...}) with an unsupported type``.
2. ``reduce_per_replica`` reduces every step output with ``strategy.reduce("MEAN", v,
   axis=0)`` when the strategy is multi-worker, and the logs of a step are scalars:
   ``ValueError: Invalid reduction dimension 0 for input with 0 dimensions``.

``enable_multi_worker_fit(model)`` fixes both for one model, on the instance (no Keras code is
patched): the symbolic build takes this worker's first replica batch (only shapes and dtypes
matter there), and the model's ``train_step``/``test_step`` return their scalar logs with
shape ``[1]``, which the axis-0 mean turns back into the cross-replica scalar.

``tests/recipe/test_strategies.py::test_multiworker_distillation`` runs un-patched ``fit`` under two
workers and asserts both failures still occur. When it fails, Keras has fixed or changed
this: delete ``enable_multi_worker_fit`` and its one call in ``kdzoo.recipe.phases``.

**steps_per_execution > 1 under MirroredStrategy (refused).** Keras runs several steps per
call in a ``tf.while_loop`` whose body calls ``strategy.run`` inside a ``tf.cond``; with
mirrored replicas the optimizer's cross-replica ``merge_call`` cannot live in that branch and
``fit`` fails with ``INVALID_ARGUMENT: You must feed a value for placeholder tensor
'while/cond/Placeholder...'`` (any model; see keras-team/keras#19246).
``check_steps_per_execution`` raises a clear error instead. One device is not affected;
``TPUStrategy`` is not refused (it could not be tried here). ``tests/scripts/fit_parity.py`` asserts
that Keras still fails; when that test fails, delete ``check_steps_per_execution``.

Off TensorFlow there is no ``tf.distribute``: the module imports without TensorFlow and its
functions do nothing.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

import keras
from keras import tree

from kdzoo.backend import is_tensorflow

if TYPE_CHECKING:  # tf.distribute exists on the TensorFlow backend only; imported there
    import tensorflow as tf

#: The Keras issues this module works around.
KERAS_ISSUES = ("keras-team/keras#20585", "keras-team/keras#20329", "keras-team/keras#19246")


def needs_multi_worker_fit_workaround(strategy: tf.distribute.Strategy) -> bool:
    """True under ``MultiWorkerMirroredStrategy`` with more than one worker (never off
    TensorFlow, which has no ``tf.distribute``)."""
    if not is_tensorflow():
        return False
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return strategy.extended._in_multi_worker_mode()  # the test Keras itself makes


def _first_local_batch(strategy, batch):
    return tree.map_structure(lambda v: strategy.experimental_local_results(v)[0], batch)


def _vector_logs(outputs):
    import tensorflow as tf

    return tree.map_structure(
        lambda v: tf.reshape(v, [1]) if isinstance(v, tf.Tensor) and v.shape.rank == 0 else v,
        outputs,
    )


def enable_multi_worker_fit(model, *, build=True, logs=True) -> bool:
    """Lets ``model.fit``/``evaluate`` run under multi-worker ``MultiWorkerMirroredStrategy``.

    Call it after ``compile`` (inside or outside the strategy scope). Does nothing, and
    returns False, under any other strategy and off TensorFlow.

    Args:
        model: a compiled ``keras.Model`` created in a ``MultiWorkerMirroredStrategy`` scope.
        build: work around failure 1 (the symbolic build). Defaults to True.
        logs: work around failure 2 (scalar logs). Defaults to True. Tests turn one off to
            check that Keras still fails without it.

    Returns:
        Whether the workaround was applied.
    """
    if not is_tensorflow():
        return False
    strategy = model.distribute_strategy
    if not needs_multi_worker_fit_workaround(strategy):
        return False
    if build:

        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            if iterator is not None:
                for _, _, batches in iterator:
                    data_batch = _first_local_batch(strategy, next(batches))
                    break
            with strategy.scope():
                self._symbolic_build(data_batch=data_batch)

        model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)
    if logs:
        for name in ("train_step", "test_step"):
            step = getattr(model, name)

            def vector_step(data, step=step):
                return _vector_logs(step(data))

            setattr(model, name, vector_step)
        # Keras caches the step functions once made; make them again with the new steps.
        model.train_function = model.test_function = None
    return True


def check_steps_per_execution(strategy: tf.distribute.Strategy, steps_per_execution: int):
    """Raises ``ValueError`` for ``steps_per_execution > 1`` under (multi-worker) mirrored
    replicas, which Keras 3.15 cannot run (see the module docstring). Nothing to check
    off TensorFlow."""
    if not is_tensorflow():
        return
    import tensorflow as tf

    mirrored = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    if steps_per_execution > 1 and isinstance(strategy, mirrored):
        raise ValueError(
            f"steps_per_execution={steps_per_execution} does not work under "
            f"{type(strategy).__name__} in Keras {keras.__version__}: fit fails with 'You must "
            "feed a value for placeholder tensor' (keras-team/keras#19246). Use "
            "steps_per_execution=1 with this strategy; on one device larger values work."
        )
