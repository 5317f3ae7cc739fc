"""Defenses: training (adversarial, DP), input and trigger detectors, poisoned-sample inspection.

Subpackages: ``training``, ``detection`` (feature squeezing), ``runtime`` (STRIP), ``inspect``.
"""

from mlarmor.defenses.detection import (
    DetectionReport,
    FeatureSqueezing,
    Squeezer,
    median_smooth,
    reduce_bit_depth,
)
from mlarmor.defenses.inspect import Suspicion, activation_clustering, activations, spectral_signatures
from mlarmor.defenses.runtime import STRIP, StripReport, strip_entropy
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
    "STRIP",
    "AdversarialTrainer",
    "DPEpochRecord",
    "DPMLPClassifier",
    "DPResult",
    "DetectionReport",
    "EpochRecord",
    "FeatureSqueezing",
    "HardeningResult",
    "Squeezer",
    "StripReport",
    "Suspicion",
    "activation_clustering",
    "activations",
    "dp_incompatibilities",
    "harden_and_evaluate",
    "median_smooth",
    "reduce_bit_depth",
    "robust_accuracy",
    "spectral_signatures",
    "strip_entropy",
    "train_dp",
]
