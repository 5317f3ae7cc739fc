"""Attacks against a model, with one shape: a frozen configuration plus a call.

``PGD(eps=0.1)(target, x, y)`` returns an :class:`EvasionResult`; :func:`create` builds any
registered attack by name (``create("pgd", eps=0.1, steps=20)``) and :func:`available` lists them.
"""

from mlarmor.attacks.base import Attack, Family, FixedBudgetAttack, Norm, Perturbation
from mlarmor.attacks.evasion import FGSM, PGD
from mlarmor.attacks.registry import REGISTRY, available, create, register
from mlarmor.attacks.result import EvasionResult

__all__ = [
    "FGSM",
    "PGD",
    "REGISTRY",
    "Attack",
    "EvasionResult",
    "Family",
    "FixedBudgetAttack",
    "Norm",
    "Perturbation",
    "available",
    "create",
    "register",
]
