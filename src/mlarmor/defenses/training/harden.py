"""Harden a model and measure it: clean and robust accuracy before and after adversarial training."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mlarmor.attacks import EvasionResult, FixedBudgetAttack, create
from mlarmor.defenses.training.adversarial import AdversarialTrainer
from mlarmor.errors import invalid_parameter
from mlarmor.targets.torch import TorchTarget

__all__ = ["HardeningResult", "harden_and_evaluate", "robust_accuracy"]

_OWNER = "harden_and_evaluate"


@dataclass(frozen=True, slots=True)
class HardeningResult:
    """Clean and robust accuracy on held-out data before and after adversarial training.

    Attributes:
        attack: Registry name of the evaluation attack.
        eps: The budget it was run at.
        before: The attack's result on the model before training.
        after: The attack's result on the model after training.
        train_seconds: Wall-clock time of :meth:`AdversarialTrainer.fit`.
        trainer: The fitted trainer (its ``history_`` holds the per-epoch records).
    """

    attack: str
    eps: float
    before: EvasionResult
    after: EvasionResult
    train_seconds: float
    trainer: AdversarialTrainer

    @property
    def clean_accuracy_before(self) -> float:
        """Clean accuracy before training."""
        return self.before.clean_accuracy

    @property
    def robust_accuracy_before(self) -> float:
        """Robust accuracy before training."""
        return self.before.robust_accuracy

    @property
    def clean_accuracy_after(self) -> float:
        """Clean accuracy after training."""
        return self.after.clean_accuracy

    @property
    def robust_accuracy_after(self) -> float:
        """Robust accuracy after training."""
        return self.after.robust_accuracy


def _attack(
    attack: str | FixedBudgetAttack, eps: float, norm: str, params: dict[str, Any]
) -> FixedBudgetAttack:
    if isinstance(attack, FixedBudgetAttack):
        return attack
    built = create(attack, eps=eps, norm=norm, **params)
    if not isinstance(built, FixedBudgetAttack):
        raise invalid_parameter("attack", _OWNER, "a fixed-budget attack (e.g. 'auto', 'pgd')", attack)
    return built


def robust_accuracy(
    model: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    attack: str | FixedBudgetAttack = "auto",
    norm: str = "linf",
    bounds: tuple[float, float] | Sequence[float] = (0.0, 1.0),
    device: str = "cpu",
    **attack_params: Any,
) -> EvasionResult:
    """Attack ``model`` on ``(x, y)`` at ``eps`` with a registered attack; the model ends in eval mode.

    Args:
        model: A PyTorch classifier taking inputs in ``bounds``.
        x: Held-out inputs ``(n, *input_shape)``.
        y: Their labels ``(n,)``.
        eps: The budget.
        attack: A registry name (``"auto"``, ``"pgd"``, ...) or a configured attack.
        norm: ``"linf"`` or ``"l2"``.
        bounds: Valid input range.
        device: Where the model runs.
        **attack_params: Passed to :func:`mlarmor.attacks.create` (e.g. ``n_iter=100``, ``steps=20``).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    target = TorchTarget(model, bounds=tuple(bounds), input_shape=tuple(x.shape[1:]), device=device)
    return _attack(attack, eps, norm, attack_params)(target, x, np.asarray(y))


def harden_and_evaluate(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train: tuple[np.ndarray, np.ndarray] | Any,
    test: tuple[np.ndarray, np.ndarray],
    trainer: AdversarialTrainer,
    *,
    epochs: int,
    attack: str | FixedBudgetAttack = "auto",
    batch_size: int = 128,
    bounds: tuple[float, float] | Sequence[float] = (0.0, 1.0),
    device: str = "cpu",
    scheduler: Any | None = None,
    **attack_params: Any,
) -> HardeningResult:
    """Evaluate ``model`` on ``test``, adversarially train it on ``train``, evaluate it again.

    The evaluation attack runs at the trainer's ``eps`` and ``norm``.

    Args:
        model: The user's classifier, trained in place.
        optimizer: The user's optimiser over ``model``'s parameters.
        train: Arrays ``(x, y)`` or a ``DataLoader`` of ``(x, y)`` batches.
        test: Held-out arrays ``(x, y)``.
        trainer: The configured :class:`AdversarialTrainer`.
        epochs: Training epochs.
        attack: The evaluation attack, a registry name or a configured attack.
        batch_size: Rows per training batch when ``train`` is arrays.
        bounds: Valid input range.
        device: Where to train and attack.
        scheduler: A learning-rate scheduler stepped once per epoch.
        **attack_params: Passed to :func:`mlarmor.attacks.create`.

    Example:
        >>> result = harden_and_evaluate(net, opt, (x_tr, y_tr), (x_te, y_te),
        ...                              AdversarialTrainer(eps=0.2), epochs=20)  # doctest: +SKIP
        >>> result.robust_accuracy_before, result.robust_accuracy_after  # doctest: +SKIP
    """
    x_test, y_test = test
    built = _attack(attack, trainer.eps, trainer.norm, attack_params)
    before = robust_accuracy(
        model, x_test, y_test, eps=trainer.eps, attack=built, bounds=bounds, device=device
    )
    start = time.perf_counter()
    trainer.fit(
        model,
        optimizer,
        train,
        epochs=epochs,
        batch_size=batch_size,
        bounds=bounds,
        device=device,
        scheduler=scheduler,
    )
    seconds = time.perf_counter() - start
    after = robust_accuracy(
        model, x_test, y_test, eps=trainer.eps, attack=built, bounds=bounds, device=device
    )
    return HardeningResult(
        attack=before.attack,
        eps=trainer.eps,
        before=before,
        after=after,
        train_seconds=seconds,
        trainer=trainer,
    )
