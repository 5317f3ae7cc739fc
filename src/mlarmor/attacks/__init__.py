"""Attacks against a model, with one shape: a frozen configuration plus a call.

``PGD(eps=0.1)(target, x, y)`` returns an :class:`EvasionResult`; :func:`create` builds any
registered attack by name (``create("pgd", eps=0.1, steps=20)``) and :func:`available` lists them.
"""

from mlarmor.attacks.base import Attack, AttackConfig, Family, FixedBudgetAttack, Norm, Perturbation
from mlarmor.attacks.evasion import (
    APGD,
    APGDT,
    FGSM,
    FMN,
    PGD,
    AutoAttack,
    BoundaryResult,
    HopSkipJump,
    Square,
    Transfer,
)
from mlarmor.attacks.registry import REGISTRY, available, create, register
from mlarmor.attacks.result import EvasionResult

__all__ = [
    "APGD",
    "APGDT",
    "FGSM",
    "FMN",
    "PGD",
    "REGISTRY",
    "Attack",
    "AttackConfig",
    "AutoAttack",
    "BoundaryResult",
    "EvasionResult",
    "Family",
    "FixedBudgetAttack",
    "HopSkipJump",
    "Norm",
    "Perturbation",
    "Square",
    "Transfer",
    "available",
    "create",
    "register",
]
