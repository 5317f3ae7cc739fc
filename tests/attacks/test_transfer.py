"""Transfer: crafted on a surrogate, evaluated on the victim, victim queries only."""

from __future__ import annotations

import numpy as np
import pytest
from _models import LabelsOnlyTarget, ToyTarget

from mlarmor.attacks import PGD, Transfer
from mlarmor.errors import InvalidParameterError


def test_transfers_from_a_surrogate_to_a_labels_only_victim(mlp_target, surrogate_module, digits):
    x, y = digits.x_test[:120], digits.y_test[:120]
    surrogate = ToyTarget(surrogate_module, name="surrogate")
    victim = LabelsOnlyTarget(mlp_target)
    result = Transfer(surrogate=surrogate, eps=0.15)(victim, x, y)
    assert result.clean_accuracy > 0.9
    assert result.robust_accuracy < 0.6 * result.clean_accuracy
    # Only the victim's evaluations count: its clean prediction and final check.
    assert np.all(result.queries <= 2)
    assert result.total_queries == victim.queries == 120 + int((result.y_pred_clean == y).sum())
    assert surrogate.queries > 0


def test_a_custom_white_box_attack_crafts(mlp_target, surrogate_module, digits):
    x, y = digits.x_test[:60], digits.y_test[:60]
    surrogate = ToyTarget(surrogate_module, name="surrogate")
    result = Transfer(surrogate=surrogate, attack=PGD(steps=10))(mlp_target, x, y, eps=0.15)
    assert result.robust_accuracy < result.clean_accuracy


def test_surrogate_must_be_white_box(mlp_target):
    with pytest.raises(InvalidParameterError, match="'surrogate' parameter of Transfer"):
        Transfer(surrogate=LabelsOnlyTarget(mlp_target))
    with pytest.raises(InvalidParameterError, match="'attack' parameter of Transfer"):
        Transfer(surrogate=mlp_target, attack="pgd")


def test_calling_without_a_surrogate_says_so(mlp_target, digits):
    before = mlp_target.queries
    with pytest.raises(InvalidParameterError, match=r"'surrogate' parameter of Transfer.*Got None"):
        Transfer(eps=0.1)(mlp_target, digits.x_test[:5], digits.y_test[:5])
    assert mlp_target.queries == before  # refused before any victim query
