"""Evasion budgets per feature: ε absolute, or relative to each feature's range or spread.

On images every pixel shares one scale, so one ε in input units is the threat model. On tables it is
not: ε = 50 is nothing for an income and everything for an age. With ``eps_unit="range"`` (the
default for flat features) ε is a fraction of each feature's range (its ``feature_low`` ..
``feature_high``, from the training data or the evaluated file), with ``"std"`` a number of its
standard deviations over the evaluated data. The attack then runs in the rescaled space ``z``,
``x = low + z * scale``, where ε is one number again: an L∞ ball of radius ε in ``z`` is the box
``|x_j - x0_j| <= ε * scale_j``; an L2 ball an ellipsoid. Integer features stay whole numbers in the
data's units and immutable features stay fixed; the report records every feature's range and scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mlarmor._validation import check_choice
from mlarmor.data import Dataset, FeatureScaling
from mlarmor.errors import MlarmorWarning
from mlarmor.targets._rescaled import rescaled
from mlarmor.targets.base import Target

__all__ = ["EPS_UNITS", "EpsUnit", "FeatureBudget", "UnitSpace", "default_eps", "in_units", "resolve_unit"]

EpsUnit = Literal["auto", "absolute", "range", "std"]
EPS_UNITS: tuple[str, ...] = ("auto", "absolute", "range", "std")

_F64 = npt.NDArray[np.float64]
# Default budgets, as fractions of the input range for absolute and range units (8/255 ≈ 0.03 and
# 0.1 for L∞ on images in [0, 1]) and in standard deviations for std.
_DEFAULTS: dict[tuple[str, str], tuple[float, float]] = {
    ("absolute", "linf"): (0.03, 0.1),
    ("absolute", "l2"): (0.5, 1.0),
    ("range", "linf"): (0.03, 0.1),
    ("range", "l2"): (0.5, 1.0),
    ("std", "linf"): (0.1, 0.3),
    ("std", "l2"): (1.0, 2.0),
}
_MAX_LISTED = 5


def resolve_unit(unit: str, dataset: Dataset, owner: str) -> str:
    """``unit`` checked; ``"auto"`` is ``"range"`` for flat features (tables), else ``"absolute"``."""
    check_choice(unit, "eps_unit", owner, EPS_UNITS)
    if unit == "auto":
        return "range" if len(dataset.input_shape) == 1 else "absolute"
    return unit


def default_eps(norm: str, unit: str, bounds: tuple[float, float]) -> list[float]:
    """The default budgets for ``norm`` in ``unit`` (resolved); absolute ones scale with ``bounds``."""
    width = bounds[1] - bounds[0] if unit == "absolute" else 1.0
    return [round(f * width, 10) for f in _DEFAULTS[(unit, norm)]]


@dataclass(frozen=True, slots=True, eq=False)
class FeatureBudget:
    """What one unit of ε means on each feature, and the limits the attack kept.

    Attributes:
        unit: ``"absolute"``, ``"range"`` or ``"std"``.
        scale: Per flat feature, the data units of one ε unit (``1`` for absolute).
        low: Per flat feature, the lowest value an adversarial example may take (data units).
        high: Per flat feature, the highest.
        feature_names: Name of each flat feature (``"0"``, ``"1"``… when the data names none).
        immutable: Flat indices the attack may not change.
        integer: Flat indices that stay whole numbers.
        offset: Where the rescaled space starts (``x = offset + z * scale``); ``None`` for absolute.
        integral: Whether :meth:`to_data` rounds integer features (they are whole in the data's units).
    """

    unit: str
    scale: _F64
    low: _F64
    high: _F64
    feature_names: tuple[str, ...]
    immutable: tuple[int, ...]
    integer: tuple[int, ...]
    offset: _F64 | None = None
    integral: bool = False

    def to_data(self, z: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Inputs ``(n, *input_shape)`` of the space the attack ran in, in the data's units."""
        arr = np.asarray(z, dtype=np.float64)
        if self.offset is None:
            return arr.astype(np.float32)
        shape = arr.shape[1:]
        x = self.offset.reshape(shape) + arr * self.scale.reshape(shape)
        if self.integral and self.integer:
            idx = list(self.integer)
            flat = x.reshape(len(x), -1)
            flat[:, idx] = np.round(flat[:, idx])
        return x.astype(np.float32)

    def exceeding(self, eps: float) -> tuple[int, ...]:
        """Mutable features whose budget ``eps * scale`` is wider than their whole range."""
        span = self.high - self.low
        over = (eps * self.scale > span) & (span > 0)
        over[list(self.immutable)] = False
        return tuple(int(i) for i in np.flatnonzero(over))

    def warn_exceeding(self, eps: float) -> tuple[int, ...]:
        """:meth:`exceeding`, with a :class:`~mlarmor.errors.MlarmorWarning` naming them."""
        over = self.exceeding(eps)
        if over:
            shown = ", ".join(
                f"{self.feature_names[i]!r} spans [{self.low[i]:.6g}, {self.high[i]:.6g}] but ε allows "
                f"±{eps * self.scale[i]:.6g}"
                for i in over[:_MAX_LISTED]
            )
            more = f" and {len(over) - _MAX_LISTED} more" if len(over) > _MAX_LISTED else ""
            warnings.warn(
                f"ε = {eps:g} ({self.unit}) exceeds the whole range of {len(over)} feature(s): "
                f"{shown}{more}. "
                "There the attacker may set any value in range; check that this is the threat model, or "
                "use a smaller ε or --eps-unit range.",
                MlarmorWarning,
                stacklevel=3,
            )
        return over

    def to_report(self, budget_eps: float, *, per_feature: bool) -> dict[str, Any]:
        """The unit and, with ``per_feature``, each feature's range, ε scale and constraints."""
        block: dict[str, Any] = {"eps_unit": self.unit}
        if not per_feature:
            return block
        over = set(self.exceeding(budget_eps))
        block["features"] = [
            {
                "name": name,
                "low": float(self.low[i]),
                "high": float(self.high[i]),
                "eps_scale": float(self.scale[i]),
                "budget": float(budget_eps * self.scale[i]),
                "immutable": i in self.immutable,
                "integer": i in self.integer,
                "eps_exceeds_range": i in over,
            }
            for i, name in enumerate(self.feature_names)
        ]
        return block


@dataclass(frozen=True, slots=True, eq=False)
class UnitSpace:
    """The target and dataset in which ε has the requested unit, and the way back to the data's units."""

    target: Target
    dataset: Dataset
    budget: FeatureBudget


def in_units(target: Target, dataset: Dataset, unit: str) -> UnitSpace:
    """The space in which an ε in ``unit`` (resolved, not ``"auto"``) is a plain ε-ball."""
    low, high = (a.astype(np.float64).reshape(-1) for a in dataset.feature_limits)
    names = dataset.feature_names or tuple(str(i) for i in range(dataset.num_features))
    if unit == "absolute":
        budget = FeatureBudget(unit, np.ones_like(low), low, high, names, dataset.immutable, dataset.integer)
        return UnitSpace(target, dataset, budget)
    spread = dataset.x.reshape(dataset.n, -1).astype(np.float64).std(axis=0) if unit == "std" else None
    scale = high - low if spread is None else spread
    scale = np.where(scale > 0, scale, 1.0)
    budget = FeatureBudget(
        unit, scale, low, high, names, dataset.immutable, dataset.integer, low, dataset.scaling is None
    )
    shape = dataset.input_shape

    def down(values: _F64) -> _F64:
        return (values - low) / scale

    z_low, z_high = down(low).astype(np.float32), down(high).astype(np.float32)
    flat = dataset.x.reshape(dataset.n, -1).astype(np.float64)
    z = np.clip(down(flat).astype(np.float32), z_low, z_high).reshape(dataset.n, *shape)
    bounds = (float(z_low.min()), float(z_high.max()))
    if bounds[0] == bounds[1]:
        bounds = (bounds[0], bounds[0] + 1.0)
    # Integer features are whole numbers in raw units: compose with the dataset's own scaling.
    raw = FeatureScaling(data_min=low, data_max=low + scale)
    if dataset.scaling is not None:
        raw = FeatureScaling(
            data_min=dataset.scaling.to_original(low), data_max=dataset.scaling.to_original(low + scale)
        )
    space = Dataset(
        x=z,
        y=dataset.y,
        name=dataset.name,
        bounds=bounds,
        feature_low=z_low,
        feature_high=z_high,
        immutable=dataset.immutable,
        integer=dataset.integer,
        feature_names=dataset.feature_names,
        class_names=dataset.class_names,
        scaling=raw,
    )
    wrapped = rescaled(target, scale, low, bounds)
    return UnitSpace(wrapped, space, budget)
