"""Min-max feature scaling kept with a dataset, to report perturbations in raw units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mlarmor._validation import check_bounds
from mlarmor.errors import invalid_parameter

from ._validate import readonly

__all__ = ["FeatureScaling"]


@dataclass(frozen=True, slots=True, eq=False)
class FeatureScaling:
    """The min-max scaling that mapped raw feature values onto a dataset's ``bounds``.

    Kept so that reports can state perturbations in the original units.

    Attributes:
        data_min: Raw minimum of each feature, shape ``(num_features,)``.
        data_max: Raw maximum of each feature, shape ``(num_features,)``.
        feature_range: The scaled range, ``(0.0, 1.0)`` for the built-in demo sets.
    """

    data_min: npt.NDArray[np.float64]
    data_max: npt.NDArray[np.float64]
    feature_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        low = np.asarray(self.data_min, dtype=np.float64).reshape(-1)
        high = np.asarray(self.data_max, dtype=np.float64).reshape(-1)
        if low.shape != high.shape or not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise invalid_parameter(
                "data_min/data_max", "FeatureScaling", "finite arrays of one shape", (low.shape, high.shape)
            )
        object.__setattr__(self, "data_min", readonly(low))
        object.__setattr__(self, "data_max", readonly(high))
        object.__setattr__(
            self, "feature_range", check_bounds(self.feature_range, "FeatureScaling", "feature_range")
        )

    def _scale(self) -> tuple[npt.NDArray[np.float64], float]:
        lo, hi = self.feature_range
        span = self.data_max - self.data_min
        return np.where(span > 0, span, 1.0) / (hi - lo), lo

    def affine(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(scale, offset)`` with ``original = offset + scaled * scale``, per feature."""
        per_unit, lo = self._scale()
        return per_unit, self.data_min - lo * per_unit

    def to_original(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map scaled values (``(..., num_features)``) back to raw feature values."""
        per_unit, lo = self._scale()
        return self.data_min + (np.asarray(x, dtype=np.float64) - lo) * per_unit

    def from_original(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map raw feature values (``(..., num_features)``) to the scaled range."""
        per_unit, lo = self._scale()
        return lo + (np.asarray(x, dtype=np.float64) - self.data_min) / per_unit
