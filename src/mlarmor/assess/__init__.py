"""Assessments: run attacks against a target on a dataset and turn the results into a report.

:func:`evaluate_evasion` measures clean and robust accuracy per ε; :func:`to_report` builds the
versioned :class:`~mlarmor.schema.Report` (``kind="evasion"``) with one finding whose severity comes
from the accuracy lost within the declared threat budget; :func:`check_reliability` adds findings
that flag a weak evaluation (probability outputs, randomness, masked gradients).
"""

from __future__ import annotations

from mlarmor.assess.evasion import (
    EvasionAssessment,
    eps_key,
    evaluate_evasion,
    robust_accuracy,
    save_adversarial,
    severity_for_loss,
    to_hardening_report,
    to_report,
)
from mlarmor.assess.harden import HardeningResult, harden
from mlarmor.assess.reference import ReferenceOutputs, membership_splits, train_reference_models
from mlarmor.assess.reliability import check_reliability

__all__ = [
    "EvasionAssessment",
    "HardeningResult",
    "ReferenceOutputs",
    "check_reliability",
    "eps_key",
    "evaluate_evasion",
    "harden",
    "membership_splits",
    "robust_accuracy",
    "save_adversarial",
    "severity_for_loss",
    "to_hardening_report",
    "to_report",
    "train_reference_models",
]
