"""Exact intervals and measurable rates (``mlarmor._stats``) against published values."""

from __future__ import annotations

import pytest

from mlarmor._stats import auc_interval, clopper_pearson, fpr_measurable, min_negatives
from mlarmor.errors import InvalidParameterError


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.3085),  # 1 - 0.025 ** (1 / 10)
        (5, 10, 0.1871, 0.8129),
        (10, 10, 0.6915, 1.0),
        (1, 72, 0.000352, 0.0750),
        (0, 72, 0.0, 0.0499),
        (30, 30, 0.8843, 1.0),
    ],
)
def test_clopper_pearson_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_clopper_pearson_zero_successes_closed_form() -> None:
    # For k = 0 the upper end is 1 - (alpha / 2) ** (1 / n) exactly.
    assert clopper_pearson(0, 40, 0.9)[1] == pytest.approx(1 - 0.05 ** (1 / 40), rel=1e-12)


@pytest.mark.parametrize(("k", "n", "confidence"), [(3, 2, 0.95), (-1, 5, 0.95), (1, 0, 0.95), (1, 5, 1.0)])
def test_clopper_pearson_refuses_bad_counts(k: int, n: int, confidence: float) -> None:
    with pytest.raises(InvalidParameterError):
        clopper_pearson(k, n, confidence)


def test_measurable_levels() -> None:
    assert min_negatives(0.001) == 1000
    assert min_negatives(0.01) == 100
    assert min_negatives(0.03) == 34
    assert not fpr_measurable(0.001, 72)
    assert not fpr_measurable(0.01, 72)
    assert fpr_measurable(0.01, 100)
    assert fpr_measurable(0.05, 72)
    assert not fpr_measurable(0.0, 10**9)


def test_auc_interval_hanley_mcneil() -> None:
    # Hanley and McNeil (1982), Table III: A = 0.9 with 50 examples per class has SE 0.032.
    low, high = auc_interval(0.9, 50, 50)
    assert (high - low) / 2 == pytest.approx(1.959964 * 0.032, abs=1e-3)
    assert auc_interval(0.5, 10_000, 10_000)[0] > 0.49
    assert auc_interval(0.75, 10, 10)[0] < 0.6  # 10 examples each cannot show an AUC of 0.6
