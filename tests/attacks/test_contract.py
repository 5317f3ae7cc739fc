"""The contract every registered evasion attack keeps, run over the whole registry.

A new attack joins this suite by being registered; give it fast settings in FAST if its defaults
are slow on the toy model.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from _models import ALL_CAPABILITIES, LabelsOnlyTarget, ToyTarget

from mlarmor.attacks import REGISTRY, EvasionResult, Family, FixedBudgetAttack, available, create
from mlarmor.errors import UnsupportedModelError

FAST: dict[str, dict[str, object]] = {
    "pgd": {"steps": 10},
    "apgd": {"n_iter": 20},
    "apgd-t": {"n_iter": 20, "n_target_classes": 3},
    "fmn": {"steps": 30},
    "auto": {"n_iter": 20},
}
"""Per-attack settings that keep the suite quick (defaults otherwise)."""

CASES = [
    pytest.param(name, norm, id=f"{name}-{norm}")
    for name in available(Family.EVASION)
    if issubclass(cls := REGISTRY[name], FixedBudgetAttack)
    for norm in cls.norms
]
MODERATE = {"linf": 0.1, "l2": 1.0}
"""A budget at which the toy digits model loses most of its accuracy to any working attack."""

N = 120


def make(name: str, norm: str, **params: object) -> FixedBudgetAttack:
    attack = create(name, norm=norm, **{**FAST.get(name, {}), **params})
    assert isinstance(attack, FixedBudgetAttack)
    return attack


@pytest.fixture
def data(digits):
    return digits.x_test[:N], digits.y_test[:N]


def check_budget(result: EvasionResult, x: np.ndarray, bounds: tuple[float, float]) -> None:
    delta = (result.x_adv.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
    norms = np.abs(delta).max(axis=1) if result.norm == "linf" else np.linalg.norm(delta, axis=1)
    np.testing.assert_allclose(result.norms, norms, rtol=0, atol=1e-12)
    assert np.all(norms <= result.eps + 1e-6), norms.max()
    assert result.x_adv.min() >= bounds[0]
    assert result.x_adv.max() <= bounds[1]


def _unclipped(target: ToyTarget) -> ToyTarget:
    """The same model with bounds wide enough that clipping never hides an over-budget attack."""
    return ToyTarget(target.module, bounds=(-10.0, 10.0), name="wide")


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_stays_in_budget_and_bounds(name, norm, mlp_target, data):
    x, y = data
    eps = 2 * MODERATE[norm]
    check_budget(make(name, norm)(mlp_target, x, y, eps=eps), x, mlp_target.bounds)
    wide = _unclipped(mlp_target)
    result = make(name, norm)(wide, x, y, eps=eps)
    check_budget(result, x, wide.bounds)
    # The budget is used, not just respected: a working attack reaches the sphere somewhere.
    assert result.norms.max() > 0.5 * eps


@pytest.mark.parametrize(("name", "norm"), CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_shape_and_dtype(name, norm, dtype, mlp_target, data):
    x, y = data
    x = x.astype(dtype)
    result = make(name, norm)(mlp_target, x, y, eps=MODERATE[norm])
    assert result.x_adv.shape == x.shape
    assert result.x_adv.dtype == x.dtype
    n = len(x)
    for field in ("y", "y_pred_clean", "y_pred_adv", "success", "norms"):
        assert getattr(result, field).shape == (n,), field
    assert result.success.dtype == np.bool_
    assert result.norms.dtype == np.float64
    check_budget(result, x, mlp_target.bounds)


@pytest.mark.parametrize(("name", "norm"), CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identity_at_eps_zero(name, norm, dtype, mlp_target, data):
    x, y = data
    x = x.astype(dtype)
    result = make(name, norm)(mlp_target, x, y, eps=0.0)
    assert np.array_equal(result.x_adv, x)
    assert np.array_equal(result.y_pred_adv, result.y_pred_clean)
    assert np.array_equal(result.success, result.y_pred_clean != y)
    assert np.all(result.norms == 0)
    assert result.robust_accuracy == pytest.approx(result.clean_accuracy)


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_deterministic_under_a_seed(name, norm, mlp_target, data):
    x, y = data
    attack = make(name, norm, seed=7)
    torch.manual_seed(1)
    first = attack(mlp_target, x, y, eps=MODERATE[norm])
    torch.manual_seed(2)  # an attack that drew from the global RNG would now diverge
    second = attack(mlp_target, x, y, eps=MODERATE[norm])
    assert np.array_equal(first.x_adv, second.x_adv)
    assert np.array_equal(first.success, second.success)
    assert np.array_equal(np.asarray(first.queries), np.asarray(second.queries))
    assert first.seed == second.seed == 7


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_lowers_accuracy_of_the_toy_model(name, norm, mlp_target, data):
    x, y = data
    result = make(name, norm)(mlp_target, x, y, eps=MODERATE[norm])
    assert result.clean_accuracy > 0.9
    assert result.robust_accuracy < 0.6 * result.clean_accuracy
    assert result.success_rate > 0.4


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_several_eps_in_one_call(name, norm, mlp_target, data):
    x, y = data
    m = MODERATE[norm]
    requested = [2 * m, 0.0, m / 2, m]
    attack = make(name, norm, batch_size=len(x))
    results = attack(mlp_target, x, y, eps=requested)
    assert isinstance(results, tuple)
    assert [r.eps for r in results] == requested
    for r in results:
        check_budget(r, x, mlp_target.bounds)
        assert np.array_equal(r.y_pred_clean, results[0].y_pred_clean)
    by_eps = sorted(results, key=lambda r: r.eps)
    # Work is shared smallest ε first: a sample fooled at a small ε stays fooled at larger ones.
    for small, large in itertools.pairwise(by_eps):
        assert np.all(large.success[small.success])
    assert np.array_equal(by_eps[0].x_adv, x)
    # In one batch the smallest positive ε runs first, exactly as a call of its own would.
    alone = attack(mlp_target, x, y, eps=m / 2)
    assert np.array_equal(alone.x_adv, by_eps[1].x_adv)
    assert np.array_equal(alone.success, by_eps[1].success)


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_batches_give_valid_results_and_account_every_query(name, norm, mlp_target, data):
    x, y = data
    attack = make(name, norm, batch_size=17)
    before = mlp_target.queries
    results = attack(mlp_target, x, y, eps=[MODERATE[norm] / 2, MODERATE[norm]])
    spent = mlp_target.queries - before
    for r in results:
        check_budget(r, x, mlp_target.bounds)
    # Queries are cumulative over the ε of a call; the last one accounts for every model row.
    assert results[-1].total_queries == spent
    assert results[0].total_queries <= spent
    if isinstance(results[-1].queries, np.ndarray):
        assert np.all(results[-1].queries >= 1)
    whole = make(name, norm, batch_size=len(x))(mlp_target, x, y, eps=MODERATE[norm])
    assert np.array_equal(results[-1].y_pred_clean, whole.y_pred_clean)


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_unsupported_capability_names_it(name, norm, mlp_target, data):
    x, y = data
    cls = REGISTRY[name]
    lacking = mlp_target.with_capabilities(ALL_CAPABILITIES - {cls.capability})
    with pytest.raises(UnsupportedModelError) as info:
        make(name, norm)(lacking, x, y, eps=MODERATE[norm])
    message = str(info.value)
    assert repr(cls.capability) in message
    assert cls.__name__ in message
    assert "'toy-mlp'" in message
    if cls.capability == "gradients":
        with pytest.raises(UnsupportedModelError, match="offers only: labels"):
            make(name, norm)(LabelsOnlyTarget(mlp_target), x, y, eps=MODERATE[norm])


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_works_on_a_cnn(name, norm, cnn_target, data):
    x, y = data
    result = make(name, norm)(cnn_target, x, y, eps=MODERATE[norm])
    check_budget(result, x, cnn_target.bounds)
    assert result.robust_accuracy < result.clean_accuracy
