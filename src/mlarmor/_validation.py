"""Parameter checks with one message shape, for every layer of mlarmor (private).

Each check returns the value normalised (an ``int``, a ``float``, a ``str``) or raises the
:class:`~mlarmor.errors.InvalidParameterError` of :func:`~mlarmor.errors.invalid_parameter`:
``The 'eps' parameter of PGD must be a float in [0, inf). Got -0.1 instead.`` The error carries the
parameter's name, what was expected and the valid choices, so that the command line words the same
check as ``--eps must be a float in [0, inf), got -0.1.`` without checking anything again.

Numbers are accepted as Python or numpy scalars; bools are never numbers here. Checks that belong to
one domain (an attack's data, a detector's payload, a dataset's labels) live with that domain and
are built on these.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any, TypeVar, cast

from mlarmor.errors import invalid_parameter

__all__ = [
    "check_bounds",
    "check_choice",
    "check_float",
    "check_fraction",
    "check_int",
    "check_num_classes",
    "check_optional_int",
    "check_positive",
    "check_seed",
    "describe",
    "is_int",
    "is_real",
]

_S = TypeVar("_S", bound=str)


class _Text(str):
    """A string shown without quotes in the ``Got ... instead.`` part of a message."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def describe(text: str) -> object:
    """Wrap ``text`` so that :func:`~mlarmor.errors.invalid_parameter` shows it verbatim, not quoted.

    For a ``got`` that is a summary of the value (``shape (3, 4)``, ``dtype object``) rather than it.
    """
    return _Text(text)


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (numpy's too), bools excluded."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (numpy's too), bools excluded."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _int_expected(low: int, high: int | None) -> str:
    return f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"


def _as_int(value: object, low: int, high: int | None) -> int | None:
    """``value`` as an int when it is one within ``[low, high]``, else ``None``."""
    if not is_int(value):
        return None
    n = int(cast(Integral, value))
    return n if low <= n and (high is None or n <= high) else None


def check_int(
    value: object, name: str, owner: str, *, low: int = 1, high: int | None = None, hint: str = ""
) -> int:
    """Return ``value`` as an int ``>= low`` (and ``<= high`` when given); bools are refused."""
    n = _as_int(value, low, high)
    if n is None:
        raise invalid_parameter(name, owner, _int_expected(low, high), value, hint=hint)
    return n


def check_optional_int(
    value: object, name: str, owner: str, *, low: int = 1, high: int | None = None, hint: str = ""
) -> int | None:
    """Return ``None`` as is, else ``value`` checked as by :func:`check_int`."""
    if value is None:
        return None
    n = _as_int(value, low, high)
    if n is None:
        raise invalid_parameter(name, owner, _int_expected(low, high) + " or None", value, hint=hint)
    return n


def check_num_classes(value: object, owner: str, name: str = "num_classes") -> int | None:
    """Return an optional class count: ``None`` (infer it) or an int ``>= 2``."""
    return check_optional_int(value, name, owner, low=2)


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

    The ends are included unless ``low_open`` / ``high_open``; an infinite end is always open. The
    message names the interval: ``a float in [0, inf)``.
    """
    left = "(" if low_open or math.isinf(low) else "["
    right = ")" if high_open or math.isinf(high) else "]"
    expected = f"a float in {left}{_end(low)}, {_end(high)}{right}"
    if not is_real(value):
        raise invalid_parameter(name, owner, expected, value, hint=hint)
    f = float(cast(Real, value))
    if not math.isfinite(f) or f < low or f > high or (low_open and f == low) or (high_open and f == high):
        raise invalid_parameter(name, owner, expected, value, hint=hint)
    return f


def check_positive(value: object, name: str, owner: str, *, hint: str = "") -> float:
    """Return ``value`` as a finite float ``> 0`` (``a float in (0, inf)``)."""
    return check_float(value, name, owner, low=0.0, low_open=True, hint=hint)


def check_fraction(value: object, name: str, owner: str, *, hint: str = "") -> float:
    """Return ``value`` as a float strictly between 0 and 1 (``a float in (0, 1)``)."""
    return check_float(value, name, owner, low=0.0, high=1.0, low_open=True, high_open=True, hint=hint)


def check_choice(value: object, name: str, owner: str, choices: Iterable[_S]) -> _S:
    """Return ``value`` if it is one of ``choices`` (the error lists them)."""
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise invalid_parameter(
            name, owner, "one of " + ", ".join(repr(c) for c in options), value, choices=options
        )
    return options[options.index(value)]


def check_bounds(bounds: object, owner: str, name: str = "bounds", *, hint: str = "") -> tuple[float, float]:
    """Return ``bounds`` as a pair ``(low, high)`` of finite floats with ``low < high``.

    A sequence or a numpy array of two real numbers; a string is not a sequence here.
    """
    expected = "a pair (low, high) of finite floats with low < high"
    if isinstance(bounds, str | bytes) or not (isinstance(bounds, Sequence) or _is_ndarray(bounds)):
        raise invalid_parameter(name, owner, expected, bounds, hint=hint)
    values: list[Any] = list(cast("Iterable[Any]", bounds))
    if len(values) != 2 or not all(is_real(v) for v in values):
        raise invalid_parameter(name, owner, expected, bounds, hint=hint)
    low, high = float(values[0]), float(values[1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise invalid_parameter(name, owner, expected, bounds, hint=hint)
    return low, high


def _is_ndarray(value: object) -> bool:
    # Without NumPy imported nothing can be an array: checking this way keeps it out of start-up.
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def _end(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:g}"
