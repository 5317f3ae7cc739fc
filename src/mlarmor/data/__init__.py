"""Built-in and user data: datasets and their constraints, the malicious corpus, benign artifacts.

Datasets with the constraints attacks respect live in :mod:`.dataset` and are loaded by
:mod:`.loading`; the malicious corpus is :mod:`.trojans`, benign model artifacts :mod:`.artifacts`.
"""

from __future__ import annotations

from .artifacts import ARTIFACTS, Artifact, write_benign
from .dataset import Dataset, FeatureScaling
from .loading import DEMO_DATASETS, load_dataset
from .trojans import SAMPLES, Canary, Sample, family_counts, get_sample, write_malicious

__all__ = [
    "ARTIFACTS",
    "DEMO_DATASETS",
    "SAMPLES",
    "Artifact",
    "Canary",
    "Dataset",
    "FeatureScaling",
    "Sample",
    "family_counts",
    "get_sample",
    "load_dataset",
    "write_benign",
    "write_malicious",
]
