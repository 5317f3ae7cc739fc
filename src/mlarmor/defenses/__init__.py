"""Defenses: adversarial and DP training (``mlarmor.defenses.training``), input detectors (``detection``)."""

from mlarmor.defenses.detection import (
    DetectionReport,
    FeatureSqueezing,
    Squeezer,
    median_smooth,
    reduce_bit_depth,
)
from mlarmor.defenses.training import (
    AdversarialTrainer,
    DPEpochRecord,
    DPMLPClassifier,
    DPResult,
    EpochRecord,
    HardeningResult,
    dp_incompatibilities,
    harden_and_evaluate,
    robust_accuracy,
    train_dp,
)

__all__ = [
    "AdversarialTrainer",
    "DPEpochRecord",
    "DPMLPClassifier",
    "DPResult",
    "DetectionReport",
    "EpochRecord",
    "FeatureSqueezing",
    "HardeningResult",
    "Squeezer",
    "dp_incompatibilities",
    "harden_and_evaluate",
    "median_smooth",
    "reduce_bit_depth",
    "robust_accuracy",
    "train_dp",
]
