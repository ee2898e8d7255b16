"""``ArrayBatches``: ``(x, y)`` batches from NumPy arrays, on every Keras backend.

The tf.data pipelines (``kdzoo.data.pipeline``) need TensorFlow. ``ArrayBatches`` is a
``keras.utils.PyDataset``, which ``fit``, ``evaluate`` and ``predict`` take on TensorFlow,
JAX and PyTorch alike, and which a plain ``for`` loop iterates. It gathers each batch by
index, so memory-mapped arrays (``np.load(path, mmap_mode="r")``) work without loading the
whole file.

A training instance (``seed`` given) visits the rows of epoch ``e`` in the order of a
permutation seeded by ``(seed, e)`` and drops the last partial batch (static shapes for
compiled steps), so a run resumed at epoch ``e`` sees the batches the uninterrupted one
would have seen. One instance spans the epochs ``first_epoch`` to ``epochs - 1``, as
``kdzoo.recipe.batching`` does for tf.data: fit it with ``epochs=epochs,
initial_epoch=first_epoch, steps_per_epoch=batches.steps_per_epoch``. An instance that
spans several epochs reports no length to Keras (``num_batches`` is None), so ``fit``
reads its batches in order: with a length, ``fit``'s default ``shuffle=True`` would shuffle
the batch indices of all its epochs together. A one-epoch instance (the default, and what
``kdzoo.datasets.from_numpy(...).pipeline("train")`` returns) gives the same permutation
each time it is read: ``fit(batches, epochs=N)`` sees one permutation N times (reordered
by ``shuffle=True``) and never the rows its partial batch drops; build it with
``epochs=N`` for a new permutation every epoch.
"""

from __future__ import annotations

import keras
import numpy as np

from kdzoo.data.routing import select_inputs


def _rows(value) -> int:
    if isinstance(value, dict):
        return _rows(next(iter(value.values())))
    return len(value)


def _take(value, index):
    if isinstance(value, dict):
        return {k: _take(v, index) for k, v in value.items()}
    return value[index]


class ArrayBatches(keras.utils.PyDataset):
    """``(x, y)`` batches (``x`` alone without ``y``) drawn from arrays.

    Args:
        x: ``{key: array}`` with one row per example; a value may itself be such a dict
            (e.g. cached teacher outputs under ``"teacher_outputs"``).
        y: the labels (one row per example), or None.
        batch_size: rows per batch.
        seed: None reads the rows in order, keeping the last partial batch (evaluation);
            an int shuffles every epoch with a permutation seeded by ``(seed, epoch)`` and
            drops the last partial batch (training).
        first_epoch, epochs: the epochs this instance spans, ``first_epoch`` to
            ``epochs - 1``, one after another (training; ``steps_per_epoch`` batches each).

    Raises:
        ValueError: no rows, rows of different lengths, or fewer rows than one training
            batch.
    """

    def __init__(self, x, y=None, *, batch_size, seed=None, first_epoch=0, epochs=1):
        super().__init__()
        if not isinstance(x, dict) or not x:
            raise ValueError(
                f"`x` must be a non-empty dict {{key: array}}; got {type(x).__name__}."
            )
        counts = {k: _rows(v) for k, v in x.items()}
        if y is not None:
            counts["labels"] = len(y)
        if len(set(counts.values())) != 1:
            raise ValueError(f"Every array needs the same number of rows; got {counts}.")
        self.x, self.y = x, y
        self.num_rows = next(iter(counts.values()))
        self.batch_size, self.seed = int(batch_size), seed
        self.first_epoch, self.epochs = int(first_epoch), int(epochs)
        if self.batch_size < 1 or not 0 <= self.first_epoch <= self.epochs:
            raise ValueError(
                f"Need batch_size >= 1 and 0 <= first_epoch <= epochs; got {self.batch_size}, "
                f"{self.first_epoch}, {self.epochs}."
            )
        if seed is None:
            self.steps_per_epoch = -(-self.num_rows // self.batch_size)
        else:
            self.steps_per_epoch = self.num_rows // self.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"{self.num_rows} rows do not fill one training batch of {self.batch_size}."
            )
        self._order = (None, None)  # (epoch, permutation): one permutation per epoch

    def __len__(self):
        return self.steps_per_epoch * (self.epochs - self.first_epoch)

    @property
    def num_batches(self):
        # A training instance that spans several epochs is read in order (Keras shuffles
        # the batch indices of an instance with a length, across the epochs it spans).
        if self.seed is not None and self.epochs - self.first_epoch > 1:
            return None
        return len(self)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"batch {index} of {len(self)}: these batches span epochs {self.first_epoch} "
                f"to {self.epochs - 1} of {self.steps_per_epoch} steps; fit them with "
                f"steps_per_epoch={self.steps_per_epoch} and no more epochs."
            )
        epoch, step = divmod(index, self.steps_per_epoch)
        start = step * self.batch_size
        if self.seed is None:
            rows = slice(start, start + self.batch_size)
        else:
            epoch += self.first_epoch
            if self._order[0] != epoch:
                rng = np.random.default_rng([int(self.seed), epoch])
                self._order = (epoch, rng.permutation(self.num_rows))
            rows = self._order[1][start : start + self.batch_size]
        x = _take(self.x, rows)
        return x if self.y is None else (x, self.y[rows])

    def select(self, keys, reader="model") -> ArrayBatches:
        """The same batches with ``x`` cut down to ``keys`` (a model's input names), like
        ``kdzoo.data.for_model`` for a tf.data pipeline; ``MissingInputError`` names a key
        that ``x`` lacks."""
        return ArrayBatches(
            select_inputs(self.x, keys, reader),
            self.y,
            batch_size=self.batch_size,
            seed=self.seed,
            first_epoch=self.first_epoch,
            epochs=self.epochs,
        )
