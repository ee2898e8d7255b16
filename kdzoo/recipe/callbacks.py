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


class _SavedState:
    """Keeps a callback's counters (and, for early stopping, the best weights) in
    ``state_dir``, so a resumed phase goes on exactly where the killed one stopped.

    Only the chief writes (``is_chief``); every worker reads. JSON and ``.npz`` files are
    written to a temporary name and renamed.
    """

    _STATE: tuple = ()
    _FILE = ""

    def _init_state(self, state_dir, is_chief):
        self.state_dir = state_dir
        self.is_chief = is_chief

    def _path(self, name):
        import os

        return os.path.join(self.state_dir, name)

    def _load_state(self):
        if not self.state_dir:
            return None
        import json

        import tensorflow as tf

        path = self._path(self._FILE)
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as f:
            try:
                state = json.load(f)
            except ValueError as err:
                raise ValueError(f"{path} is not kdzoo callback state ({err}).") from err
        for key in self._STATE:
            setattr(self, key, state[key])
        return state

    def _save_state(self):
        if not self.state_dir or not self.is_chief:
            return
        import json

        import tensorflow as tf

        tf.io.gfile.makedirs(self.state_dir)
        state = {key: _plain(getattr(self, key)) for key in self._STATE}
        path = self._path(self._FILE)
        with tf.io.gfile.GFile(path + ".tmp", "w") as f:
            f.write(json.dumps(state))
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_weights_npz(path, weights):
    """Writes a list of arrays to ``path`` (``.npz``, no pickles), via a temporary name."""
    import io

    import tensorflow as tf

    buffer = io.BytesIO()
    np.savez(buffer, *[np.asarray(w) for w in weights])
    with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
        f.write(buffer.getvalue())
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def load_weights_npz(path):
    """The list of arrays ``save_weights_npz`` wrote."""
    import io

    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()), allow_pickle=False)
        return [data[f"arr_{i}"] for i in range(len(data.files))]


#: Monitored metrics where lower is better besides losses (``kdzoo.tasks.LOWER_IS_BETTER``).
_LOWER_IS_BETTER = ("mse", "mae")


def _mode(monitor) -> str:
    """``"min"`` for a loss or an error (``val_loss``, ``val_mse``, ``val_mae``), else
    ``"max"`` (accuracy, AUC, R²)."""
    name = monitor.removeprefix("val_")
    return "min" if "loss" in monitor or name in _LOWER_IS_BETTER else "max"


class ValidationStopping(_SavedState, keras.callbacks.EarlyStopping):
    """Keras ``EarlyStopping`` on validation accuracy that restores the best epoch's
    weights, and whose counters and best weights survive a resumed run.

    Args:
        patience: epochs without a better ``monitor`` before training stops.
        monitor: Defaults to ``"val_accuracy"``. Higher is better, except for a loss,
            ``val_mse`` and ``val_mae``.
        state_dir: where the state is kept (the phase's backup folder); None keeps none.
        is_chief: whether this process writes the state.
    """

    _STATE = ("wait", "best", "best_epoch", "stopped_epoch")
    _FILE = "early_stopping.json"
    _WEIGHTS = "best.weights.npz"

    def __init__(self, patience, monitor="val_accuracy", state_dir=None, is_chief=True):
        super().__init__(
            monitor=monitor, mode=_mode(monitor), patience=patience, restore_best_weights=True
        )
        self._init_state(state_dir, is_chief)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._load_state() is not None and self.best is not None:
            self.best_weights = load_weights_npz(self._path(self._WEIGHTS))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch and self.state_dir and self.is_chief:
            import tensorflow as tf

            tf.io.gfile.makedirs(self.state_dir)
            save_weights_npz(self._path(self._WEIGHTS), self.best_weights)
        self._save_state()


class PlateauSchedule(_SavedState, keras.callbacks.ReduceLROnPlateau):
    """Keras ``ReduceLROnPlateau`` on validation accuracy whose counters survive a resumed
    run (the learning rate itself is an optimizer variable, saved with the backup).

    Args:
        patience: epochs without a better ``monitor`` before the rate is multiplied by
            ``factor``.
        factor: the multiplier, in (0, 1).
        min_lr: the rate is not reduced below it.
        monitor: Defaults to ``"val_accuracy"``.
        state_dir, is_chief: as for ``ValidationStopping``.
    """

    _STATE = ("wait", "best", "cooldown_counter")
    _FILE = "plateau.json"

    def __init__(
        self,
        patience,
        factor,
        min_lr=0.0,
        monitor="val_accuracy",
        state_dir=None,
        is_chief=True,
    ):
        super().__init__(
            monitor=monitor, mode=_mode(monitor), patience=patience, factor=factor, min_lr=min_lr
        )
        self._init_state(state_dir, is_chief)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._load_state()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._save_state()
