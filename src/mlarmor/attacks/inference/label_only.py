"""The label-only attack: the distance to the decision boundary, for label-only targets (``"label-only"``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from mlarmor.attacks.evasion.hsj import HopSkipJump
from mlarmor.attacks.inference.membership import MembershipAttack, MembershipEvidence
from mlarmor.attacks.registry import register
from mlarmor.errors import InvalidParameterError

if TYPE_CHECKING:
    from mlarmor.targets.base import Capability

__all__ = ["LabelOnlyAttack"]


@register("label-only")
@dataclass(frozen=True)
class LabelOnlyAttack(MembershipAttack):
    """Distance from each example to the target's decision boundary: members lie farther inside.

    Runs HopSkipJump (L2, ``max_queries`` per example) on the target's labels only; an example the
    target misclassifies scores 0. Works on any target, including ones that return labels only.
    It queries the target itself, so its evidence is :meth:`MembershipEvidence.from_queries`:
    ``LabelOnlyAttack().score(MembershipEvidence.from_queries(target, x, y))``.

    Reference:
        Choquette-Choo, Tramèr, Carlini and Papernot, "Label-Only Membership Inference Attacks",
        ICML 2021. https://arxiv.org/abs/2007.14321

    Threat model:
        Membership inference (MITRE ATLAS AML.T0024.000, OWASP ML04) by an attacker who sees only
        the predicted label and can send many queries.

    Attributes:
        max_queries: HopSkipJump's query budget per example.
        seed: Seed of the search.
    """

    capability: ClassVar[Capability] = "labels"

    max_queries: int = 1000
    seed: int = 0

    def _score(self, evidence: MembershipEvidence) -> np.ndarray:
        """Boundary distances ``(N,)`` (0 where misclassified, the search's best where none was found)."""
        model, x = evidence.model, evidence.x
        if model is None or x is None:  # pragma: no cover - checked by MembershipAttack.score
            raise InvalidParameterError(f"{self.label} needs the target and the examples to query.")
        attack = HopSkipJump(norm="l2", max_queries=self.max_queries, seed=self.seed)
        found = attack.minimize(model, x, evidence.y)
        norms = np.asarray(found.norms, dtype=np.float64)
        finite = norms[np.isfinite(norms)]
        # No adversarial input within the budget: at least as far as the farthest one found.
        ceiling = float(finite.max()) * 1.01 if finite.size else 1.0
        out: np.ndarray = np.where(np.isfinite(norms), norms, ceiling)
        return out
