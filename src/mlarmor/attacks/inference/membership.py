"""Membership-inference attacks: from model outputs to one score per example (higher = member).

An audit computes the outputs of the target and of ``M`` reference models (trained with the target's
recipe on random halves of the audit pool, each example in exactly half of them) once, packs them in
:class:`MembershipEvidence`, and every attack scores from that evidence. No attack sees which
examples the *target* trained on: that is only used afterwards to measure the attacks.

Every attack is a frozen configuration registered by name (``create("lira", online=False)``) with
one call, ``attack.score(evidence) -> np.ndarray`` of shape ``(N,)``, and reports its result under
:attr:`MembershipAttack.label` (``"lira-offline"``). The attacks, one module each:

* :class:`~mlarmor.attacks.inference.threshold.ThresholdAttack` (``"threshold"``): one signal of the
  target's output (loss, confidence, entropy, modified entropy, logit-scaled confidence), optionally
  with per-class thresholds calibrated on the reference models (Yeom et al. 2018; Song and Mittal 2021).
* :class:`~mlarmor.attacks.inference.shadow.ShadowModelAttack` (``"shadow"``): a classifier trained on
  the reference models' outputs, labelled in/out (Shokri et al. 2017).
* :class:`~mlarmor.attacks.inference.lira.LiRA` (``"lira"``): Gaussian likelihood ratio of the
  logit-scaled confidence under the IN and OUT reference models, online or offline, per-example or
  global variance (Carlini et al. 2022).
* :class:`~mlarmor.attacks.inference.rmia.RMIA` (``"rmia"``): the target's likelihood of ``x`` relative
  to its average under reference models, compared pairwise with population samples (Zarifzadeh, Liu
  and Shokri 2024).
* :class:`~mlarmor.attacks.inference.label_only.LabelOnlyAttack` (``"label-only"``): the distance from
  ``x`` to the target's decision boundary, found with HopSkipJump, for targets that return labels only
  (Choquette-Choo et al. 2021). It queries the target itself: its evidence is
  :meth:`MembershipEvidence.from_queries`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from mlarmor.attacks.base import AttackConfig
from mlarmor.errors import InvalidParameterError
from mlarmor.findings import Family

if TYPE_CHECKING:
    from mlarmor.targets.base import Capability, Target

__all__ = [
    "REPORTED",
    "Access",
    "MembershipAttack",
    "MembershipEvidence",
    "by_label",
    "default_attacks",
]

Access = Literal["scores", "labels"]


@dataclass(frozen=True)
class MembershipEvidence:
    """Everything the attacks need, computed once per audit.

    Score-based attacks read the outputs; attacks that query the target themselves (label-only)
    read ``model`` and ``x`` (see :meth:`from_queries`).

    Attributes:
        y: Labels of the ``N`` audit examples ``(N,)``.
        target: The target's outputs on them ``(N, C)`` (``C`` is 0 in query-only evidence).
        logits: Whether ``target`` and ``reference`` hold logits (else probabilities).
        reference: The reference models' outputs ``(M, N, C)`` (``M`` may be 0).
        keep: ``(M, N)``: whether reference model ``m`` trained on example ``n``.
        population: Indices of the examples used as RMIA's population ``z`` (known non-members of
            the target; ``None`` for all examples).
        target_views: The target's outputs on augmented copies of the examples ``(A, N, C)``
            (LiRA's query augmentation), or ``None``.
        reference_views: The reference models' outputs on the same copies ``(M, A, N, C)``.
        model: The target itself, for attacks that query it (``None`` when only outputs are given).
        x: The audit examples ``(N, ...)`` such attacks query it with.
    """

    y: np.ndarray
    target: np.ndarray
    logits: bool
    reference: np.ndarray
    keep: np.ndarray
    population: np.ndarray | None = None
    target_views: np.ndarray | None = None
    reference_views: np.ndarray | None = None
    model: Target | None = None
    x: np.ndarray | None = None

    @classmethod
    def from_queries(cls, model: Target, x: np.ndarray, y: np.ndarray) -> MembershipEvidence:
        """Evidence for attacks that query the target themselves: the target, the examples, their labels."""
        n = len(y)
        return cls(
            y=y,
            target=np.zeros((n, 0)),
            logits=False,
            reference=np.zeros((0, n, 0)),
            keep=np.zeros((0, n), dtype=bool),
            model=model,
            x=x,
        )

    @property
    def n_reference(self) -> int:
        """Number of reference models ``M``."""
        return int(self.reference.shape[0])

    @property
    def has_scores(self) -> bool:
        """Whether the evidence holds the target's outputs (not only queries)."""
        return self.target.ndim == 2 and self.target.shape[1] > 0


class MembershipAttack(AttackConfig):
    """Base of the membership-inference attacks: a frozen configuration with ``score(evidence)``.

    Subclasses are frozen dataclasses registered by name; they write ``_score`` (and ``_check`` for
    their own requirements on the evidence). The base checks that the evidence holds what
    :attr:`capability` says the attack reads.

    Attributes:
        family: :attr:`Family.INFERENCE`.
        capability: ``"scores"``: the attack reads the target's outputs in the evidence;
            ``"labels"``: it queries ``evidence.model`` on ``evidence.x`` for labels only.
        min_reference: Reference models the attack needs at least.
    """

    family: ClassVar[Family] = Family.INFERENCE
    capability: ClassVar[Capability] = "scores"
    min_reference: ClassVar[int] = 0

    def score(self, evidence: MembershipEvidence) -> np.ndarray:
        """One float per audit example ``(N,)``, higher = more likely a member of the target.

        Raises:
            InvalidParameterError: If the evidence lacks what the attack reads (the target's scores,
                enough reference models, or the target and examples to query).
        """
        if self.capability == "labels":
            if evidence.model is None or evidence.x is None:
                raise InvalidParameterError(
                    f"{self.label} queries the target itself: build its evidence with "
                    "MembershipEvidence.from_queries(target, x, y)."
                )
        elif not evidence.has_scores:
            raise InvalidParameterError(
                f"{self.label} reads the target's scores, and this evidence holds none (it was built for "
                "queries only). Audit a target that returns scores, or use the label-only attack."
            )
        self._check(evidence)
        return self._score(evidence)

    def _check(self, evidence: MembershipEvidence) -> None:
        m = evidence.n_reference
        if m < self.min_reference:
            raise InvalidParameterError(
                f"{self.label} needs at least {self.min_reference} reference models; the audit has {m}. "
                f"Pass more reference models (--reference-models {max(2, self.min_reference)} or more)."
            )

    @property
    def label(self) -> str:
        """The name results are reported under (``attacks.<label>`` in the report)."""
        return self.name

    @abc.abstractmethod
    def _score(self, evidence: MembershipEvidence) -> np.ndarray:
        """The scores, on evidence already checked."""


def _pooled(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` where ``mask``, NaN elsewhere (for nan-aware statistics per column)."""
    return np.where(mask, values, np.nan)


REPORTED: tuple[tuple[str, Mapping[str, object]], ...] = (
    ("threshold", {"signal": "loss"}),
    ("threshold", {"signal": "confidence"}),
    ("threshold", {"signal": "entropy"}),
    ("threshold", {"signal": "modified-entropy"}),
    ("threshold", {"signal": "logit"}),
    ("threshold", {"signal": "loss", "class_dependent": True}),
    ("threshold", {"signal": "modified-entropy", "class_dependent": True}),
    ("shadow", {}),
    ("lira", {"online": True}),
    ("lira", {"online": False}),
    ("rmia", {"online": True}),
    ("rmia", {"online": False}),
    ("label-only", {}),
)
"""Every configuration an audit can run by label: ``(registry name, parameters)``, in report order."""


def _build(name: str, **params: object) -> MembershipAttack:
    from mlarmor.attacks.registry import create

    attack = create(name, **params)
    if not isinstance(attack, MembershipAttack):  # pragma: no cover - REPORTED names membership attacks
        raise TypeError(f"{name!r} is not a membership-inference attack")
    return attack


def by_label() -> dict[str, MembershipAttack]:
    """Every configuration of :data:`REPORTED`, by the label it is reported under (``--attack``)."""
    return {a.label: a for a in (_build(name, **params) for name, params in REPORTED)}


def default_attacks(access: Access, n_reference: int) -> tuple[MembershipAttack, ...]:
    """The attacks an audit runs by default for this access and number of reference models."""
    if access == "labels":
        return (_build("label-only"),)
    attacks = [
        _build("threshold", signal=signal) for signal in ("loss", "confidence", "entropy", "modified-entropy")
    ]
    if n_reference >= 1:
        attacks += [_build("threshold", signal="loss", class_dependent=True), _build("rmia", online=False)]
    if n_reference >= 2:
        attacks += [
            _build("shadow"),
            _build("lira", online=True),
            _build("lira", online=False),
            _build("rmia", online=True),
        ]
    return tuple(attacks)
