"""Square: score-only attack on a scikit-learn model, query budget, schedule and kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neural_network import MLPClassifier

from mlarmor.attacks import PGD, Square
from mlarmor.attacks.evasion import _square_kernels as sk
from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.targets import SklearnTarget


@pytest.fixture(scope="module")
def sklearn_target(digits):
    flat = digits.x_train.reshape(len(digits.x_train), -1)
    model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(flat, digits.y_train)
    return SklearnTarget(model, bounds=(0.0, 1.0), input_shape=(1, 8, 8))


def test_lowers_accuracy_of_a_sklearn_mlp_without_gradients(sklearn_target, digits):
    x, y = digits.x_test[:100], digits.y_test[:100]
    result = Square(eps=0.1, n_queries=500)(sklearn_target, x, y)
    assert result.clean_accuracy > 0.9
    assert result.robust_accuracy < 0.6 * result.clean_accuracy
    assert np.all(result.norms <= 0.1 + 1e-6)
    # Every query is accounted per sample and none exceeds the budget.
    assert np.all(result.queries <= 500)
    assert result.total_queries == sklearn_target.queries


def test_works_on_flat_tabular_inputs(digits):
    flat = digits.x_train.reshape(len(digits.x_train), -1)
    model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit(flat, digits.y_train)
    target = SklearnTarget(model, bounds=(0.0, 1.0))
    x, y = digits.x_test[:60].reshape(60, -1), digits.y_test[:60]
    for norm, eps in (("linf", 0.1), ("l2", 1.0)):
        result = Square(norm=norm, n_queries=300)(target, x, y, eps=eps)
        assert result.x_adv.shape == x.shape
        assert result.robust_accuracy < result.clean_accuracy
        assert np.all(result.queries <= 300)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_query_counts_never_exceed_the_budget(norm, mlp_target, digits):
    x, y = digits.x_test[:80], digits.y_test[:80]
    for budget in (3, 10, 57):
        result = Square(norm=norm, n_queries=budget)(mlp_target, x, y, eps=0.05 if norm == "linf" else 0.5)
        assert np.all(result.queries <= budget)
        # Samples that survive use the whole budget; clean-misclassified ones cost one query.
        survived = ~result.success
        assert np.all(result.queries[survived] == budget)


def test_linf_success_improves_with_queries(mlp_target, digits):
    x, y = digits.x_test[:120], digits.y_test[:120]
    rates = [Square(n_queries=q)(mlp_target, x, y, eps=0.08).success_rate for q in (10, 100, 1000)]
    assert rates[0] < rates[1] < rates[2]


def test_needs_only_scores_and_is_suggested_for_black_box_targets(sklearn_target, digits):
    x, y = digits.x_test[:5], digits.y_test[:5]
    with pytest.raises(UnsupportedModelError, match="square") as info:
        PGD(eps=0.1)(sklearn_target, x, y)
    assert "hopskipjump" in str(info.value)


def test_parameters_are_validated():
    with pytest.raises(InvalidParameterError, match="'n_queries' parameter of Square"):
        Square(n_queries=2)
    with pytest.raises(InvalidParameterError, match="'p_init' parameter of Square"):
        Square(p_init=1.5)


def test_p_schedule_halves_at_the_published_points():
    assert sk.p_schedule(0.8, 0, 10000) == 0.8
    assert sk.p_schedule(0.8, 11, 10000) == 0.4
    assert sk.p_schedule(0.8, 201, 10000) == 0.1
    assert sk.p_schedule(0.8, 9000, 10000) == 0.8 / 512
    assert sk.p_schedule(0.8, 50, 100) == 0.8 / 128  # rescaled: 50 of 100 is 5000 of 10000


def test_windows_and_patterns():
    g = torch.Generator().manual_seed(0)
    assert sk.as_planes((1, 8, 8)) == (1, 8, 8)
    assert sk.as_planes((30,)) == (1, 1, 30)
    assert sk.window_shape(0.5, 1, 1, 30) == (1, 15)
    assert sk.window_shape(1.0, 1, 8, 8) == (7, 7)  # strictly smaller than the image
    mask, top, left = sk.window_mask(4, 8, 8, (3, 3), g, torch.device("cpu"))
    assert mask.shape == (4, 1, 8, 8)
    assert torch.all(mask.sum(dim=(1, 2, 3)) == 9)
    pattern = sk.meta_pattern(4, 4, g, dtype=torch.float64, device=torch.device("cpu"))
    assert pattern.norm().item() == pytest.approx(1.0)
    assert pattern.sum().abs().item() < 1e-9  # two opposite bumps of equal mass (even side)
    placed = sk.place(pattern[:3, :3], top, left, 8, 8)
    assert torch.allclose(placed.abs().sum(dim=(1, 2, 3)), pattern[:3, :3].abs().sum().expand(4))
