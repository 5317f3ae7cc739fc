"""Training-time defenses: adversarial training (PGD-AT, TRADES) and its before/after evaluation."""

from mlarmor.defenses.training.adversarial import AdversarialTrainer, EpochRecord, Method, TrainNorm
from mlarmor.defenses.training.harden import HardeningResult, harden_and_evaluate, robust_accuracy

__all__ = [
    "AdversarialTrainer",
    "EpochRecord",
    "HardeningResult",
    "Method",
    "TrainNorm",
    "harden_and_evaluate",
    "robust_accuracy",
]
