"""Reports of the backdoor inspections, and sanitise-and-retrain.

- :func:`to_model_inspection_report`: a Neural Cleanse inspection
  (:func:`~mlarmor.defenses.inspect.model.neural_cleanse`), and the mitigation that followed it, as a
  ``kind="poisoning"`` report with ``infected``, ``target_class`` and ``anomaly_index``.
- :func:`to_data_inspection_report`: a poisoned-sample inspection
  (:func:`~mlarmor.defenses.inspect.ensemble.inspect_data`) with ``suspicious_indices`` and ``scores``.
- :func:`retrain_without`: drop the flagged training rows, retrain with the recipe and measure clean
  accuracy and attack success before and after; :func:`rows_to_drop` chooses them;
  :func:`to_sanitize_report` reports it.

Findings are declared in :mod:`mlarmor.risk.catalogue` (``backdoor.trigger``,
``poisoning.suspicious-samples``, ``poisoning.sanitize``) with their ATLAS and OWASP ids and their
severity rules (:mod:`mlarmor.risk.severity`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlarmor.data import Dataset
from mlarmor.errors import InvalidParameterError
from mlarmor.findings import Finding, Severity
from mlarmor.risk import severity as rules
from mlarmor.risk.catalogue import BACKDOOR_TRIGGER, ML02, ML10, SANITIZE, SUSPICIOUS_SAMPLES
from mlarmor.schema import Report, Sections, TargetInfo
from mlarmor.schema.sections import Accuracies, PoisoningSection
from mlarmor.targets.recipe import Recipe

if TYPE_CHECKING:
    from mlarmor.defenses.inspect.ensemble import DataInspection
    from mlarmor.defenses.inspect.model import BackdoorInspection
    from mlarmor.defenses.training.backdoor import Mitigation

__all__ = [
    "DropPolicy",
    "Sanitized",
    "backdoor_finding",
    "retrain_without",
    "rows_to_drop",
    "to_data_inspection_report",
    "to_model_inspection_report",
    "to_sanitize_report",
]

Predict = Callable[[np.ndarray], np.ndarray]


def backdoor_finding(inspection: BackdoorInspection, *, target_name: str) -> Finding:
    """The model inspection's finding: high when a backdoor is found, none otherwise."""
    trigger = inspection.trigger
    norms = sorted(c.l1 for c in inspection.candidates)
    median = float(np.median(norms))
    found = inspection.infected and trigger is not None
    if found:
        assert trigger is not None  # for mypy: found implies a trigger
        title = (
            f"Backdoor suspected in {target_name}: class {inspection.target_class} has a trigger of "
            f"{trigger.l1:.1f} pixels (median class {median:.1f}), anomaly index "
            f"{inspection.anomaly_index:.2f} > {inspection.threshold:g}"
        )
    else:
        title = (
            f"No backdoor found in {target_name}: anomaly index {inspection.anomaly_index:.2f} "
            f"≤ {inspection.threshold:g}"
        )
    severity = rules.backdoor(found)
    return BACKDOOR_TRIGGER.finding(
        title=title,
        severity=severity,
        description=(
            "Neural Cleanse reverse-engineered, for each class, the smallest mask and pattern that send "
            "clean inputs to it. A class reached by a much smaller trigger than the others (MAD anomaly "
            f"index above {inspection.threshold:g}) is the likely target of a planted backdoor. The "
            "recovered trigger approximates the attacker's; it is not proof, and a trigger spread over "
            "the whole input (a blended key) is harder to single out."
        ),
        evidence=inspection.to_dict() | {"trigger": None},
        mitigations=None if severity > Severity.NONE else [],
    )


