"""Defenses: training (adversarial, DP, backdoor removal), input and trigger detectors, inspection.

Subpackages: ``training``, ``detection`` (feature squeezing), ``runtime`` (STRIP), ``inspect``.
"""

from mlarmor.defenses.detection import (
    DetectionReport,
    FeatureSqueezing,
    Squeezer,
    median_smooth,
    reduce_bit_depth,
)
from mlarmor.defenses.inspect import (
    BackdoorInspection,
    BlackBoxInspection,
    DataInspection,
    Suspicion,
    TriggerCandidate,
    activation_clustering,
    activations,
    inspect_data,
    neural_cleanse,
    neural_cleanse_blackbox,
    spectral_signatures,
)
from mlarmor.defenses.runtime import STRIP, StripReport, strip_entropy
from mlarmor.defenses.training import (
    AdversarialTrainer,
    DPEpochRecord,
    DPMLPClassifier,
    DPResult,
    EpochRecord,
    Mitigation,
    dp_incompatibilities,
    fine_prune,
    train_dp,
    unlearn,
)

__all__ = [
    "STRIP",
    "AdversarialTrainer",
    "BackdoorInspection",
    "BlackBoxInspection",
    "DPEpochRecord",
    "DPMLPClassifier",
    "DPResult",
    "DataInspection",
    "DetectionReport",
    "EpochRecord",
    "FeatureSqueezing",
    "Mitigation",
    "Squeezer",
    "StripReport",
    "Suspicion",
    "TriggerCandidate",
    "activation_clustering",
    "activations",
    "dp_incompatibilities",
    "fine_prune",
    "inspect_data",
    "median_smooth",
    "neural_cleanse",
    "neural_cleanse_blackbox",
    "reduce_bit_depth",
    "spectral_signatures",
    "strip_entropy",
    "train_dp",
    "unlearn",
]
