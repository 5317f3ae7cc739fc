"""Validation and numeric helpers shared by the model adapters (private).

The generic parameter checks (bounds, class count, ints, floats, choices) are in
:mod:`mlarmor._validation`; the checks here are the adapters' own: input shape, normalisation
statistics, batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from mlarmor._validation import is_int
from mlarmor.errors import InvalidParameterError, UnsupportedModelError, invalid_parameter
from mlarmor.targets.base import Capability, Target

__all__ = [
    "TargetProxy",
    "as_batch",
    "check_input_shape",
    "check_stats",
    "fmt_shape",
    "looks_like_probabilities",
    "missing_num_classes",
    "name_classes",
    "no_scores",
    "softmax",
    "stats_shape",
]

Stats = float | Sequence[float] | np.ndarray | None
_T = TypeVar("_T")


def check_input_shape(input_shape: object, owner: str) -> tuple[int, ...] | None:
    """Validate the shape of one input (without the batch dimension)."""
    if input_shape is None:
        return None
    expected = "a tuple of positive ints (the shape of one input, without the batch dimension) or None"
    if isinstance(input_shape, str | bytes) or not isinstance(input_shape, Sequence):
        raise invalid_parameter("input_shape", owner, expected, input_shape)
    dims = list(input_shape)
    if not dims or not all(is_int(d) and d > 0 for d in dims):
        raise invalid_parameter("input_shape", owner, expected, input_shape)
    return tuple(int(d) for d in dims)


def check_stats(values: Stats, name: str, owner: str, *, positive: bool) -> np.ndarray | None:
    """Validate a normalisation statistic: one float, or one float per channel or feature."""
    if values is None:
        return None
    expected = "a finite float or a 1-D sequence of finite floats" + (" > 0" if positive else "")
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise invalid_parameter(name, owner, expected, values) from None
    if (
        arr.size == 0
        or np.ndim(values) > 1
        or not np.all(np.isfinite(arr))
        or (positive and np.any(arr <= 0))
    ):
        raise invalid_parameter(name, owner, expected, values)
    return arr


def stats_shape(count: int, x_shape: tuple[int, ...], owner: str) -> tuple[int, ...]:
    """Broadcast shape of ``count`` normalisation values for inputs of shape ``x_shape`` (batch first).

    One value applies to everything; otherwise there is one value per feature of a 2-D input
    ``(n, features)`` or one per channel (``x_shape[1]``) of an image-like input ``(n, C, ...)``.
    """
    ndim = len(x_shape)
    if count == 1:
        return (1,) * ndim
    if ndim < 2 or x_shape[1] != count:
        unit = "feature" if ndim == 2 else "channel"
        width = x_shape[1] if ndim >= 2 else "?"
        raise InvalidParameterError(
            f"The normalisation of {owner} has {count} mean/std values, but inputs of shape "
            f"{fmt_shape(x_shape)} have {width} {unit}s. Pass one value, or one per {unit} "
            "(axis 1 of the input)."
        )
    return (1, count) + (1,) * (ndim - 2)


def fmt_shape(shape: tuple[int, ...], *, batch: bool = True) -> str:
    """Format a shape, with ``n`` for the batch dimension when ``batch`` is false."""
    dims = [str(d) for d in shape] if batch else ["n", *(str(d) for d in shape)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def as_batch(x: object, input_shape: tuple[int, ...] | None, owner: str) -> np.ndarray:
    """Check that ``x`` is a numeric batch ``(n, *input_shape)`` and return it as an ndarray."""
    if not isinstance(x, np.ndarray):
        raise InvalidParameterError(
            f"The 'x' parameter of {owner} must be a numpy array of shape "
            f"{fmt_shape(input_shape, batch=False) if input_shape else '(n, ...)'}. "
            f"Got {type(x).__name__} instead."
        )
    if x.dtype.kind not in "fiu":
        raise InvalidParameterError(
            f"The 'x' parameter of {owner} must have a numeric (float or integer) dtype. "
            f"Got dtype {x.dtype} instead."
        )
    if x.ndim < 2:
        raise InvalidParameterError(
            f"The 'x' parameter of {owner} must be a batch with a leading sample axis, shape "
            f"{fmt_shape(input_shape, batch=False) if input_shape else '(n, ...)'}. "
            f"Got shape {fmt_shape(x.shape)} instead (reshape a single input with x[None])."
        )
    if input_shape is not None and tuple(x.shape[1:]) != input_shape:
        raise InvalidParameterError(
            f"The 'x' parameter of {owner} must have shape {fmt_shape(input_shape, batch=False)}. "
            f"Got shape {fmt_shape(x.shape)} instead."
        )
    return x


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable, in float64."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def looks_like_probabilities(p: np.ndarray, atol: float = 1e-3) -> bool:
    """True when every row of ``p`` is non-negative and sums to 1 (within ``atol``)."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2 or not np.all(np.isfinite(p)):
        return False
    return bool(np.all(p >= -1e-6) and np.allclose(p.sum(axis=1), 1.0, rtol=0.0, atol=atol))


