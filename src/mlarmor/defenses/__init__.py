"""Defenses: adversarial training (``mlarmor.defenses.training``) and input detectors (``detection``)."""

from mlarmor.defenses.detection import (
    DetectionReport,
    FeatureSqueezing,
    Squeezer,
    median_smooth,
    reduce_bit_depth,
)
from mlarmor.defenses.training import (
    AdversarialTrainer,
    EpochRecord,
    HardeningResult,
    harden_and_evaluate,
    robust_accuracy,
)

__all__ = [
    "AdversarialTrainer",
    "DetectionReport",
    "EpochRecord",
    "FeatureSqueezing",
    "HardeningResult",
    "Squeezer",
    "harden_and_evaluate",
    "median_smooth",
    "reduce_bit_depth",
    "robust_accuracy",
]