def to_model_inspection_report(
    inspection: BackdoorInspection,
    *,
    target_name: str,
    mitigation: Mitigation | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Report:
    """The ``kind="poisoning"`` report of a model inspection (and of its mitigation, under ``defense``)."""
    details = inspection.to_dict()
    section = PoisoningSection(
        mode="inspect-model",
        infected=inspection.infected,
        target_class=inspection.target_class,
        anomaly_index=float(inspection.anomaly_index),
    )
    if mitigation is not None:
        section = _with_repair(section, mitigation.clean_accuracy, mitigation.attack_success)
    return Report(
        kind="poisoning",
        target=TargetInfo(name=target_name),
        sections=Sections(poisoning=section),
        infected=inspection.infected,
        target_class=inspection.target_class,
        anomaly_index=float(inspection.anomaly_index),
        inspection={"mode": "inspect-model", **details},
        defense=None if mitigation is None else mitigation.to_dict(),
        clean_accuracy=None if mitigation is None else mitigation.clean_accuracy[1],
        findings=[backdoor_finding(inspection, target_name=target_name)],
        metadata=dict(metadata or {}),
    )


def _data_finding(inspection: DataInspection, infected: bool | None) -> Finding:
    n, flagged = len(inspection.scores), int(np.sum(inspection.flagged))
    carriers = sum(1 for reasons in inspection.reasons.values() if "trigger" in " ".join(reasons))
    severity = rules.suspicious_samples(n, flagged, carriers, infected)
    title = (
        f"{flagged} of {n} training samples look poisoned ({flagged / max(n, 1):.1%})"
        + (f", {carriers} of them carry the trigger recovered from the model" if carriers else "")
        if flagged
        else f"No training sample looks poisoned among {n}"
    )
    return SUSPICIOUS_SAMPLES.finding(
        title=title,
        severity=severity,
        description=(
            "Detectors on the model's internal representations (spectral signatures, activation "
            "clustering, label consistency), per-sample loss signals and, when model inspection found "
            "one, the recovered trigger, combined into one score per sample. Flagged samples deserve "
            "review; some may be rare but genuine."
        ),
        evidence={"n": n, "n_flagged": flagged, "trigger_carriers": carriers},
        owasp=[ML02, ML10] if carriers or infected else [ML02],
        mitigations=None if flagged else [],
    )


def to_data_inspection_report(
    inspection: DataInspection,
    *,
    model_inspection: BackdoorInspection | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Report:
    """The ``kind="poisoning"`` report of a data inspection: ``suspicious_indices`` and ``scores``."""
    details = inspection.to_dict()
    indices = [int(i) for i in details.pop("suspicious_indices")]
    details.pop("scores")  # the flagged rows' scores; the report has every row's
    scores = [round(float(s), 6) for s in inspection.scores]
    infected = None if model_inspection is None else model_inspection.infected
    if model_inspection is not None:
        details["model_inspection"] = model_inspection.to_dict() | {"trigger": None}
    section = PoisoningSection(
        mode="inspect-data",
        infected=infected,
        target_class=None if model_inspection is None else model_inspection.target_class,
        anomaly_index=None if model_inspection is None else float(model_inspection.anomaly_index),
        n_samples=len(scores),
        n_flagged=int(np.sum(inspection.flagged)),
    )
    return Report(
        kind="poisoning",
        sections=Sections(poisoning=section),
        suspicious_indices=indices,
        scores=scores,
        infected=infected,
        target_class=None if model_inspection is None else model_inspection.target_class,
        anomaly_index=None if model_inspection is None else float(model_inspection.anomaly_index),
        inspection={"mode": "inspect-data", **details},
        findings=[_data_finding(inspection, infected)],
        metadata=dict(metadata or {}),
    )


DropPolicy = Literal["auto", "flagged", "backdoor"]


def rows_to_drop(
    inspection: DataInspection,
    labels: np.ndarray,
    *,
    model_inspection: BackdoorInspection | None = None,
    policy: DropPolicy = "auto",
) -> tuple[np.ndarray, str]:
    """The training rows to drop before retraining, and the policy applied.

    ``"flagged"`` drops every flagged row. ``"backdoor"`` needs a model inspection that found a
    backdoor: a dirty-label backdoor's poison is labelled with its target class, so it drops the
    rows flagged *in that class* and every carrier of the recovered trigger, and keeps the flags of
    other classes for review (natural look-alikes between two classes, such as some 1s and 9s of
    the digits, are flagged too, and dropping them costs accuracy: 3 points on the digits
    benchmark's seed 2). ``"auto"`` is ``"backdoor"`` when model inspection found one, else
    ``"flagged"``.

    Raises:
        InvalidParameterError: For an unknown policy, or ``"backdoor"`` without a backdoor found.
    """
    if policy not in ("auto", "flagged", "backdoor"):
        raise InvalidParameterError(
            f"The 'policy' parameter of rows_to_drop must be 'auto', 'flagged' or 'backdoor'. Got {policy!r}."
        )
    found = (
        model_inspection is not None
        and model_inspection.infected
        and model_inspection.target_class is not None
    )
    if policy == "flagged" or (policy == "auto" and not found):
        return np.asarray(inspection.flagged, dtype=bool).copy(), "flagged"
    if not found or model_inspection is None:
        raise InvalidParameterError(
            "rows_to_drop(policy='backdoor') needs a model inspection that found a backdoor; none was "
            "found. Use policy='flagged' to drop every flagged row."
        )
    carriers = inspection.per_method.get("trigger_carriers")
    in_target = np.asarray(inspection.flagged, dtype=bool) & (
        np.asarray(labels) == model_inspection.target_class
    )
    if carriers is not None:
        in_target |= np.asarray(carriers.flagged, dtype=bool)
    return in_target, "backdoor"


@dataclass(frozen=True, eq=False)
class Sanitized:
    """The result of :func:`retrain_without`.

    Attributes:
        kept: Boolean mask ``(n,)`` of the training rows kept.
        model: The model retrained on them (as the recipe returns it).
        clean_accuracy: ``(before, after)`` on the test set.
        attack_success: ``(before, after)``, or ``None`` without a trigger to measure.
        seconds: Retraining and evaluation time.
        policy: Which rows were dropped (see :func:`rows_to_drop`).
    """

    kept: np.ndarray
    model: Any
    clean_accuracy: tuple[float, float]
    attack_success: tuple[float, float] | None
    seconds: float
    policy: str = "flagged"

    @property
    def n_removed(self) -> int:
        """Rows dropped."""
        return int((~self.kept).sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "method": "sanitize",
            "policy": self.policy,
            "n_removed": self.n_removed,
            "n_kept": int(self.kept.sum()),
            "clean_accuracy": {"before": self.clean_accuracy[0], "after": self.clean_accuracy[1]},
            "attack_success": None
            if self.attack_success is None
            else {"before": self.attack_success[0], "after": self.attack_success[1]},
            "seconds": round(self.seconds, 3),
        }


def retrain_without(
    recipe: Recipe,
    train: Dataset,
    flagged: np.ndarray,
    test: Dataset,
    *,
    before: Predict,
    attack_success: Callable[[Predict], float] | None = None,
    seed: int = 0,
    policy: str = "flagged",
) -> Sanitized:
    """Drop the ``flagged`` rows of ``train``, retrain with ``recipe``, compare with ``before``.

    Args:
        recipe: How the model is trained.
        train: The (suspect) training data the model was trained on.
        flagged: Boolean mask ``(n,)`` of the rows to drop.
        test: Clean held-out data.
        before: Predicted labels of the current model, for the "before" figures.
        attack_success: Given a predict function, the attack success rate of the trigger to test
            (a known trigger, or the one model inspection recovered); ``None`` skips it.
        seed: Seed of the retraining.
        policy: How ``flagged`` was chosen, recorded in the result.

    Returns:
        A :class:`Sanitized`.

    Raises:
        InvalidParameterError: For a mask of the wrong shape, or one that drops every row of a class.
    """
    mask = np.asarray(flagged)
    if mask.dtype != np.bool_ or mask.shape != (len(train.y),):
        raise InvalidParameterError(
            f"The 'flagged' parameter of retrain_without must be a boolean mask of shape ({len(train.y)},), "
            f"one per training row. Got dtype {mask.dtype}, shape {mask.shape} instead."
        )
    kept = ~mask
    lost = sorted(set(np.unique(train.y).tolist()) - set(np.unique(train.y[kept]).tolist()))
    if lost:
        raise InvalidParameterError(
            f"Sanitising would drop every training row of class(es) {lost}; the retrained model could not "
            "learn them. Lower the detector's threshold or review the flags by hand."
        )
    start = time.perf_counter()
    model = recipe.train(train.x[kept], train.y[kept], seed)

    def after(x: np.ndarray) -> np.ndarray:
        labels: np.ndarray = np.asarray(recipe.outputs(model, x)).argmax(axis=1)
        return labels

    acc = (float(np.mean(before(test.x) == test.y)), float(np.mean(after(test.x) == test.y)))
    asr = None if attack_success is None else (attack_success(before), attack_success(after))
    return Sanitized(kept, model, acc, asr, time.perf_counter() - start, policy)


def to_sanitize_report(
    result: Sanitized, *, inspection: DataInspection, metadata: Mapping[str, Any] | None = None
) -> Report:
    """The ``kind="poisoning"`` report of a sanitise-and-retrain run (figures under ``defense``)."""
    report = to_data_inspection_report(inspection, metadata=metadata)
    asr = result.attack_success
    severity = rules.residual_backdoor(None if asr is None else asr[1])
    residual = severity > Severity.NONE
    finding = SANITIZE.finding(
        title=(
            f"Sanitised: {result.n_removed} rows removed; clean accuracy {result.clean_accuracy[0]:.1%} → "
            f"{result.clean_accuracy[1]:.1%}"
            + ("" if asr is None else f"; attack success {asr[0]:.1%} → {asr[1]:.1%}")
        ),
        severity=severity,
        description=(
            "The flagged rows were dropped and the model retrained with the recipe on the rest; both "
            "models were measured on the same clean test data"
            + (" and triggered copies of it." if asr is not None else ".")
            + (" The backdoor survives: inspect further before deploying." if residual else "")
        ),
        evidence=result.to_dict(),
        mitigations=None if residual else [],
    )
    assert report.sections.poisoning is not None  # set by to_data_inspection_report
    section = _with_repair(report.sections.poisoning, result.clean_accuracy, result.attack_success)
    return report.model_copy(
        update={
            "defense": result.to_dict(),
            "clean_accuracy": result.clean_accuracy[1],
            "findings": [*report.findings, finding],
            "sections": Sections(poisoning=section.model_copy(update={"mode": "sanitize"})),
        }
    )


def _with_repair(
    section: PoisoningSection,
    clean_accuracy: tuple[float, float],
    attack_success: tuple[float, float] | None,
) -> PoisoningSection:
    """``section`` with the accuracy (and backdoor success) before and after a repair or retraining."""
    return section.model_copy(
        update={
            "before": Accuracies(clean_accuracy=clean_accuracy[0]),
            "after": Accuracies(clean_accuracy=clean_accuracy[1]),
            "attack_success": None
            if attack_success is None
            else {"before": attack_success[0], "after": attack_success[1]},
        }
    )
