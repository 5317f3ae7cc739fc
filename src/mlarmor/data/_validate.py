"""Checks shared by :class:`~mlarmor.data.dataset.Dataset` and the loaders.

Each check takes the error class to raise, so that the same finding reads as an
:class:`~mlarmor.errors.InputError` when it comes from a file and as an
:class:`~mlarmor.errors.InvalidParameterError` when it comes from arrays passed in code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from mlarmor._validation import is_int
from mlarmor.errors import MlarmorError, invalid_parameter

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
ErrorType = type[MlarmorError]
_S = TypeVar("_S", bound=np.generic)

_NUMERIC_KINDS = "biuf"


def readonly(a: npt.NDArray[_S]) -> npt.NDArray[_S]:
    """A read-only view of ``a`` (the caller's array keeps its own flags)."""
    view = a.view()
    view.flags.writeable = False
    return view


def numeric_inputs(x: object, *, what: str, error: ErrorType) -> FloatArray:
    """``x`` as a float32 array of shape ``(n, *input_shape)`` with at least one sample."""
    arr = np.asarray(x)
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise error(
            f"The inputs x of {what} must be numbers (bool, integer or float). Got an array of dtype "
            f"{arr.dtype} instead. Encode non-numeric features as numbers first."
        )
    if arr.ndim < 2:
        hint = " Reshape it to (n, 1) if it holds one feature per sample." if arr.ndim == 1 else ""
        raise error(
            f"The inputs x of {what} must have shape (n, *input_shape) with at least 2 dimensions. "
            f"Got shape {arr.shape} instead.{hint}"
        )
    if arr.shape[0] == 0:
        raise error(f"The dataset {what} is empty: x has shape {arr.shape}. Provide at least one sample.")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        out = arr.astype(np.float32, copy=False)
    check_finite(out, what=what, error=error)
    return out


def check_finite(x: npt.NDArray[Any], *, what: str, error: ErrorType) -> None:
    """Raise when ``x`` holds NaN or infinite values (after conversion to float32)."""
    finite = np.isfinite(x)
    if finite.all():
        return
    bad = ~finite
    n_nan = int(np.isnan(x).sum())
    n_inf = int(bad.sum()) - n_nan
    samples = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
    raise error(
        f"The inputs x of {what} must be finite. Found {n_nan} NaN and {n_inf} infinite value(s) "
        f"(or values too large for float32) in {len(samples)} sample(s), the first at index "
        f"{int(samples[0])}. Remove or impute them before the assessment."
    )


def encode_labels(
    y: object, *, n: int, what: str, error: ErrorType, allow_strings: bool
) -> tuple[IntArray, tuple[str, ...] | None]:
    """Labels as int64 class indices, plus the class names when ``y`` held strings.

    String labels (when ``allow_strings``) map to ``0..C-1`` in sorted order. Integer, boolean and
    integral float labels are kept as they are and must be non-negative.
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        hint = " For one-hot labels pass y.argmax(axis=1)." if arr.ndim == 2 else ""
        raise error(
            f"The labels y of {what} must have shape (n,) (one class index per sample). "
            f"Got shape {arr.shape} instead.{hint}"
        )
    if len(arr) != n:
        raise error(
            f"The inputs and labels of {what} must have the same length. Got {n} input(s) and "
            f"{len(arr)} label(s). Check that x and y come from the same data."
        )
    kind = arr.dtype.kind
    if kind in "US" and allow_strings:
        names, inverse = np.unique(arr.astype(str), return_inverse=True)
        return inverse.astype(np.int64).reshape(n), tuple(str(s) for s in names)
    if kind == "b":
        return arr.astype(np.int64), None
    if kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            raise error(
                f"The labels y of {what} must be non-negative integers. Found "
                f"{int((~finite).sum())} NaN or infinite label(s), the first at index "
                f"{int(np.flatnonzero(~finite)[0])}. Drop or fix those samples."
            )
        fractional = arr != np.round(arr)
        if fractional.any():
            first = int(np.flatnonzero(fractional)[0])
            raise error(
                f"The labels y of {what} must be integers (class indices 0..C-1). Found "
                f"{int(fractional.sum())} non-integral label(s), e.g. {float(arr[first])!r} at index "
                f"{first}. Regression targets and probabilities are not supported; pass class indices."
            )
    elif kind not in "iu":
        raise error(
            f"The labels y of {what} must be non-negative integers (class indices 0..C-1). Got an "
            f"array of dtype {arr.dtype} instead. Map the classes to 0..C-1 first."
        )
    negative = arr < 0
    if negative.any():
        raise error(
            f"The labels y of {what} must be non-negative integers (class indices 0..C-1). Found "
            f"{int(negative.sum())} negative label(s), the smallest {arr.min().item()!r}. Map the classes "
            "to 0..C-1 first (for labels -1/+1: (y + 1) // 2)."
        )
    return arr.astype(np.int64), None


def feature_indices(
    features: Iterable[int | str] | None,
    *,
    num_features: int,
    feature_names: Sequence[str] | None,
    param: str,
    owner: str,
) -> tuple[int, ...]:
    """Sorted, unique flat feature indices from indices or feature names."""
    if features is None:
        return ()
    if isinstance(features, str | bytes) or not isinstance(features, Iterable):
        raise invalid_parameter(param, owner, "a sequence of feature indices or names", features)
    lookup = {name: i for i, name in enumerate(feature_names)} if feature_names is not None else {}
    out: set[int] = set()
    for f in features:
        if isinstance(f, str):
            if f not in lookup:
                known = ", ".join(lookup) if lookup else "none (the dataset has no feature names)"
                raise invalid_parameter(param, owner, f"feature names among: {known}", f)
            out.add(lookup[f])
        elif is_int(f):
            i = int(f)
            if not 0 <= i < num_features:
                raise invalid_parameter(
                    param, owner, f"feature indices in [0, {num_features}) (flat, over one input)", i
                )
            out.add(i)
        else:
            raise invalid_parameter(param, owner, "feature indices (int) or feature names (str)", f)
    return tuple(sorted(out))
