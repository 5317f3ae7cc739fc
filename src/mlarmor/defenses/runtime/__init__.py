"""Run-time detectors of trojaned (backdoor-triggered) inputs: :class:`STRIP`."""

from mlarmor.defenses.runtime.strip import STRIP, StripReport, strip_entropy

__all__ = ["STRIP", "StripReport", "strip_entropy"]