def missing_num_classes(owner: str, why: str, alternative: str = "") -> InvalidParameterError:
    """The error raised when the number of classes cannot be inferred."""
    extra = f", or {alternative}" if alternative else ""
    return InvalidParameterError(
        f"{owner} cannot infer the number of classes ({why}). "
        f"Pass num_classes=N (--classes N on the command line){extra}."
    )


def no_scores(name: str) -> UnsupportedModelError:
    """The error raised when probabilities are asked of a labels-only target."""
    return UnsupportedModelError(
        f"Target {name!r} returns labels only, so it has no 'scores' capability: predict_proba is "
        "unavailable. Use predict, or an attack that needs only labels (decision-based)."
    )


class AdapterBase:
    """Bookkeeping every adapter shares: name, bounds, input shape and the query counter."""

    _name: str
    _bounds: tuple[float, float]
    _input_shape: tuple[int, ...] | None
    _queries: int
    _class_labels: tuple[str, ...] | None = None

    @property
    def class_labels(self) -> tuple[str, ...] | None:
        """The model's class names in the order of its outputs, when known.

        From the model (an ONNX classifier's labels) or given by the user (:func:`name_classes`,
        ``class_labels=`` of :func:`~mlarmor.targets.load_target`, ``--classes NAME,NAME``).
        """
        return self._class_labels

    @property
    def name(self) -> str:
        """Human-readable identification (file name, URL or class)."""
        return self._name

    @property
    def bounds(self) -> tuple[float, float]:
        """Valid input range in input space."""
        return self._bounds

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one input without the batch axis, when known."""
        return self._input_shape

    @property
    def queries(self) -> int:
        """Inputs sent to the model so far (each row of a batch counts once; probes do not)."""
        return self._queries

    def reset_queries(self) -> None:
        """Set the query counter back to zero."""
        self._queries = 0


class TargetProxy:
    """A target that wraps another: everything is delegated to ``inner`` unless a subclass overrides it.

    Wrappers (output obfuscation, the attacks' immutable-feature mask, later the gateway's monitors)
    change one or two behaviours; the rest, including the query counter, stays the inner target's.
    """

    def __init__(self, inner: Target) -> None:
        self._inner = inner

    @property
    def class_labels(self) -> tuple[str, ...] | None:
        """The inner target's class labels, when it knows them."""
        labels: tuple[str, ...] | None = getattr(self._inner, "class_labels", None)
        return labels

    @property
    def inner(self) -> Target:
        """The wrapped target."""
        return self._inner

    @property
    def name(self) -> str:
        """The wrapped target's name."""
        return self._inner.name

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The wrapped target's capabilities."""
        return self._inner.capabilities

    @property
    def bounds(self) -> tuple[float, float]:
        """The wrapped target's input range."""
        return self._inner.bounds

    @property
    def num_classes(self) -> int:
        """The wrapped target's number of classes."""
        return self._inner.num_classes

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The wrapped target's input shape."""
        return self._inner.input_shape

    @property
    def queries(self) -> int:
        """The wrapped target's query counter."""
        return self._inner.queries

    def reset_queries(self) -> None:
        """Reset the wrapped target's query counter."""
        self._inner.reset_queries()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The wrapped target's labels ``(n,)``."""
        return self._inner.predict(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The wrapped target's probabilities."""
        return self._inner.predict_proba(x)


def name_classes(target: _T, labels: Sequence[object]) -> _T:
    """Give ``target`` the names of its classes: the i-th label names output ``i``.

    Data labels are then matched to the model through them (:func:`~mlarmor.data.labels.align_labels`).

    Raises:
        InvalidParameterError: For a list whose length differs from the model's number of outputs,
            a repeated or empty name, names that differ from those the model gives itself, or a
            target that cannot take names.
    """
    names = tuple(str(label).strip() for label in labels)
    n = int(getattr(target, "num_classes", 0))
    shown = ", ".join(names)
    if len(names) != n:
        raise InvalidParameterError(
            f"The class names given ({shown}) are {len(names)}, but the model {getattr(target, 'name', '')} "
            f"has {n} outputs. Give one name per output, in the model's output order."
        )
    if any(not name for name in names) or len(set(names)) != len(names):
        raise InvalidParameterError(
            f"The class names given ({shown}) must be distinct and non-empty, one per model output."
        )
    own = getattr(target, "class_labels", None)
    if own is not None and tuple(own) != names:
        raise InvalidParameterError(
            f"The model {getattr(target, 'name', '')} names its own classes {list(own)}, in its output "
            f"order; the names given ({shown}) differ. Leave the class names out: the model's are used."
        )
    if not isinstance(target, AdapterBase):
        raise InvalidParameterError(
            f"Class names cannot be given to {type(target).__name__}; name the classes of the model it wraps."
        )
    target._class_labels = names
    return target
