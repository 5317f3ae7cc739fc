"""Training-time defenses: adversarial training (PGD-AT, TRADES), differentially private training (DP-SGD)."""

from mlarmor.defenses.training.adversarial import AdversarialTrainer, EpochRecord, Method, TrainNorm
from mlarmor.defenses.training.dp import (
    DPEpochRecord,
    DPMLPClassifier,
    DPResult,
    dp_incompatibilities,
    train_dp,
)
from mlarmor.defenses.training.harden import HardeningResult, harden_and_evaluate, robust_accuracy

__all__ = [
    "AdversarialTrainer",
    "DPEpochRecord",
    "DPMLPClassifier",
    "DPResult",
    "EpochRecord",
    "HardeningResult",
    "Method",
    "TrainNorm",
    "dp_incompatibilities",
    "harden_and_evaluate",
    "robust_accuracy",
    "train_dp",
]
