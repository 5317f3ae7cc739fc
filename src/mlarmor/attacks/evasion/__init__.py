"""Evasion attacks: inputs changed within a budget so that the model misclassifies them.

White-box (``"gradients"``): :class:`FGSM` (FGM with ``norm="l2"``) and :class:`PGD`.
"""

from mlarmor.attacks.evasion.fgsm import FGSM
from mlarmor.attacks.evasion.pgd import PGD

__all__ = ["FGSM", "PGD"]
