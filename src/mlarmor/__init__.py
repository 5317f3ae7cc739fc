"""mlarmor: find and fix the ways a machine-learning model can be attacked.

Every command-line verb is one function here, with the same name, that takes plain Python arguments
and returns a frozen result with ``to_report()``:

=====================================  ======================================================
``mlarmor scan``                       :func:`mlarmor.scan.scan` → ``ScanResult`` (``mlarmor.scan`` is
                                       the scanner package, so the function is one level down)
``mlarmor keygen``                     :func:`keygen` → ``KeyPair`` (``.write(prefix)`` saves it)
``mlarmor sign``                       :func:`sign` → ``SignResult``
``mlarmor verify``                     :func:`verify` → ``VerificationResult``
``mlarmor evasion``                    :func:`evaluate_evasion` → ``EvasionAssessment``
``mlarmor harden``                     :func:`harden` → ``HardeningResult``
``mlarmor privacy``                    :func:`audit_privacy` → ``PrivacyResult``
``mlarmor poisoning simulate``         :func:`simulate_poisoning` → ``PoisoningSimulation``
``mlarmor poisoning inspect-model``    :func:`inspect_model` → ``ModelInspectionResult``
``mlarmor poisoning inspect-data``     :func:`inspect_data` → ``DataInspectionResult``
``mlarmor poisoning sanitize``         :func:`sanitize` → ``SanitizeResult``
=====================================  ======================================================

(:func:`inspect_data` is the verb: it loads nothing and takes a target and a dataset;
:func:`mlarmor.defenses.inspect_data` is the detector ensemble it runs, on a module and arrays.)

The names are imported on first use, so ``import mlarmor`` stays fast (no torch, no scikit-learn).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mlarmor.assess.evasion import evaluate_evasion
    from mlarmor.assess.harden import harden
    from mlarmor.assess.inspection import inspect_data, inspect_model, sanitize
    from mlarmor.assess.poisoning import simulate_poisoning
    from mlarmor.assess.privacy_audit import audit_privacy
    from mlarmor.integrity import generate_keypair as keygen
    from mlarmor.integrity import sign_path as sign
    from mlarmor.integrity import verify_path as verify

# Public name -> the module that defines it and the function's name there.
_VERBS: dict[str, tuple[str, str]] = {
    "audit_privacy": ("mlarmor.assess.privacy_audit", "audit_privacy"),
    "evaluate_evasion": ("mlarmor.assess.evasion", "evaluate_evasion"),
    "harden": ("mlarmor.assess.harden", "harden"),
    "inspect_data": ("mlarmor.assess.inspection", "inspect_data"),
    "inspect_model": ("mlarmor.assess.inspection", "inspect_model"),
    "keygen": ("mlarmor.integrity", "generate_keypair"),
    "sanitize": ("mlarmor.assess.inspection", "sanitize"),
    "sign": ("mlarmor.integrity", "sign_path"),
    "simulate_poisoning": ("mlarmor.assess.poisoning", "simulate_poisoning"),
    "verify": ("mlarmor.integrity", "verify_path"),
}

__all__ = [
    "__version__",
    "audit_privacy",
    "evaluate_evasion",
    "harden",
    "inspect_data",
    "inspect_model",
    "keygen",
    "sanitize",
    "sign",
    "simulate_poisoning",
    "verify",
]


def __getattr__(name: str) -> Any:
    where = _VERBS.get(name)
    if where is None:
        raise AttributeError(f"module 'mlarmor' has no attribute {name!r}")
    value = getattr(importlib.import_module(where[0]), where[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_VERBS))
