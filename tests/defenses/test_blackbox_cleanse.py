"""Black-box Neural Cleanse on score-only digits CNNs: a BadNets backdoor and a clean control."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from mlarmor.attacks.poisoning import poison
from mlarmor.data import load_dataset
from mlarmor.defenses.inspect.blackbox import BlackBoxInspection, neural_cleanse_blackbox
from mlarmor.defenses.inspect.model import BackdoorInspection
from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.models import digits_cnn
from mlarmor.models.recipes import train_digits_cnn
from mlarmor.targets import ObfuscatedTarget, TorchTarget

BUDGET = 1_000_000


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    ds = load_dataset("demo:digits")
    x, y = ds.x.astype(np.float32), ds.y
    order = np.random.default_rng(0).permutation(len(x))
    train, inspect = order[:1000], order[1000:1300]
    return {"x": x[train], "y": y[train], "x_inspect": x[inspect], "y_inspect": y[inspect]}


def _scores_only(model: torch.nn.Module) -> ObfuscatedTarget:
    # Probabilities kept to 15 decimals (no practical loss); no gradients or logits are exposed.
    return ObfuscatedTarget(TorchTarget(model, bounds=(0.0, 1.0), input_shape=(1, 8, 8)), decimals=15)


@pytest.fixture(scope="module")
def badnets(digits: dict[str, np.ndarray]) -> tuple[BlackBoxInspection, ObfuscatedTarget]:
    p = poison(digits["x"], digits["y"], trigger="badnets", fraction=0.1, target_class=0, seed=0)
    target = _scores_only(train_digits_cnn(p.x, p.y, 0))
    return neural_cleanse_blackbox(target, digits["x_inspect"], digits["y_inspect"]), target


def test_flags_a_badnets_backdoor_from_scores_alone(
    badnets: tuple[BlackBoxInspection, ObfuscatedTarget],
) -> None:
    # Measured (1M queries, seeds 0/1): index 3.5/3.7 on class 0 (white-box 4.1), others <= 1.2;
    # about 25 s on one free core.
    result, target = badnets
    assert "gradients" not in target.capabilities
    assert isinstance(result, BackdoorInspection)
    assert result.infected
    assert result.target_class == 0
    assert result.anomaly_index > 2.7
    trigger = result.trigger
    assert trigger is not None
    assert trigger.success >= 0.95
    assert trigger.l1 == min(c.l1 for c in result.candidates)
    assert result.queries <= BUDGET
    assert result.queries == target.queries  # every query is counted
    assert result.queries > 0.99 * BUDGET  # and the budget is spent
    assert result.seconds < 180


def test_does_not_flag_a_clean_model(digits: dict[str, np.ndarray]) -> None:
    target = _scores_only(train_digits_cnn(digits["x"], digits["y"], 0))
    result = neural_cleanse_blackbox(target, digits["x_inspect"], digits["y_inspect"])
    # Measured 1.49 (seed 1: 1.70), on class 3, also the white-box smallest (index 1.5).
    assert not result.infected
    assert result.target_class is None
    assert result.anomaly_index < 1.9


def test_result_shapes_and_json(
    badnets: tuple[BlackBoxInspection, ObfuscatedTarget], digits: dict[str, np.ndarray]
) -> None:
    result, _ = badnets
    assert [c.target_class for c in result.candidates] == list(range(10))
    for cand in result.candidates:
        assert cand.mask.shape == (8, 8)
        assert cand.pattern.shape == (1, 8, 8)
        assert 0.0 <= cand.mask.min() <= cand.mask.max() <= 1.0
        assert 0.0 <= cand.pattern.min() <= cand.pattern.max() <= 1.0
        assert cand.l1 == pytest.approx(float(cand.mask.sum()), rel=1e-5)
    assert result.candidates[0].apply(digits["x_inspect"]).shape == digits["x_inspect"].shape
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["queries"] == result.queries
    assert doc["target_class"] == 0
    assert np.asarray(doc["trigger"]["mask"]).shape == (8, 8)


@pytest.fixture(scope="module")
def small_target() -> ObfuscatedTarget:
    return _scores_only(digits_cnn(seed=0).eval())


def test_seeded_runs_repeat_budget_and_predicted_labels(
    small_target: ObfuscatedTarget, digits: dict[str, np.ndarray]
) -> None:
    calls: list[tuple[int, int]] = []
    x = digits["x_inspect"][:40]
    kw: dict[str, Any] = {"classes": [1, 4, 7], "queries": 2000, "samples": 4, "seed": 3}
    small_target.reset_queries()
    a = neural_cleanse_blackbox(small_target, x, progress=lambda d, t: calls.append((d, t)), **kw)
    assert small_target.queries == a.queries <= 2000
    b = neural_cleanse_blackbox(small_target, x, **kw)
    assert [c.target_class for c in a.candidates] == [1, 4, 7]
    assert calls[-1][0] == calls[-1][1] == len(calls)
    np.testing.assert_array_equal(a.candidates[1].mask, b.candidates[1].mask)


@pytest.mark.parametrize(
    ("x", "kw", "message"),
    [
        (np.zeros((50, 1, 7, 7), np.float32), {}, "neural_cleanse_blackbox must have the target's"),
        (np.zeros((50, 64), np.float32), {}, r"\(n, C, H, W\)"),
        (np.zeros((5, 1, 8, 8), np.float32), {}, "at least 10"),
        (np.full((50, 1, 8, 8), 2.0, np.float32), {}, "bounds"),
        (np.zeros((50, 1, 8, 8), np.float32), {"classes": [0, 1, 10]}, "classes"),
        (np.zeros((50, 1, 8, 8), np.float32), {"classes": [0, 1]}, "at least 3"),
        (np.zeros((50, 1, 8, 8), np.float32), {"y": np.zeros(3, np.int64)}, "'y'"),
        (np.zeros((50, 1, 8, 8), np.float32), {"samples": 3}, "even"),
        (np.zeros((50, 1, 8, 8), np.float32), {"sigma": 0.0}, "'sigma'.*neural_cleanse_blackbox"),
        (np.zeros((50, 1, 8, 8), np.float32), {"queries": 0}, "queries"),
        (np.zeros((50, 1, 8, 8), np.float32), {"queries": 600}, "at least one step"),
    ],
)
def test_rejects_bad_inputs(
    small_target: ObfuscatedTarget, x: np.ndarray, kw: dict[str, Any], message: str
) -> None:
    y = kw.pop("y", np.arange(len(x)) % 10 if x.ndim == 4 and len(x) >= 10 else None)
    with pytest.raises(InvalidParameterError, match=message):
        neural_cleanse_blackbox(small_target, x, y, **kw)


def test_rejects_a_labels_only_target(small_target: ObfuscatedTarget, digits: dict[str, np.ndarray]) -> None:
    labels_only = ObfuscatedTarget(small_target.inner, labels_only=True)
    with pytest.raises(UnsupportedModelError, match="'scores' capability"):
        neural_cleanse_blackbox(labels_only, digits["x_inspect"])
    with pytest.raises(UnsupportedModelError, match="scores"):
        neural_cleanse_blackbox(object(), digits["x_inspect"])  # type: ignore[arg-type]
