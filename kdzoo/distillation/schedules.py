"""Schedules for distillation hyper-parameters, and the callback that applies them.

A schedule maps an epoch index (0-based) to a value. ``DistillationScheduler`` assigns,
at the start of each epoch, a Distiller term's weight (``distiller.term_weights``) and/or
the temperature of its temperature-based losses (their ``temperature_variable``). Both are
variables, so the change takes effect without retracing the train step.

A schedule given ``epochs=E`` reaches its end value at epoch ``E`` (0-based), the first
epoch of a ``fit(epochs=E + 1)``; to end on the last epoch of ``fit(epochs=N)``, give it
``epochs=N - 1``.

Schedules are plain serialisable objects (``get_config``/``from_config``, registered with
Keras), so a callback configuration can be written to and read from JSON.

Example: a linear warm-up of the KD weight over 5 epochs and a temperature decaying from 8
to 2::

    kdzoo.distillation.DistillationScheduler(
        weights={"kd": kdzoo.distillation.Linear(0.0, 0.5, epochs=5)},
        temperature=kdzoo.distillation.Exponential(8.0, 2.0, epochs=10),
    )
"""

from __future__ import annotations

import abc
import math
import numbers

import keras


class Schedule(abc.ABC):
    """Base class: ``schedule(epoch) -> float``."""

    @abc.abstractmethod
    def __call__(self, epoch: int) -> float:
        """The value at 0-based ``epoch``."""

    @abc.abstractmethod
    def get_config(self) -> dict:
        """The constructor arguments, for ``from_config``."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_epochs(epochs):
    if not isinstance(epochs, numbers.Integral) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"`epochs` must be an int >= 1; got {epochs!r}.")
    return int(epochs)  # NumPy integers too, as a Python int (JSON configs)


@keras.saving.register_keras_serializable(package="kdzoo")
class Constant(Schedule):
    """The same ``value`` every epoch."""

    def __init__(self, value):
        self.value = float(value)

    def __call__(self, epoch):
        return self.value

    def get_config(self):
        return {"value": self.value}


@keras.saving.register_keras_serializable(package="kdzoo")
class Linear(Schedule):
    """From ``start`` at epoch 0 to ``end`` at epoch ``epochs`` (linear), then ``end``; a
    warm-up when ``start < end``, a decay when ``start > end``."""

    def __init__(self, start, end, epochs):
        self.start, self.end, self.epochs = float(start), float(end), _check_epochs(epochs)

    def __call__(self, epoch):
        fraction = min(max(epoch, 0), self.epochs) / self.epochs
        return self.start + (self.end - self.start) * fraction

    def get_config(self):
        return {"start": self.start, "end": self.end, "epochs": self.epochs}


@keras.saving.register_keras_serializable(package="kdzoo")
class Exponential(Schedule):
    """Geometric from ``start`` at epoch 0 to ``end`` at epoch ``epochs``, then ``end``
    (both > 0); e.g. a temperature annealed from 8 to 2."""

    def __init__(self, start, end, epochs):
        if start <= 0 or end <= 0:
            raise ValueError(f"Exponential needs start and end > 0; got {start}, {end}.")
        self.start, self.end, self.epochs = float(start), float(end), _check_epochs(epochs)

    def __call__(self, epoch):
        fraction = min(max(epoch, 0), self.epochs) / self.epochs
        return math.exp(
            math.log(self.start) + (math.log(self.end) - math.log(self.start)) * fraction
        )

    def get_config(self):
        return {"start": self.start, "end": self.end, "epochs": self.epochs}


@keras.saving.register_keras_serializable(package="kdzoo")
class Cosine(Schedule):
    """Half-cosine from ``start`` at epoch 0 to ``end`` at epoch ``epochs``, then ``end``."""

    def __init__(self, start, end, epochs):
        self.start, self.end, self.epochs = float(start), float(end), _check_epochs(epochs)

    def __call__(self, epoch):
        fraction = min(max(epoch, 0), self.epochs) / self.epochs
        return self.end + (self.start - self.end) * 0.5 * (1 + math.cos(math.pi * fraction))

    def get_config(self):
        return {"start": self.start, "end": self.end, "epochs": self.epochs}


def _as_schedule(value, what):
    if isinstance(value, Schedule):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):  # NumPy scalars too
        return Constant(value)
    if isinstance(value, dict):
        return keras.saving.deserialize_keras_object(value)
    raise TypeError(f"{what} must be a Schedule, a number or a serialised schedule; got {value!r}.")


class DistillationScheduler(keras.callbacks.Callback):
    """Sets a Distiller's term weights and temperature at the start of every epoch.

    Args:
        weights: ``{term name: schedule}``; names are the Distiller's ``LossTerm`` names
            (``"ce"``, ``"kd"``, ``"feature"`` for the default terms).
        temperature: a schedule for ``τ``, applied to every loss term that has a
            ``temperature_variable`` (KD, DKD, non-target KD...).
        verbose: log the values set each epoch.

    The values of the last epoch started are in ``history`` (``{name: [values]}``), and are
    also written into the epoch logs as ``"<name>_weight"`` and ``"temperature"`` at the
    epoch's end, where the callbacks listed after this one (``CSVLogger``, ``TensorBoard``)
    and ``fit``'s returned ``History`` see them; callbacks listed before it and the progress
    bar do not.
    """

    def __init__(self, weights=None, temperature=None, verbose=False):
        super().__init__()
        self.weights = {k: _as_schedule(v, f"weights[{k!r}]") for k, v in (weights or {}).items()}
        self.temperature = None if temperature is None else _as_schedule(temperature, "temperature")
        self.verbose = verbose
        self.history = {}

    def _targets(self):
        distiller = self.model
        terms = getattr(distiller, "loss_terms", None)
        if terms is None:
            raise TypeError("DistillationScheduler works on a kdzoo.Distiller.")
        names = [t.name for t in terms]
        unknown = [k for k in self.weights if k not in names]
        if unknown:
            raise ValueError(f"No loss term(s) {unknown} in the Distiller; it has {names}.")
        variables = {t.name: v for t, v in zip(terms, distiller.term_weights, strict=True)}
        temperatures = [
            t.loss.temperature_variable for t in terms if hasattr(t.loss, "temperature_variable")
        ]
        if self.temperature is not None and not temperatures:
            raise ValueError("A temperature schedule was given but no term has a temperature.")
        return variables, temperatures

    def on_epoch_begin(self, epoch, logs=None):
        variables, temperatures = self._targets()
        values = {}
        for name, schedule in self.weights.items():
            values[f"{name}_weight"] = schedule(epoch)
            variables[name].assign(values[f"{name}_weight"])
        if self.temperature is not None:
            values["temperature"] = self.temperature(epoch)
            for variable in temperatures:
                variable.assign(values["temperature"])
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)
        if self.verbose:
            print(f"Epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({k: v[-1] for k, v in self.history.items()})

    def get_config(self):
        return {
            "weights": {k: keras.saving.serialize_keras_object(v) for k, v in self.weights.items()},
            "temperature": None
            if self.temperature is None
            else keras.saving.serialize_keras_object(self.temperature),
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
