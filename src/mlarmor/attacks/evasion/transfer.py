"""Transfer attack: adversarial inputs crafted white-box on a surrogate model, replayed on the victim."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, cast

import torch

from mlarmor._validation import check_choice, check_int, describe
from mlarmor.attacks._geometry import clip_bounds, project
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation
from mlarmor.attacks.evasion._kernels import LOSSES, Loss, ascent_step, random_init
from mlarmor.attacks.registry import register
from mlarmor.errors import invalid_parameter
from mlarmor.targets.base import Capability, Differentiable, Target

__all__ = ["Transfer"]

_SURROGATE = "a white-box target with the 'gradients' capability (e.g. a TorchTarget)"


@register("transfer")
@dataclass(frozen=True, kw_only=True, slots=True)
class Transfer(FixedBudgetAttack):
    """Craft adversarial inputs on a surrogate the attacker owns, then submit them to the victim.

    By default the crafting is PGD on the surrogate run for all ``steps`` from a random start in
    the ε-ball, *without* stopping when the surrogate is fooled: an input just across the
    surrogate's boundary rarely crosses the victim's, one pushed to high loss transfers far more
    often. Any white-box :class:`FixedBudgetAttack` can be given instead as ``attack`` (its
    ``_perturb`` runs on the surrogate; its own early stopping then applies).

    Queries: only the victim's evaluations count, the base class's clean prediction and final
    check (two per sample and ε); the surrogate's forward and backward passes are the attacker's
    own computation.

    Reference:
        Papernot, McDaniel and Goodfellow, "Transferability in Machine Learning: from Phenomena to
        Black-Box Attacks using Adversarial Samples", 2016. https://arxiv.org/abs/1605.07277

    Threat model:
        Transfer-based black-box evasion (MITRE ATLAS AML.T0043.002, OWASP ML01): the attacker
        trains or obtains a similar model, crafts inputs on it within ``eps`` in ``norm`` and
        needs only to submit them to the victim, which may expose nothing but labels.

    Attributes:
        surrogate: The attacker's white-box model (a target with the ``"gradients"`` capability,
            e.g. a :class:`~mlarmor.targets.TorchTarget`), with the victim's input space.
            Required to call the attack (``None`` only lets the registry build a default).
        attack: The white-box attack crafting on the surrogate; ``None`` for the built-in PGD.
        steps: PGD steps of the built-in crafting.
        loss: Loss of the built-in crafting: ``"ce"`` or ``"margin"``.
    """

    capability: ClassVar[Capability] = "labels"

    surrogate: Differentiable | None = None
    attack: FixedBudgetAttack | None = None
    steps: int = 40
    loss: Loss = "ce"

    def _check_params(self) -> None:
        owner = type(self).__name__
        s = self.surrogate
        if s is not None and (not isinstance(s, Differentiable) or "gradients" not in s.capabilities):
            raise invalid_parameter("surrogate", owner, _SURROGATE, describe(type(s).__name__))
        if self.attack is not None and (
            not isinstance(self.attack, FixedBudgetAttack) or self.attack.capability != "gradients"
        ):
            raise invalid_parameter(
                "attack",
                owner,
                "a white-box FixedBudgetAttack such as PGD, or None",
                describe(type(self.attack).__name__),
            )
        check_int(self.steps, "steps", owner)
        check_choice(self.loss, "loss", owner, LOSSES)

    def _check_target(self, target: Target) -> None:
        if self.surrogate is None:
            raise invalid_parameter("surrogate", type(self).__name__, _SURROGATE, None)

    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        surrogate = cast(Differentiable, self.surrogate)  # not None: checked by __call__
        xs, ys = x.to(surrogate.device), y.to(surrogate.device)
        if self.attack is not None:
            crafted = self.attack._perturb(surrogate, xs, ys, eps, generator).x_adv
        else:
            crafted = self._pgd(surrogate, xs, ys, eps, generator)
        zeros = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        return Perturbation(crafted.detach().to(x.device), zeros)

    def _pgd(
        self,
        model: Differentiable,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        bounds, loss_fn = model.bounds, LOSSES[self.loss]
        step = 2.5 * eps / self.steps
        # The call's generator lives on the victim's device, which may differ from the surrogate's.
        xc = random_init(x.to(generator.device), eps, self.norm, generator, bounds).to(x.device)
        for _ in range(self.steps):
            xg = xc.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(loss_fn(model.logits(xg), y).sum(), xg)
            with torch.no_grad():
                xc = clip_bounds(project(ascent_step(xc, grad, step, self.norm), x, eps, self.norm), bounds)
        return xc
