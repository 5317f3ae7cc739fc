"""The base class owns the invariants: shown with attacks that misbehave or record what they get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from mlarmor.attacks import FixedBudgetAttack, Perturbation


@dataclass(frozen=True, kw_only=True, slots=True)
class Rogue(FixedBudgetAttack):
    """Returns points far outside the ball and the bounds, and claims no per-sample queries."""

    capability: ClassVar = "gradients"

    def _perturb(self, target, x, y, eps, generator):
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        return Perturbation(x + 10 * noise)


@dataclass(frozen=True, kw_only=True, slots=True)
class Recorder(FixedBudgetAttack):
    """Moves every feature by +eps and records each call's inputs."""

    capability: ClassVar = "gradients"
    calls: list = None  # type: ignore[assignment]

    def _perturb(self, target, x, y, eps, generator):
        self.calls.append((eps, x.clone(), y.clone()))
        return Perturbation(x + eps, torch.full((x.shape[0],), 5, dtype=torch.int64))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_results_are_projected_and_clipped_whatever_the_attack_returns(norm, mlp_target, digits):
    x, y = digits.x_test[:80], digits.y_test[:80]
    before = mlp_target.queries
    result = Rogue(norm=norm, eps=0.3)(mlp_target, x, y)
    assert np.all(result.norms <= 0.3 + 1e-6)
    assert result.norms.max() > 0.29  # projected onto the sphere, not zeroed
    assert result.x_adv.min() >= 0.0
    assert result.x_adv.max() <= 1.0
    # Without per-sample counts the result reports the target's own total.
    assert result.queries == mlp_target.queries - before
    assert isinstance(result.queries, int)


def test_only_samples_still_standing_are_attacked(mlp_target, digits):
    x, y = digits.x_test[:100].copy(), digits.y_test[:100].copy()
    y[:10] = (y[:10] + 1) % 10  # ten samples misclassified from the start
    attack = Recorder(calls=[], batch_size=64)
    results = attack(mlp_target, x, y, eps=[0.3, 0.0, 0.05])
    calls = attack.calls
    # Two batches (64 + 36), two positive budgets each, smallest first; eps = 0 is never attacked.
    assert [c[0] for c in calls] == [0.05, 0.3, 0.05, 0.3]
    clean = results[1].y_pred_clean
    first_batch_correct = int(np.sum(clean[:64] == y[:64]))
    assert calls[0][1].shape[0] == first_batch_correct
    assert calls[0][1].dtype == torch.float32
    assert calls[0][1].device == mlp_target.device
    small = results[2]
    # At 0.3, only the first batch's samples that 0.05 did not fool come back.
    assert calls[1][1].shape[0] == int(np.sum(~small.success[:64]))
    assert np.all(results[1].success[:10])  # misclassified from the start
    assert np.array_equal(results[1].x_adv, x)
    # Queries: 1 (clean) + per attempt (5 claimed + 1 final check), cumulated over the budgets.
    q = results[0].queries
    assert np.all(q[results[1].success] == 1)
    fooled_small = small.success & ~results[1].success
    assert np.all(q[fooled_small] == 1 + 6)
    retried = ~small.success
    assert np.all(q[retried] == 1 + 6 + 6)


def test_inputs_are_not_modified(mlp_target, digits):
    x, y = digits.x_test[:50].copy(), digits.y_test[:50].copy()
    x_before, y_before = x.copy(), y.copy()
    Rogue(eps=0.3)(mlp_target, x, y)
    assert np.array_equal(x, x_before)
    assert np.array_equal(y, y_before)
    assert x.flags.writeable
    assert y.flags.writeable
