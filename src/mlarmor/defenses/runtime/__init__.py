"""Run-time defenses that sit in front of a deployed model.

Detectors of suspect inputs: :class:`FeatureSqueezing` (adversarial examples) and :class:`STRIP`
(backdoor-triggered inputs); and output obfuscation, :class:`ObfuscatedTarget` with
:func:`obfuscate_scores`, which returns less than the model knows (top-k, rounded scores, labels
only). ``mlarmor.targets`` still exports the obfuscation names, loaded on first use.
"""

from mlarmor.defenses.runtime.obfuscation import ObfuscatedTarget, obfuscate_scores
from mlarmor.defenses.runtime.squeezing import (
    DetectionReport,
    FeatureSqueezing,
    Squeezer,
    median_smooth,
    reduce_bit_depth,
)
from mlarmor.defenses.runtime.strip import STRIP, StripReport, strip_entropy

__all__ = [
    "STRIP",
    "DetectionReport",
    "FeatureSqueezing",
    "ObfuscatedTarget",
    "Squeezer",
    "StripReport",
    "median_smooth",
    "obfuscate_scores",
    "reduce_bit_depth",
    "strip_entropy",
]
