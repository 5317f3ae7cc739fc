"""What an evasion attack returns: :class:`EvasionResult`, the per-sample evidence for one ε."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mlarmor.attacks._geometry import Norm

__all__ = ["EvasionResult"]


@dataclass(frozen=True, slots=True, eq=False)
class EvasionResult:
    """The outcome of one fixed-budget evasion attack at one ε, sample by sample.

    Only the evidence is stored; the summary numbers are properties computed from it, so they can
    never disagree with it. The arrays that an attack returns are read-only.

    Attributes:
        attack: Registry name of the attack (its class name when it is not registered).
        params: The attack's configuration (every field), enough to reproduce the run with ``seed``.
        eps: The perturbation budget, in ``norm``.
        norm: The threat-model norm, ``"linf"`` or ``"l2"``.
        seed: Seed of the attack's random generator.
        x_adv: Adversarial inputs, same shape and dtype as the inputs. A sample the attack did not
            fool holds the attack's best attempt; a sample misclassified from the start is unchanged.
        y: True labels ``(n,)``.
        y_pred_clean: The target's predictions on the clean inputs ``(n,)``.
        y_pred_adv: The target's predictions on ``x_adv`` ``(n,)``.
        success: ``y_pred_adv != y`` per sample ``(n,)``: misclassified within the budget (a sample
            already misclassified when clean counts as a success).
        norms: Perturbation size ``||x_adv - x||`` per sample in ``norm`` ``(n,)``, float64.
        queries: Model evaluations spent per sample ``(n,)`` (the clean prediction, the attack and
            the final check, cumulated over the smaller ε of the same call), or the total number of
            queries as an int when the attack cannot attribute them to samples.
    """

    attack: str
    params: Mapping[str, object]
    eps: float
    norm: Norm
    seed: int
    x_adv: np.ndarray
    y: np.ndarray
    y_pred_clean: np.ndarray
    y_pred_adv: np.ndarray
    success: np.ndarray
    norms: np.ndarray
    queries: np.ndarray | int

    @property
    def n_samples(self) -> int:
        """Number of samples attacked."""
        return int(self.y.shape[0])

    @property
    def clean_accuracy(self) -> float:
        """Fraction of samples the target classifies correctly without perturbation."""
        return float(np.mean(self.y_pred_clean == self.y))

    @property
    def robust_accuracy(self) -> float:
        """Fraction of samples still classified correctly under the attack (``1 - mean(success)``)."""
        return float(1.0 - np.mean(self.success))

    @property
    def success_rate(self) -> float:
        """Fraction of the clean-correct samples that the attack fooled (NaN when none was correct)."""
        correct = self.y_pred_clean == self.y
        if not correct.any():
            return float("nan")
        return float(np.mean(self.success[correct]))

    @property
    def total_queries(self) -> int:
        """Model evaluations spent on the whole call, up to this ε."""
        if isinstance(self.queries, np.ndarray):
            return int(self.queries.sum())
        return int(self.queries)
