"""HopSkipJump: decision-only target, budget, success within ε and minimum-norm search."""

from __future__ import annotations

import numpy as np
import pytest
from _models import LabelsOnlyTarget

from mlarmor.attacks import PGD, HopSkipJump
from mlarmor.errors import InvalidParameterError


@pytest.fixture
def data(digits):
    return digits.x_test[:100], digits.y_test[:100]


def test_fools_a_labels_only_target(mlp_target, data):
    x, y = data
    target = LabelsOnlyTarget(mlp_target)
    result = HopSkipJump(norm="l2", max_queries=1000)(target, x, y, eps=1.0)
    assert result.clean_accuracy > 0.9
    assert result.robust_accuracy < 0.3
    assert np.all(result.queries <= 1000)
    assert result.total_queries == target.queries


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_query_counts_never_exceed_the_budget(norm, mlp_target, data):
    x, y = data
    for budget in (3, 50, 400):
        result = HopSkipJump(norm=norm, max_queries=budget)(
            mlp_target, x, y, eps=0.05 if norm == "linf" else 0.5
        )
        assert np.all(result.queries <= budget)


def test_minimize_finds_small_adversarials_and_success_counts_only_within_eps(mlp_target, data):
    x, y = data
    attack = HopSkipJump(norm="l2", max_queries=1000)
    found = attack.minimize(LabelsOnlyTarget(mlp_target), x, y)
    assert found.found.all()
    assert np.all(found.queries <= 1000)
    labels = mlp_target.predict(found.x_adv)
    assert np.all(labels != y)  # every point returned is adversarial
    eps = float(np.median(found.norms))
    result = attack(mlp_target, x, y, eps=eps)
    # About the samples whose boundary is within ε are fooled; none outside its ball.
    assert 0.3 < result.success_rate < 0.9
    assert np.all(result.norms <= eps + 1e-6)
    # More queries find closer points (the norm found is an upper bound on the minimal one).
    longer = HopSkipJump(norm="l2", max_queries=3000).minimize(mlp_target, x, y)
    assert np.median(longer.norms) < np.median(found.norms)
    # White-box PGD at that ε is at least as strong: a sanity check of the distances.
    assert PGD(norm="l2", steps=50)(mlp_target, x, y, eps=eps).success_rate >= result.success_rate - 0.1


def test_parameters_are_validated():
    with pytest.raises(InvalidParameterError, match="'max_queries' parameter of HopSkipJump"):
        HopSkipJump(max_queries=1)
    with pytest.raises(InvalidParameterError, match="'gamma' parameter of HopSkipJump"):
        HopSkipJump(gamma=0.0)
