"""Inspection for poisoning: poisoned-sample detectors and their ensemble, backdoored models (:mod:`.model`).

Model inspection: Neural Cleanse, white-box (:mod:`.model`) and score-only (:mod:`.blackbox`).
Detectors: on representations (:mod:`.data`), label consistency (:mod:`.neighbours`), losses,
learning speed and trigger carriers (:mod:`.signals`); :func:`inspect_data` combines them
(:mod:`.ensemble`).
"""

from mlarmor.defenses.inspect.blackbox import BlackBoxInspection, neural_cleanse_blackbox
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
from mlarmor.defenses.inspect.neighbours import label_consistency
from mlarmor.defenses.inspect.signals import learning_speed, model_loss, trigger_carriers

__all__ = [
    "BackdoorInspection",
    "BlackBoxInspection",
    "DataInspection",
    "Suspicion",
    "TriggerCandidate",
    "activation_clustering",
    "activations",
    "anomaly_indices",
    "inspect_data",
    "label_consistency",
    "learning_speed",
    "model_loss",
    "neural_cleanse",
    "neural_cleanse_blackbox",
    "spectral_signatures",
    "trigger_carriers",
]
