"""Functional kernels of the gradient attacks: projections, steps, random starts and losses.

Plain functions of batched tensors ``(n, ...)``: no state, no model, no Python loop over samples.
Every norm is taken per sample over all non-batch dimensions. The attack classes compose them and
the tests call them directly; the projections come from :mod:`mlarmor.attacks._geometry`, which the
attack base class shares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from mlarmor.attacks._geometry import (
    Norm,
    clip_bounds,
    lp_norms,
    per_sample,
    project,
    project_l2,
    project_linf,
)

__all__ = [
    "LOSSES",
    "Loss",
    "Norm",
    "ascent_step",
    "ce_loss",
    "clip_bounds",
    "lp_norms",
    "margin_loss",
    "normalize_l2",
    "project",
    "project_l2",
    "project_linf",
    "random_init",
    "random_l2",
    "random_linf",
    "summed_loss",
]

Loss = Literal["ce", "margin"]
"""Loss maximised by the gradient attacks: cross-entropy or the Carlini-Wagner logit margin."""


def normalize_l2(g: torch.Tensor) -> torch.Tensor:
    """Scale each sample of ``g`` to unit L2 norm; an all-zero sample stays zero."""
    norms = lp_norms(g, "l2").clamp_min(1e-12)
    return g / per_sample(norms, g)


def ascent_step(x: torch.Tensor, grad: torch.Tensor, step: float, norm: Norm) -> torch.Tensor:
    """One steepest-ascent step of size ``step`` in ``norm``: ``sign(grad)`` for L∞, unit ``grad`` for L2."""
    direction = grad.sign() if norm == "linf" else normalize_l2(grad)
    return x + step * direction


def random_linf(
    shape: tuple[int, ...],
    eps: float,
    generator: torch.Generator,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Perturbations drawn uniformly from the L∞ ball of radius ``eps``, shape ``(n, ...)``."""
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    return (2.0 * u - 1.0) * eps


def random_l2(
    shape: tuple[int, ...],
    eps: float,
    generator: torch.Generator,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Perturbations drawn uniformly from the L2 ball of radius ``eps``, shape ``(n, ...)``.

    A Gaussian direction gives a uniform point on the sphere; a radius ``eps * u ** (1 / d)`` makes
    the point uniform in the ball (``d`` is the number of features).
    """
    direction = normalize_l2(torch.randn(shape, generator=generator, dtype=dtype, device=device))
    d = 1
    for size in shape[1:]:
        d *= size
    u = torch.rand((shape[0],), generator=generator, dtype=dtype, device=device)
    radius = eps * u.pow(1.0 / d)
    return direction * per_sample(radius, direction)


def random_init(
    x: torch.Tensor,
    eps: float,
    norm: Norm,
    generator: torch.Generator,
    bounds: tuple[float, float],
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """A random starting point in the ``norm`` ball of radius ``eps`` around ``x``, clipped to ``bounds``.

    With ``mask`` (1 on features that may change, 0 on immutable ones, broadcasting over the batch)
    immutable features start at their clean value.
    """
    draw = random_linf if norm == "linf" else random_l2
    delta = draw(tuple(x.shape), eps, generator, dtype=x.dtype, device=x.device)
    if mask is not None:
        delta = delta * mask.to(delta.dtype)
    return clip_bounds(x + delta, bounds)


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy ``(n,)`` of ``logits`` against the true labels ``y``."""
    return F.cross_entropy(logits, y, reduction="none")


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample logit margin ``max_{j != y} z_j - z_y`` (Carlini and Wagner): positive once fooled."""
    true = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    is_true = F.one_hot(y, logits.shape[1]).bool()
    best_other = logits.masked_fill(is_true, float("-inf")).amax(dim=1)
    return best_other - true


LOSSES: dict[Loss, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": ce_loss,
    "margin": margin_loss,
}
"""Loss name → per-sample loss function ``(logits, y) -> (n,)``, all to be maximised."""


def summed_loss(loss: Loss, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``LOSSES[loss](logits, y).sum()`` in as few operations as possible (the gradient steps' objective).

    Summing per-sample losses leaves every sample's gradient its own; cross-entropy sums inside
    its kernel.
    """
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="sum")
    return LOSSES[loss](logits, y).sum()
