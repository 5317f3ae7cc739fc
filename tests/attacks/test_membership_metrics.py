"""Tests of the membership-inference audit metrics: ROC, AUC, TPR at FPR, balanced accuracy, ε bound."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from mlarmor.attacks.inference import (
    EpsilonBound,
    MembershipMetrics,
    auc,
    balanced_accuracy,
    epsilon_lower_bound,
    membership_metrics,
    most_exposed,
    roc_curve,
    tpr_at_fpr,
)
from mlarmor.attacks.inference.metrics import _clopper_pearson_upper
from mlarmor.errors import InvalidParameterError


def tied_data(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Integer scores (many ties), members shifted up a little."""
    rng = np.random.default_rng(seed)
    is_member = rng.random(n) < 0.4
    scores = rng.integers(0, 12, n) + 2 * is_member
    return scores.astype(float), is_member


def separated(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n members scoring in [2, 3), n non-members in [0, 1): a perfect attack, with a gap."""
    rng = np.random.default_rng(n)
    scores = np.r_[2 + rng.random(n), rng.random(n)]
    return scores, np.r_[np.ones(n, bool), np.zeros(n, bool)]


@pytest.mark.parametrize("seed", range(5))
def test_roc_and_auc_match_sklearn_with_ties(seed: int) -> None:
    scores, is_member = tied_data(seed)
    fpr, tpr, thresholds = roc_curve(scores, is_member)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(is_member, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    assert thresholds[0] == math.inf
    np.testing.assert_array_equal(thresholds[1:], sk_thr[1:])
    assert len(thresholds) == len(np.unique(scores)) + 1
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert auc(scores, is_member) == pytest.approx(roc_auc_score(is_member, scores), abs=1e-12)


def test_auc_is_the_mann_whitney_statistic() -> None:
    scores, is_member = tied_data(7)
    u = stats.mannwhitneyu(scores[is_member], scores[~is_member]).statistic
    assert auc(scores, is_member) == pytest.approx(u / (is_member.sum() * (~is_member).sum()), abs=1e-12)
    assert auc(np.ones(10), np.arange(10) < 5) == 0.5  # all tied: one diagonal step
    assert auc(*separated(20)) == 1.0


def test_accepts_zero_one_membership_and_lists() -> None:
    assert auc([0.9, 0.1, 0.5], [1, 0, 0]) == 1.0
    assert auc([0.9, 0.5, 0.1], [1.0, 0.0, 1.0]) == 0.5


def test_tpr_at_fpr_by_hand() -> None:
    # 10 members at 1.0, 0.9, ..., 0.1; of 1000 non-members one scores 0.55 (between the 5th and
    # 6th member), one 0.25 (between the 8th and 9th) and 998 score 0.
    members = np.linspace(1.0, 0.1, 10)
    nonmembers = np.r_[0.55, 0.25, np.zeros(998)]
    scores = np.r_[members, nonmembers]
    is_member = np.r_[np.ones(10, bool), np.zeros(1000, bool)]
    assert tpr_at_fpr(scores, is_member, 0.0) == 0.5
    assert tpr_at_fpr(scores, is_member, 0.0005) == 0.5
    assert tpr_at_fpr(scores, is_member, 0.001) == 0.8  # exactly one false positive allowed
    assert tpr_at_fpr(scores, is_member, 0.0015) == 0.8
    assert tpr_at_fpr(scores, is_member, 0.002) == 1.0
    assert tpr_at_fpr(scores, is_member, 1.0) == 1.0


def test_tpr_at_fpr_is_zero_when_a_non_member_scores_highest() -> None:
    scores = np.array([5.0, 4.0, 3.0, 2.0])
    is_member = np.array([False, True, True, False])
    assert tpr_at_fpr(scores, is_member, 0.4) == 0.0
    assert tpr_at_fpr(scores, is_member, 0.5) == 1.0


def test_balanced_accuracy_by_hand() -> None:
    scores = np.array([0.9, 0.85, 0.8, 0.3, 0.7, 0.2, 0.1])
    is_member = np.array([True, True, True, True, False, False, False])
    # At 0.8: TPR 3/4, FPR 0 -> 0.875; at 0.3: TPR 1, FPR 1/3 -> 0.833; at 0.7: 3/4, 1/3 -> 0.708.
    value, threshold = balanced_accuracy(scores, is_member)
    assert value == pytest.approx(0.875)
    assert threshold == 0.8


def test_balanced_accuracy_is_at_least_one_half_with_a_finite_threshold() -> None:
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    is_member = np.array([True, True, False, False])  # worse than chance
    value, threshold = balanced_accuracy(scores, is_member)
    assert value == 0.5
    assert math.isfinite(threshold)
    value, threshold = balanced_accuracy(*separated(30))
    assert value == 1.0
    assert 2.0 <= threshold < 3.0


@pytest.mark.parametrize(("x", "n"), [(0, 100), (0, 7), (3, 50), (49, 50), (50, 50), (17, 1000)])
def test_clopper_pearson_upper_matches_the_exact_interval(x: int, n: int) -> None:
    upper = float(_clopper_pearson_upper(np.array([x]), n, 0.05)[0])
    if x == 0:
        assert upper == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)
    expected = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact").high
    assert upper == pytest.approx(expected, rel=1e-9)


def test_epsilon_for_a_perfect_attack_is_finite_and_grows_with_n() -> None:
    bounds = [epsilon_lower_bound(*separated(n)) for n in (20, 100, 500, 2500)]
    epsilons = [b.epsilon for b in bounds]
    assert all(0 < e < math.inf for e in epsilons)
    assert epsilons == sorted(epsilons)
    assert epsilons[-1] > epsilons[0] + 3
    big = bounds[-1]
    # No error on the evaluation half: both upper bounds are the x = 0 Clopper-Pearson ends.
    assert big.fpr_upper == pytest.approx(1 - 0.025 ** (1 / big.n_nonmembers), rel=1e-9)
    assert big.fnr_upper == pytest.approx(1 - 0.025 ** (1 / big.n_members), rel=1e-9)
    assert big.epsilon == pytest.approx(math.log((1 - big.fnr_upper) / big.fpr_upper))
    assert (big.n_members, big.n_nonmembers) == (1250, 1250)  # the evaluation half
    assert 1 < big.threshold < 2  # a cut in the gap between the classes


def test_epsilon_for_a_random_attack_is_about_zero() -> None:
    rng = np.random.default_rng(0)
    epsilons = []
    for seed in range(10):
        scores = rng.random(2000)
        is_member = rng.random(2000) < 0.5
        epsilons.append(epsilon_lower_bound(scores, is_member, seed=seed).epsilon)
    assert np.mean(epsilons) < 0.05
    assert sum(e == 0 for e in epsilons) >= 8  # usually no evidence of leakage at all
    assert min(epsilons) >= 0


def test_epsilon_delta_and_confidence() -> None:
    scores, is_member = separated(200)
    base = epsilon_lower_bound(scores, is_member)
    with_delta = epsilon_lower_bound(scores, is_member, delta=0.2)
    assert with_delta.delta == 0.2
    assert with_delta.epsilon == pytest.approx(
        math.log((1 - 0.2 - with_delta.fnr_upper) / with_delta.fpr_upper)
    )
    assert with_delta.epsilon < base.epsilon
    # A δ this large leaves no positive numerator: no evidence against (ε, δ)-DP at any ε.
    assert epsilon_lower_bound(scores, is_member, delta=0.999).epsilon == 0.0
    # More confidence, wider intervals, smaller bound.
    assert epsilon_lower_bound(scores, is_member, confidence=0.999).epsilon < base.epsilon
    assert epsilon_lower_bound(scores, is_member, confidence=0.5).epsilon > base.epsilon


def test_epsilon_uses_whichever_term_bounds() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    mixed = np.where(rng.random(n) < 0.5, 2 + rng.random(n), rng.random(n))
    # Half the members score far above everyone else: no false positive, half false negatives,
    # so (1 - FNR_hi) / FPR_hi bounds.
    scores = np.r_[mixed, rng.random(n)]
    is_member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    a = epsilon_lower_bound(scores, is_member, seed=3)
    assert a == epsilon_lower_bound(scores, is_member, seed=3)  # deterministic under a seed
    assert a.epsilon == pytest.approx(math.log((1 - a.fnr_upper) / a.fpr_upper))
    assert 1 < a.threshold < 2
    assert 0.4 < a.fnr_upper < 0.6
    # Half the non-members score far below everyone else: no false negative, half false
    # positives, so (1 - FPR_hi) / FNR_hi bounds.
    low = np.where(rng.random(n) < 0.5, -2 - rng.random(n), rng.random(n))
    b = epsilon_lower_bound(np.r_[rng.random(n), low], is_member, seed=3)
    assert b.epsilon == pytest.approx(math.log((1 - b.fpr_upper) / b.fnr_upper))
    assert -2 < b.threshold < 0
    assert 0.4 < b.fpr_upper < 0.6
    assert b.epsilon > 3


def test_membership_metrics_and_json() -> None:
    scores, is_member = tied_data(3, n=2000)
    result = membership_metrics(scores, is_member, fprs=(0.001, 0.01, 0.1), seed=1)
    assert isinstance(result, MembershipMetrics)
    assert isinstance(result.epsilon, EpsilonBound)
    assert result.auc == auc(scores, is_member)
    assert (result.balanced_accuracy, result.threshold) == balanced_accuracy(scores, is_member)
    assert result.tpr_at_fpr == {str(f): tpr_at_fpr(scores, is_member, f) for f in (0.001, 0.01, 0.1)}
    assert result.epsilon == epsilon_lower_bound(scores, is_member, seed=1)
    assert (result.n_members, result.n_nonmembers) == (is_member.sum(), (~is_member).sum())
    d = result.to_dict()
    assert set(d) == {
        "auc",
        "auc_ci",
        "balanced_accuracy",
        "threshold",
        "tpr_at_fpr",
        "tpr_at_fpr_ci",
        "unmeasured_fprs",
        "confidence",
        "epsilon_lower_bound",
        "n_members",
        "n_nonmembers",
    }
    assert set(d["tpr_at_fpr"]) == set(d["tpr_at_fpr_ci"]) == {"0.001", "0.01", "0.1"}
    assert d["unmeasured_fprs"] == {}
    for key, (low, high) in d["tpr_at_fpr_ci"].items():
        assert low <= d["tpr_at_fpr"][key] <= high
    assert d["auc_ci"][0] < d["auc"] < d["auc_ci"][1]
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["epsilon_lower_bound"]["epsilon"] == result.epsilon.epsilon


def test_most_exposed() -> None:
    scores = np.array([0.3, 0.9, 0.95, 0.5, 0.9, 0.1])
    is_member = np.array([True, True, False, True, True, False])
    top = most_exposed(scores, is_member, k=3)
    assert top.tolist() == [1, 4, 3]  # the non-member at 0.95 is skipped; a tie keeps index order
    assert top.dtype == np.int64
    assert most_exposed(scores, is_member, k=10).tolist() == [1, 4, 3, 0]
    assert most_exposed(scores, is_member, k=0).tolist() == []
    # Only the order matters: infinities rank (an unscored example at -inf comes last), NaN does not.
    scores[0], scores[1] = -math.inf, math.inf
    assert most_exposed(scores, is_member, k=10).tolist() == [1, 4, 3, 0]
    scores[3] = math.nan
    with pytest.raises(InvalidParameterError, match="not NaN"):
        most_exposed(scores, is_member)


GOOD_S = np.array([0.1, 0.2, 0.3, 0.4])
GOOD_M = np.array([True, False, True, False])


@pytest.mark.parametrize(
    ("scores", "is_member", "match"),
    [
        (GOOD_S[:3], GOOD_M, "same length"),
        (GOOD_S.reshape(2, 2), GOOD_M, "1-D"),
        (np.array([]), np.array([], bool), "non-empty"),
        (np.array([0.1, np.nan, 0.3, 0.4]), GOOD_M, "NaN"),
        (np.array(["a", "b", "c", "d"]), GOOD_M, "scores"),
        (GOOD_S, np.ones(4, bool), "at least one member and one non-member"),
        (GOOD_S, np.zeros(4, bool), "at least one member and one non-member"),
        (GOOD_S, np.array([0, 1, 2, 0]), "boolean"),
        (GOOD_S, np.array(["y", "n", "y", "n"]), "boolean"),
    ],
)
@pytest.mark.parametrize(
    "fn",
    [roc_curve, auc, balanced_accuracy, epsilon_lower_bound, membership_metrics, most_exposed],
)
def test_bad_inputs_raise(scores: np.ndarray, is_member: np.ndarray, match: str, fn: object) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        fn(scores, is_member)  # type: ignore[operator]


@pytest.mark.parametrize("fn", [roc_curve, auc, balanced_accuracy, epsilon_lower_bound, membership_metrics])
def test_infinite_scores_raise_where_values_matter(fn: object) -> None:
    with pytest.raises(InvalidParameterError, match="finite"):
        fn(np.array([0.1, np.inf, 0.3, 0.4]), GOOD_M)  # type: ignore[operator]


@pytest.mark.parametrize("fpr", [-0.1, 1.5, math.nan, "0.1", True])
def test_tpr_at_fpr_rejects_bad_fpr(fpr: object) -> None:
    with pytest.raises(InvalidParameterError, match="'fpr' parameter of tpr_at_fpr"):
        tpr_at_fpr(GOOD_S, GOOD_M, fpr)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delta": -0.1}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_epsilon_rejects_bad_options(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        epsilon_lower_bound(GOOD_S, GOOD_M, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=match):
        membership_metrics(GOOD_S, GOOD_M, **kwargs)  # type: ignore[arg-type]


def test_epsilon_needs_two_of_each_kind() -> None:
    with pytest.raises(InvalidParameterError, match="at least 2 members and 2 non-members"):
        epsilon_lower_bound([0.1, 0.2, 0.3], [True, False, False])


@pytest.mark.parametrize("fprs", [(0.01, 2.0), "0.01", (0.01, "x"), 0.01, (0.0,)])
def test_membership_metrics_rejects_bad_fprs(fprs: object) -> None:
    with pytest.raises(InvalidParameterError, match="'fprs' parameter"):
        membership_metrics(GOOD_S, GOOD_M, fprs=fprs)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [-1, 1.5, True])
def test_most_exposed_rejects_bad_k(k: object) -> None:
    with pytest.raises(InvalidParameterError, match="'k' parameter"):
        most_exposed(GOOD_S, GOOD_M, k=k)  # type: ignore[arg-type]


def test_module_example_runs() -> None:
    import doctest

    from mlarmor.attacks.inference import metrics

    result = doctest.testmod(metrics)
    assert (result.attempted, result.failed) == (4, 0)


def test_the_detectors_auc_is_this_auc() -> None:
    from mlarmor.defenses._validate import mann_whitney_auc

    rng = np.random.default_rng(7)
    for ties in (False, True):
        neg = rng.integers(0, 6, 40).astype(float) if ties else rng.normal(size=40)
        pos = rng.integers(1, 7, 25).astype(float) if ties else rng.normal(0.5, 1.0, size=25)
        scores = np.concatenate([neg, pos])
        is_member = np.r_[np.zeros(40, bool), np.ones(25, bool)]
        assert mann_whitney_auc(neg, pos) == auc(scores, is_member)  # one implementation, same bits
        pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        assert mann_whitney_auc(neg, pos) == pytest.approx(pairs, abs=1e-12)


def test_membership_metrics_leave_out_what_the_non_members_cannot_measure() -> None:
    # 72 non-members: the smallest non-zero FPR is 1/72 = 1.4%, so neither 0.1% nor 1% is measurable.
    rng = np.random.default_rng(0)
    is_member = np.r_[np.ones(72, bool), np.zeros(72, bool)]
    scores = np.r_[rng.normal(1.0, 1.0, 72), rng.normal(0.0, 1.0, 72)]
    result = membership_metrics(scores, is_member, fprs=(0.001, 0.01, 0.05))
    assert result.tpr_at_fpr == {"0.05": tpr_at_fpr(scores, is_member, 0.05)}
    assert result.unmeasured_fprs == {"0.001": 1000, "0.01": 100}
    k = round(result.tpr_at_fpr["0.05"] * 72)
    low, high = result.tpr_at_fpr_ci["0.05"]
    # Clopper-Pearson by its definition: the binomial tails at the ends are 2.5% each.
    assert stats.binom.sf(k - 1, 72, low) == pytest.approx(0.025, rel=1e-6)
    assert stats.binom.cdf(k, 72, high) == pytest.approx(0.025, rel=1e-6)
