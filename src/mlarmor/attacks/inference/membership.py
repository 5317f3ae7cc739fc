"""Membership-inference attacks: from model outputs to one score per example (higher = member).

An audit computes the outputs of the target and of ``M`` reference models (trained with the target's
recipe on random halves of the audit pool, each example in exactly half of them) once, packs them in
:class:`MembershipEvidence`, and every attack scores from that evidence. No attack sees which
examples the *target* trained on: that is only used afterwards to measure the attacks.

* :class:`ThresholdAttack`: one signal of the target's output (loss, confidence, entropy, modified
  entropy, logit-scaled confidence), optionally with per-class thresholds calibrated on the reference
  models (Yeom et al. 2018; Song and Mittal 2021).
* :class:`ShadowModelAttack`: a classifier trained on the reference models' outputs, labelled in/out
  (Shokri et al. 2017).
* :class:`LiRA`: Gaussian likelihood ratio of the logit-scaled confidence under the IN and OUT
  reference models, online or offline, per-example or global variance (Carlini et al. 2022).
* :class:`RMIA`: the target's likelihood of ``x`` relative to its average under reference models,
  compared pairwise with population samples (Zarifzadeh, Liu and Shokri 2024).
* :class:`LabelOnlyAttack`: the distance from ``x`` to the target's decision boundary, found with
  HopSkipJump, for targets that return labels only (Choquette-Choo et al. 2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from mlarmor.attacks.inference.signals import Signal, logit_confidence, member_score, probabilities
from mlarmor.errors import InvalidParameterError, invalid_parameter

__all__ = [
    "MEMBERSHIP_ATTACKS",
    "RMIA",
    "LabelOnlyAttack",
    "LiRA",
    "MembershipAttack",
    "MembershipEvidence",
    "ShadowModelAttack",
    "ThresholdAttack",
    "default_attacks",
]

Access = Literal["scores", "labels"]

# Below this many reference models (IN and OUT together) LiRA's per-example variance is too noisy and
# a variance pooled over all examples does better (Carlini et al. 2022, whose code and LeakPro switch
# at 32 IN + 32 OUT models).
GLOBAL_VARIANCE_BELOW = 64
_MIN_STD = 1e-6


@dataclass(frozen=True)
class MembershipEvidence:
    """Everything the score-based attacks need, computed once per audit.

    Attributes:
        y: Labels of the ``N`` audit examples ``(N,)``.
        target: The target's outputs on them ``(N, C)``.
        logits: Whether ``target`` and ``reference`` hold logits (else probabilities).
        reference: The reference models' outputs ``(M, N, C)`` (``M`` may be 0).
        keep: ``(M, N)``: whether reference model ``m`` trained on example ``n``.
        population: Indices of the examples used as RMIA's population ``z`` (known non-members of
            the target; ``None`` for all examples).
        target_views: The target's outputs on augmented copies of the examples ``(A, N, C)``
            (LiRA's query augmentation), or ``None``.
        reference_views: The reference models' outputs on the same copies ``(M, A, N, C)``.
    """

    y: np.ndarray
    target: np.ndarray
    logits: bool
    reference: np.ndarray
    keep: np.ndarray
    population: np.ndarray | None = None
    target_views: np.ndarray | None = None
    reference_views: np.ndarray | None = None

    @property
    def n_reference(self) -> int:
        """Number of reference models ``M``."""
        return int(self.reference.shape[0])


class MembershipAttack:
    """Base of the score-based attacks: a frozen configuration with ``score(evidence)``."""

    name: ClassVar[str]
    min_reference: ClassVar[int] = 0

    def score(self, evidence: MembershipEvidence) -> np.ndarray:
        """One float per audit example ``(N,)``, higher = more likely a member of the target."""
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
        """The name results are reported under."""
        return self.name

    def _score(self, evidence: MembershipEvidence) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def _pooled(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` where ``mask``, NaN elsewhere (for nan-aware statistics per column)."""
    return np.where(mask, values, np.nan)


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

    name: ClassVar[str] = "threshold"

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

    name: ClassVar[str] = "shadow-model"
    min_reference: ClassVar[int] = 2

    top_k: int = 3
    seed: int = 0

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


@dataclass(frozen=True)
class LiRA(MembershipAttack):
    """The likelihood-ratio attack: is the target's confidence on ``x`` typical of models trained on it?

    For each example the logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` of the reference
    models that trained on it (IN) and of those that did not (OUT) are each fitted with a Gaussian
    (median and standard deviation, as in the authors' code). **Online**: the score is the log
    likelihood ratio ``log N(phi; IN) - log N(phi; OUT)`` of the target's ``phi``. **Offline** (OUT
    models only, which can be trained once for many targets): the one-sided test
    ``(phi - mu_out) / sigma_out`` (monotone in the paper's ``Pr[Z < phi]``). With few reference
    models one variance pooled over all examples (``global_variance``) beats per-example variances;
    the default switches at 64 models.

    Reference:
        Carlini, Chien, Nasr, Song, Terzis and Tramèr, "Membership Inference Attacks From First
        Principles", IEEE S&P 2022. https://arxiv.org/abs/2112.03570

    Threat model:
        Membership inference (MITRE ATLAS AML.T0024.000, OWASP ML04) by an attacker who can train
        models like the target (its recipe, data from the same distribution) and sees its scores.

    Attributes:
        online: Use the IN models too (needs at least one IN and one OUT model per example).
        global_variance: Pool the variance over examples; ``None`` chooses by the number of models.
        augment: Use the augmented queries when the evidence has them (``audit_membership(...,
            augmentations=k)``): one Gaussian test per query, averaged.
    """

    name: ClassVar[str] = "lira"
    min_reference: ClassVar[int] = 2

    online: bool = True
    global_variance: bool | None = None
    augment: bool = True

    @property
    def label(self) -> str:  # noqa: D102 - documented on the base class
        return f"lira-{'online' if self.online else 'offline'}"

    def _score(self, evidence: MembershipEvidence) -> np.ndarray:
        y, logits = evidence.y, evidence.logits
        targets = [evidence.target]
        references = [evidence.reference]
        if self.augment and evidence.target_views is not None and evidence.reference_views is not None:
            targets += list(evidence.target_views)
            references += [evidence.reference_views[:, a] for a in range(evidence.reference_views.shape[1])]
        scores = [
            self._score_view(
                logit_confidence(t, y, logits=logits),
                np.stack([logit_confidence(o, y, logits=logits) for o in ref]),
                evidence.keep,
            )
            for t, ref in zip(targets, references, strict=True)
        ]
        # The authors' code averages the per-query statistics, treating the queries as independent.
        out: np.ndarray = np.mean(scores, axis=0)
        return out

    def _score_view(self, phi_target: np.ndarray, phi: np.ndarray, keep: np.ndarray) -> np.ndarray:
        pooled = (
            phi.shape[0] < GLOBAL_VARIANCE_BELOW if self.global_variance is None else self.global_variance
        )
        out = _pooled(phi, ~keep)
        mu_out = np.nanmedian(out, axis=0)
        sd_out = _spread(out, mu_out, pooled)
        if not self.online:
            z: np.ndarray = (phi_target - mu_out) / sd_out
            return z
        inside = _pooled(phi, keep)
        mu_in = np.nanmedian(inside, axis=0)
        sd_in = _spread(inside, mu_in, pooled)
        ratio: np.ndarray = _log_normal(phi_target, mu_in, sd_in) - _log_normal(phi_target, mu_out, sd_out)
        return ratio


def _spread(values: np.ndarray, centre: np.ndarray, pooled: bool) -> np.ndarray:
    """Per-example standard deviation around ``centre``, or one pooled over all examples."""
    residual = values - centre
    if pooled:
        common = float(np.sqrt(np.nanmean(residual**2)))
        return np.full(values.shape[1], max(common, _MIN_STD))
    count = np.sum(~np.isnan(values), axis=0)
    var = np.nansum(residual**2, axis=0) / np.maximum(count - 1, 1)
    sd: np.ndarray = np.maximum(np.sqrt(var), _MIN_STD)
    return sd


def _log_normal(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    out: np.ndarray = -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)
    return out


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

    name: ClassVar[str] = "rmia"
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


@dataclass(frozen=True)
class LabelOnlyAttack:
    """Distance from each example to the target's decision boundary: members lie farther inside.

    Runs HopSkipJump (L2, ``max_queries`` per example) on the target's labels only; an example the
    target misclassifies scores 0. Works on any target, including ones that return labels only.

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

    name: ClassVar[str] = "label-only"

    max_queries: int = 1000
    seed: int = 0

    @property
    def label(self) -> str:
        """The name results are reported under."""
        return self.name

    def score(self, target: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Boundary distances ``(N,)`` (0 where misclassified, the search's best where none was found)."""
        from mlarmor.attacks import create

        attack = create("hopskipjump", norm="l2", max_queries=self.max_queries, seed=self.seed)
        found = attack.minimize(target, x, y)  # type: ignore[attr-defined]
        norms = np.asarray(found.norms, dtype=np.float64)
        finite = norms[np.isfinite(norms)]
        # No adversarial input within the budget: at least as far as the farthest one found.
        ceiling = float(finite.max()) * 1.01 if finite.size else 1.0
        return np.where(np.isfinite(norms), norms, ceiling)


def default_attacks(access: Access, n_reference: int) -> Sequence[MembershipAttack | LabelOnlyAttack]:
    """The attacks an audit runs by default for this access and number of reference models."""
    if access == "labels":
        return (LabelOnlyAttack(),)
    attacks: list[MembershipAttack | LabelOnlyAttack] = [
        ThresholdAttack("loss"),
        ThresholdAttack("confidence"),
        ThresholdAttack("entropy"),
        ThresholdAttack("modified-entropy"),
    ]
    if n_reference >= 1:
        attacks += [ThresholdAttack("loss", class_dependent=True), RMIA(online=False)]
    if n_reference >= 2:
        attacks += [ShadowModelAttack(), LiRA(online=True), LiRA(online=False), RMIA(online=True)]
    return tuple(attacks)


MEMBERSHIP_ATTACKS: dict[str, MembershipAttack | LabelOnlyAttack] = {
    a.label: a
    for a in (
        ThresholdAttack("loss"),
        ThresholdAttack("confidence"),
        ThresholdAttack("entropy"),
        ThresholdAttack("modified-entropy"),
        ThresholdAttack("logit"),
        ThresholdAttack("loss", class_dependent=True),
        ThresholdAttack("modified-entropy", class_dependent=True),
        ShadowModelAttack(),
        LiRA(online=True),
        LiRA(online=False),
        RMIA(online=True),
        RMIA(online=False),
        LabelOnlyAttack(),
    )
}
"""Every attack by the name it is reported under (``--attack`` on the command line)."""
