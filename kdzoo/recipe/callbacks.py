"""Callbacks every phase of the recipe trains with."""

from __future__ import annotations

import keras
import numpy as np


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or weight."""


_NON_FINITE_HINT = (
    "Check the inputs for NaN/Inf values and that the learning rate is not too large."
)


class RaiseOnNonFinite(keras.callbacks.Callback):
    """Stops training with ``NonFiniteLossError`` at the first NaN or infinite loss, or at
    the end of an epoch whose weights are not all finite.

    Keras' ``TerminateOnNaN`` only stops ``fit``, which then returns normally with NaN
    weights; a recipe must not go on to evaluate or export them.

    Args:
        phase: named in the error (e.g. ``"teacher"``).
    """

    def __init__(self, phase="training"):
        super().__init__()
        self.phase = phase
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"The {self.phase} loss became {float(loss)} at epoch {self._epoch}, batch "
                f"{batch}; training stopped. {_NON_FINITE_HINT}"
            )

    def on_epoch_end(self, epoch, logs=None):
        # A loss can stay finite while weights overflow (seen with a learning rate of 1e30).
        # get_weights reads distributed (Mirrored) variables too.
        for variable, value in zip(self.model.weights, self.model.get_weights(), strict=True):
            if not np.isfinite(value).all():
                raise NonFiniteLossError(
                    f"The {self.phase} weights became non-finite at epoch {epoch} "
                    f"({variable.path}); training stopped. {_NON_FINITE_HINT}"
                )


class EpochLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
