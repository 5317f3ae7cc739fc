"""Defenses that harden a model: adversarial training today (``mlarmor.defenses.training``)."""

from mlarmor.defenses.training import (
    AdversarialTrainer,
    EpochRecord,
    HardeningResult,
    harden_and_evaluate,
    robust_accuracy,
)

__all__ = [
    "AdversarialTrainer",
    "EpochRecord",
    "HardeningResult",
    "harden_and_evaluate",
    "robust_accuracy",
]
