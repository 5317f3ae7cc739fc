"""Training-time defenses: adversarial training, DP-SGD, backdoor removal (fine-pruning, unlearning)."""

from mlarmor.defenses.training.adversarial import AdversarialTrainer, EpochRecord, Method, TrainNorm
from mlarmor.defenses.training.backdoor import Mitigation, fine_prune, unlearn
from mlarmor.defenses.training.dp import (
    DPEpochRecord,
    DPMLPClassifier,
    DPResult,
    dp_incompatibilities,
    train_dp,
)

__all__ = [
    "AdversarialTrainer",
    "DPEpochRecord",
    "DPMLPClassifier",
    "DPResult",
    "EpochRecord",
    "Method",
    "Mitigation",
    "TrainNorm",
    "dp_incompatibilities",
    "fine_prune",
    "train_dp",
    "unlearn",
]
