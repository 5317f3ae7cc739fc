"""Assessments: run attacks against a target on a dataset and turn the results into a report.

:func:`evaluate_evasion` measures clean and robust accuracy per ε; :func:`to_report` builds the
versioned :class:`~mlarmor.schema.Report` (``kind="evasion"``) with one finding whose severity comes
from the accuracy lost within the declared threat budget.
"""

from __future__ import annotations

from mlarmor.assess.evasion import (
    EvasionAssessment,
    eps_key,
    evaluate_evasion,
    save_adversarial,
    severity_for_loss,
    to_report,
)

__all__ = [
    "EvasionAssessment",
    "eps_key",
    "evaluate_evasion",
    "save_adversarial",
    "severity_for_loss",
    "to_report",
]
