"""Per-sample poisoning signals: label consistency, losses, learning speed and trigger carriers.

Trigger-carrier tests need no model: they look at BadNets-poisoned digits directly. The model-based
signals use a small MLP trained in about a second.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlarmor.attacks.poisoning import flip_labels, poison
from mlarmor.data import load_dataset
from mlarmor.defenses.inspect.neighbours import label_consistency
from mlarmor.defenses.inspect.signals import (
    learning_speed,
    model_loss,
    per_sample_loss,
    retrainer,
    robust_z,
    trigger_carriers,
)
from mlarmor.errors import InvalidParameterError
from mlarmor.models import digits_mlp, fit_classifier


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset("demo:digits")
    order = np.random.default_rng(0).permutation(len(ds.x))[:1000]
    return ds.x[order].astype(np.float32), ds.y[order]


@pytest.fixture(scope="module")
def badnets(digits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = digits
    p = poison(x, y, trigger="badnets", fraction=0.1, target_class=0, seed=0)
    return p.x.astype(np.float32), p.y, p.poisoned


def _true_trigger() -> tuple[np.ndarray, np.ndarray]:
    """The default BadNets trigger: a 2x2 checkerboard (lit top-left and bottom-right) at the bottom-right."""
    mask = np.zeros((8, 8))
    mask[-2:, -2:] = 1.0
    pattern = np.zeros((1, 8, 8))
    pattern[0, -2, -2] = pattern[0, -1, -1] = 1.0
    return mask, pattern


# -- robust_z -----------------------------------------------------------------------------------


def test_robust_z_is_per_group_and_survives_ties() -> None:
    v = np.array([0.0, 0.0, 0.0, 0.0, 5.0, 10.0, 10.0, 10.0, 11.0, 100.0])
    g = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    z = robust_z(v, g)
    # Group 0: MAD is 0 (ties), the mean absolute deviation keeps the scale finite.
    assert np.isfinite(z).all()
    assert z[4] > 3.5
    assert np.all(z[:4] == 0)
    assert z[9] > 3.5
    assert abs(z[5]) < 1
    assert np.allclose(robust_z(v[5:]), z[5:])


# -- label consistency --------------------------------------------------------------------------


def test_label_consistency_flags_flipped_labels_on_raw_digits(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    p = flip_labels(x, y, fraction=0.05, num_classes=10, seed=0)
    result = label_consistency(p.x.reshape(len(x), -1), p.y)
    assert result.method == "label_consistency"
    assert result.flagged[p.poisoned].mean() >= 0.95
    # Raw pixels: k-NN itself errs on ~5% of clean digits (measured 5.3%).
    assert result.flagged[~p.poisoned].mean() <= 0.07
    assert ((result.scores >= 0) & (result.scores <= 1)).all()


def test_label_consistency_refine_round_helps_when_poison_vouches_for_itself() -> None:
    # Two tight source clusters; a third of cluster A is copied with a small shift and relabelled
    # to B: each copy's nearest neighbours are other copies, all labelled B.
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, size=(150, 5))
    b = rng.normal(8.0, 1.0, size=(150, 5))
    copies = a[:50] + 0.05 * rng.normal(size=(50, 5))
    x = np.vstack([a, b, copies])
    y = np.array([0] * 150 + [1] * 150 + [1] * 50)
    poison_mask = np.arange(len(y)) >= 300
    plain = label_consistency(x, y, k=20, refine=0)
    refined = label_consistency(x, y, k=20, refine=2)
    # Plain vote: copies see ~half copies as neighbours; flagged only partly.
    assert refined.flagged[poison_mask].mean() >= plain.flagged[poison_mask].mean()
    assert refined.flagged[poison_mask].mean() >= 0.95
    assert refined.flagged[~poison_mask].mean() <= 0.05
    # The flagged samples' neighbours mostly carry label 0: the source class is reported.
    assert (
        max(refined.per_class[1]["neighbour_labels"], key=refined.per_class[1]["neighbour_labels"].get) == 0
    )


def test_quiet_classes_keep_only_strong_disagreement() -> None:
    # Ten overlapping classes (natural border look-alikes everywhere) and 40 copies of class-3 points
    # relabelled 0: class 0 is the only one with a significant excess of flags.
    rng = np.random.default_rng(1)
    centres = 2.5 * np.eye(10)  # every pair of classes equally close
    y = np.repeat(np.arange(10), 120)
    x = centres[y] + rng.normal(size=(len(y), 10))
    copies = x[y == 3][:40] + 0.05 * rng.normal(size=(40, 10))
    x, y = np.vstack([x, copies]), np.r_[y, np.zeros(40, dtype=int)]
    poison_mask = np.arange(len(y)) >= 1200
    plain = label_consistency(x, y, quiet_threshold=None)
    gated = label_consistency(x, y)
    assert gated.per_class[0]["elevated"] is True
    assert sum(info["elevated"] for info in gated.per_class.values()) == 1
    assert gated.flagged[poison_mask].mean() == plain.flagged[poison_mask].mean() >= 0.9
    # Border look-alikes in the quiet classes are spared unless nearly all neighbours disagree.
    assert gated.flagged[~poison_mask].sum() < plain.flagged[~poison_mask].sum()
    assert plain.per_class[1]["elevated"] is None


def test_label_consistency_ignores_duplicates_of_itself() -> None:
    x = np.vstack([np.zeros((5, 2)), np.ones((5, 2))])
    y = np.array([0] * 5 + [1] * 5)
    result = label_consistency(x, y, k=3)
    assert result.n_flagged == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"k": 0}, "k"),
        ({"threshold": 0.0}, "threshold"),
        ({"refine": -1}, "refine"),
        ({"prune": 1.5}, "prune"),
        ({"threshold": 0.7, "quiet_threshold": 0.6}, "quiet_threshold"),
        ({"alpha": 0.0}, "alpha"),
    ],
)
def test_label_consistency_rejects_bad_parameters(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"'{name}'"):
        label_consistency(np.zeros((10, 2)), np.zeros(10, dtype=int), **kwargs)


# -- losses -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flipped(
    digits: tuple[np.ndarray, np.ndarray],
) -> tuple[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray]:
    x, y = digits
    p = flip_labels(x, y, fraction=0.05, num_classes=10, seed=1)
    # Few epochs: the clean majority is fitted, the flipped labels are not yet memorised.
    model = fit_classifier(digits_mlp(seed=0), p.x, p.y, epochs=10, lr=1e-2, seed=0)
    return model, p.x, p.y, p.poisoned


def test_model_loss_flags_flipped_labels(
    flipped: tuple[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    model, x, y, poisoned = flipped
    result = model_loss(model, x, y)
    assert result.method == "model_loss"
    assert result.flagged[poisoned].mean() >= 0.8
    assert result.flagged[~poisoned].mean() <= 0.02
    losses = per_sample_loss(model, x, y)
    assert losses[poisoned].mean() > 5 * losses[~poisoned].mean()


def test_per_sample_loss_rejects_labels_outside_the_model(
    flipped: tuple[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    model, x, y, _ = flipped
    with pytest.raises(InvalidParameterError, match="'y'"):
        per_sample_loss(model, x[:5], np.full(5, 12))
    with pytest.raises(InvalidParameterError, match="'x'"):
        per_sample_loss(model, np.zeros((5, 3)), y[:5])


def test_learning_speed_direction_and_train_fn(
    flipped: tuple[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    model, x, y, poisoned = flipped
    calls: list[tuple[int, int]] = []
    base = retrainer(model, lr=1e-2)

    def train_fn(xs: np.ndarray, ys: np.ndarray, seed: int, epochs: int) -> torch.nn.Module:
        calls.append((seed, epochs))
        return base(xs, ys, seed, epochs)

    before = [p.detach().clone() for p in model.parameters()]
    slow = learning_speed(x, y, train_fn=train_fn, epochs=2, runs=2, direction="slow", seed=3)
    assert calls == [(3, 2), (4, 2)]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # untouched
    # Flipped labels are learned late: their early loss is high, so "slow" finds them.
    assert slow.flagged[poisoned].mean() >= 0.5
    assert slow.flagged[~poisoned].mean() <= 0.03
    fast = learning_speed(x, y, train_fn=base, epochs=2, runs=1, direction="fast")
    assert fast.flagged[poisoned].mean() <= 0.05
    assert fast.per_class[0]["direction"] == "fast"
    with pytest.raises(InvalidParameterError, match="'direction'"):
        learning_speed(x, y, train_fn=base, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="'train_fn'"):
        learning_speed(x, y, train_fn=lambda *a: "not a model", runs=1)  # type: ignore[arg-type,return-value]


# -- trigger carriers ---------------------------------------------------------------------------


def test_trigger_carriers_with_the_true_trigger(badnets: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    x, y, poisoned = badnets
    mask, pattern = _true_trigger()
    result = trigger_carriers(x, mask, pattern, y=y)
    assert result.method == "trigger_carriers"
    assert result.flagged[poisoned].all()
    assert result.flagged[~poisoned].mean() <= 0.02
    assert result.per_class[0]["distance"] < result.per_class[1]["distance"]
    # (n, H, W) inputs and an (H, W) pattern work the same.
    same = trigger_carriers(x[:, 0], mask, pattern[0])
    assert np.array_equal(same.flagged, result.flagged)


def test_trigger_carriers_with_a_noisy_partial_trigger(
    badnets: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, _, poisoned = badnets
    mask, pattern = _true_trigger()
    rng = np.random.default_rng(0)
    # A reverse-engineered trigger: one of the four patch pixels mostly missed, a weak smear
    # elsewhere, and a pattern off by noise. (A smear up to 0.1 on every pixel, as much mask weight
    # as the patch itself, brings recall down to 0.4: the digits' own pixels then dominate.)
    noisy_mask = np.clip(mask + rng.uniform(0, 0.05, size=mask.shape), 0, 1)
    noisy_mask[-1, -2] = 0.3
    noisy_pattern = np.clip(pattern + rng.normal(0, 0.1, size=pattern.shape), 0, 1)
    result = trigger_carriers(x, noisy_mask, noisy_pattern)
    assert result.flagged[poisoned].mean() >= 0.95
    assert result.flagged[~poisoned].mean() <= 0.05


@pytest.mark.parametrize(
    ("mask", "pattern", "name"),
    [
        (np.zeros((8, 8)), np.zeros((1, 8, 8)), "mask"),
        (np.full((8, 8), 2.0), np.zeros((1, 8, 8)), "mask"),
        (np.ones((4, 4)), np.zeros((1, 8, 8)), "mask"),
        (np.ones((8, 8)), np.zeros((3, 8, 8)), "pattern"),
    ],
)
def test_trigger_carriers_rejects_bad_shapes(mask: np.ndarray, pattern: np.ndarray, name: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"'{name}'"):
        trigger_carriers(np.zeros((4, 1, 8, 8)), mask, pattern)
