"""Geometry of the threat model: norms, projections onto the ε-ball and clipping to bounds (private).

Shared by the attack base class, which enforces the budget on every result, and the evasion kernels.
Every norm is taken per sample over all non-batch dimensions of a batch ``(n, ...)``.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["Norm", "clip_bounds", "lp_norms", "per_sample", "project", "project_l2", "project_linf"]

Norm = Literal["linf", "l2"]
"""Threat-model norm: ``"linf"`` (largest change of one feature) or ``"l2"`` (Euclidean distance)."""

_TINY = 1e-12


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape ``(n,)`` to ``(n, 1, ..., 1)`` so that it broadcasts against ``like``."""
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


def lp_norms(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Per-sample norms ``(n,)`` of a batch of perturbations."""
    flat = delta.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    norms: torch.Tensor = torch.linalg.vector_norm(flat, ord=2, dim=1)
    return norms


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Closest point to ``x_adv`` in the L∞ ball of radius ``eps`` around ``x`` (a clamp per element).

    A point already inside is returned unchanged (bit for bit); the operation is idempotent.
    """
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps)


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Closest point to ``x_adv`` in the L2 ball of radius ``eps`` around ``x`` (a radial rescale).

    A point already inside is returned unchanged (bit for bit); a point outside lands on the sphere
    up to float rounding.
    """
    delta = x_adv - x
    norms = lp_norms(delta, "l2")
    outside = norms > eps
    scale = eps / norms.clamp_min(_TINY)
    projected = x + delta * per_sample(scale, delta)
    return torch.where(per_sample(outside, delta), projected, x_adv)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    """Project ``x_adv`` onto the ``norm`` ball of radius ``eps`` around ``x``."""
    if norm == "linf":
        return project_linf(x_adv, x, eps)
    return project_l2(x_adv, x, eps)


def clip_bounds(x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Clamp every element into the valid input range ``bounds = (low, high)``.

    Clipping never leaves the ε-ball of an input that is itself within bounds: each coordinate only
    moves towards the original one.
    """
    return x.clamp(min=bounds[0], max=bounds[1])
