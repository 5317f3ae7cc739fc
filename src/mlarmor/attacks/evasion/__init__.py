"""Evasion attacks: inputs changed within a budget so that the model misclassifies them.

White-box (``"gradients"``): :class:`FGSM` (FGM with ``norm="l2"``), :class:`PGD`, :class:`APGD` and
:class:`APGDT`, the minimum-norm :class:`FMN`, and the :class:`AutoAttack` ensemble (``"auto"``).
Black-box: :class:`Square` (``"scores"``), :class:`HopSkipJump` (``"labels"``) and
:class:`Transfer` (``"labels"`` of the victim, gradients of a surrogate).
"""

from mlarmor.attacks.evasion.apgd import APGD, APGDT
from mlarmor.attacks.evasion.auto import AutoAttack
from mlarmor.attacks.evasion.fgsm import FGSM
from mlarmor.attacks.evasion.fmn import FMN
from mlarmor.attacks.evasion.hsj import BoundaryResult, HopSkipJump
from mlarmor.attacks.evasion.pgd import PGD
from mlarmor.attacks.evasion.square import Square
from mlarmor.attacks.evasion.transfer import Transfer

__all__ = [
    "APGD",
    "APGDT",
    "FGSM",
    "FMN",
    "PGD",
    "AutoAttack",
    "BoundaryResult",
    "HopSkipJump",
    "Square",
    "Transfer",
]
