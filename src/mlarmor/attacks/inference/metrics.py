"""Metrics of a membership-inference audit: ROC, AUC, TPR at low FPR, and the ε it implies.

Every function takes the attack's ``scores`` (one finite float per example, **higher** means "more
likely a member") and ``is_member`` (a boolean array, or 0/1 values, of the same length), with at
least one member and one non-member. The attack predicts "member" when ``score >= threshold``.

Which number to read: the AUC summarises the whole curve but hides what matters for privacy, the
attack's power when it is almost never wrong; the TPR at a low FPR (0.1 %, 1 %) shows that (Carlini
et al., "Membership Inference Attacks From First Principles", S&P 2022, arXiv:2112.03570). A TPR at
FPR ``f`` needs at least ``ceil(1 / f)`` non-members (1000 for 0.1 %): :func:`membership_metrics`
reports it only then, and gives every rate a 95% interval (Clopper-Pearson for TPRs, Hanley-McNeil
for the AUC; see :mod:`mlarmor._stats`). The
:func:`epsilon_lower_bound` turns an audit into the smallest differential-privacy ε consistent with
it, with a stated confidence: a model trained with a DP guarantee ε' < that bound has a broken
guarantee (or a broken implementation).

Example:
    >>> import numpy as np
    >>> scores = np.array([0.9, 0.8, 0.4, 0.3, 0.2, 0.1])
    >>> is_member = np.array([True, True, False, True, False, False])
    >>> round(auc(scores, is_member), 4)
    0.8889
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from mlarmor._stats import auc_interval, clopper_pearson, fpr_measurable, min_negatives
from mlarmor._validation import check_float, check_fraction, check_int, check_seed
from mlarmor.errors import invalid_parameter

__all__ = [
    "EpsilonBound",
    "MembershipMetrics",
    "auc",
    "balanced_accuracy",
    "epsilon_lower_bound",
    "membership_metrics",
    "most_exposed",
    "roc_curve",
    "tpr_at_fpr",
]


@dataclass(frozen=True)
class EpsilonBound:
    """An empirical lower bound on the differential-privacy ε of the audited training run.

    Attributes:
        epsilon: The lower bound, ``>= 0``; 0 means the audit found no evidence of leakage.
        threshold: The score threshold the bound was measured at (chosen on the selection half).
        fpr_upper: Clopper-Pearson upper bound of the false-positive rate on the evaluation half.
        fnr_upper: Clopper-Pearson upper bound of the false-negative rate on the evaluation half.
        confidence: Two-sided confidence of each interval, e.g. 0.95.
        delta: The δ of the (ε, δ) guarantee the bound is stated for.
        n_members: Members in the evaluation half (the counts behind ``fnr_upper``).
        n_nonmembers: Non-members in the evaluation half (the counts behind ``fpr_upper``).
    """

    epsilon: float
    threshold: float
    fpr_upper: float
    fnr_upper: float
    confidence: float
    delta: float
    n_members: int
    n_nonmembers: int


@dataclass(frozen=True)
class MembershipMetrics:
    """The summary of one membership-inference audit; see :func:`membership_metrics`.

    Attributes:
        auc: Area under the ROC curve.
        balanced_accuracy: The best ``(TPR + TNR) / 2`` over thresholds (optimistic).
        threshold: The threshold that reaches ``balanced_accuracy``.
        tpr_at_fpr: TPR at each requested FPR that the non-members can measure (at least
            ``ceil(1 / fpr)`` of them), keyed by ``str(fpr)`` (``"0.001"``).
        epsilon: The empirical ε lower bound.
        n_members: Members audited.
        n_nonmembers: Non-members audited.
        unmeasured_fprs: The requested FPRs left out of ``tpr_at_fpr`` because there are too few
            non-members, each with the number of non-members it needs.
    """

    auc: float
    balanced_accuracy: float
    threshold: float
    tpr_at_fpr: dict[str, float]
    epsilon: EpsilonBound
    n_members: int
    n_nonmembers: int
    unmeasured_fprs: dict[str, int] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        """Two-sided confidence of every interval (that of the ε bound)."""
        return self.epsilon.confidence

    @property
    def auc_ci(self) -> tuple[float, float]:
        """Interval of the AUC from its Hanley-McNeil standard error."""
        return auc_interval(self.auc, self.n_members, self.n_nonmembers, self.confidence)

    @property
    def tpr_at_fpr_ci(self) -> dict[str, tuple[float, float]]:
        """Clopper-Pearson interval of each TPR in ``tpr_at_fpr``: members identified of ``n_members``.

        The threshold is the one reaching the FPR on these non-members, so the interval covers the
        members' sampling at that threshold, not the uncertainty of the FPR itself.
        """
        return {
            key: clopper_pearson(round(tpr * self.n_members), self.n_members, self.confidence)
            for key, tpr in self.tpr_at_fpr.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: plain floats, ints and strings only."""
        return {
            "auc": self.auc,
            "auc_ci": list(self.auc_ci),
            "balanced_accuracy": self.balanced_accuracy,
            "threshold": self.threshold,
            "tpr_at_fpr": dict(self.tpr_at_fpr),
            "tpr_at_fpr_ci": {k: list(v) for k, v in self.tpr_at_fpr_ci.items()},
            "unmeasured_fprs": dict(self.unmeasured_fprs),
            "confidence": self.confidence,
            "epsilon_lower_bound": asdict(self.epsilon),
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
        }


