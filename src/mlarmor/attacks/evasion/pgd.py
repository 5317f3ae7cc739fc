"""Projected gradient descent (PGD) in the L∞ and L2 norms, with random restarts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, cast

import torch

from mlarmor.attacks import _checks
from mlarmor.attacks._geometry import clip_bounds, per_sample, project
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation
from mlarmor.attacks.evasion._kernels import LOSSES, Loss, ascent_step, random_init
from mlarmor.attacks.registry import register
from mlarmor.errors import invalid_parameter
from mlarmor.targets.base import Capability, Differentiable, Target

__all__ = ["PGD"]


@register("pgd")
@dataclass(frozen=True, kw_only=True, slots=True)
class PGD(FixedBudgetAttack):
    """Iterated gradient ascent on the loss, projected back onto the ε-ball after every step.

    Each restart starts from a random point of the ball (or from the input itself with
    ``random_start=False``) and takes ``steps`` steps of size ``step``: the gradient's sign for L∞,
    the unit gradient for L2. A sample is frozen at the first iterate that fools the model and is
    no longer sent through the model, in this restart or the next ones; a sample never fooled keeps
    the iterate with the highest loss seen. Each step is one forward and one backward pass over the
    samples not yet fooled.

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
        _checks.check_int(self.steps, "steps", owner)
        if self.step is not None:
            object.__setattr__(self, "step", _checks.check_float(self.step, "step", owner, low_open=True))
        _checks.check_int(self.restarts, "restarts", owner)
        if not isinstance(self.random_start, bool):
            raise invalid_parameter("random_start", owner, "a bool", self.random_start)
        if self.restarts > 1 and not self.random_start:
            raise invalid_parameter(
                "restarts",
                owner,
                "1 when random_start is False (every restart would repeat the first)",
                self.restarts,
            )
        _checks.check_choice(self.loss, "loss", owner, LOSSES)

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
            start = random_init(x0, eps, self.norm, generator, target.bounds) if self.random_start else x0
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
        without. A row leaves the run (and is written to ``best``) as soon as the model misclassifies
        it; the others keep their highest-loss iterate in dense tensors aligned with the run's rows,
        merged into ``best`` at the end, so a step costs no scattered writes.
        """
        loss_fn = LOSSES[self.loss]
        bounds = model.bounds
        xc = start.detach()
        run_x = xc
        run_loss = torch.full((xc.shape[0],), float("-inf"), dtype=torch.float64, device=xc.device)
        for t in range(self.steps + 1):
            last = t == self.steps
            xc.requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                logits = model.logits(xc)
                losses = loss_fn(logits, y0)
            grad = None if last else torch.autograd.grad(losses.sum(), xc)[0]
            with torch.no_grad():
                xd = xc.detach()
                values = losses.detach().to(torch.float64)
                better = values > run_loss
                run_x = torch.where(per_sample(better, xd), xd, run_x)
                run_loss = torch.where(better, values, run_loss)
                adv = logits.argmax(dim=1) != y0
                if grad is None or adv.any():
                    best.freeze(pos[adv], xd[adv], evaluations=t + 1)
                    keep = ~adv
                    if grad is None:
                        best.merge(pos[keep], run_x[keep], run_loss[keep], evaluations=t + 1)
                        return
                    if not keep.any():
                        return
                    pos, x0, y0, xd, grad = pos[keep], x0[keep], y0[keep], xd[keep], grad[keep]
                    run_x, run_loss = run_x[keep], run_loss[keep]
                moved = ascent_step(xd, grad, step, self.norm)
                xc = clip_bounds(project(moved, x0, eps, self.norm), bounds)


@dataclass(slots=True)
class _Best:
    """Per-sample state of one PGD call, shared by its restarts.

    Attributes:
        x: The first iterate that fooled the model, else the one with the highest loss.
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
        """Rows fooled by the iterates ``x`` after ``evaluations`` forward passes in this run."""
        self.x[rows] = x
        self.fooled[rows] = True
        self.queries[rows] += evaluations

    def merge(self, rows: torch.Tensor, x: torch.Tensor, loss: torch.Tensor, *, evaluations: int) -> None:
        """Rows that survived a run: keep the run's best iterate where it beats earlier runs."""
        self.queries[rows] += evaluations
        better = loss > self.loss[rows]
        self.x[rows[better]] = x[better]
        self.loss[rows[better]] = loss[better]
