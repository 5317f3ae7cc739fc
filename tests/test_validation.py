"""The parameter checks every layer shares: what each accepts and refuses, and what its error carries."""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlarmor
from mlarmor._validation import (
    check_bounds,
    check_choice,
    check_float,
    check_fraction,
    check_int,
    check_num_classes,
    check_optional_int,
    check_positive,
    check_seed,
    describe,
    is_int,
    is_real,
)
from mlarmor.errors import InvalidParameterError


def _refused(call, *args, **kwargs) -> InvalidParameterError:
    with pytest.raises(InvalidParameterError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("value", [0, -3, 7, np.int8(3), np.int64(-1), np.uint16(9)])
def test_is_int_accepts_python_and_numpy_integers(value):
    assert is_int(value)
    assert is_real(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, "1", None, np.float32(1)])
def test_is_int_refuses_bools_floats_and_strings(value):
    assert not is_int(value)


@pytest.mark.parametrize(
    "value", [0.5, -1e300, math.inf, math.nan, np.float32(2), np.float64(1), Fraction(1, 3)]
)
def test_is_real_accepts_python_and_numpy_reals(value):
    assert is_real(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), "0.5", None, 1j, [1.0]])
def test_is_real_refuses_bools_and_non_numbers(value):
    assert not is_real(value)


@pytest.mark.parametrize(
    ("value", "low", "high"), [(1, 1, None), (5, 1, 5), (0, 0, None), (np.int64(2), 2, 3)]
)
def test_check_int_accepts_the_ends(value, low, high):
    out = check_int(value, "n", "f", low=low, high=high)
    assert out == int(value)
    assert type(out) is int


@pytest.mark.parametrize(
    ("value", "low", "high", "expected"),
    [
        (0, 1, None, "an int >= 1"),
        (6, 1, 5, "an int in [1, 5]"),
        (True, 0, None, "an int >= 0"),
        (np.bool_(True), 0, None, "an int >= 0"),
        (1.0, 1, None, "an int >= 1"),
        ("3", 1, None, "an int >= 1"),
    ],
)
def test_check_int_refuses_outside_and_non_ints(value, low, high, expected):
    e = _refused(check_int, value, "n", "f", low=low, high=high)
    assert (e.parameter, e.expected, e.choices) == ("n", expected, ())
    assert e.got is value
    assert str(e) == f"The 'n' parameter of f must be {expected}. Got {value!r} instead."


@given(st.integers(), st.integers(-5, 5))
def test_check_int_agrees_with_its_bound(value, low):
    if value >= low:
        assert check_int(value, "n", "f", low=low) == value
    else:
        _refused(check_int, value, "n", "f", low=low)


def test_check_optional_int_and_num_classes_take_none():
    assert check_optional_int(None, "k", "f") is None
    assert check_optional_int(np.int32(3), "k", "f", high=3) == 3
    assert check_num_classes(None, "f") is None
    assert check_num_classes(2, "f") == 2
    e = _refused(check_num_classes, 1, "f")
    assert (e.parameter, e.expected) == ("num_classes", "an int >= 2 or None")
    assert _refused(check_optional_int, 4, "k", "f", high=3).expected == "an int in [1, 3] or None"


def test_check_seed():
    assert check_seed(0, "f") == 0
    e = _refused(check_seed, -1, "f")
    assert (e.parameter, e.expected) == ("seed", "an int >= 0")
    assert _refused(check_seed, False, "f", "random_state").parameter == "random_state"


@pytest.mark.parametrize(
    ("kwargs", "expected", "inside", "outside"),
    [
        ({}, "a float in (-inf, inf)", [-1e300, 0, np.float32(1.5)], [math.inf, -math.inf, math.nan]),
        ({"low": 0.0}, "a float in [0, inf)", [0, 0.0, np.float16(3)], [-1e-12, math.inf]),
        ({"low": 0.0, "low_open": True}, "a float in (0, inf)", [1e-300], [0.0, -0.0]),
        ({"low": 0.0, "high": 1.0}, "a float in [0, 1]", [0.0, 1, np.int64(1)], [1.0000001, -0.5]),
        ({"low": 0.0, "high": 1.0, "high_open": True}, "a float in [0, 1)", [0.0, 0.999], [1.0]),
        ({"low": 0.5, "high": 2.5, "low_open": True}, "a float in (0.5, 2.5]", [2.5], [0.5]),
    ],
)
def test_check_float_intervals(kwargs, expected, inside, outside):
    for value in inside:
        out = check_float(value, "x", "f", **kwargs)
        assert out == float(value)
        assert type(out) is float
    for value in [*outside, True, "0.5", None]:
        e = _refused(check_float, value, "x", "f", **kwargs)
        assert (e.parameter, e.expected, e.choices) == ("x", expected, ())


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_positive_is_finite_and_above_zero(value):
    if math.isfinite(value) and value > 0:
        assert check_positive(value, "eps", "f") == value
    else:
        assert _refused(check_positive, value, "eps", "f").expected == "a float in (0, inf)"


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_fraction_is_strictly_between_zero_and_one(value):
    if 0 < value < 1:
        assert check_fraction(value, "delta", "f") == value
    else:
        assert _refused(check_fraction, value, "delta", "f").expected == "a float in (0, 1)"


def test_hint_becomes_a_sentence_and_stays_on_the_error():
    e = _refused(check_positive, 0.0, "eps", "harden", hint="e.g. 0.2")
    assert str(e) == "The 'eps' parameter of harden must be a float in (0, inf). Got 0.0 instead. E.g. 0.2."
    assert e.hint == "e.g. 0.2"


def test_check_choice_returns_the_choice_and_lists_them():
    assert check_choice("b", "mode", "f", ("a", "b")) == "b"
    for value in ["c", None, 1, "A"]:
        e = _refused(check_choice, value, "mode", "f", ["a", "b"])
        assert (e.parameter, e.expected, e.choices) == ("mode", "one of 'a', 'b'", ("a", "b"))


@pytest.mark.parametrize(
    "bounds", [(0, 1), [-1.0, 1.0], np.array([0.0, 255.0]), (np.float32(0), np.int64(1))]
)
def test_check_bounds_accepts_ordered_finite_pairs(bounds):
    low, high = check_bounds(bounds, "f")
    assert (type(low), type(high)) == (float, float)
    assert low < high


@pytest.mark.parametrize(
    "bounds",
    [(1, 1), (1, 0), (0, math.inf), (math.nan, 1), (0, 1, 2), (0,), "01", {0, 1}, (True, 2), 1, None],
)
def test_check_bounds_refuses_everything_else(bounds):
    e = _refused(check_bounds, bounds, "f", "feature_range")
    assert (e.parameter, e.expected) == (
        "feature_range",
        "a pair (low, high) of finite floats with low < high",
    )


def test_describe_is_shown_verbatim():
    e = _refused(check_choice, describe("dtype object"), "x", "f", ["a"])
    assert re.search(r"Got dtype object instead\.$", str(e))


_GENERIC_NAMES = {
    "_check_int",
    "_check_float",
    "check_int",
    "check_float",
    "_is_real",
    "is_real",
    "_is_int",
    "is_int",
}


def test_no_module_redefines_the_generic_checks():
    """The generic checks live in mlarmor._validation only, so that a private copy cannot come back."""
    package = Path(mlarmor.__file__).parent
    defined = [
        f"{path.relative_to(package)}:{node.lineno} {node.name}"
        for path in sorted(package.rglob("*.py"))
        if path != package / "_validation.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in _GENERIC_NAMES
    ]
    assert defined == [], "import these from mlarmor._validation instead: " + ", ".join(defined)
