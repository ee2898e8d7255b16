"""The settings the recipe tries for the student: distillation candidates and the scratch
student's own tries.

A candidate is written as one string, so configs and the command line can list them:

- ``"ce:0.5,kd:0.5@t=2"``: the loss terms (``LossTerm.parse``: ``"ce"`` compares with the
  labels, the others with the teacher), then ``@`` and its settings, comma-separated:
  ``t`` the temperature of temperature-based terms, ``lr`` the learning rate, ``ls`` the
  label smoothing of the ``ce`` term. ``"label"`` is the task's own label loss
  (``kdzoo.tasks.Task.label_loss``: cross-entropy, binary cross-entropy or MSE), so
  ``"label:0.5,teacher_mse:0.5"`` distils a regression student; with a task other than
  single-label classification, ``"ce"`` is its label loss too;
- ``"scratch"``, ``"scratch@ls=0.1"``, ``"scratch@lr=0.001"``: the student trained on the
  labels alone.

The recipe gives scratch as many tries as there are distillation candidates
(``scratch_tries``): label smoothing (the regulariser KD is most often confused with) and
the learning rate, so a distilled student is compared with a tuned baseline, not an
under-tuned one.

Example:

>>> Candidate.parse("ce:0.5,kd_std:0.5@t=2").describe()
'ce:0.5,kd_std:0.5 (τ=2)'
>>> [c.name for c in scratch_tries(3, learning_rate=2e-3)]
['scratch', 'scratch@ls=0.1', 'scratch@lr=0.001']
"""

from __future__ import annotations

import dataclasses
import math

from kdzoo.defaults import DEFAULTS
from kdzoo.tasks import LABEL, TERMS_BY_KIND

