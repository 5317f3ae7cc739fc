"""Oracle: the batched PGD against a slow, obvious PGD written one sample at a time.

The model runs in float64 so that batching cannot change a gradient's sign through rounding; the
two implementations then agree exactly (L∞) or to float rounding (L2's normalisations).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from _models import ToyTarget

from mlarmor.attacks import PGD
from mlarmor.attacks.evasion import _kernels as K


def reference_pgd(target, x, y, *, eps, norm, steps, restarts, loss, seed):
    """PGD per sample with plain control flow; returns (x_adv, fooled, queries per sample).

    The queries are what each sample needed; the batched attack may charge a fooled sample more
    (it rides along in the batch until enough samples fell to compact it), never less.
    """
    loss_fn = {"ce": K.ce_loss, "margin": K.margin_loss}[loss]
    step = 2.5 * eps / steps
    low, high = target.bounds
    generator = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = len(x)
    x_adv = xt.clone()
    queries = [1] * n  # the clean prediction
    with torch.no_grad():
        clean = [int(target.logits(xt[i : i + 1]).argmax()) for i in range(n)]
    todo = [i for i in range(n) if clean[i] == y[i]]
    fooled = dict.fromkeys(todo, False)
    best_loss = dict.fromkeys(todo, float("-inf"))
    for _ in range(restarts):
        remaining = [i for i in todo if not fooled[i]]
        if not remaining:
            break
        # One draw per restart for the samples still standing, in order: the attack's documented init.
        starts = K.random_init(xt[remaining], eps, norm, generator, (low, high))
        for k, i in enumerate(remaining):
            x0, label = xt[i : i + 1], yt[i : i + 1]
            xi = starts[k : k + 1]
            for t in range(steps + 1):
                xi = xi.detach().requires_grad_(True)
                z = target.logits(xi)
                value = loss_fn(z, label)
                queries[i] += 1
                adv = int(z.argmax()) != int(label)
                if adv:
                    x_adv[i] = xi.detach()[0]
                    fooled[i] = True
                    break
                if t == steps:  # a restart that fails keeps its last iterate if its loss is the best
                    if float(value.detach()) > best_loss[i]:
                        x_adv[i] = xi.detach()[0]
                        best_loss[i] = float(value.detach())
                    break
                (grad,) = torch.autograd.grad(value.sum(), xi)
                with torch.no_grad():
                    if norm == "linf":
                        xi = xi + step * grad.sign()
                        xi = torch.minimum(torch.maximum(xi, x0 - eps), x0 + eps)
                    else:
                        xi = xi + step * grad / grad.norm().clamp_min(1e-12)
                        d = xi - x0
                        if d.norm() > eps:
                            xi = x0 + d * (eps / d.norm().clamp_min(1e-12))
                    xi = xi.clamp(low, high)
    for i in todo:
        queries[i] += 1  # the final check
    success = np.array([clean[i] != y[i] or fooled.get(i, False) for i in range(n)])
    return x_adv.numpy(), success, np.array(queries)


@pytest.fixture(scope="module")
def float64_target(mlp_module):
    return ToyTarget(copy.deepcopy(mlp_module).double(), dtype=torch.float64, name="toy-mlp-f64")


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.07), ("l2", 0.7)])
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_batched_pgd_matches_the_per_sample_reference(float64_target, digits, norm, eps, loss):
    x, y = digits.x_test[:150], digits.y_test[:150]
    params = {"eps": eps, "norm": norm, "steps": 8, "restarts": 2, "loss": loss, "seed": 11}
    before = float64_target.queries
    result = PGD(**params, batch_size=len(x))(float64_target, x, y)
    spent = float64_target.queries - before
    ref_adv, ref_success, ref_queries = reference_pgd(
        float64_target, x, y, eps=eps, norm=norm, steps=8, restarts=2, loss=loss, seed=11
    )
    # The oracle is only as good as what it exercises: fooled, robust and misclassified samples.
    assert 0 < ref_success.sum() < len(x)
    assert np.array_equal(result.success, ref_success)
    # Samples never fooled by the attack were charged exactly; fooled ones at least what they needed,
    # and the per-sample charges add up to the model's own count.
    attacked_and_fooled = ref_success & (result.y_pred_clean == y)
    assert np.array_equal(result.queries[~attacked_and_fooled], ref_queries[~attacked_and_fooled])
    assert np.all(result.queries >= ref_queries)
    assert result.total_queries == spent
    if norm == "linf":
        assert np.array_equal(result.x_adv, ref_adv)
    else:
        np.testing.assert_allclose(result.x_adv, ref_adv, rtol=0, atol=1e-6)
