"""A target seen through a per-feature affine map of its inputs (private).

Evasion budgets relative to each feature's range or standard deviation are plain ε-balls in a
rescaled space ``z`` with ``x = offset + z * scale``. :func:`rescaled` wraps a target so that attacks
work in ``z`` while the model keeps receiving ``x``: every query maps ``z`` back first, gradients
flow through the map, and queries are counted by the wrapped target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mlarmor.targets._common import TargetProxy
from mlarmor.targets.base import Differentiable, Target

if TYPE_CHECKING:
    import torch

__all__ = ["RescaledTarget", "rescaled"]


class RescaledTarget(TargetProxy):
    """``inner`` queried at ``offset + z * scale`` for inputs ``z`` in ``bounds``."""

    def __init__(
        self,
        inner: Target,
        scale: npt.NDArray[np.float64],
        offset: npt.NDArray[np.float64],
        bounds: tuple[float, float],
    ) -> None:
        super().__init__(inner)
        self._scale = np.asarray(scale, dtype=np.float64)
        self._offset = np.asarray(offset, dtype=np.float64)
        self._bounds = bounds

    @property
    def bounds(self) -> tuple[float, float]:
        """The input range in the rescaled space."""
        return self._bounds

    def to_inner(self, z: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Rescaled inputs ``(n, *input_shape)`` in the wrapped target's units (float32)."""
        arr = np.asarray(z, dtype=np.float64)
        shape = arr.shape[1:]
        x = self._offset.reshape(shape) + arr * self._scale.reshape(shape)
        return x.astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The wrapped target's labels at the mapped inputs."""
        return self._inner.predict(self.to_inner(x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The wrapped target's probabilities at the mapped inputs."""
        return self._inner.predict_proba(self.to_inner(x))


class _RescaledDifferentiable(RescaledTarget):
    """:class:`RescaledTarget` over a differentiable target: logits through the map."""

    def __init__(self, inner: Differentiable, *args: Any) -> None:
        super().__init__(inner, *args)
        self._differentiable = inner
        self._tensors: dict[tuple[Any, Any], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def device(self) -> torch.device:
        """The wrapped target's device."""
        return self._differentiable.device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped target's logits at ``offset + x * scale`` (differentiable in ``x``)."""
        import torch

        key = (x.device, x.dtype)
        if key not in self._tensors:
            shape = tuple(x.shape[1:])
            self._tensors[key] = (
                torch.as_tensor(self._scale.reshape(shape)).to(device=x.device, dtype=x.dtype),
                torch.as_tensor(self._offset.reshape(shape)).to(device=x.device, dtype=x.dtype),
            )
        scale, offset = self._tensors[key]
        return self._differentiable.logits(offset + x * scale)


def rescaled(
    target: Target,
    scale: npt.NDArray[np.float64],
    offset: npt.NDArray[np.float64],
    bounds: tuple[float, float],
) -> RescaledTarget:
    """``target`` taking inputs ``z`` with ``x = offset + z * scale`` (flat per-feature arrays)."""
    if isinstance(target, Differentiable):
        return _RescaledDifferentiable(target, scale, offset, bounds)
    return RescaledTarget(target, scale, offset, bounds)
