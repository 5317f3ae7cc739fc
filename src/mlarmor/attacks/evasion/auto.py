"""The ``auto`` ensemble: complementary attacks in sequence, each only on the points still robust."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar, cast

import torch

from mlarmor._validation import check_choice, check_int
from mlarmor.attacks._geometry import clip_bounds, project
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation, _predict
from mlarmor.attacks.registry import REGISTRY, register
from mlarmor.errors import invalid_parameter
from mlarmor.targets.base import Capability, Differentiable, Target

__all__ = ["DEFAULT_COMPONENTS", "AutoAttack"]

DEFAULT_COMPONENTS: tuple[str, ...] = ("apgd", "apgd-t", "fmn")
"""APGD-CE, APGD-T (targeted DLR, 9 classes) and FMN, with their defaults: AutoAttack's white-box part."""


_log = logging.getLogger(__name__)


@register("auto")
@dataclass(frozen=True, kw_only=True, slots=True)
class AutoAttack(FixedBudgetAttack):
    """Runs several attacks one after the other, each only on the samples all earlier ones left robust.

    AutoAttack's standard protocol: a sample counts as fooled when any component fools it within
    the budget, and the adversarial input reported is the first successful component's. Components
    are registry names (built with this ensemble's ``norm`` and ``batch_size`` and their own defaults)
    or configured :class:`FixedBudgetAttack` instances with the same ``norm``. Queries are summed over
    the components, plus one forward pass per component to check which samples are still robust.
    Each component draws its randomness from its own generator, seeded deterministically from the
    ensemble's generator in component order, so a result is reproducible with ``seed`` and adding a
    component at the end does not change what the earlier ones do.

    Reference:
        Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
        parameter-free attacks", ICML 2020. https://arxiv.org/abs/2003.01690

    Threat model:
        White-box evasion at test time (MITRE ATLAS AML.T0043.000, OWASP ML01): the attacker knows
        the model's gradients and changes each input by at most ``eps`` in ``norm``, within the
        input bounds, to make it misclassified.

    Attributes:
        components: The attacks to run, in order (default: APGD-CE, APGD-T, FMN).
        n_iter: Iterations of each gradient component given by name (their ``n_iter`` or
            ``steps``); configured instances keep their own.
    """

    capability: ClassVar[Capability] = "gradients"

    components: tuple[str | FixedBudgetAttack, ...] = DEFAULT_COMPONENTS
    n_iter: int = 100

    def _check_params(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.components, tuple | list) or not self.components:
            raise invalid_parameter(
                "components", owner, "a non-empty tuple of attack names or instances", self.components
            )
        check_int(self.n_iter, "n_iter", owner)
        object.__setattr__(self, "components", tuple(self.components))
        for component in self.components:
            self._build(component)

    def _build(self, component: str | FixedBudgetAttack) -> FixedBudgetAttack:
        owner = type(self).__name__
        if isinstance(component, FixedBudgetAttack):
            if component.norm != self.norm:
                raise invalid_parameter(
                    "components", owner, f"attacks with norm={self.norm!r} like the ensemble", component
                )
            return component
        names = tuple(n for n, cls in REGISTRY.items() if issubclass(cls, FixedBudgetAttack) and n != "auto")
        check_choice(component, "components", owner, names)
        cls = cast("type[FixedBudgetAttack]", REGISTRY[component])
        if self.norm not in cls.norms:
            raise invalid_parameter(
                "components", owner, f"attacks that support norm={self.norm!r}", component
            )
        factory: Callable[..., FixedBudgetAttack] = cls
        declared = {f.name for f in fields(cls)}
        iterations = {key: self.n_iter for key in ("n_iter", "steps") if key in declared}
        return factory(norm=self.norm, seed=self.seed, batch_size=self.batch_size, **iterations)

    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        attacks = [self._build(c) for c in self.components]
        # One seed per component, all drawn up front: each component's randomness is independent
        # of how many samples the earlier ones fooled.
        seeds = torch.randint(
            0, 2**62, (len(attacks),), generator=generator, device=generator.device
        ).tolist()
        differentiable = isinstance(target, Differentiable)
        x_adv = x.clone()
        queries = torch.zeros_like(y)
        fooled = torch.zeros_like(y, dtype=torch.bool)
        attributable = True
        for attack, seed in zip(attacks, seeds, strict=True):
            todo = (~fooled).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            if not attack.supports(target):
                # e.g. APGD-T's targeted DLR loss is undefined with fewer than 4 classes
                _log.info(
                    "auto: %s cannot run on %s (%d classes); skipped",
                    attack.name,
                    target.name,
                    target.num_classes,
                )
                continue
            own = torch.Generator(device=generator.device)
            own.manual_seed(int(seed))
            out = attack._perturb(target, x[todo], y[todo], eps, own)
            with torch.no_grad():
                moved = project(out.x_adv.detach().to(x.dtype), x[todo], eps, self.norm)
                candidate = clip_bounds(moved, target.bounds)
            pred = _predict(target, candidate, differentiable)
            queries[todo] += 1
            if out.queries is None:
                attributable = False
            else:
                queries[todo] += out.queries.to(queries.device)
            won = pred != y[todo]
            x_adv[todo] = candidate
            fooled[todo[won]] = True
        return Perturbation(x_adv, queries if attributable else None)
