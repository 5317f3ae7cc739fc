"""The scanner's corpus: malicious model files with harmless payloads, and benign model artifacts.

The malicious samples are registered in :mod:`.trojans` (built from raw pickle opcodes or from a real
library's output with a payload spliced in); the benign artifacts, written by the real libraries, in
:mod:`.artifacts`. Only ``mlarmor demo``, the tests and the benchmarks import this package; user data
lives in :mod:`mlarmor.data`.
"""

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
