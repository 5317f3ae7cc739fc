"""Built-in data: the malicious corpus (:mod:`.trojans`) and benign model artifacts (:mod:`.artifacts`)."""

from __future__ import annotations

from .artifacts import ARTIFACTS, Artifact, write_benign
from .trojans import SAMPLES, Canary, Sample, family_counts, get_sample, write_malicious

__all__ = [
    "ARTIFACTS",
    "SAMPLES",
    "Artifact",
    "Canary",
    "Sample",
    "family_counts",
    "get_sample",
    "write_benign",
    "write_malicious",
]
