"""The fast gradient sign method (FGSM) and its L2 variant, the fast gradient method (FGM)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, cast

import torch

from mlarmor._validation import check_choice
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation
from mlarmor.attacks.evasion._kernels import LOSSES, Loss, ascent_step
from mlarmor.attacks.registry import register
from mlarmor.targets.base import Capability, Differentiable, Target

__all__ = ["FGSM"]


@register("fgsm")
@dataclass(frozen=True, kw_only=True, slots=True)
class FGSM(FixedBudgetAttack):
    """One gradient step of the full budget: ``x + eps * sign(grad)`` (L∞), ``x + eps * unit(grad)`` (L2).

    The cheapest white-box attack (one forward and one backward pass per sample) and a weak one: a
    model that resists FGSM but not PGD is common, so FGSM is a smoke test, not an evaluation.
    With ``norm="l2"`` it is the fast gradient method (FGM).

    Reference:
        Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015.
        https://arxiv.org/abs/1412.6572

    Threat model:
        White-box evasion at test time (MITRE ATLAS AML.T0043.000, OWASP ML01): the attacker knows
        the model's gradients and changes each input by at most ``eps`` in ``norm``, within the
        input bounds, to make it misclassified (untargeted).

    Attributes:
        loss: Loss whose gradient gives the direction: ``"ce"`` (cross-entropy) or ``"margin"``
            (logit margin, which does not vanish on confident predictions).
    """

    capability: ClassVar[Capability] = "gradients"

    loss: Loss = "ce"

    def _check_params(self) -> None:
        check_choice(self.loss, "loss", type(self).__name__, LOSSES)

    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        model = cast(Differentiable, target)
        xg = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            loss = LOSSES[self.loss](model.logits(xg), y).sum()
            (grad,) = torch.autograd.grad(loss, xg)
        with torch.no_grad():
            x_adv = ascent_step(x, grad, eps, self.norm)
        return Perturbation(x_adv, torch.ones(x.shape[0], dtype=torch.int64, device=x.device))
