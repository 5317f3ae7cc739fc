"""Attacks against a model: a frozen configuration plus one call, per threat family.

Every attack is registered by name: :func:`create` builds any of them (``create("pgd", eps=0.1)``,
``create("lira", online=False)``, ``create("badnets", size=3)``) and :func:`available` lists them,
all or one :class:`Family`'s (``available(Family.EVASION)``). The call has one shape per family:

* **evasion**: ``attack(target, x, y, eps=...)`` returns an :class:`EvasionResult` (a tuple of
  them when ``eps`` is a sequence): ``PGD(eps=0.1)(target, x, y)``.
* **inference** (membership): ``attack.score(evidence)`` returns one score per audit example,
  higher meaning member, from a :class:`~mlarmor.attacks.inference.MembershipEvidence`; the result
  is reported under ``attack.label`` (``"lira-online"``, ``"loss-per-class"``...).
  :data:`~mlarmor.attacks.inference.MEMBERSHIP_ATTACKS` holds every configuration by label.
* **poisoning**: ``attack(x, y, fraction=..., target_class=..., bounds=..., num_classes=...,
  seed=...)`` returns a :class:`~mlarmor.attacks.poisoning.Poisoned` training set, and
  ``attack.success_rate(predict, poisoned, x_test, y_test)`` measures a model trained on it.

Extraction attacks, to come, will be :attr:`Family.SPYING`.
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
from mlarmor.attacks.inference import (
    RMIA,
    LabelOnlyAttack,
    LiRA,
    MembershipAttack,
    MembershipEvidence,
    ShadowModelAttack,
    ThresholdAttack,
)
from mlarmor.attacks.poisoning import (
    BadNets,
    Blend,
    CleanLabel,
    FeatureTrigger,
    LabelFlip,
    Poisoned,
    PoisoningAttack,
    Warp,
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
    "RMIA",
    "Attack",
    "AttackConfig",
    "AutoAttack",
    "BadNets",
    "Blend",
    "BoundaryResult",
    "CleanLabel",
    "EvasionResult",
    "Family",
    "FeatureTrigger",
    "FixedBudgetAttack",
    "HopSkipJump",
    "LabelFlip",
    "LabelOnlyAttack",
    "LiRA",
    "MembershipAttack",
    "MembershipEvidence",
    "Norm",
    "Perturbation",
    "Poisoned",
    "PoisoningAttack",
    "ShadowModelAttack",
    "Square",
    "ThresholdAttack",
    "Transfer",
    "Warp",
    "available",
    "create",
    "register",
]
