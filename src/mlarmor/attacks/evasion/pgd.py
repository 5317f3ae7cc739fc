"""Projected gradient descent (PGD) in the L∞ and L2 norms, with random restarts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, cast

import torch

from mlarmor._validation import check_choice, check_int, check_positive
from mlarmor.attacks._geometry import clip_bounds, per_sample, project
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation
from mlarmor.attacks.evasion._kernels import LOSSES, Loss, ascent_step, random_init, summed_loss
from mlarmor.attacks.registry import register
from mlarmor.errors import invalid_parameter
from mlarmor.targets.base import Capability, Differentiable, Target

__all__ = ["PGD"]

# Fooled rows are dropped from the batch once they are 1/_COMPACT_AT of it (see PGD._ascend).
_COMPACT_AT = 4


@register("pgd")
@dataclass(frozen=True, kw_only=True, slots=True)
class PGD(FixedBudgetAttack):
    """Iterated gradient ascent on the loss, projected back onto the ε-ball after every step.

    Each restart starts from a random point of the ball (or from the input itself with
    ``random_start=False``) and takes ``steps`` steps of size ``step``: the gradient's sign for L∞,
    the unit gradient for L2. A sample is frozen at the first iterate that fools the model and is
    no longer attacked, in this restart or the next ones; a sample never fooled keeps the last
    iterate of the restart that ended on the highest loss. Each step is one forward and one
    backward pass over the samples not yet fooled (fooled ones leave the batch in groups).

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models Resistant to
        Adversarial Attacks", ICLR 2018. https://arxiv.org/abs/1706.06083

    Threat model:
        White-box evasion at test time (MITRE ATLAS AML.T0043.000, OWASP ML01): the attacker knows
        the model's gradients and changes each input by at most ``eps`` in ``norm``, within the
        input bounds, to make it misclassified (untargeted).

    Attributes:
        steps: Gradient steps per restart.
        step: Step size, in ``norm``; ``None`` means ``2.5 * eps / steps`` (Madry et al.), which
            follows ``eps`` when several are given to one call.
        restarts: Runs from independent random starts; later runs attack only the samples that
            earlier ones did not fool.
        random_start: Start from a uniformly random point of the ε-ball instead of the input.
        loss: ``"ce"`` (cross-entropy) or ``"margin"`` (Carlini-Wagner logit margin
            ``max_{j != y} z_j - z_y``, which does not saturate on confident predictions).
    """

    capability: ClassVar[Capability] = "gradients"

    steps: int = 40
    step: float | None = None
    restarts: int = 1
    random_start: bool = True
    loss: Loss = "ce"

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_int(self.steps, "steps", owner)
        if self.step is not None:
            object.__setattr__(self, "step", check_positive(self.step, "step", owner))
        check_int(self.restarts, "restarts", owner)
        if not isinstance(self.random_start, bool):
            raise invalid_parameter("random_start", owner, "a bool", self.random_start)
        if self.restarts > 1 and not self.random_start:
            raise invalid_parameter(
                "restarts",
                owner,
                "1 when random_start is False (every restart would repeat the first)",
                self.restarts,
            )
        check_choice(self.loss, "loss", owner, LOSSES)

    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        model = cast(Differentiable, target)
        step = self.step if self.step is not None else 2.5 * eps / self.steps
        best = _Best.initial(x)
        for _ in range(self.restarts):
            pos = (~best.fooled).nonzero().squeeze(1)
            if pos.numel() == 0:
                break
            x0 = x[pos]
            mask = getattr(target, "mutable_mask", None)  # immutable features (see attacks._constraints)
            start = (
                random_init(x0, eps, self.norm, generator, target.bounds, mask) if self.random_start else x0
            )
            self._ascend(model, x0, y[pos], pos, start, eps, step, best)
        return Perturbation(best.x, best.queries)

    def _ascend(
        self,
        model: Differentiable,
        x0: torch.Tensor,
        y0: torch.Tensor,
        pos: torch.Tensor,
        start: torch.Tensor,
        eps: float,
        step: float,
        best: _Best,
    ) -> None:
        """One PGD run from ``start`` over the rows ``pos`` of ``best``.

        Every iterate is evaluated once: ``steps`` times with a backward pass, then the last one
        without. A row that fools the model is pinned where it is (its step is cancelled) and its
        label for the fooled-check becomes its own prediction, so it costs no bookkeeping while it
        rides along; once pinned rows make up a quarter of the batch they are written to ``best``
        together and the batch is compacted. This keeps the per-step cost low when rows fall one by
        one; a pinned row is charged the evaluations it rode along for, so the per-sample queries
        still add up to the model's own count. A row never fooled ends on its last iterate, merged
        into ``best`` if its loss beats the earlier restarts'. In L∞ the ε-ball and the bounds are
        one pair of per-element limits, so a step is three tensor operations.
        """
        bounds = model.bounds
        linf = self.norm == "linf"
        lo, hi = _box(x0, eps, bounds) if linf else (x0, x0)
        xc = start.detach()
        y_check = y0  # what "fooled" compares against: a pinned row's own (wrong) prediction
        moving = torch.ones_like(per_sample(y0, xc), dtype=xc.dtype)  # 1 per row, 0 once pinned
        riders = 0  # rows pinned since the last compaction (an upper bound if the model is noisy)
        for t in range(self.steps):
            xc.requires_grad_(True)
            logits = model.logits(xc)
            grad = torch.autograd.grad(summed_loss(self.loss, logits, y0), xc)[0]
            xc = xc.detach()
            pred = logits.detach().argmax(dim=1)
            adv = pred != y_check
            newly = int(adv.sum())
            if newly:
                riders += newly
                y_check = torch.where(adv, pred, y_check)
                moving.masked_fill_(per_sample(adv, moving), 0.0)
                if _COMPACT_AT * riders >= pos.numel():
                    pinned = moving.flatten() == 0
                    best.freeze(pos[pinned], xc[pinned], evaluations=t + 1)
                    keep = ~pinned
                    if not keep.any():
                        return
                    pos, x0, y0, xc, grad = pos[keep], x0[keep], y0[keep], xc[keep], grad[keep]
                    lo, hi, moving, y_check = lo[keep], hi[keep], moving[keep], y0
                    riders = 0
            if linf:  # a pinned row moves by 0 and its limits hold it where it is
                xc = torch.clamp(torch.addcmul(xc, grad.sign(), moving, value=step), lo, hi)
            else:
                xc = clip_bounds(project(ascent_step(xc, grad * moving, step, "l2"), x0, eps, "l2"), bounds)
        with torch.no_grad():
            logits = model.logits(xc)
            losses = LOSSES[self.loss](logits, y0)
        done = (logits.argmax(dim=1) != y_check) | (moving.flatten() == 0)
        best.freeze(pos[done], xc[done], evaluations=self.steps + 1)
        keep = ~done
        best.merge(pos[keep], xc[keep], losses[keep], evaluations=self.steps + 1)


def _box(x0: torch.Tensor, eps: float, bounds: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element limits of the L∞ ball around ``x0`` intersected with ``bounds``.

    ``clamp(v, low, high)`` with these equals ``clip_bounds(project_linf(v, x0, eps), bounds)`` exactly
    for any ``x0`` within bounds (min and max do not round).
    """
    return (x0 - eps).clamp_min(bounds[0]), (x0 + eps).clamp_max(bounds[1])


