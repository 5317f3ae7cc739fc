"""The constraint kernel behind :meth:`Dataset.project <mlarmor.data.dataset.Dataset.project>`.

Constraints are resolved once into effective per-feature limits (``bounds`` ∩ feature range, shrunk
to the integers inside for integer features) and two masks; projecting is then three elementwise
operations that numpy and torch compute identically (round half to even, clip, select).

Integer features are whole numbers in the data's *raw* units. When the values are a rescaled view of
them (``raw = offset + value * scale``, a dataset's :class:`~mlarmor.data.FeatureScaling`), the
``grid`` holds that map and rounding happens on the raw value: ``(round(v * scale + offset) - offset)
/ scale``. Without a grid the map is the identity.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlarmor.errors import InvalidParameterError, invalid_parameter

from ._validate import FloatArray, readonly

__all__ = ["Constraints"]

_F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class Constraints:
    """Effective limits and masks over the flat features of one input.

    Attributes:
        name: The dataset's name, for messages.
        input_shape: Shape of one input.
        bounds: The global range.
        low: Effective lower limit per flat feature.
        high: Effective upper limit per flat feature.
        immutable: Flat indices restored from the original input.
        integer: Flat indices rounded to integers.
        feature_names: Names used in messages, when known.
        grid: ``(scale, offset)`` per flat feature mapping values to raw units, in which integer
            features are whole numbers; ``None`` for the identity.
    """

    name: str
    input_shape: tuple[int, ...]
    bounds: tuple[float, float]
    low: _F64
    high: _F64
    immutable: tuple[int, ...]
    integer: tuple[int, ...]
    feature_names: tuple[str, ...] | None
    grid: tuple[_F64, _F64] | None = None
    _tensors: dict[tuple[Any, Any], tuple[Any, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        *,
        name: str,
        input_shape: tuple[int, ...],
        bounds: tuple[float, float],
        feature_low: object,
        feature_high: object,
        immutable: tuple[int, ...],
        integer: tuple[int, ...],
        feature_names: tuple[str, ...] | None,
        grid: tuple[_F64, _F64] | None = None,
    ) -> tuple[Constraints, FloatArray | None, FloatArray | None]:
        """Resolve the limits; return them with the flat float32 feature ranges to store."""
        d = math.prod(input_shape)
        lo, hi = np.full(d, bounds[0]), np.full(d, bounds[1])
        ranges: list[FloatArray | None] = []
        for param, given, target, pick in (
            ("feature_low", feature_low, lo, np.maximum),
            ("feature_high", feature_high, hi, np.minimum),
        ):
            if given is None:
                ranges.append(None)
                continue
            try:
                arr = np.asarray(given, dtype=np.float64)
            except (TypeError, ValueError):
                arr = np.full(0, np.nan)
            if arr.shape not in {(d,), input_shape} or np.isnan(arr).any():
                raise invalid_parameter(
                    param, "Dataset", f"an array of shape ({d},) or {input_shape} without NaN", given
                )
            pick(target, arr.reshape(d), out=target)
            ranges.append(readonly(arr.astype(np.float32).reshape(d)))
        self = cls(name, input_shape, bounds, lo, hi, immutable, integer, feature_names, grid)
        if integer:
            idx = list(integer)
            lo[idx] = self.from_grid(np.ceil(self.to_grid(lo)))[idx]
            hi[idx] = self.from_grid(np.floor(self.to_grid(hi)))[idx]
        empty = np.flatnonzero(lo > hi)
        if empty.size:
            i = int(empty[0])
            kind = " for an integer feature" if i in integer else ""
            raise InvalidParameterError(
                f"The constraints of dataset {name!r} leave no valid value for {empty.size} feature(s), "
                f"e.g. feature {self.describe(i)}: bounds {bounds} and feature range give "
                f"[{lo[i]:.7g}, {hi[i]:.7g}]{kind}. Widen feature_low/feature_high or the bounds."
            )
        return self, ranges[0], ranges[1]

    def to_grid(self, values: Any) -> Any:
        """Flat values (``(..., num_features)``, or ``input_shape`` broadcastable) in raw units."""
        if self.grid is None:
            return values
        scale, offset = self._grid_like(values, self.grid)
        return values * scale + offset

    def from_grid(self, values: Any) -> Any:
        """The inverse of :meth:`to_grid`."""
        if self.grid is None:
            return values
        scale, offset = self._grid_like(values, self.grid)
        return (values - offset) / scale

    def _grid_like(self, values: Any, grid: tuple[_F64, _F64]) -> tuple[Any, Any]:
        scale, offset = grid
        flat = getattr(values, "shape", (0,))[-1:] == (scale.size,)
        shape = (scale.size,) if flat else self.input_shape
        torch_mod = sys.modules.get("torch")
        if torch_mod is not None and isinstance(values, torch_mod.Tensor):
            return tuple(
                torch_mod.as_tensor(a.reshape(shape)).to(device=values.device, dtype=values.dtype)
                for a in (scale, offset)
            )
        dtype = values.dtype if isinstance(values, np.ndarray) else np.float64
        return scale.reshape(shape).astype(dtype), offset.reshape(shape).astype(dtype)

    def round_integral(self, values: Any) -> Any:
        """``values`` with integer features rounded to whole raw numbers (half to even)."""
        if self.grid is None:
            return values.round() if not isinstance(values, np.ndarray) else np.round(values)
        raw = self.to_grid(values)
        rounded = raw.round() if not isinstance(raw, np.ndarray) else np.round(raw)
        return self.from_grid(rounded)

    def describe(self, i: int) -> str:
        """Feature ``i`` with its name when known."""
        return f"{i} ({self.feature_names[i]!r})" if self.feature_names is not None else str(i)

    def check_inputs(self, x: FloatArray) -> None:
        """Raise :class:`InvalidParameterError` unless ``x`` already satisfies every constraint."""
        flat = x.reshape(len(x), -1)
        low, high = self.bounds
        outside = (flat < np.float32(low)) | (flat > np.float32(high))
        if outside.any():
            raise InvalidParameterError(
                f"The dataset {self.name!r} has {int(outside.sum())} value(s) outside the declared bounds "
                f"({low}, {high}): the smallest is {flat.min():.7g} and the largest {flat.max():.7g}. "
                "Declare bounds that hold the data (--bounds LOW HIGH) or rescale the inputs."
            )
        bad = (flat < self.low.astype(np.float32)) | (flat > self.high.astype(np.float32))
        bad_features = np.flatnonzero(bad.any(axis=0))
        if bad_features.size:
            i = int(bad_features[0])
            column = flat[:, i]
            raise InvalidParameterError(
                f"The dataset {self.name!r} has {int(bad.sum())} value(s) outside the feature ranges in "
                f"{bad_features.size} feature(s), e.g. feature {self.describe(i)} spans "
                f"[{column.min():.7g}, {column.max():.7g}] but must lie in "
                f"[{self.low[i]:.7g}, {self.high[i]:.7g}]. Widen feature_low/feature_high or fix the data."
            )
        if self.integer:
            raw = self.to_grid(flat.astype(np.float64))[:, list(self.integer)]
            # A rescaled view holds raw integers only up to float32 rounding (relative 6e-8).
            slack: Any = 0.0
            if self.grid is not None:
                slack = np.minimum(0.25, 1e-4 + 1e-6 * np.abs(self.grid[0][list(self.integer)]))
            fractional = np.flatnonzero((np.abs(raw - np.round(raw)) > slack).any(axis=0))
            if fractional.size:
                i = self.integer[int(fractional[0])]
                raise InvalidParameterError(
                    f"The dataset {self.name!r} declares {fractional.size} integer feature(s) with "
                    f"non-integral values, e.g. feature {self.describe(i)}. Round them first or leave "
                    "them out of 'integer'."
                )

    @property
    def trivial(self) -> bool:
        """Whether only the global bounds constrain (every limit equals them, no masks)."""
        return not (self.immutable or self.integer) and bool(
            (self.low == self.bounds[0]).all() and (self.high == self.bounds[1]).all()
        )

    def masks(self) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Boolean ``(integer, immutable)`` masks of shape ``input_shape``."""
        integral = np.zeros(self.low.size, dtype=bool)
        integral[list(self.integer)] = True
        frozen = np.zeros(self.low.size, dtype=bool)
        frozen[list(self.immutable)] = True
        return integral.reshape(self.input_shape), frozen.reshape(self.input_shape)

    def _check_shapes(self, adv: tuple[int, ...], orig: tuple[int, ...]) -> None:
        if adv[1:] != self.input_shape and adv != self.input_shape:
            raise InvalidParameterError(
                f"Dataset.project of {self.name!r} expects x_adv of shape (n, *{self.input_shape}) or "
                f"{self.input_shape}. Got {adv} instead."
            )
        if orig != adv:
            raise InvalidParameterError(
                f"Dataset.project needs x_orig of the same shape as x_adv. Got {orig} and {adv}."
            )

    def project_numpy(self, x_adv: object, x_orig: object) -> npt.NDArray[np.floating]:
        """Numpy projection; non-float inputs become float32."""
        xa = np.asarray(x_adv)
        if xa.dtype.kind != "f":
            xa = xa.astype(np.float32)
        torch_mod = sys.modules.get("torch")
        if torch_mod is not None and isinstance(x_orig, torch_mod.Tensor):
            x_orig = x_orig.detach().cpu().numpy()
        xo = np.asarray(x_orig).astype(xa.dtype, copy=False)
        self._check_shapes(xa.shape, xo.shape)
        if self.trivial:
            low, high = np.asarray(self.bounds, dtype=xa.dtype)
            clipped: npt.NDArray[np.floating] = np.clip(xa, low, high)
            return clipped
        integral, frozen = self.masks()
        out = np.where(integral, self.round_integral(xa), xa) if self.integer else xa
        out = np.clip(
            out,
            self.low.astype(xa.dtype).reshape(self.input_shape),
            self.high.astype(xa.dtype).reshape(self.input_shape),
        )
        return np.where(frozen, xo, out) if self.immutable else out

    def project_torch(self, x_adv: Any, x_orig: Any) -> Any:
        """Torch projection on ``x_adv``'s device and dtype, differentiable where it can be."""
        import torch

        if not x_adv.is_floating_point():
            raise invalid_parameter("x_adv", "Dataset.project", "a floating-point tensor", x_adv.dtype)
        if isinstance(x_orig, np.ndarray) and not x_orig.flags.writeable:
            x_orig = x_orig.copy()  # torch warns about tensors over read-only memory
        xo = torch.as_tensor(x_orig, device=x_adv.device, dtype=x_adv.dtype)
        self._check_shapes(tuple(x_adv.shape), tuple(xo.shape))
        if self.trivial:
            return torch.clamp(x_adv, self.bounds[0], self.bounds[1])
        key = (x_adv.device, x_adv.dtype)
        cached = self._tensors.get(key)
        if cached is None:
            shape = self.input_shape
            integral, frozen = self.masks()
            cached = tuple(
                torch.as_tensor(a).to(device=x_adv.device, dtype=dtype)
                for a, dtype in (
                    (self.low.reshape(shape), x_adv.dtype),
                    (self.high.reshape(shape), x_adv.dtype),
                    (integral, torch.bool),
                    (frozen, torch.bool),
                )
            )
            self._tensors[key] = cached
        lo, hi, integral_t, frozen_t = cached
        out = torch.where(integral_t, self.round_integral(x_adv), x_adv) if self.integer else x_adv
        out = torch.clamp(out, lo, hi)
        return torch.where(frozen_t, xo, out) if self.immutable else out


def as_like(mask: npt.NDArray[Any], like: Any, default: type[np.generic]) -> Any:
    """``mask`` as a tensor on ``like``'s device and dtype, or an array of ``like``'s dtype."""
    torch_mod = sys.modules.get("torch")
    if torch_mod is not None and isinstance(like, torch_mod.Tensor):
        return torch_mod.as_tensor(mask).to(device=like.device, dtype=like.dtype)
    return mask.astype(default if like is None else np.asarray(like).dtype)
