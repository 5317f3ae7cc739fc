"""The severity rules of the findings about a model's behaviour, in one place.

Each rule turns the measured numbers of one kind of finding into a :class:`Severity`; the finding
catalogue (:mod:`mlarmor.risk.catalogue`) names the rule of every finding id, and the tests pin each
threshold. The scanner's rules (:mod:`mlarmor.scan.rules`) rate file contents instead.

=================================  ===========================================================
rule                               severity
=================================  ===========================================================
:func:`accuracy_loss`              points of accuracy lost (or left undetected): ≥ 50 critical,
                                   ≥ 25 high, ≥ 10 medium, > 0 low, else none
:func:`dp_training`                ε spent ≤ 1 none, ≤ 10 low, above medium; δ ≥ 1/n at least
                                   medium (and at least low)
:func:`membership`                 on the lower ends of the 95% intervals, at measurable FPRs
                                   only: TPR ≥ 10% at 0.1% FPR critical; ≥ 2% or AUC ≥ 0.75
                                   high; ≥ 5% at 1% FPR or AUC ≥ 0.6 medium; AUC ≥ 0.55 low
:func:`inversion`                  ≥ 80% of classes identifiable and gain ≥ 0.3 high; 50% and 0.2
                                   medium; gain > 0.1 low
:func:`attribute_lift`             none under 0.02 or when the 95% interval reaches 0; ≥ 0.4
                                   critical, ≥ 0.2 high, ≥ 0.1 medium, else low
:func:`poisoning_curve`            the worst point: success gain ≥ 0.9 at ≤ 1% poisoned critical,
                                   ≥ 0.5 at ≤ 5% high, ≥ 0.5 or ≥ 5 points of accuracy lost
                                   medium, ≥ 0.2 low
:func:`backdoor`                   a backdoor found high, else none
:func:`suspicious_samples`         flagged rows carrying the recovered trigger, or with a backdoor
                                   found, high; ≥ 5 rows and ≥ 1% medium; fewer low
:func:`residual_backdoor`          attack success ≥ 20% after sanitising medium, else none
=================================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from mlarmor.findings import Severity

__all__ = [
    "accuracy_loss",
    "attribute_lift",
    "backdoor",
    "dp_training",
    "inversion",
    "membership",
    "poisoning_curve",
    "residual_backdoor",
    "suspicious_samples",
]

# Accuracy lost (percentage points) at or above which each severity applies, highest first.
_LOSS: tuple[tuple[float, Severity], ...] = (
    (50.0, Severity.CRITICAL),
    (25.0, Severity.HIGH),
    (10.0, Severity.MEDIUM),
)
# ε spent by a DP run: ≤ 1 is a strong guarantee, ≤ 10 the usual range, beyond that it says little.
DP_STRONG, DP_WEAK = 1.0, 10.0
_MIN_LIFT = 0.02
RESIDUAL_SUCCESS = 0.2


def accuracy_loss(points: float) -> Severity:
    """Severity of losing ``points`` percentage points of accuracy to an attacker within budget.

    ``≥ 50`` critical, ``≥ 25`` high, ``≥ 10`` medium, ``> 0`` low, else none. Also rates the points
    that adversarial examples a detector misses still cost.
    """
    for threshold, severity in _LOSS:
        if points >= threshold:
            return severity
    return Severity.LOW if points > 0 else Severity.NONE


def dp_training(spent: float, delta: float, n: int) -> Severity:
    """Severity of a DP training run: ε ≤ 1 none, ≤ 10 low, above medium; δ ≥ 1/n at least medium."""
    weak_delta = delta >= 1.0 / n
    if spent > DP_WEAK:
        severity = Severity.MEDIUM
    elif spent > DP_STRONG or weak_delta:
        severity = Severity.LOW
    else:
        severity = Severity.NONE
    return max(severity, Severity.MEDIUM) if weak_delta else severity


def membership(auc: float, tpr_at_0_1_pct: float | None, tpr_at_1_pct: float | None) -> Severity:
    """Severity of the strongest membership-inference attack, from what the sample demonstrates.

    The arguments are the **lower ends** of the 95% intervals (Hanley-McNeil for the AUC,
    Clopper-Pearson for the TPRs); a TPR is ``None`` where the non-members cannot measure its FPR
    (fewer than 1000 for 0.1%, 100 for 1%) and then sets nothing. TPR ≥ 10% at 0.1% FPR critical;
    ≥ 2% at 0.1% FPR or AUC ≥ 0.75 high; ≥ 5% at 1% FPR or AUC ≥ 0.6 medium; AUC ≥ 0.55 low; else
    none.
    """
    tpr_at_0_1_pct = tpr_at_0_1_pct or 0.0
    tpr_at_1_pct = tpr_at_1_pct or 0.0
    if tpr_at_0_1_pct >= 0.10:
        return Severity.CRITICAL
    if tpr_at_0_1_pct >= 0.02 or auc >= 0.75:
        return Severity.HIGH
    if tpr_at_1_pct >= 0.05 or auc >= 0.6:
        return Severity.MEDIUM
    if auc >= 0.55:
        return Severity.LOW
    return Severity.NONE


def inversion(gain: float, identifiable_rate: float) -> Severity:
    """Severity of a model inversion: how far above a neutral image, how many classes are recognisable.

    High when at least 80% of the classes are reconstructed closer to their own class mean than to
    any other and the similarity gain over the neutral image is at least 0.3; medium at 50% and
    0.2; low when the gain exceeds 0.1; none otherwise.
    """
    if identifiable_rate >= 0.8 and gain >= 0.3:
        return Severity.HIGH
    if identifiable_rate >= 0.5 and gain >= 0.2:
        return Severity.MEDIUM
    if gain > 0.1:
        return Severity.LOW
    return Severity.NONE


def attribute_lift(lift: float, lift_low: float) -> Severity:
    """Severity of attribute inference, from the lift over imputation and its 95% lower bound.

    None when the lift is under 0.02 or its interval reaches 0 (no leak distinguishable from
    imputation); otherwise critical at a lift of 0.4 or more, high at 0.2, medium at 0.1, low below.
    """
    if lift < _MIN_LIFT or lift_low <= 0:
        return Severity.NONE
    if lift >= 0.4:
        return Severity.CRITICAL
    if lift >= 0.2:
        return Severity.HIGH
    if lift >= 0.1:
        return Severity.MEDIUM
    return Severity.LOW


def poisoning_curve(
    points: Sequence[tuple[float, float, float | None]],
) -> tuple[Severity, int | None]:
    """Severity of a poisoning simulation's curve, and the index of the point that sets it.

    ``points`` are ``(fraction, clean_accuracy, attack_success)``, the clean baseline first. Per
    poisoned point: attack-success gain over the baseline ≥ 0.9 at ≤ 1% poisoned critical; ≥ 0.5 at
    ≤ 5% high; ≥ 0.5, or ≥ 0.05 of clean accuracy lost, medium; ≥ 0.2 low. The worst point counts.
    """
    _, base_accuracy, base_success = points[0]
    base_asr = base_success or 0.0
    worst: tuple[Severity, int | None] = (Severity.NONE, None)
    for index, (fraction, accuracy, success) in enumerate(points[1:], start=1):
        gain = success - base_asr if success is not None else 0.0
        lost = base_accuracy - accuracy
        if gain >= 0.9 and fraction <= 0.01:
            level = Severity.CRITICAL
        elif gain >= 0.5 and fraction <= 0.05:
            level = Severity.HIGH
        elif gain >= 0.5 or lost >= 0.05:
            level = Severity.MEDIUM
        elif gain >= 0.2:
            level = Severity.LOW
        else:
            level = Severity.NONE
        if level > worst[0]:
            worst = (level, index)
    return worst


def backdoor(infected: bool) -> Severity:
    """A backdoor found by model inspection is high; none otherwise."""
    return Severity.HIGH if infected else Severity.NONE


def suspicious_samples(n: int, flagged: int, carriers: int, infected: bool | None) -> Severity:
    """Severity of a data inspection's flagged rows.

    High when some flagged rows carry the trigger recovered from the model, or when rows are flagged
    and model inspection found a backdoor; medium from 5 rows and 1% of the data; low below; none
    when nothing is flagged.
    """
    if carriers or (flagged and infected):
        return Severity.HIGH
    if flagged:
        return Severity.MEDIUM if flagged >= max(5, 0.01 * n) else Severity.LOW
    return Severity.NONE


def residual_backdoor(attack_success_after: float | None) -> Severity:
    """Medium when the backdoor still succeeds on 20% or more of triggered inputs after sanitising."""
    if attack_success_after is not None and attack_success_after >= RESIDUAL_SUCCESS:
        return Severity.MEDIUM
    return Severity.NONE