SCRATCH = "scratch"
_SETTINGS = {"t": "temperature", "lr": "learning_rate", "ls": "label_smoothing"}


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One setting of the student's training.

    Attributes:
        name: the spec it was parsed from (``parse``), shown in reports.
        terms: the loss terms (``"name:weight"``); empty for a scratch student.
        temperature: τ of temperature-based terms.
        learning_rate: the starting learning rate; None uses the recipe's.
        label_smoothing: label smoothing of the cross-entropy (scratch, or a ``ce`` term).
    """

    name: str
    terms: tuple = ()
    temperature: float = DEFAULTS.temperature
    learning_rate: float | None = None
    label_smoothing: float = 0.0

    @property
    def distils(self) -> bool:
        """True for a distillation candidate, False for a scratch student."""
        return bool(self.terms)

    @classmethod
    def parse(cls, spec) -> Candidate:
        """A ``Candidate`` from ``"terms[@key=value,...]"`` or ``"scratch[@...]"``.

        Raises:
            ValueError: naming the spec and the part that is wrong.
        """
        if isinstance(spec, Candidate):
            return spec
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"A candidate must be a non-empty string; got {spec!r}.")
        spec = spec.strip()
        head, _, tail = spec.partition("@")
        settings = {}
        for item in filter(None, (p.strip() for p in tail.split(","))) if tail else ():
            key, sep, value = item.partition("=")
            if not sep or key.strip() not in _SETTINGS:
                raise ValueError(
                    f"Candidate {spec!r}: {item!r} is not a setting; write key=value with key "
                    f"one of {', '.join(_SETTINGS)} (t: temperature, lr: learning rate, ls: "
                    "label smoothing)."
                )
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"Candidate {spec!r}: {item!r} needs a number.") from None
            if _SETTINGS[key.strip()] in settings:
                raise ValueError(f"Candidate {spec!r}: {key.strip()} is set twice.")
            settings[_SETTINGS[key.strip()]] = number
        _check_settings(spec, settings)
        head = head.strip()
        if head == SCRATCH:
            if "temperature" in settings:
                raise ValueError(f"Candidate {spec!r}: a scratch student has no temperature.")
            return cls(name=spec, **settings)
        terms = tuple(t.strip() for t in head.split(",") if t.strip())
        if not terms:
            raise ValueError(f"Candidate {spec!r} names no loss terms (or 'scratch').")
        candidate = cls(name=spec, terms=terms, **settings)
        # Unknown names and bad weights fail here, before anything trains (which task kind
        # a term suits is checked by loss_terms(task), when the task is known).
        if all(term.target == "labels" for term in candidate._loss_terms(None, check=False)):
            raise ValueError(
                f"Candidate {spec!r} has no teacher term; write 'scratch' for a student "
                "trained on the labels alone."
            )
        return candidate

    def loss_terms(self, task=None):
        """The ``LossTerm``s of a distillation candidate (a new set on each call); with a
        ``kdzoo.tasks.Task`` other than single-label classification, the label terms
        (``"label"``, ``"ce"``) are the task's ``label_loss``.

        Raises:
            ValueError: a term the task's kind cannot train (``TERMS_BY_KIND``).
        """
        return self._loss_terms(task, check=True)

    def _loss_terms(self, task, check):
        from kdzoo.distillation import LossTerm
        from kdzoo.losses import HardLabelCrossentropy

        kind = "classification" if task is None else task.kind
        wrong = [s for s in self.terms if s.partition(":")[0] not in TERMS_BY_KIND[kind]]
        if check and wrong:
            raise ValueError(
                f"Candidate {self.name!r}: {', '.join(wrong)} cannot train a {kind} student; "
                f"its terms are {', '.join(TERMS_BY_KIND[kind])}."
            )
        out = []
        for spec in self.terms:
            name, _, weight = spec.partition(":")
            if name == LABEL or (name == "ce" and task is not None):
                term = LossTerm.parse("ce" + (f":{weight}" if weight else ""))
                if task is not None and task.kind != "classification":
                    loss = task.label_loss(self.label_smoothing)
                    out.append(LossTerm(loss, term.weight, target="labels", name=name))
                    continue
                term = LossTerm(term.loss, term.weight, target="labels", name=name)
            else:
                term = LossTerm.parse(spec, temperature=self.temperature)
            if term.target == "labels" and self.label_smoothing:
                term = LossTerm(
                    HardLabelCrossentropy(label_smoothing=self.label_smoothing),
                    term.weight,
                    target="labels",
                    name=term.name,
                )
            out.append(term)
        return out

    def _uses_temperature(self) -> bool:
        return any(_temperature_based(spec.partition(":")[0]) for spec in self.terms)

    def describe(self) -> str:
        """A short label, e.g. ``"ce:0.5,kd:0.5 (τ=2)"`` or ``"scratch (ls=0.1)"``."""
        head = ",".join(self.terms) if self.distils else SCRATCH
        parts = []
        if self.distils and self._uses_temperature():
            parts.append(f"τ={self.temperature:g}")
        if self.learning_rate is not None:
            parts.append(f"lr={self.learning_rate:g}")
        if self.label_smoothing:
            parts.append(f"ls={self.label_smoothing:g}")
        return f"{head} ({', '.join(parts)})" if parts else head


def _temperature_based(name) -> bool:
    from kdzoo import losses

    return name in losses.names() and isinstance(losses.get(name), losses.TemperatureMixin)


def _check_settings(spec, settings):
    for field, value in settings.items():
        if not math.isfinite(value):
            raise ValueError(f"Candidate {spec!r}: {field} must be finite; got {value}.")
    if settings.get("temperature", 1.0) <= 0 or settings.get("learning_rate", 1.0) <= 0:
        raise ValueError(f"Candidate {spec!r}: t and lr must be > 0.")
    if not 0.0 <= settings.get("label_smoothing", 0.0) < 1.0:
        raise ValueError(f"Candidate {spec!r}: ls must be in [0, 1).")


def parse_candidates(specs) -> tuple[Candidate, ...]:
    """``Candidate``s from specs; raises ``ValueError`` on a bad or repeated one."""
    candidates = tuple(Candidate.parse(s) for s in specs)
    names = [c.name for c in candidates]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"Candidates repeat: {', '.join(repeated)}.")
    return candidates


def scratch_tries(
    count, learning_rate=DEFAULTS.learning_rate, smoothing=True
) -> tuple[Candidate, ...]:
    """The scratch student's first ``count`` tries, in this order: as is; label smoothing
    0.1; half the learning rate; both; twice the learning rate; both; then label smoothing
    0.2 at each of those three rates (9 in all). Without ``smoothing`` (regression, where
    labels are not smoothed): as is; half, twice, a quarter, four times, an eighth, eight
    times and a sixteenth of the rate (8 in all).
    """
    rates = (None, learning_rate / 2, learning_rate * 2)
    grid = [(None, 0.0), (None, 0.1), (rates[1], 0.0), (rates[1], 0.1), (rates[2], 0.0)]
    grid += [(rates[2], 0.1), *[(r, 0.2) for r in rates]]
    if not smoothing:
        grid = [(None, 0.0)] + [
            (learning_rate * f, 0.0) for f in (0.5, 2.0, 0.25, 4.0, 0.125, 8.0, 1 / 16)
        ]
    if count > len(grid):
        raise ValueError(f"At most {len(grid)} scratch tries are defined; asked for {count}.")
    out = []
    for rate, smoothing in grid[:count]:
        settings = []
        if rate is not None:
            settings.append(f"lr={rate:g}")
        if smoothing:
            settings.append(f"ls={smoothing:g}")
        out.append(Candidate.parse(SCRATCH + ("@" + ",".join(settings) if settings else "")))
    return tuple(out)
