"""Argument validators, written once: for config dataclasses (``ValueError`` naming
``<Config>.<field>``) and for the command line (``argparse`` types naming what was expected).

Light on purpose: the CLI parses with these before TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import math


def int_problem(value, minimum: int) -> str | None:
    """What is wrong with ``value`` as an int >= ``minimum`` (None if nothing)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"an integer >= {minimum}"
    return None if value >= minimum else f"an integer >= {minimum}"


def number_problem(value, strict: bool) -> str | None:
    """What is wrong with ``value`` as a finite number > 0 (``strict``) or >= 0."""
    expected = "a finite number > 0" if strict else "a finite number >= 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return expected
    if not math.isfinite(value) or value < 0 or (strict and value == 0):
        return expected
    return None


def check_settings(config, ints=(), optional_ints=(), positive=(), nonnegative=()) -> None:
    """Raises ``ValueError`` naming ``<Config>.<field>`` for a setting out of its range.

    Args:
        config: a settings dataclass (``DistilConfig``, ``DemoConfig``, ...).
        ints: ``(field, minimum)`` pairs that must be ints >= minimum.
        optional_ints: ``(field, minimum)`` pairs that may also be None.
        positive: fields that must be finite numbers > 0 (learning rates, temperatures).
        nonnegative: fields that must be finite numbers >= 0 (loss weights).
    """
    owner = type(config).__name__
    checks = [(field, lambda v, m=m: int_problem(v, m), False) for field, m in ints]
    checks += [(field, lambda v, m=m: int_problem(v, m), True) for field, m in optional_ints]
    checks += [(field, lambda v: number_problem(v, True), False) for field in positive]
    checks += [(field, lambda v: number_problem(v, False), False) for field in nonnegative]
    for field, problem, optional in checks:
        value = getattr(config, field)
        if optional and value is None:
            continue
        expected = problem(value)
        if expected:
            none = "None or " if optional else ""
            raise ValueError(f"{owner}.{field} must be {none}{expected}; got {value!r}.")


def int_at_least(minimum: int):
    """An ``argparse`` type: an integer >= ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        expected = int_problem(value, minimum)
        if expected:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def finite_number(strict: bool):
    """An ``argparse`` type: a finite number > 0 (``strict``) or >= 0."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        expected = number_problem(value, strict)
        if expected:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse
