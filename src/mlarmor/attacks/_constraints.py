"""Feature constraints inside attacks: immutable features, integer features and feature ranges (private).

A :class:`~mlarmor.data.Dataset` declares what an attacker may not do to an input (change an
immutable feature, give a count a fractional value, leave a feature's range). Attacks honour it in
two places:

* while searching: gradient attacks see the target through :class:`MaskedTarget`, whose gradient is
  zero on immutable features, and their random starts leave those features alone, so the whole
  budget goes to features the attacker can change;
* on every result: :func:`constrain` rounds integer features (towards the input, so the budget still
  holds), clips to the feature ranges and restores immutable features, and success is measured on
  that point. Black-box attacks (Square, HopSkipJump) get this final projection only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mlarmor.attacks._geometry import Norm, lp_norms, per_sample
from mlarmor.targets._common import TargetProxy
from mlarmor.targets.base import Differentiable

if TYPE_CHECKING:
    from mlarmor.data import Dataset

__all__ = ["MaskedTarget", "constrain", "mutable_mask"]

# Rounding slack when checking that a constrained point is still within the budget.
_TOLERANCE = 1e-6


def mutable_mask(constraints: Dataset, like: torch.Tensor) -> torch.Tensor | None:
    """1 on features an attacker may change, 0 on immutable ones (``input_shape``); ``None`` if all may."""
    if not constraints.immutable:
        return None
    mask: torch.Tensor = constraints.mutable_mask(like)
    return mask


def constrain(
    constraints: Dataset, x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: Norm
) -> torch.Tensor:
    """``constraints.project(x_adv, x)``, kept within the ``norm`` ball of radius ``eps`` around ``x``.

    Integer features are rounded to the nearest integer inside the budget (for L∞: within
    ``[ceil(x - eps), floor(x + eps)]``; for L2, a row that rounding pushes past ``eps`` keeps its
    integer features unchanged). A row that still cannot satisfy both (an integer feature whose clean
    value is not whole, say) falls back to the clean input: the result never leaves the threat model.
    """
    out = constraints.project(x_adv, x)
    if constraints.integer:
        integral = constraints.integer_mask(out).bool()
        if norm == "linf":
            low, high = constraints.integral_limits(x - eps, x + eps)
            out = torch.where(integral, torch.minimum(torch.maximum(out, low), high), out)
        else:
            over = lp_norms(out - x, "l2") > eps * (1 + _TOLERANCE)
            if bool(over.any()):
                keep_integers = per_sample(over, out) & integral
                out = torch.where(keep_integers, x, out)
    outside = lp_norms(out - x, norm) > eps * (1 + _TOLERANCE) + _TOLERANCE
    if bool(outside.any()):
        out = torch.where(per_sample(outside, out), x, out)
    return out


class MaskedTarget(TargetProxy):
    """A differentiable target whose input gradient is zero on immutable features.

    The forward pass is the wrapped target's, value for value (``x * m + x.detach() * (1 - m)`` is
    ``x``); only the gradient changes, so sign- and norm-based steps move mutable features only.
    Queries are counted by the wrapped target.
    """

    def __init__(self, inner: Differentiable, mask: torch.Tensor) -> None:
        super().__init__(inner)
        self._differentiable = inner
        self._mask = mask.to(device=inner.device)

    @property
    def mutable_mask(self) -> torch.Tensor:
        """1 on features the attacker may change, 0 on immutable ones (``input_shape``)."""
        return self._mask

    @property
    def device(self) -> torch.device:
        """The wrapped target's device."""
        return self._differentiable.device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped target's logits, with the input gradient cut on immutable features."""
        if x.requires_grad:
            mask = self._mask.to(x.dtype)
            x = x * mask + x.detach() * (1.0 - mask)
        return self._differentiable.logits(x)
