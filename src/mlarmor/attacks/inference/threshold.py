"""The threshold attack: one signal of the target's output, globally or per class (``"threshold"``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlarmor.attacks.inference.membership import MembershipAttack, MembershipEvidence
from mlarmor.attacks.inference.signals import Signal, member_score
from mlarmor.attacks.registry import register
from mlarmor.errors import InvalidParameterError, invalid_parameter

__all__ = ["ThresholdAttack"]


def _best_threshold(member_values: np.ndarray, nonmember_values: np.ndarray) -> float:
    """The threshold ``t`` maximising the balanced accuracy of ``value >= t`` (member)."""
    values = np.concatenate([member_values, nonmember_values])
    is_member = np.concatenate([np.ones(len(member_values), bool), np.zeros(len(nonmember_values), bool)])
    order = np.argsort(-values, kind="stable")
    v, m = values[order], is_member[order]
    tp = np.cumsum(m)
    fp = np.cumsum(~m)
    last = np.r_[v[1:] != v[:-1], True]  # one candidate per distinct value
    tpr = tp[last] / max(1, m.sum())
    tnr = 1.0 - fp[last] / max(1, (~m).sum())
    best = int(np.argmax(0.5 * (tpr + tnr)))
    return float(v[last][best])


@register("threshold")
@dataclass(frozen=True)
class ThresholdAttack(MembershipAttack):
    """Threshold one signal of the target's output, globally or per class.

    A global threshold needs no reference model: the score is the signal itself (oriented so that
    higher means member), and any threshold on it is one point of the ROC curve. With
    ``class_dependent=True`` each class gets the threshold that best separates the reference models'
    members from their non-members of that class (Song and Mittal 2021), and the score is the
    signal minus its class's threshold.

    Reference:
        Yeom, Giacomelli, Fredrikson and Jha, "Privacy Risk in Machine Learning", CSF 2018.
        Song and Mittal, "Systematic Evaluation of Privacy Risks of Machine Learning Models",
        USENIX Security 2021. https://arxiv.org/abs/2003.10595

    Threat model:
        Membership inference (MITRE ATLAS AML.T0024.000, OWASP ML04) by an attacker who sees the
        target's class scores for an example and its label.

    Attributes:
        signal: ``"loss"``, ``"confidence"``, ``"entropy"``, ``"modified-entropy"`` or ``"logit"``.
        class_dependent: Calibrate one threshold per class on the reference models.
    """

    signal: Signal = "loss"
    class_dependent: bool = False

    def __post_init__(self) -> None:
        if self.signal not in ("loss", "confidence", "entropy", "modified-entropy", "logit"):
            raise invalid_parameter(
                "signal",
                "ThresholdAttack",
                "loss, confidence, entropy, modified-entropy or logit",
                self.signal,
            )

    @property
    def label(self) -> str:  # noqa: D102 - documented on the base class
        return f"{self.signal}{'-per-class' if self.class_dependent else ''}"

    def _check(self, evidence: MembershipEvidence) -> None:
        if self.class_dependent and evidence.n_reference < 1:
            raise InvalidParameterError(
                f"{self.label} calibrates its thresholds on reference models; the audit has none. "
                "Pass --reference-models 2 or more, or use the global threshold."
            )

    def _score(self, evidence: MembershipEvidence) -> np.ndarray:
        raw = member_score(self.signal, evidence.target, evidence.y, logits=evidence.logits)
        if not self.class_dependent:
            return raw
        shadow = np.stack(
            [member_score(self.signal, out, evidence.y, logits=evidence.logits) for out in evidence.reference]
        )
        shifted = raw.copy()
        for c in np.unique(evidence.y):
            cols = evidence.y == c
            values, inside = shadow[:, cols], evidence.keep[:, cols]
            if inside.all() or not inside.any():
                continue
            shifted[cols] = raw[cols] - _best_threshold(values[inside], values[~inside])
        return shifted
