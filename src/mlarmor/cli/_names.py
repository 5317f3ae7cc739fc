"""The attack names the ``--help`` texts list, without importing the attacks (private).

The registries (:func:`mlarmor.attacks.available`, :data:`mlarmor.attacks.inference.MEMBERSHIP_ATTACKS`)
import PyTorch; ``--help`` and ``--version`` must not. ``tests/cli/test_startup.py`` keeps these
tuples equal to the registries, and the commands check a value against the registries themselves.
"""

from __future__ import annotations

__all__ = ["EVASION_ATTACKS", "MEMBERSHIP_LABELS", "POISONING_ATTACKS"]

EVASION_ATTACKS = ("apgd", "apgd-t", "auto", "fgsm", "fmn", "hopskipjump", "pgd", "square", "transfer")
MEMBERSHIP_LABELS = (
    "loss",
    "confidence",
    "entropy",
    "modified-entropy",
    "logit",
    "loss-per-class",
    "modified-entropy-per-class",
    "shadow-model",
    "lira-online",
    "lira-offline",
    "rmia-online",
    "rmia-offline",
    "label-only",
)
POISONING_ATTACKS = ("badnets", "blend", "clean-label", "feature-trigger", "label-flip", "warp")
