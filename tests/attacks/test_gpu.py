"""The attacks on a CUDA device: same contract, tensors stay on the device, results come back as numpy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from _models import ToyTarget

from mlarmor.attacks import PGD, create

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_attacks_run_on_cuda(name, norm, mlp_module, digits):
    target = ToyTarget(copy.deepcopy(mlp_module), device="cuda")
    x, y = digits.x_test, digits.y_test
    eps = 0.1 if norm == "linf" else 1.0
    result = create(name, norm=norm, eps=eps, seed=3)(target, x, y)
    assert isinstance(result.x_adv, np.ndarray)
    assert np.all(result.norms <= eps + 1e-6)
    assert result.robust_accuracy < 0.6 * result.clean_accuracy
    again = create(name, norm=norm, eps=eps, seed=3)(target, x, y)
    assert np.array_equal(result.success, again.success)


def test_pgd_on_cuda_agrees_with_the_cpu(mlp_module, digits):
    x, y = digits.x_test, digits.y_test
    attack = PGD(eps=0.1, steps=20, random_start=False)
    cpu = attack(ToyTarget(copy.deepcopy(mlp_module)), x, y)
    gpu = attack(ToyTarget(copy.deepcopy(mlp_module), device="cuda"), x, y)
    # Without random starts only float rounding differs between devices.
    assert abs(cpu.robust_accuracy - gpu.robust_accuracy) <= 0.02