def _check(
    scores: npt.ArrayLike, is_member: npt.ArrayLike, owner: str, *, allow_inf: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert: float64 scores and bool membership, 1-D, same length, both classes."""
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise invalid_parameter("scores", owner, "a 1-D array of finite floats", scores) from e
    if s.ndim != 1 or s.size == 0:
        raise invalid_parameter("scores", owner, "a non-empty 1-D array of floats", f"shape {s.shape}")
    ok = ~np.isnan(s) if allow_inf else np.isfinite(s)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        expected = "floats, not NaN" if allow_inf else "finite floats (no NaN or inf)"
        raise invalid_parameter("scores", owner, expected, f"{s[bad]} at index {bad}")
    m = np.asarray(is_member)
    if m.ndim != 1 or m.shape != s.shape:
        raise invalid_parameter(
            "is_member", owner, f"a 1-D array of the same length as scores ({s.size})", f"shape {m.shape}"
        )
    if m.dtype != np.bool_:
        if m.dtype.kind not in "iuf" or not np.isin(m, (0, 1)).all():
            raise invalid_parameter(
                "is_member", owner, "a boolean array (or 0/1 values)", f"an array of dtype {m.dtype}"
            )
        m = m.astype(bool)
    n_members = int(m.sum())
    if n_members == 0 or n_members == m.size:
        raise invalid_parameter(
            "is_member",
            owner,
            "at least one member and one non-member",
            f"{n_members} members and {m.size - n_members} non-members",
        )
    return s, m


def _counts(s: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores, highest first, and the members and non-members scoring at least each."""
    order = np.argsort(-s, kind="stable")
    s_sorted, m_sorted = s[order], m[order]
    # The last position of each run of equal scores: tied examples cross a threshold together.
    ends = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]
    tp = np.cumsum(m_sorted)[ends]
    fp = (ends + 1) - tp
    return s_sorted[ends], tp, fp