@dataclass(slots=True)
class _Best:
    """Per-sample state of one PGD call, shared by its restarts.

    Attributes:
        x: The first iterate that fooled the model, else the last iterate of the best restart.
        loss: The loss of ``x`` (float64, ``-inf`` before the first evaluation).
        fooled: Whether ``x`` fools the model.
        queries: Forward passes spent per sample.
    """

    x: torch.Tensor
    loss: torch.Tensor
    fooled: torch.Tensor
    queries: torch.Tensor

    @classmethod
    def initial(cls, x: torch.Tensor) -> _Best:
        n, device = x.shape[0], x.device
        return cls(
            x=x.clone(),
            loss=torch.full((n,), float("-inf"), dtype=torch.float64, device=device),
            fooled=torch.zeros(n, dtype=torch.bool, device=device),
            queries=torch.zeros(n, dtype=torch.int64, device=device),
        )

    def freeze(self, rows: torch.Tensor, x: torch.Tensor, *, evaluations: int) -> None:
        """Rows fooled by the iterates ``x``, charged ``evaluations`` forward passes in this run."""
        self.x[rows] = x
        self.fooled[rows] = True
        self.queries[rows] += evaluations

    def merge(self, rows: torch.Tensor, x: torch.Tensor, loss: torch.Tensor, *, evaluations: int) -> None:
        """Rows that survived a run: keep the run's last iterate where its loss beats earlier runs'."""
        self.queries[rows] += evaluations
        loss = loss.to(self.loss.dtype)
        better = loss > self.loss[rows]
        self.x[rows[better]] = x[better]
        self.loss[rows[better]] = loss[better]
