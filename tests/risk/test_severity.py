"""Every severity rule at and around each of its thresholds."""

from __future__ import annotations

import pytest

from mlarmor.findings import Severity
from mlarmor.risk import severity as rules

N, L, M, H, C = Severity.NONE, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL


@pytest.mark.parametrize(
    ("points", "expected"),
    [(0.0, N), (0.01, L), (9.99, L), (10.0, M), (24.99, M), (25.0, H), (49.99, H), (50.0, C), (100.0, C)],
)
def test_accuracy_loss(points: float, expected: Severity) -> None:
    assert rules.accuracy_loss(points) == expected


@pytest.mark.parametrize(
    ("spent", "delta", "n", "expected"),
    [
        (0.5, 1e-5, 1000, N),
        (1.0, 1e-5, 1000, N),
        (1.01, 1e-5, 1000, L),
        (10.0, 1e-5, 1000, L),
        (10.01, 1e-5, 1000, M),
        (0.5, 1e-3, 1000, M),  # δ = 1/n: at least medium even with a strong ε
        (50.0, 0.5, 1000, M),
    ],
)
def test_dp_training(spent: float, delta: float, n: int, expected: Severity) -> None:
    assert rules.dp_training(spent, delta, n) == expected


@pytest.mark.parametrize(
    ("auc", "tpr_low", "tpr_1", "expected"),
    [
        (0.5, 0.0, 0.0, N),
        (0.55, 0.0, 0.0, L),
        (0.6, 0.0, 0.0, M),
        (0.5, 0.0, 0.05, M),
        (0.75, 0.0, 0.0, H),
        (0.5, 0.02, 0.02, H),
        (0.5, 0.10, 0.10, C),
        (0.549, 0.019, 0.049, N),
        (0.5, None, None, N),  # unmeasured levels set nothing
        (0.61, None, None, M),
    ],
)
def test_membership(auc: float, tpr_low: float | None, tpr_1: float | None, expected: Severity) -> None:
    assert rules.membership(auc, tpr_low, tpr_1) == expected


@pytest.mark.parametrize(
    ("gain", "rate", "expected"),
    [(0.1, 1.0, N), (0.11, 0.0, L), (0.2, 0.5, M), (0.3, 0.79, M), (0.3, 0.8, H), (0.29, 0.8, M)],
)
def test_inversion(gain: float, rate: float, expected: Severity) -> None:
    assert rules.inversion(gain, rate) == expected


@pytest.mark.parametrize(
    ("lift", "low", "expected"),
    [(0.019, 0.01, N), (0.5, 0.0, N), (0.05, 0.01, L), (0.1, 0.05, M), (0.2, 0.1, H), (0.4, 0.3, C)],
)
def test_attribute_lift(lift: float, low: float, expected: Severity) -> None:
    assert rules.attribute_lift(lift, low) == expected


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0.0, 0.95, 0.01), (0.01, 0.95, 0.95)], (C, 1)),
        ([(0.0, 0.95, 0.01), (0.02, 0.95, 0.95)], (H, 1)),
        ([(0.0, 0.95, 0.01), (0.1, 0.95, 0.6)], (M, 1)),
        ([(0.0, 0.95, None), (0.1, 0.89, None)], (M, 1)),  # label flips: accuracy lost only
        ([(0.0, 0.95, 0.01), (0.05, 0.95, 0.25)], (L, 1)),
        ([(0.0, 0.95, 0.01), (0.05, 0.95, 0.1)], (N, None)),
        ([(0.0, 0.95, 0.0), (0.02, 0.95, 0.3), (0.1, 0.95, 0.99)], (M, 2)),  # the worst point counts
    ],
)
def test_poisoning_curve(points: list[tuple[float, float, float | None]], expected: tuple) -> None:
    assert rules.poisoning_curve(points) == expected


def test_backdoor_and_residual() -> None:
    assert rules.backdoor(True) == H
    assert rules.backdoor(False) == N
    assert rules.residual_backdoor(None) == N
    assert rules.residual_backdoor(0.19) == N
    assert rules.residual_backdoor(0.2) == M


@pytest.mark.parametrize(
    ("n", "flagged", "carriers", "infected", "expected"),
    [
        (1000, 0, 0, None, N),
        (1000, 4, 0, None, L),
        (1000, 9, 0, False, L),  # 5 rows but under 1%
        (1000, 10, 0, None, M),
        (100, 5, 0, None, M),
        (1000, 3, 1, None, H),  # a carrier of the recovered trigger
        (1000, 3, 0, True, H),  # rows flagged and a backdoor found
        (1000, 0, 0, True, N),
    ],
)
def test_suspicious_samples(
    n: int, flagged: int, carriers: int, infected: bool | None, expected: Severity
) -> None:
    assert rules.suspicious_samples(n, flagged, carriers, infected) == expected
