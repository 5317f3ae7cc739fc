"""Fast Minimum-Norm (FMN): the smallest perturbation that flips each prediction, in L∞ or L2."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, cast

import torch

from mlarmor._validation import check_float, check_int, check_positive
from mlarmor.attacks._geometry import Norm, clip_bounds, lp_norms, per_sample
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation
from mlarmor.attacks.evasion._kernels import margin_loss, normalize_l2
from mlarmor.attacks.registry import register
from mlarmor.targets.base import Capability, Differentiable, Target

__all__ = ["FMN", "fmn"]


def _project_radius(delta: torch.Tensor, radius: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Project each perturbation onto the ``norm`` ball of its own radius ``radius[i]``."""
    if norm == "linf":
        r = per_sample(radius, delta)
        return torch.minimum(torch.maximum(delta, -r), r)
    norms = lp_norms(delta, "l2")
    scale = torch.where(norms > radius, radius / norms.clamp_min(1e-12), torch.ones_like(norms))
    return delta * per_sample(scale, delta)


def fmn(
    model: Differentiable,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: Norm,
    steps: int,
    alpha_init: float,
    gamma_init: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run FMN on a batch; return the smallest adversarial found per sample and its norm (``inf`` if none).

    A sample never fooled gets its last iterate instead. ``steps`` forward and backward passes per
    sample, no early stopping: the norm keeps shrinking after the first success.
    """
    bounds = model.bounds
    alpha_final, gamma_final = alpha_init / 100.0, 0.001
    dual = {"linf": 1, "l2": 2}[norm]
    # The largest perturbation the bounds allow: ε never needs to grow beyond it.
    reach = torch.maximum(x - bounds[0], bounds[1] - x)
    worst = lp_norms(reach, norm)
    delta = torch.zeros_like(x)
    eps = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    best_norm = torch.full_like(eps, math.inf)
    best_adv = x.clone()
    found = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for i in range(steps):
        cosine = (1.0 + math.cos(math.pi * i / steps)) / 2.0
        alpha = alpha_final + (alpha_init - alpha_final) * cosine
        gamma = gamma_final + (gamma_init - gamma_final) * cosine
        delta.requires_grad_(True)
        logits = model.logits(x + delta)
        # Maximise max_{j != y} z_j - z_y; the model is fooled once it is positive.
        loss = margin_loss(logits, y)
        grad = torch.autograd.grad(loss.sum(), delta)[0]
        with torch.no_grad():
            delta = delta.detach()
            # Only directions the bounds let the input move in: on data with many saturated features
            # (images with black backgrounds) the full gradient overestimates how fast the margin can
            # grow, and the linear estimate of the boundary then never gets crossed.
            point = x + delta
            blocked = ((point <= bounds[0]) & (grad < 0)) | ((point >= bounds[1]) & (grad > 0))
            grad = grad.masked_fill(blocked, 0.0)
            size = lp_norms(delta, norm)
            adv = logits.argmax(dim=1) != y
            smaller = adv & (size < best_norm)
            found |= adv
            best_norm = torch.where(smaller, size, best_norm)
            best_adv = torch.where(per_sample(smaller, x), x + delta, best_adv)
            # Linear estimate of the distance to the decision boundary, in the attack's norm.
            to_boundary = loss.detach().abs() / torch.linalg.vector_norm(
                grad.flatten(1), ord=dual, dim=1
            ).clamp_min(1e-12)
            eps = torch.where(
                adv,
                torch.minimum(eps * (1.0 - gamma), best_norm),
                torch.where(found, eps * (1.0 + gamma), size + to_boundary),
            )
            eps = torch.minimum(eps, worst)
            delta = delta + alpha * normalize_l2(grad)
            delta = _project_radius(delta, eps, norm)
            delta = clip_bounds(x + delta, bounds) - x
    last = (x + delta).detach()
    return torch.where(per_sample(found, x), best_adv, last), best_norm


@register("fmn")
@dataclass(frozen=True, kw_only=True, slots=True)
class FMN(FixedBudgetAttack):
    """Fast Minimum-Norm attack: per sample, the smallest ``norm`` perturbation that fools the model.

    FMN moves along the normalised gradient of the logit margin while projecting onto an ε-ball
    whose radius it adapts per sample: it grows by a linear estimate of the distance to the decision
    boundary until a first adversarial point is found, then shrinks by a factor ``1 - gamma`` while the
    iterate stays adversarial and grows by ``1 + gamma`` when it is not. Step ``alpha`` and ``gamma`` follow a
    cosine schedule (``alpha`` from ``alpha_init`` to ``alpha_init / 100``, ``gamma`` from ``gamma_init`` to
    0.001). The smallest adversarial point seen is kept.

    As a fixed-budget attack it succeeds on a sample when that minimal perturbation is within the
    requested ``eps``; the result's ``norms`` are then the minimal norms found, not ``eps``. A sample
    whose minimal perturbation exceeds ``eps`` is projected back onto the ball by the base class.
    ``steps`` forward and backward passes per sample, without early stopping (the norm keeps
    shrinking after the first success); the search does not depend on ``eps``.

    Reference:
        Pintor, Roli, Brendel and Biggio, "Fast Minimum-norm Adversarial Attacks through Adaptive
        Norm Constraints", NeurIPS 2021. https://arxiv.org/abs/2102.12827

    Threat model:
        White-box evasion at test time (MITRE ATLAS AML.T0043.000, OWASP ML01): the attacker knows
        the model's gradients and looks for the smallest change, in ``norm`` and within the input
        bounds, that makes each input misclassified.

    Attributes:
        steps: Iterations (one forward and one backward pass each).
        alpha_init: Initial step size of the perturbation (along the unit-L2 gradient).
        gamma_init: Initial relative step of the ε radius.
    """

    capability: ClassVar[Capability] = "gradients"

    steps: int = 100
    alpha_init: float = 1.0
    gamma_init: float = 0.05

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_int(self.steps, "steps", owner)
        object.__setattr__(self, "alpha_init", check_positive(self.alpha_init, "alpha_init", owner))
        object.__setattr__(
            self,
            "gamma_init",
            check_float(self.gamma_init, "gamma_init", owner, low=0.0, low_open=True, high=1.0),
        )

    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        model = cast(Differentiable, target)
        x_adv, _ = fmn(
            model,
            x,
            y,
            norm=self.norm,
            steps=self.steps,
            alpha_init=self.alpha_init,
            gamma_init=self.gamma_init,
        )
        return Perturbation(x_adv, torch.full_like(y, self.steps))
