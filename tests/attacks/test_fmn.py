"""FMN: minimal norms, consistent with the budget and smaller than PGD's perturbations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlarmor.attacks import FMN, PGD
from mlarmor.attacks.evasion.fmn import fmn
from mlarmor.errors import InvalidParameterError

BUDGET = {"linf": 0.15, "l2": 1.5}


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_norms_within_eps_and_smaller_than_pgd(norm, mlp_target, digits):
    x, y = digits.x_test[:150], digits.y_test[:150]
    eps = BUDGET[norm]
    found = FMN(norm=norm)(mlp_target, x, y, eps=eps)
    pgd = PGD(norm=norm)(mlp_target, x, y, eps=eps)
    clean = found.y_pred_clean == y
    assert np.all(found.norms[found.success] <= eps + 1e-6)
    assert found.robust_accuracy <= pgd.robust_accuracy + 0.05
    both = found.success & pgd.success & clean
    assert both.sum() > 30
    assert found.norms[both].mean() < 0.9 * pgd.norms[both].mean()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_minimal_norm_decides_success(norm, mlp_target, digits):
    x, y = digits.x_test[:100], digits.y_test[:100]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    with torch.no_grad():
        correct = mlp_target.logits(xt).argmax(1) == yt
    x_adv, best = fmn(
        mlp_target, xt[correct], yt[correct], norm=norm, steps=100, alpha_init=1.0, gamma_init=0.05
    )
    assert torch.isfinite(best).all()
    with torch.no_grad():
        assert (mlp_target.logits(x_adv).argmax(1) != yt[correct]).all()
    eps = float(best.median())
    r = FMN(norm=norm)(mlp_target, x, y, eps=eps)
    # A sample whose minimal norm is within eps is fooled at eps (the search does not depend on eps).
    within = np.zeros(len(x), dtype=bool)
    within[correct.numpy()] = (best <= eps).numpy()
    assert np.all(r.success[within])


def test_invalid_parameters():
    with pytest.raises(InvalidParameterError, match="'steps' parameter of FMN"):
        FMN(steps=0)
    with pytest.raises(InvalidParameterError, match="'gamma_init'"):
        FMN(gamma_init=2.0)
