"""The robust membership-inference attack, RMIA, online or offline (``"rmia"``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mlarmor.attacks.inference.membership import MembershipAttack, MembershipEvidence, _pooled
from mlarmor.attacks.inference.signals import probabilities
from mlarmor.attacks.registry import register
from mlarmor.errors import InvalidParameterError, invalid_parameter

__all__ = ["RMIA"]


@register("rmia")
@dataclass(frozen=True)
class RMIA(MembershipAttack):
    """The robust membership-inference attack: a relative likelihood, compared with the population.

    ``ratio(x) = Pr(x | target) / Pr(x)``, where ``Pr(x | model)`` is the model's probability of the
    true label and ``Pr(x)`` its average over reference models: all of them **online**; the OUT
    models with the correction ``((1 + a) Pr_out(x) + (1 - a)) / 2`` **offline** (``a`` relates IN
    and OUT likelihoods, ``Pr_in = a Pr_out + 1 - a``). The score of ``x`` is the share of
    population samples ``z`` (known non-members) for which ``ratio(x) / ratio(z) > gamma``. With a
    fixed population that share rises with ``ratio(x)``; its ties are broken by ``ratio(x)`` itself
    so that the low-FPR end of the ROC keeps its resolution.

    Reference:
        Zarifzadeh, Liu and Shokri, "Low-Cost High-Power Membership Inference Attacks", ICML 2024.
        https://arxiv.org/abs/2312.03262

    Threat model:
        Membership inference (MITRE ATLAS AML.T0024.000, OWASP ML04) by an attacker with a few
        models like the target, population data and the target's scores.

    Attributes:
        online: Average ``Pr(x)`` over all reference models (else OUT models with ``a``).
        a: Offline correction in ``[0, 1]`` (1: none); the authors use 0.3 to 0.6.
        gamma: Pairwise likelihood-ratio threshold, > 0 (the authors use 1 or 2).
    """

    min_reference: ClassVar[int] = 1

    online: bool = True
    a: float = 0.3
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.a, int | float) and 0.0 <= self.a <= 1.0):
            raise invalid_parameter("a", "RMIA", "a float in [0, 1]", self.a)
        if not (isinstance(self.gamma, int | float) and self.gamma > 0):
            raise invalid_parameter("gamma", "RMIA", "a float > 0", self.gamma)

    @property
    def label(self) -> str:  # noqa: D102 - documented on the base class
        return f"rmia-{'online' if self.online else 'offline'}"

    def _score(self, evidence: MembershipEvidence) -> np.ndarray:
        y = evidence.y
        rows = np.arange(len(y))
        p_target = probabilities(evidence.target, logits=evidence.logits)[rows, y]
        p_ref = np.stack([probabilities(o, logits=evidence.logits)[rows, y] for o in evidence.reference])
        if self.online:
            p_x = p_ref.mean(axis=0)
        else:
            outside = ~evidence.keep
            if not outside.any(axis=0).all():
                raise InvalidParameterError(
                    "Offline RMIA needs, for every example, a reference model that did not train on it; "
                    "use 2 or more reference models."
                )
            p_out = np.nanmean(_pooled(p_ref, outside), axis=0)
            p_x = 0.5 * ((1.0 + self.a) * p_out + (1.0 - self.a))
        ratio = p_target / np.maximum(p_x, 1e-30)
        population = ratio if evidence.population is None else ratio[evidence.population]
        z_sorted = np.sort(population)
        # ratio(x) / ratio(z) > gamma  <=>  ratio(z) < ratio(x) / gamma
        share = np.searchsorted(z_sorted, ratio / self.gamma, side="left") / max(1, len(z_sorted))
        rank = np.argsort(np.argsort(ratio, kind="stable"), kind="stable") / max(1, len(ratio))
        out: np.ndarray = share + 1e-9 * rank
        return out