def _roc(s: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    thresholds, tp, fp = _counts(s, m)
    n_members, n_nonmembers = tp[-1], fp[-1]
    fpr = np.r_[0.0, fp / n_nonmembers]
    tpr = np.r_[0.0, tp / n_members]
    return fpr, tpr, np.r_[np.inf, thresholds]


def roc_curve(scores: npt.ArrayLike, is_member: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve of a membership attack over all distinct score thresholds.

    Point ``i`` is what the attack gets by predicting "member" when ``score >= thresholds[i]``.
    The curve runs from ``(0, 0)`` (threshold ``+inf``) to ``(1, 1)`` (the lowest score); examples
    with tied scores cross a threshold together, so a tie is one (diagonal) step. This matches
    ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.

    Args:
        scores: One finite score per example; higher means "more likely a member".
        is_member: Whether each example was in the training set.

    Returns:
        ``(fpr, tpr, thresholds)``, each of length (number of distinct scores + 1); ``fpr`` and
        ``tpr`` are non-decreasing, ``thresholds`` decreasing.

    Raises:
        InvalidParameterError: If the inputs are not 1-D and of equal length, a score is not
            finite, or there is not at least one member and one non-member.
    """
    return _roc(*_check(scores, is_member, "roc_curve"))


def _auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)


def auc(scores: npt.ArrayLike, is_member: npt.ArrayLike) -> float:
    """Area under the ROC curve of :func:`roc_curve` (trapezoids).

    It equals the probability that a random member scores above a random non-member, ties counted
    one half: the Mann-Whitney U statistic divided by ``n_members * n_nonmembers``. 0.5 is chance.

    Args:
        scores: One finite score per example; higher means "more likely a member".
        is_member: Whether each example was in the training set.

    Returns:
        The AUC, in ``[0, 1]``.

    Raises:
        InvalidParameterError: As :func:`roc_curve`.
    """
    fpr, tpr, _ = _roc(*_check(scores, is_member, "auc"))
    return _auc(fpr, tpr)


def _tpr_at(fpr_curve: np.ndarray, tpr_curve: np.ndarray, fpr: float) -> float:
    # The curve starts at (0, 0), so some point always qualifies; its TPR is 0 when none is better.
    return float(tpr_curve[fpr_curve <= fpr].max())


def tpr_at_fpr(scores: npt.ArrayLike, is_member: npt.ArrayLike, fpr: float) -> float:
    """The attack's true-positive rate at a given false-positive rate, without interpolation.

    This is the largest TPR among the thresholds of :func:`roc_curve` whose FPR is ``<= fpr``,
    and 0.0 when no threshold identifies a member without exceeding ``fpr``. A TPR at FPR ``f`` is
    only meaningful when there are at least about ``1 / f`` non-members (1000 for 0.1 %): with
    fewer, the only reachable FPR below ``f`` is 0. This function computes it anyway;
    :func:`membership_metrics` leaves such levels out.

    Args:
        scores: One finite score per example; higher means "more likely a member".
        is_member: Whether each example was in the training set.
        fpr: The false-positive rate allowed, in ``[0, 1]``.

    Returns:
        The TPR, in ``[0, 1]``.

    Raises:
        InvalidParameterError: As :func:`roc_curve`, or if ``fpr`` is not in ``[0, 1]``.
    """
    f = check_float(fpr, "fpr", "tpr_at_fpr", low=0.0, high=1.0)
    fpr_curve, tpr_curve, _ = _roc(*_check(scores, is_member, "tpr_at_fpr"))
    return _tpr_at(fpr_curve, tpr_curve, f)


def _balanced(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    # Skip the +inf threshold: predicting no member scores 0.5, as predicting all (the last point).
    values = 0.5 * (tpr[1:] + 1.0 - fpr[1:])
    best = int(np.argmax(values))  # the first maximum: the highest threshold among ties
    return float(values[best]), float(thresholds[1:][best])


def balanced_accuracy(scores: npt.ArrayLike, is_member: npt.ArrayLike) -> tuple[float, float]:
    """The best balanced accuracy ``(TPR + TNR) / 2`` over all thresholds, and that threshold.

    This is an **optimistic** figure: the threshold is chosen on the very data it is measured on,
    as an attacker who knew the membership labels would. ``2 * accuracy - 1`` is the "membership
    advantage" of Yeom et al. (CSF 2018, arXiv:1709.01604). It is at least 0.5, since predicting
    "member" for everything scores 0.5. Among equally good thresholds the highest is returned.

    Args:
        scores: One finite score per example; higher means "more likely a member".
        is_member: Whether each example was in the training set.

    Returns:
        ``(balanced_accuracy, threshold)``, predicting "member" when ``score >= threshold``.

    Raises:
        InvalidParameterError: As :func:`roc_curve`.
    """
    return _balanced(*_roc(*_check(scores, is_member, "balanced_accuracy")))


def _clopper_pearson_upper(x: np.ndarray, n: int | np.ndarray, alpha: float) -> np.ndarray:
    """The upper end of the two-sided ``1 - alpha`` Clopper-Pearson interval of ``x`` successes in ``n``.

    For ``x = 0`` this is ``1 - (alpha / 2) ** (1 / n)``; for ``x = n`` it is 1.
    """
    x = np.asarray(x, dtype=np.float64)
    n_arr = np.broadcast_to(np.asarray(n, dtype=np.float64), x.shape)
    full = x >= n_arr
    b = np.where(full, 1.0, n_arr - x)  # a placeholder where x == n, overwritten below
    upper = np.asarray(stats.beta.ppf(1.0 - alpha / 2, x + 1.0, b), dtype=np.float64)
    return np.where(full, 1.0, upper)


def _epsilon(
    fp: np.ndarray, n_nonmembers: int, fn: np.ndarray, n_members: int, delta: float, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ε lower bounds from error counts, with the Clopper-Pearson upper bounds they rest on."""
    fpr_hi = _clopper_pearson_upper(fp, n_nonmembers, alpha)
    fnr_hi = _clopper_pearson_upper(fn, n_members, alpha)
    terms = []
    # An (ε, δ)-DP mechanism has FPR + e^ε FNR >= 1 - δ and FNR + e^ε FPR >= 1 - δ (Kairouz et al.).
    for numerator, denominator in ((1.0 - delta - fnr_hi, fpr_hi), (1.0 - delta - fpr_hi, fnr_hi)):
        ok = numerator > 0  # a term whose numerator is not positive gives no bound
        terms.append(np.where(ok, np.log(np.where(ok, numerator, 1.0) / denominator), 0.0))
    return np.maximum(np.maximum(terms[0], terms[1]), 0.0), fpr_hi, fnr_hi


def _check_epsilon_options(delta: float, confidence: float, seed: int, owner: str) -> tuple[float, float]:
    checked_delta = check_float(delta, "delta", owner, low=0.0, high=1.0, high_open=True)
    checked_confidence = check_fraction(confidence, "confidence", owner)
    check_seed(seed, owner)
    return checked_delta, checked_confidence


def _epsilon_bound(
    s: np.ndarray, m: np.ndarray, delta: float, confidence: float, seed: int, owner: str
) -> EpsilonBound:
    members, nonmembers = np.flatnonzero(m), np.flatnonzero(~m)
    if members.size < 2 or nonmembers.size < 2:
        raise invalid_parameter(
            "is_member",
            owner,
            "at least 2 members and 2 non-members (one of each for each half of the split)",
            f"{members.size} members and {nonmembers.size} non-members",
        )
    alpha = 1.0 - confidence
    rng = np.random.default_rng(seed)
    members, nonmembers = rng.permutation(members), rng.permutation(nonmembers)
    k1, k0 = members.size // 2, nonmembers.size // 2
    select = np.r_[members[:k1], nonmembers[:k0]]
    evaluate_m, evaluate_n = members[k1:], nonmembers[k0:]

    # Threshold choice, on the selection half only: the cut between two adjacent distinct scores
    # whose bound, computed on the selection half, is largest. The cut is placed halfway between
    # the two scores, which generalises better to fresh data than either score.
    distinct, tp, fp = _counts(s[select], m[select])
    if distinct.size == 1:
        threshold = float(distinct[0])
    else:
        hi, lo = distinct[:-1], distinct[1:]
        mid = hi / 2 + lo / 2
        cuts = np.where((mid > lo) & (mid <= hi), mid, hi)
        selection_eps, _, _ = _epsilon(fp[:-1], k0, k1 - tp[:-1], k1, delta, alpha)
        threshold = float(cuts[int(np.argmax(selection_eps))])

    fp_eval = np.array([np.count_nonzero(s[evaluate_n] >= threshold)])
    fn_eval = np.array([np.count_nonzero(s[evaluate_m] < threshold)])
    eps, fpr_hi, fnr_hi = _epsilon(fp_eval, evaluate_n.size, fn_eval, evaluate_m.size, delta, alpha)
    return EpsilonBound(
        epsilon=float(eps[0]),
        threshold=threshold,
        fpr_upper=float(fpr_hi[0]),
        fnr_upper=float(fnr_hi[0]),
        confidence=confidence,
        delta=delta,
        n_members=int(evaluate_m.size),
        n_nonmembers=int(evaluate_n.size),
    )


def epsilon_lower_bound(
    scores: npt.ArrayLike,
    is_member: npt.ArrayLike,
    *,
    delta: float = 0.0,
    confidence: float = 0.95,
    seed: int = 0,
) -> EpsilonBound:
    """The smallest (ε, δ)-differential-privacy ε consistent with this audit, at a confidence.

    A training run that is (ε, δ)-DP bounds every membership attack's error rates:
    ``FPR + e^ε FNR >= 1 - δ`` and ``FNR + e^ε FPR >= 1 - δ``. Turned around, an attack's
    measured rates give a lower bound on ε. To make the bound hold with the stated confidence:

    1. The examples are split at random (seeded, stratified by membership) into a selection half
       and an evaluation half (the evaluation half gets the extra example of an odd count).
    2. The threshold is chosen on the selection half alone: among the cuts between adjacent
       distinct scores, the one whose bound (steps 3-4 applied to the selection half) is largest;
       the cut lies halfway between the two scores. Choosing it on data disjoint from the data
       the interval is computed on is what makes the bound valid: choosing and measuring on the
       same data would overfit the threshold to chance and overstate ε.
    3. On the evaluation half the false positives and false negatives at that threshold are
       counted, and Clopper-Pearson upper bounds ``FPR_hi``, ``FNR_hi`` are taken at the two-sided
       ``confidence`` (``alpha / 2`` per tail, ``alpha = 1 - confidence``).
    4. ``ε = max(log((1 - δ - FNR_hi) / FPR_hi), log((1 - δ - FPR_hi) / FNR_hi), 0)``, a term
       counting only when its numerator is positive.

    A perfectly separating attack on ``N`` examples gives a finite bound growing like ``log N``;
    a random attack gives about 0. The bound is a lower bound on the ε of the training
    *algorithm*, not a measurement of it: a weak attack gives a loose (low) bound.

    Reference:
        Jagielski, Ullman and Oprea, "Auditing Differentially Private Machine Learning: How
        Private is Private SGD?", NeurIPS 2020, https://arxiv.org/abs/2006.07709; Nasr, Song,
        Thakurta, Papernot and Carlini, "Adversary Instantiation: Lower Bounds for Differentially
        Private Machine Learning", S&P 2021, https://arxiv.org/abs/2101.04535.

    Args:
        scores: One finite score per example; higher means "more likely a member".
        is_member: Whether each example was in the training set; at least 2 of each kind.
        delta: The δ of the guarantee being tested, in ``[0, 1)``.
        confidence: Two-sided confidence of each Clopper-Pearson interval, in ``(0, 1)``.
        seed: Seed of the random split, an int ``>= 0``.

    Returns:
        The bound with the threshold, the interval ends and the evaluation-half counts.

    Raises:
        InvalidParameterError: As :func:`roc_curve`, if there are fewer than 2 members or
            non-members, or if ``delta``, ``confidence`` or ``seed`` is out of range.
    """
    owner = "epsilon_lower_bound"
    d, c = _check_epsilon_options(delta, confidence, seed, owner)
    s, m = _check(scores, is_member, owner)
    return _epsilon_bound(s, m, d, c, int(seed), owner)


def membership_metrics(
    scores: npt.ArrayLike,
    is_member: npt.ArrayLike,
    *,
    fprs: Sequence[float] = (0.001, 0.01),
    delta: float = 0.0,
    confidence: float = 0.95,
    seed: int = 0,
) -> MembershipMetrics:
    """All the audit metrics at once: AUC, balanced accuracy, TPR at low FPRs and the ε bound.

    Args:
        scores: One finite score per example; higher means "more likely a member".
        is_member: Whether each example was in the training set; at least 2 of each kind.
        fprs: The false-positive rates to report the TPR at, each in ``(0, 1]``. A rate ``f`` is
            reported only with at least ``ceil(1 / f)`` non-members (with fewer, one false positive
            already exceeds it); the others are listed in ``unmeasured_fprs``.
        delta: As in :func:`epsilon_lower_bound`.
        confidence: As in :func:`epsilon_lower_bound`.
        seed: As in :func:`epsilon_lower_bound`.

    Returns:
        The metrics; ``to_dict()`` gives their JSON form.

    Raises:
        InvalidParameterError: As :func:`epsilon_lower_bound`, or if an FPR is not in ``(0, 1]``.
    """
    owner = "membership_metrics"
    if isinstance(fprs, str | bytes) or not isinstance(fprs, Sequence):
        raise invalid_parameter("fprs", owner, "a sequence of floats in (0, 1]", fprs)
    wanted = [check_float(f, "fprs", owner, low=0.0, high=1.0, low_open=True) for f in fprs]
    d, c = _check_epsilon_options(delta, confidence, seed, owner)
    s, m = _check(scores, is_member, owner)
    fpr, tpr, thresholds = _roc(s, m)
    accuracy, threshold = _balanced(fpr, tpr, thresholds)
    n_members = int(m.sum())
    n_nonmembers = int(m.size - n_members)
    measured = [f for f in wanted if fpr_measurable(f, n_nonmembers)]
    return MembershipMetrics(
        auc=_auc(fpr, tpr),
        balanced_accuracy=accuracy,
        threshold=threshold,
        tpr_at_fpr={str(f): _tpr_at(fpr, tpr, f) for f in measured},
        epsilon=_epsilon_bound(s, m, d, c, int(seed), owner),
        n_members=n_members,
        n_nonmembers=n_nonmembers,
        unmeasured_fprs={str(f): min_negatives(f) for f in wanted if f not in measured},
    )


def most_exposed(scores: npt.ArrayLike, is_member: npt.ArrayLike, k: int = 10) -> np.ndarray:
    """The members the attack is most sure about: the training examples that leak the most.

    Args:
        scores: One score per example; higher means "more likely a member". Only the order
            matters here, so infinities are allowed (``-inf`` for an example an attack did not
            score ranks last); NaN is not.
        is_member: Whether each example was in the training set.
        k: How many to return, an int ``>= 0``; all members when there are fewer.

    Returns:
        Indices into ``scores`` of the ``min(k, n_members)`` members with the highest scores,
        highest first (ties in index order), as an int64 array.

    Raises:
        InvalidParameterError: As :func:`roc_curve` (infinite scores aside), or if ``k`` is not an
            int ``>= 0``.
    """
    n = check_int(k, "k", "most_exposed", low=0)
    s, m = _check(scores, is_member, "most_exposed", allow_inf=True)
    members = np.flatnonzero(m)
    order = np.argsort(-s[members], kind="stable")[:n]
    return members[order].astype(np.int64)
