"""Neural Cleanse on real backdoored digits CNNs: BadNets and blended triggers, and a clean control."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from mlarmor.attacks.poisoning import poison
from mlarmor.data import load_dataset
from mlarmor.defenses.inspect.model import (
    BackdoorInspection,
    TriggerCandidate,
    anomaly_indices,
    neural_cleanse,
)
from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.models import digits_cnn, fit_classifier
from mlarmor.targets import TorchTarget


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    ds = load_dataset("demo:digits")
    x, y = ds.x.astype(np.float32), ds.y
    order = np.random.default_rng(0).permutation(len(x))
    train, inspect = order[:1000], order[1000:1300]
    return {"x": x[train], "y": y[train], "x_inspect": x[inspect], "y_inspect": y[inspect]}


def _train(x: np.ndarray, y: np.ndarray) -> TorchTarget:
    model = fit_classifier(digits_cnn(seed=0), x, y, epochs=30, lr=1e-3, seed=0)
    return TorchTarget(model, bounds=(0.0, 1.0), input_shape=(1, 8, 8))


def _backdoored(digits: dict[str, np.ndarray], trigger: Any, target_class: int) -> TorchTarget:
    p = poison(digits["x"], digits["y"], trigger=trigger, fraction=0.1, target_class=target_class, seed=0)
    return _train(p.x, p.y)


def _inspect(target: TorchTarget, digits: dict[str, np.ndarray], **kw: Any) -> BackdoorInspection:
    return neural_cleanse(target, digits["x_inspect"], digits["y_inspect"], **kw)


@pytest.fixture(scope="module")
def badnets(digits: dict[str, np.ndarray]) -> BackdoorInspection:
    return _inspect(_backdoored(digits, "badnets", 0), digits)


def test_flags_a_badnets_backdoor_with_its_target(badnets: BackdoorInspection) -> None:
    # Measured: anomaly index 4.1 on class 0, every other class <= 1.4 (target class 3: 6.4 on 3).
    assert badnets.infected
    assert badnets.target_class == 0
    assert badnets.anomaly_index > 3.0
    trigger = badnets.trigger
    assert trigger is not None
    assert trigger.target_class == 0
    assert trigger.success >= 0.95
    assert trigger.l1 == min(c.l1 for c in badnets.candidates)
    # Measured ~10 s on one free core; the bound leaves room for a loaded CI machine.
    assert badnets.seconds < 180


def test_flags_a_blended_backdoor(digits: dict[str, np.ndarray]) -> None:
    # Blended noise key, alpha 0.2. Measured index 2.9 on class 0 (plain Neural Cleanse): the margin
    # over the threshold is smaller than for a patch, as the literature reports.
    result = _inspect(_backdoored(digits, "blend", 0), digits)
    assert result.infected
    assert result.target_class == 0
    assert result.anomaly_index > 2.3


def test_does_not_flag_a_clean_model(digits: dict[str, np.ndarray]) -> None:
    result = _inspect(_train(digits["x"], digits["y"]), digits)  # measured index 1.3
    assert not result.infected
    assert result.target_class is None
    assert result.trigger is None
    assert result.anomaly_index < 1.8


def test_result_shapes_and_json(badnets: BackdoorInspection, digits: dict[str, np.ndarray]) -> None:
    assert [c.target_class for c in badnets.candidates] == list(range(10))
    for cand in badnets.candidates:
        assert cand.mask.shape == (8, 8)
        assert cand.pattern.shape == (1, 8, 8)
        assert cand.mask.min() >= 0.0
        assert cand.mask.max() <= 1.0
        assert cand.pattern.min() >= 0.0
        assert cand.pattern.max() <= 1.0
        assert cand.l1 == pytest.approx(float(cand.mask.sum()), rel=1e-5)
    assert badnets.anomaly_index == max(badnets.anomaly_indices.values())
    stamped = badnets.candidates[0].apply(digits["x_inspect"])
    assert stamped.shape == digits["x_inspect"].shape
    assert stamped.dtype == np.float32
    doc = json.loads(json.dumps(badnets.to_dict()))
    assert doc["infected"] is True
    assert doc["target_class"] == 0
    assert set(doc["classes"]) == {str(c) for c in range(10)}
    assert np.asarray(doc["trigger"]["mask"]).shape == (8, 8)


def test_anomaly_index_is_one_sided_mad() -> None:
    idx = anomaly_indices([1.0, 10.0, 11.0, 12.0, 30.0])
    # median 11, MAD median(|-10|, 1, 0, 1, 19) = 1.
    assert idx[0] == pytest.approx(10 / 1.4826)
    assert idx[4] == 0.0
    assert idx[2] == 0.0
    assert np.isfinite(anomaly_indices([5.0, 5.0, 5.0, 1.0])).all()


@pytest.fixture(scope="module")
def small_target() -> TorchTarget:
    return TorchTarget(digits_cnn(seed=0).eval(), bounds=(0.0, 1.0), input_shape=(1, 8, 8))


def test_seeded_runs_repeat_and_classes_subset(
    small_target: TorchTarget, digits: dict[str, np.ndarray]
) -> None:
    calls: list[tuple[int, int]] = []
    kw: dict[str, Any] = {"classes": [1, 4, 7], "steps": 5, "seed": 3}
    a = neural_cleanse(
        small_target, digits["x_inspect"][:40], progress=lambda d, t: calls.append((d, t)), **kw
    )
    b = neural_cleanse(small_target, digits["x_inspect"][:40], **kw)
    assert [c.target_class for c in a.candidates] == [1, 4, 7]
    assert calls[-1] == (5, 5)
    assert len(calls) == 5
    np.testing.assert_array_equal(a.candidates[1].mask, b.candidates[1].mask)


@pytest.mark.parametrize(
    ("x", "kw", "message"),
    [
        (np.zeros((50, 1, 7, 7), np.float32), {}, "shape"),
        (np.zeros((50, 64), np.float32), {}, r"\(n, C, H, W\)"),
        (np.zeros((5, 1, 8, 8), np.float32), {}, "at least 10"),
        (np.full((50, 1, 8, 8), 2.0, np.float32), {}, "bounds"),
        (np.zeros((50, 1, 8, 8), np.float32), {"classes": [0, 1, 10]}, "classes"),
        (np.zeros((50, 1, 8, 8), np.float32), {"classes": [0, 1]}, "at least 3"),
        (np.zeros((50, 1, 8, 8), np.float32), {"steps": 0}, "steps"),
        (np.zeros((50, 1, 8, 8), np.float32), {"target_success": 1.5}, "target_success"),
        (np.zeros((50, 1, 8, 8), np.float32), {"y": np.zeros(3, np.int64)}, "'y'"),
    ],
)
def test_rejects_bad_inputs(
    small_target: TorchTarget, x: np.ndarray, kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        neural_cleanse(small_target, x, **kw)


def test_rejects_a_target_without_gradients(digits: dict[str, np.ndarray]) -> None:
    with pytest.raises(UnsupportedModelError, match="gradients"):
        neural_cleanse(object(), digits["x_inspect"])  # type: ignore[arg-type]


def test_trigger_candidate_apply_checks_shape() -> None:
    cand = TriggerCandidate(0, np.ones((8, 8)), np.zeros((1, 8, 8)), 64.0, 1.0)
    assert (cand.apply(np.ones((2, 1, 8, 8))) == 0).all()
    with pytest.raises(InvalidParameterError, match="shape"):
        cand.apply(np.ones((2, 1, 4, 4)))
