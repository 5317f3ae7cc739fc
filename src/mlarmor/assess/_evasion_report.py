"""The evasion report: what :class:`~mlarmor.assess.evasion.EvasionAssessment` turns into (private).

Re-exported by :mod:`mlarmor.assess.evasion`: :func:`to_report`, :func:`to_hardening_report`,
:func:`eps_key`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mlarmor._stats import SMALL_SAMPLE, clopper_pearson, interval_text
from mlarmor.attacks import EvasionResult
from mlarmor.findings import Finding, Location
from mlarmor.risk.catalogue import BLACK_BOX, EVADE, EVASION_ACCURACY_LOSS, TRANSFER, WHITE_BOX
from mlarmor.risk.severity import accuracy_loss as severity_for_loss
from mlarmor.schema import Report, Sections, TargetInfo
from mlarmor.schema.sections import EpsResult, EvasionSection, FeatureLimit

if TYPE_CHECKING:
    from mlarmor.assess.evasion import EvasionAssessment

__all__ = ["eps_key", "robust_ci", "rounded", "to_hardening_report", "to_report"]

_UNIT_WORDS = {
    "absolute": "in input units",
    "range": "as a fraction of each feature's range",
    "std": "in each feature's standard deviations",
}


def eps_key(eps: float) -> str:
    """The string form of a budget used as a report key: ``0.1 -> "0.1"``, ``1 -> "1.0"``."""
    return repr(float(eps))


def rounded(value: float) -> float:
    # Accuracies are fractions of at most a few thousand samples: 10 digits drop only float noise.
    return round(value, 10) if math.isfinite(value) else value


def _jsonable(value: object) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else type(value).__name__


def robust_ci(result: EvasionResult) -> tuple[float, float]:
    return clopper_pearson(int(result.n_samples - np.count_nonzero(result.success)), result.n_samples)


def _per_eps(result: EvasionResult) -> dict[str, Any]:
    correct = result.y_pred_clean == result.y
    fooled = result.success & correct
    queries = result.queries
    return {
        "robust_accuracy": rounded(result.robust_accuracy),
        "robust_accuracy_ci": list(robust_ci(result)),
        "success_rate": _jsonable(rounded(result.success_rate)),
        "median_norm": float(np.median(result.norms[fooled])) if fooled.any() else None,
        "mean_queries": float(np.mean(queries)) if isinstance(queries, np.ndarray) else None,
        "total_queries": result.total_queries,
    }


def _finding(assessment: EvasionAssessment) -> Finding:
    budget = assessment.result_at(assessment.budget_eps)
    lost = assessment.accuracy_lost
    severity = severity_for_loss(lost)
    norm = "L∞" if assessment.norm == "linf" else "L2"
    white_box = assessment.capability == "gradients"
    technique = TRANSFER if assessment.attack == "transfer" else WHITE_BOX if white_box else BLACK_BOX
    box = "white-box" if assessment.capability == "gradients" else "black-box"
    clean, robust = assessment.clean_accuracy, rounded(budget.robust_accuracy)
    clean_ci, robust_interval = assessment.clean_accuracy_ci, robust_ci(budget)
    lost_ci = assessment.accuracy_lost_ci
    small = (
        f" Only {assessment.n_samples} samples were evaluated (fewer than {SMALL_SAMPLE}): the figures "
        "hold for these samples, but on new data they may differ by as much as the intervals say; "
        "evaluate more samples."
        if assessment.n_samples < SMALL_SAMPLE
        else ""
    )
    fallback = (
        f" The target gives no gradients, so the default 'auto' ran the black-box {assessment.attack} "
        "attack instead of the white-box ensemble: black-box attacks find fewer adversarial examples, so "
        "this robust accuracy is a looser upper bound; evaluate the PyTorch model (file.py:factory or "
        "TorchScript) for the white-box figure."
        if assessment.fell_back
        else ""
    )
    return EVASION_ACCURACY_LOSS.finding(
        title=(
            f"{box.capitalize()} {assessment.attack} attack lowers accuracy from {clean:.1%} to "
            f"{robust:.1%} within {norm} ε={assessment.budget_eps:g}"
        ),
        severity=severity,
        description=(
            f"Within the declared threat budget ({norm} ε={assessment.budget_eps:g}, "
            f"{_UNIT_WORDS[assessment.eps_unit]}) a "
            f"{box} attacker makes the model misclassify {lost:.1f} percentage points more of the "
            f"{assessment.n_samples} evaluated samples (95% intervals: clean accuracy "
            f"{interval_text(clean_ci)}, robust accuracy {interval_text(robust_interval)}, "
            f"points lost {interval_text(lost_ci, '.1f')}). Severity thresholds on the accuracy lost "
            "(the measured points: each is an adversarial example found): ≥ 50 points critical, ≥ 25 "
            "high, ≥ 10 medium, > 0 low. Robust accuracy under one attack is an upper bound: a stronger "
            "attack can only lower it." + small + fallback
        ),
        impact=min(1.0, lost / 100.0),
        evidence={
            "attack": assessment.attack,
            "requested_attack": assessment.requested or assessment.attack,
            "capability": assessment.capability,
            "norm": assessment.norm,
            "budget_eps": assessment.budget_eps,
            "clean_accuracy": clean,
            "clean_accuracy_ci": list(clean_ci),
            "robust_accuracy": robust,
            "robust_accuracy_ci": list(robust_interval),
            "accuracy_lost_points": round(lost, 4),
            "accuracy_lost_points_ci": list(lost_ci),
            "success_rate": _jsonable(rounded(budget.success_rate)),
            "n_samples": assessment.n_samples,
            "seed": assessment.seed,
            "queries": budget.total_queries,
            "robust_accuracy_by_eps": assessment.robust_accuracy,
        },
        location=Location(path=assessment.target_name),
        atlas=[technique, EVADE],
    )


def to_report(assessment: EvasionAssessment, *, metadata: Mapping[str, Any] | None = None) -> Report:
    """Build the ``kind="evasion"`` report of ``assessment``.

    Fills ``clean_accuracy``, ``robust_accuracy`` (keyed by :func:`eps_key`), ``attacks`` (per attack:
    parameters, norm, capability, seconds and per-ε ``robust_accuracy``, its 95% interval
    ``robust_accuracy_ci``, ``success_rate``,
    ``median_norm`` of the successful perturbations, ``mean_queries``, ``total_queries``), one
    finding (see the module docstring for the severity thresholds) and then the reliability findings
    (``evasion.reliability.*``, see :func:`~mlarmor.assess.check_reliability`).

    Args:
        assessment: What :func:`evaluate_evasion` returned.
        metadata: Extra entries for ``Report.metadata`` (the CLI puts its options there).
    """
    details = {
        "params": _jsonable(assessment.params),
        "capability": assessment.capability,
        "norm": assessment.norm,
        "n_samples": assessment.n_samples,
        "seconds": round(assessment.seconds, 4),
        "eps": {eps_key(r.eps): _per_eps(r) for r in assessment.results},
    }
    meta: dict[str, Any] = {
        "model": assessment.target_name,
        "data": assessment.dataset_name,
        "norm": assessment.norm,
        "budget_eps": assessment.budget_eps,
        "n_samples": assessment.n_samples,
        "seed": assessment.seed,
    }
    if assessment.fell_back:
        meta["requested_attack"] = assessment.requested
    if assessment.label_mapping is not None:
        meta["label_mapping"] = dict(assessment.label_mapping)
    meta.update(metadata or {})
    section = EvasionSection(
        attack=assessment.attack,
        requested_attack=assessment.requested or assessment.attack,
        capability=assessment.capability,  # type: ignore[arg-type]  # an attack's declared capability
        norm=assessment.norm,
        budget_eps=assessment.budget_eps,
        n_samples=assessment.n_samples,
        seed=assessment.seed,
        clean_accuracy=assessment.clean_accuracy,
        clean_accuracy_ci=assessment.clean_accuracy_ci,
        robust_accuracy=assessment.robust_accuracy,
        robust_accuracy_ci=assessment.robust_accuracy_ci,
        per_eps={
            k: EpsResult(**{name: value for name, value in v.items() if name != "robust_accuracy_ci"})
            for k, v in details["eps"].items()
        },
        seconds=details["seconds"],
        label_mapping=None if assessment.label_mapping is None else dict(assessment.label_mapping),
        **_limits(assessment),
    )
    return Report(
        kind="evasion",
        target=TargetInfo(name=assessment.target_name, data=assessment.dataset_name),
        sections=Sections(evasion=section),
        clean_accuracy=assessment.clean_accuracy,
        robust_accuracy=assessment.robust_accuracy,
        attacks={assessment.attack: details},
        findings=[_finding(assessment), *assessment.reliability],
        metadata=meta,
    )


def _limits(assessment: EvasionAssessment) -> dict[str, Any]:
    budget = assessment.budget
    if budget is None:
        return {}
    flat = assessment.results[0].x_adv.ndim == 2
    block = budget.to_report(assessment.budget_eps, per_feature=flat)
    if "features" in block:
        block["features"] = [FeatureLimit(**f) for f in block["features"]]
    return block


def to_hardening_report(
    before: EvasionAssessment,
    after: EvasionAssessment,
    defense: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Report:
    """Build the ``kind="harden"`` report: the evasion report of ``after`` plus what changed.

    ``clean_accuracy``, ``robust_accuracy``, ``attacks`` and the findings describe the hardened model
    (the residual risk); ``defense`` holds ``defense`` as given plus ``before`` and ``after``, each
    with ``clean_accuracy`` and ``robust_accuracy`` (keyed by :func:`eps_key`).

    Args:
        before: The evaluation of the model before hardening.
        after: The same evaluation of the hardened model.
        defense: What the hardening did (method, parameters, training time, the saved artefact).
        metadata: Extra entries for ``Report.metadata``.
    """
    report = to_report(after, metadata=metadata)

    def summary(a: EvasionAssessment) -> dict[str, Any]:
        return {"clean_accuracy": a.clean_accuracy, "robust_accuracy": a.robust_accuracy}

    block = {**_jsonable(dict(defense)), "before": summary(before), "after": summary(after)}
    return report.model_copy(update={"kind": "harden", "defense": block})
