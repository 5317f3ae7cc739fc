"""User data: datasets with the constraints attacks respect, their loaders and the built-in demo sets.

A :class:`Dataset` (in :mod:`.dataset`) holds the arrays and what an attack must respect; it is built
by :func:`load_dataset` (in :mod:`.loading`) from a file or from one of :data:`DEMO_DATASETS`. The
malicious and benign model files the scanner is tested on are not user data: they live in
:mod:`mlarmor.testing.corpus`.
"""

from __future__ import annotations

from .dataset import Dataset, FeatureScaling
from .loading import DEMO_DATASETS, load_dataset

__all__ = [
    "DEMO_DATASETS",
    "Dataset",
    "FeatureScaling",
    "load_dataset",
]
