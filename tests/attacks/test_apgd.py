"""APGD: the step-size schedule, the DLR losses, and strength against PGD at the same budget."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlarmor.attacks import APGD, APGDT, PGD
from mlarmor.attacks.evasion.apgd import dlr_loss, dlr_targeted_loss, step_checkpoints
from mlarmor.errors import InvalidParameterError


def reference_checkpoints(n_iter: int) -> list[int]:
    """The paper's formula in exact fractions.

    p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), w_j = ceil(p_j * n_iter).
    """
    from fractions import Fraction

    p = [Fraction(0), Fraction(22, 100)]
    while (nxt := p[-1] + max(p[-1] - p[-2] - Fraction(3, 100), Fraction(6, 100))) < 1:
        p.append(nxt)
    out: list[int] = []
    for pj in p:
        w = math.ceil(pj * n_iter)
        if not out or w > out[-1]:
            out.append(w)
    return out


def test_checkpoints_for_100_iterations():
    assert step_checkpoints(100) == (0, 22, 41, 57, 70, 80, 87, 93, 99)


@pytest.mark.parametrize("n_iter", [1, 5, 10, 37, 100, 250, 1000])
def test_checkpoints_match_the_formula(n_iter):
    assert list(step_checkpoints(n_iter)) == reference_checkpoints(n_iter)


def test_dlr_by_hand():
    logits = torch.tensor([[4.0, 1.0, 3.0, 0.0], [1.0, 5.0, 2.0, -1.0]])
    y = torch.tensor([0, 2])
    # Sample 0 is right: -(4 - 3) / (4 - 1); sample 1 is wrong: -(2 - 5) / (5 - 1).
    expected = torch.tensor([-1.0 / 3.0, 3.0 / 4.0])
    torch.testing.assert_close(dlr_loss(logits, y), expected)
    t = torch.tensor([2, 3])
    # Targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2).
    expected_t = torch.tensor([-(4.0 - 3.0) / (4.0 - 0.5), -(2.0 - (-1.0)) / (5.0 - 0.0)])
    torch.testing.assert_close(dlr_targeted_loss(logits, y, t), expected_t)


def test_dlr_is_invariant_to_shift_and_scale():
    logits = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 10
    torch.testing.assert_close(dlr_loss(3.0 * logits + 7.0, y), dlr_loss(logits, y))


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("model", ["mlp_target", "cnn_target"])
def test_at_least_as_strong_as_pgd(norm, model, request, digits):
    target = request.getfixturevalue(model)
    x, y = digits.x_test[:200], digits.y_test[:200]
    eps = {"linf": 0.1, "l2": 1.0}[norm]
    pgd = PGD(norm=norm, steps=100)(target, x, y, eps=eps)
    apgd = APGD(norm=norm, n_iter=100)(target, x, y, eps=eps)
    assert apgd.robust_accuracy <= pgd.robust_accuracy + 0.01


def test_targeted_adds_to_untargeted(mlp_target, digits):
    x, y = digits.x_test[:150], digits.y_test[:150]
    ce = APGD(eps=0.1, n_iter=50)(mlp_target, x, y)
    t = APGDT(eps=0.1, n_iter=50, n_target_classes=3)(mlp_target, x, y)
    assert t.params["loss"] == "dlr-targeted"
    assert t.attack == "apgd-t"
    both = ce.success | t.success
    assert both.mean() >= max(ce.success.mean(), t.success.mean())
    assert t.robust_accuracy < t.clean_accuracy


def test_queries_stop_when_fooled(mlp_target, digits):
    x, y = digits.x_test[:100], digits.y_test[:100]
    r = APGD(eps=0.3, n_iter=100)(mlp_target, x, y)
    assert r.robust_accuracy == 0.0
    # Clean prediction + the final check + at most n_iter + 1 evaluations; most stop far earlier.
    assert np.all(np.asarray(r.queries) <= 100 + 3)
    assert np.median(np.asarray(r.queries)) < 20


def test_too_few_classes_for_dlr(digits):
    from _models import ToyTarget

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    target = ToyTarget(net, num_classes=3)
    x, y = digits.x_test[:10], digits.y_test[:10] % 3
    with pytest.raises(InvalidParameterError, match="at least 4 classes"):
        APGDT(eps=0.1)(target, x, y)


def test_invalid_parameters():
    with pytest.raises(InvalidParameterError, match="'n_iter' parameter of APGD"):
        APGD(n_iter=0)
    with pytest.raises(InvalidParameterError, match="'loss' parameter of APGD"):
        APGD(loss="margin")
    with pytest.raises(InvalidParameterError, match="'restarts'"):
        APGD(restarts=2, random_start=False)
