"""Inspection of training data for poisoning: poisoned-sample detectors on representations (:mod:`.data`)."""

from mlarmor.defenses.inspect.data import (
    Suspicion,
    activation_clustering,
    activations,
    spectral_signatures,
)

__all__ = [
    "Suspicion",
    "activation_clustering",
    "activations",
    "spectral_signatures",
]
