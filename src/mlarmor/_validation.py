"""Parameter checks with one message shape, for every layer of mlarmor (private).

Each check returns the value normalised (an ``int``, a ``float``, a ``str``) or raises the
:class:`~mlarmor.errors.InvalidParameterError` of :func:`~mlarmor.errors.invalid_parameter`:
``The 'epochs' parameter of harden must be at least 1 (a whole number). Got 0 instead.`` The error
carries the parameter's name, what was expected and the valid choices, so that the command line
words the same check as ``--epochs must be at least 1 (a whole number), got 0`` without checking
anything again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import TypeVar

from mlarmor.errors import invalid_parameter

__all__ = [
    "check_choice",
    "check_float",
    "check_fraction",
    "check_int",
    "check_positive",
    "check_seed",
    "is_int",
    "is_real",
]

_S = TypeVar("_S", bound=str)


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (numpy's too), bools excluded."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (numpy's too), bools excluded."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_int(value: object, name: str, owner: str, *, low: int = 1, hint: str = "") -> int:
    """Return ``value`` as an int ``>= low``; bools are refused."""
    if not isinstance(value, Integral) or isinstance(value, bool) or int(value) < low:
        raise invalid_parameter(name, owner, f"at least {low} (a whole number)", value, hint=hint)
    return int(value)


def check_seed(value: object, owner: str, name: str = "seed") -> int:
    """Return a seed: an int ``>= 0``."""
    return check_int(value, name, owner, low=0)


def check_float(
    value: object,
    name: str,
    owner: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float:
    """Return ``value`` as a finite float in the interval from ``low`` to ``high``.

    The ends are included unless ``low_open`` / ``high_open``; an infinite end is always open.
    """
    left = "(" if low_open or math.isinf(low) else "["
    right = ")" if high_open or math.isinf(high) else "]"
    expected = f"in {left}{_end(low)}, {_end(high)}{right}"
    if not is_real(value):
        raise invalid_parameter(name, owner, expected, value, hint=hint)
    f = float(value)  # type: ignore[arg-type]
    if not math.isfinite(f) or f < low or f > high or (low_open and f == low) or (high_open and f == high):
        raise invalid_parameter(name, owner, expected, value, hint=hint)
    return f


def check_positive(value: object, name: str, owner: str, *, hint: str = "") -> float:
    """Return ``value`` as a finite float ``> 0``."""
    if not is_real(value) or not math.isfinite(float(value)) or not float(value) > 0:  # type: ignore[arg-type]
        raise invalid_parameter(name, owner, "positive", value, hint=hint)
    return float(value)  # type: ignore[arg-type]


def check_fraction(value: object, name: str, owner: str, *, hint: str = "") -> float:
    """Return ``value`` as a float strictly between 0 and 1."""
    return check_float(value, name, owner, low=0.0, high=1.0, low_open=True, high_open=True, hint=hint)


def check_choice(value: object, name: str, owner: str, choices: Iterable[_S]) -> _S:
    """Return ``value`` if it is one of ``choices`` (the error lists them)."""
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise invalid_parameter(
            name, owner, "one of " + ", ".join(repr(c) for c in options), value, choices=options
        )
    return options[options.index(value)]


def _end(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:g}"
