"""The shadow-model attack: a classifier that learned members from non-members (``"shadow"``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mlarmor.attacks.inference.membership import MembershipAttack, MembershipEvidence
from mlarmor.attacks.inference.signals import member_score, probabilities
from mlarmor.attacks.registry import register

__all__ = ["ShadowModelAttack"]


@register("shadow")
@dataclass(frozen=True)
class ShadowModelAttack(MembershipAttack):
    """A classifier that learned members from non-members on the reference (shadow) models' outputs.

    Features per example: the sorted probability vector (top ``top_k``), the true-class probability,
    the loss and the modified entropy; one model for all classes with the label one-hot encoded.
    Trained on every (reference model, example) pair with ``keep`` as the label, then applied to the
    target's outputs. The classifier is scikit-learn's histogram gradient boosting.

    Reference:
        Shokri, Stronati, Song and Shmatikov, "Membership Inference Attacks Against Machine
        Learning Models", IEEE S&P 2017. https://arxiv.org/abs/1610.05820

    Threat model:
        Membership inference (MITRE ATLAS AML.T0024.000, OWASP ML04) by an attacker who can train
        models like the target on data from the same distribution and sees the target's scores.

    Attributes:
        top_k: How many of the largest probabilities to use.
        seed: Seed of the classifier.
    """

    min_reference: ClassVar[int] = 2

    top_k: int = 3
    seed: int = 0

    @property
    def label(self) -> str:  # noqa: D102 - documented on the base class
        return "shadow-model"

    @staticmethod
    def _features(outputs: np.ndarray, y: np.ndarray, logits: bool, k: int, classes: int) -> np.ndarray:
        p = probabilities(outputs, logits=logits)
        top = -np.sort(-p, axis=1)[:, : min(k, p.shape[1])]
        extra = [
            member_score(s, outputs, y, logits=logits) for s in ("confidence", "loss", "modified-entropy")
        ]
        onehot = np.eye(classes)[y]
        return np.column_stack([top, *extra, onehot])

    def _score(self, evidence: MembershipEvidence) -> np.ndarray:
        from sklearn.ensemble import HistGradientBoostingClassifier

        classes = evidence.target.shape[1]
        feats = [
            self._features(out, evidence.y, evidence.logits, self.top_k, classes)
            for out in evidence.reference
        ]
        x_train = np.concatenate(feats)
        y_train = evidence.keep.reshape(-1)
        clf = HistGradientBoostingClassifier(max_iter=100, random_state=self.seed).fit(x_train, y_train)
        x_target = self._features(evidence.target, evidence.y, evidence.logits, self.top_k, classes)
        proba: np.ndarray = clf.predict_proba(x_target)[:, 1]
        return proba
