"""Immutable features, integer features and feature ranges bind every attack, on a real tabular model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mlarmor.attacks import Family, available, create
from mlarmor.attacks._constraints import MaskedTarget, constrain
from mlarmor.data import Dataset
from mlarmor.errors import InvalidParameterError
from mlarmor.targets import TorchTarget

IMMUTABLE = (0, 3)
INTEGER = (1, 4)
EPS = 1.6  # L∞ budget on features in [0, 10]: an integer feature can move by one


@pytest.fixture(scope="module")
def tabular() -> tuple[Dataset, TorchTarget]:
    rng = np.random.default_rng(0)
    n = 400
    x = rng.uniform(0, 10, size=(n, 6)).astype(np.float32)
    x[:, list(INTEGER)] = np.round(x[:, list(INTEGER)])
    w = np.array([1.0, -1.0, 0.5, 1.0, -0.5, 0.8], dtype=np.float32)
    y = ((x - 5.0) @ w > 0).astype(np.int64)
    data = Dataset(x=x, y=y, bounds=(0.0, 10.0), immutable=IMMUTABLE, integer=INTEGER, name="synthetic")
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy((x - 5.0) / 3.0), torch.from_numpy(y)
    for _ in range(300):
        idx = torch.randint(0, n, (64,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
        opt.step()
    target = TorchTarget(model.eval(), bounds=(0.0, 10.0), mean=[5.0], std=[3.0], input_shape=(6,))
    return data, target


def _make(name: str):
    small = {
        "square": {"n_queries": 200},
        "hopskipjump": {"max_queries": 300, "n_iter": 5},
        "auto": {"n_iter": 20},
        "apgd": {"n_iter": 20},
        "apgd-t": {"n_iter": 10, "n_target_classes": 1},
        "fmn": {"steps": 20},
        "pgd": {"steps": 20},
    }.get(name, {})
    return create(name, **small)


CASES = [name for name in available(Family.EVASION) if name not in ("transfer", "apgd-t")]


@pytest.mark.parametrize("name", CASES)
def test_every_attack_respects_the_constraints(name, tabular) -> None:
    data, target = tabular
    x, y = data.x[:80], data.y[:80]
    result = _make(name)(target, x, y, eps=EPS, constraints=data)
    delta = result.x_adv.astype(np.float64) - x.astype(np.float64)
    assert np.all(delta[:, list(IMMUTABLE)] == 0.0)
    assert np.all(result.x_adv[:, list(INTEGER)] == np.round(result.x_adv[:, list(INTEGER)]))
    assert np.abs(delta).max() <= EPS + 1e-5
    assert result.x_adv.min() >= 0.0
    assert result.x_adv.max() <= 10.0
    # Success is measured on the constrained points themselves.
    np.testing.assert_array_equal(result.success, target.predict(result.x_adv) != y)


@pytest.mark.parametrize("name", ["pgd", "apgd", "auto", "fgsm"])
def test_gradient_attacks_still_find_examples_within_the_constraints(name, tabular) -> None:
    data, target = tabular
    x, y = data.x[:150], data.y[:150]
    result = _make(name)(target, x, y, eps=EPS, constraints=data)
    assert result.robust_accuracy < result.clean_accuracy - 0.2
    # Integer features do get used: some adversarial examples move them by a whole step.
    moved = np.abs(result.x_adv[:, list(INTEGER)] - x[:, list(INTEGER)])
    assert np.any(moved == 1.0)


def test_masked_target_zeroes_gradients_of_immutable_features_only(tabular) -> None:
    data, target = tabular
    mask = data.mutable_mask(torch.empty(0))
    masked = MaskedTarget(target, mask)
    x = torch.from_numpy(data.x[:5].copy()).requires_grad_(True)
    out = masked.logits(x)
    torch.testing.assert_close(out, target.logits(x.detach()), rtol=0, atol=0)
    (grad,) = torch.autograd.grad(out[:, 1].sum(), x)
    assert torch.all(grad[:, list(IMMUTABLE)] == 0)
    assert torch.all(grad[:, [2, 5]] != 0)
    assert masked.queries == target.queries


def test_constrain_rounds_integers_within_the_budget() -> None:
    data = Dataset(
        x=np.array([[0.0, 2.0, 5.0]], dtype=np.float32),
        y=np.array([0]),
        bounds=(0.0, 10.0),
        integer=(1,),
        immutable=(0,),
    )
    x = torch.tensor([[0.0, 2.0, 5.0]])
    # L∞ 1.6: 2 + 1.6 = 3.6 rounds to 4, out of budget; the nearest integer inside is 3.
    got = constrain(data, torch.tensor([[0.9, 3.6, 6.6]]), x, 1.6, "linf")
    torch.testing.assert_close(got, torch.tensor([[0.0, 3.0, 6.6]]))
    # L2 1.0: rounding 2.6 to 3 would make the norm sqrt(1 + 0.64) > 1: the integer feature stays.
    got = constrain(data, torch.tensor([[0.0, 2.6, 5.8]]), x, 1.0, "l2")
    torch.testing.assert_close(got, torch.tensor([[0.0, 2.0, 5.8]]))


def test_constrain_falls_back_to_the_clean_input_when_nothing_fits() -> None:
    data = Dataset(x=np.array([[2.0]], dtype=np.float32), y=np.array([0]), bounds=(0.0, 10.0), integer=(0,))
    x = torch.tensor([[2.5]])  # an input that is not whole: no integer lies within 0.2 of it
    got = constrain(data, torch.tensor([[2.7]]), x, 0.2, "linf")
    torch.testing.assert_close(got, x)


def test_constraints_must_match_the_inputs(tabular) -> None:
    data, target = tabular
    other = Dataset(x=np.zeros((2, 3), dtype=np.float32), y=np.array([0, 1]), bounds=(0.0, 10.0))
    with pytest.raises(InvalidParameterError, match="constraints"):
        create("fgsm")(target, data.x[:4], data.y[:4], eps=1.0, constraints=other)
    with pytest.raises(InvalidParameterError, match="constraints"):
        create("fgsm")(target, data.x[:4], data.y[:4], eps=1.0, constraints="age")  # type: ignore[arg-type]
