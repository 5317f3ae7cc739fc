"""Inspection for poisoning: poisoned-sample detectors (:mod:`.data`), backdoored models (:mod:`.model`)."""

from mlarmor.defenses.inspect.data import (
    Suspicion,
    activation_clustering,
    activations,
    spectral_signatures,
)
from mlarmor.defenses.inspect.ensemble import DataInspection, inspect_data
from mlarmor.defenses.inspect.model import (
    BackdoorInspection,
    TriggerCandidate,
    anomaly_indices,
    neural_cleanse,
)

__all__ = [
    "BackdoorInspection",
    "DataInspection",
    "Suspicion",
    "TriggerCandidate",
    "activation_clustering",
    "activations",
    "anomaly_indices",
    "inspect_data",
    "neural_cleanse",
    "spectral_signatures",
]
