"""Adversarial training (PGD-AT, TRADES) on demo:digits with a small CNN, all on CPU in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mlarmor.assess import robust_accuracy
from mlarmor.data import load_dataset
from mlarmor.defenses import AdversarialTrainer, EpochRecord
from mlarmor.errors import InvalidParameterError, NotFittedError
from mlarmor.models import digits_cnn, fit_classifier

EPS = 0.2


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train, test = load_dataset("demo:digits").split(0.3, seed=0)
    return (
        np.array(train.x, dtype=np.float32),
        np.array(train.y, dtype=np.int64),
        np.array(test.x, dtype=np.float32),
        np.array(test.y, dtype=np.int64),
    )


@pytest.fixture(scope="module")
def standard_model(digits) -> nn.Module:
    x, y, _, _ = digits
    return fit_classifier(digits_cnn(), x, y, epochs=20, batch_size=32, lr=1e-3, seed=0)


def _pgd20(model: nn.Module, x: np.ndarray, y: np.ndarray):
    return robust_accuracy(model, x, y, eps=EPS, attack="pgd", steps=20, seed=0)


def test_pgd_at_raises_robust_accuracy(digits, standard_model) -> None:
    x, y, x_te, y_te = digits
    before = _pgd20(standard_model, x_te, y_te)
    assert before.clean_accuracy > 0.95
    assert before.robust_accuracy < 0.10

    model = digits_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    records: list[EpochRecord] = []
    trainer = AdversarialTrainer("pgd-at", eps=EPS, steps=7, seed=0)
    assert trainer.fit(model, opt, (x, y), epochs=25, batch_size=64, progress=records.append) is trainer
    after = _pgd20(model, x_te, y_te)
    assert after.clean_accuracy > 0.90
    assert after.robust_accuracy > 0.40
    assert len(trainer.history_) == 25
    assert records == trainer.history_
    assert trainer.history_[-1].adv_accuracy > trainer.history_[0].adv_accuracy
    assert trainer.model_ is model
    assert not model.training


def test_trades_via_dataloader_improves_robustness(digits) -> None:
    x, y, x_te, y_te = digits
    model = digits_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    before = robust_accuracy(model, x_te, y_te, eps=EPS, attack="pgd", steps=20)
    trainer = AdversarialTrainer("trades", eps=EPS, steps=5, beta=6.0).fit(model, opt, loader, epochs=12)
    after = robust_accuracy(model, x_te, y_te, eps=EPS, attack="pgd", steps=20)
    assert before.robust_accuracy < 0.2
    assert after.clean_accuracy > 0.85
    assert after.robust_accuracy > before.robust_accuracy + 0.2
    assert len(trainer.history_) == 12


@pytest.mark.parametrize("method", ["pgd-at", "trades"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_perturb_batch_stays_in_ball_and_bounds(digits, standard_model, method, norm) -> None:
    x, y, _, _ = digits
    xb, yb = torch.tensor(x[:64]), torch.tensor(y[:64])
    eps = EPS if norm == "linf" else 1.0
    trainer = AdversarialTrainer(method, eps=eps, norm=norm, steps=5)
    standard_model.train()
    grads_before = [p.grad for p in standard_model.parameters()]
    x_adv = trainer.perturb_batch(standard_model, xb, yb)
    assert standard_model.training  # mode restored
    standard_model.eval()
    assert [p.grad for p in standard_model.parameters()] == grads_before
    assert x_adv.shape == xb.shape
    assert x_adv.dtype == xb.dtype
    assert not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0
    assert float(x_adv.max()) <= 1.0
    delta = (x_adv - xb).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    with torch.no_grad():
        fooled = (standard_model(x_adv).argmax(1) != yb).float().mean()
        clean_wrong = (standard_model(xb).argmax(1) != yb).float().mean()
    assert fooled > clean_wrong + 0.3


def test_perturb_batch_is_deterministic_under_seed(digits, standard_model) -> None:
    x, y, _, _ = digits
    xb, yb = torch.tensor(x[:32]), torch.tensor(y[:32])
    a = AdversarialTrainer(eps=EPS, seed=3).perturb_batch(standard_model, xb, yb)
    b = AdversarialTrainer(eps=EPS, seed=3).perturb_batch(standard_model, xb, yb)
    assert torch.equal(a, b)


def test_loss_for_a_custom_loop(digits) -> None:
    x, y, _, _ = digits
    model = digits_cnn()
    trainer = AdversarialTrainer("trades", eps=EPS, steps=2)
    loss = trainer.loss(model, torch.tensor(x[:16]), torch.tensor(y[:16]))
    loss.backward()
    assert loss.dim() == 0
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


def test_not_fitted() -> None:
    trainer = AdversarialTrainer(eps=0.1)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        _ = trainer.history_
    with pytest.raises(AttributeError):
        _ = trainer.model_


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"eps": -0.1},
            "The 'eps' parameter of AdversarialTrainer must be a float in (0, inf). Got -0.1 instead.",
        ),
        (
            {"eps": 0.0},
            "The 'eps' parameter of AdversarialTrainer must be a float in (0, inf). Got 0.0 instead.",
        ),
        ({"eps": 0.1, "method": "fgsm"}, "The 'method' parameter of AdversarialTrainer must be one of"),
        ({"eps": 0.1, "norm": "l1"}, "The 'norm' parameter of AdversarialTrainer must be one of"),
        ({"eps": 0.1, "steps": 0}, "The 'steps' parameter of AdversarialTrainer must be an int >= 1. Got 0"),
        (
            {"eps": 0.1, "step": -1.0},
            "The 'step' parameter of AdversarialTrainer must be a float in (0, inf)",
        ),
        (
            {"eps": 0.1, "beta": -1.0},
            "The 'beta' parameter of AdversarialTrainer must be a float in [0, inf)",
        ),
        ({"eps": 0.1, "seed": True}, "The 'seed' parameter of AdversarialTrainer must be an int >= 0"),
    ],
)
def test_parameter_validation(params, message) -> None:
    with pytest.raises(InvalidParameterError) as info:
        AdversarialTrainer(**params)
    assert str(info.value).startswith(message)


def test_fit_validation(digits) -> None:
    x, y, _, _ = digits
    model = digits_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = AdversarialTrainer(eps=0.1, steps=1)
    with pytest.raises(InvalidParameterError, match="'epochs' parameter"):
        trainer.fit(model, opt, (x, y), epochs=0)
    with pytest.raises(InvalidParameterError, match="'optimizer' parameter"):
        trainer.fit(model, "adam", (x, y), epochs=1)
    with pytest.raises(InvalidParameterError, match="within bounds"):
        trainer.fit(model, opt, (x * 2.0, y), epochs=1)
    with pytest.raises(InvalidParameterError, match="integer labels"):
        trainer.fit(model, opt, (x, y[:-1]), epochs=1)
    with pytest.raises(NotFittedError):
        _ = trainer.history_
