"""Adversarial training: PGD-AT (Madry et al.) and TRADES (Zhang et al.), wrapping the user's objects.

:class:`AdversarialTrainer` takes the user's model, optimiser and data (a torch ``DataLoader`` of
``(x, y)`` batches, or numpy arrays plus ``batch_size``), trains the model in place on adversarial
examples generated batch by batch, and hands the same objects back. Users who keep their own loop
call :meth:`AdversarialTrainer.perturb_batch` (the adversarial inputs) or
:meth:`AdversarialTrainer.loss` (the full training objective) inside it.

Example:
    >>> trainer = AdversarialTrainer(eps=0.2)  # doctest: +SKIP
    >>> trainer.fit(model, optimizer, (x_train, y_train), epochs=20, batch_size=64)  # doctest: +SKIP
    >>> trainer.history_[-1].loss  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from mlarmor._validation import check_bounds, check_choice, check_float, check_int, check_positive, check_seed
from mlarmor.errors import InvalidParameterError, NotFittedError, invalid_parameter

__all__ = ["AdversarialTrainer", "EpochRecord", "Method", "TrainNorm"]

Method = Literal["pgd-at", "trades"]
TrainNorm = Literal["linf", "l2"]

_OWNER = "AdversarialTrainer"
_METHODS: tuple[Method, ...] = ("pgd-at", "trades")
_NORMS: tuple[TrainNorm, ...] = ("linf", "l2")
# TRADES starts its inner maximisation this close to the clean input (Zhang et al.'s 0.001 * N(0, 1)).
_TRADES_INIT = 1e-3


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """What one training epoch did.

    Attributes:
        epoch: Epoch index, from 0.
        loss: Mean training objective over the epoch's samples.
        clean_accuracy: Accuracy on the clean training batches (model in train mode, before the step).
        adv_accuracy: Accuracy on the adversarial training batches (same model, before the step).
        seconds: Wall-clock time of the epoch.
    """

    epoch: int
    loss: float
    clean_accuracy: float
    adv_accuracy: float
    seconds: float


def _l2_normalize(g: torch.Tensor) -> torch.Tensor:
    norms = g.flatten(1).norm(dim=1).clamp_min(1e-12)
    out: torch.Tensor = g / norms.view(-1, *([1] * (g.dim() - 1)))
    return out


def _project(delta: torch.Tensor, eps: float, norm: TrainNorm) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (eps / norms).clamp(max=1.0)
    out: torch.Tensor = delta * factor.view(-1, *([1] * (delta.dim() - 1)))
    return out


class AdversarialTrainer:
    """Adversarial training of a PyTorch classifier: PGD-AT or TRADES.

    ``"pgd-at"`` trains on PGD examples only (cross-entropy at the worst case found in the
    ε-ball, from a uniform random start). ``"trades"`` minimises ``CE(f(x), y) + beta *
    KL(f(x) || f(x_adv))``, where ``x_adv`` maximises that KL from a start within 0.001 of ``x``;
    ``beta`` trades clean accuracy for robustness. In both, the adversarial examples are generated
    with the model in eval mode (batch-norm statistics untouched) and the step taken in train mode.
    Inputs are in input space within ``bounds``: put any normalisation inside the model.

    Reference:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018.
        https://arxiv.org/abs/1706.06083
        Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy",
        ICML 2019. https://arxiv.org/abs/1901.08573

    Threat model:
        Defends against white-box evasion at test time (MITRE ATLAS AML.T0043, OWASP ML01) within
        ``eps`` in ``norm``; it does not address larger budgets, other norms, or poisoning.

    Args:
        method: ``"pgd-at"`` or ``"trades"``.
        eps: Perturbation budget in ``norm``, > 0.
        norm: ``"linf"`` or ``"l2"``.
        steps: Inner maximisation steps per batch, >= 1.
        step: Inner step size; defaults to ``2.5 * eps / steps``.
        beta: TRADES' weight on the robustness term, >= 0 (ignored by PGD-AT).
        seed: Seed of the random starts and of the shuffling of array data.

    Attributes:
        history_: One :class:`EpochRecord` per epoch of the last :meth:`fit`.
        model_: The model trained by the last :meth:`fit` (the user's object, trained in place).

    Raises:
        InvalidParameterError: A parameter is out of its domain (at construction).
    """

    def __init__(
        self,
        method: Method = "pgd-at",
        *,
        eps: float,
        norm: TrainNorm = "linf",
        steps: int = 10,
        step: float | None = None,
        beta: float = 6.0,
        seed: int = 0,
    ) -> None:
        check_choice(method, "method", _OWNER, _METHODS)
        check_choice(norm, "norm", _OWNER, _NORMS)
        self.method: Method = method
        self.eps = check_positive(eps, "eps", _OWNER)
        self.norm: TrainNorm = norm
        self.steps = check_int(steps, "steps", _OWNER)
        self.step = None if step is None else check_positive(step, "step", _OWNER)
        self.beta = check_float(beta, "beta", _OWNER, low=0.0)
        self.seed = check_seed(seed, _OWNER)
        self._generator: torch.Generator | None = None
        self._history: list[EpochRecord] | None = None
        self._model: torch.nn.Module | None = None

    def __repr__(self) -> str:
        return (
            f"AdversarialTrainer(method={self.method!r}, eps={self.eps}, norm={self.norm!r}, "
            f"steps={self.steps}, step={self.step}, beta={self.beta}, seed={self.seed})"
        )

    @property
    def step_size(self) -> float:
        """The inner step size in use: ``step``, or ``2.5 * eps / steps``."""
        return self.step if self.step is not None else 2.5 * self.eps / self.steps

    @property
    def history_(self) -> list[EpochRecord]:
        """Per-epoch records of the last :meth:`fit`."""
        if self._history is None:
            raise NotFittedError(
                "This AdversarialTrainer is not fitted yet: call fit(model, optimizer, data, "
                "epochs=...) before reading history_."
            )
        return list(self._history)

    @property
    def model_(self) -> torch.nn.Module:
        """The model trained by the last :meth:`fit`."""
        if self._model is None:
            raise NotFittedError(
                "This AdversarialTrainer is not fitted yet: call fit(model, optimizer, data, "
                "epochs=...) before reading model_."
            )
        return self._model

    def _rng(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def _random_start(self, x: torch.Tensor, scale: float, uniform: bool) -> torch.Tensor:
        gen = self._rng(x.device)
        if not uniform:
            return scale * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        if self.norm == "linf":
            return (torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) * 2 - 1) * scale
        direction = _l2_normalize(torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype))
        radius = torch.rand(x.shape[0], generator=gen, device=x.device, dtype=x.dtype) * scale
        return direction * radius.view(-1, *([1] * (x.dim() - 1)))

    def perturb_batch(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        bounds: tuple[float, float] | Sequence[float] = (0.0, 1.0),
    ) -> torch.Tensor:
        """Adversarial inputs for one training batch, by this trainer's method.

        PGD-AT maximises the cross-entropy on ``y``; TRADES maximises ``KL(f(x) || f(x_adv))``
        (``y`` unused). The model runs in eval mode and is put back in the mode it was in; its
        parameter gradients are left untouched. No early stopping: every sample takes ``steps``.

        Args:
            model: The classifier, returning logits ``(n, classes)``.
            x: Clean inputs within ``bounds``.
            y: Integer labels ``(n,)``.
            bounds: Valid input range ``(low, high)``.

        Returns:
            Detached adversarial inputs, same shape, dtype and device as ``x``, within the ε-ball
            and ``bounds``.
        """
        low, high = check_bounds(bounds, _OWNER)
        was_training = model.training
        model.eval()
        try:
            x = x.detach()
            if self.method == "trades":
                with torch.no_grad():
                    target = F.softmax(model(x), dim=1)
                delta = self._random_start(x, _TRADES_INIT, uniform=False)
            else:
                target = y
                delta = self._random_start(x, self.eps, uniform=True)
            delta = (x + delta).clamp(low, high) - x
            for _ in range(self.steps):
                delta.requires_grad_(True)
                logits = model(x + delta)
                if self.method == "trades":
                    loss = F.kl_div(F.log_softmax(logits, dim=1), target, reduction="sum")
                else:
                    loss = F.cross_entropy(logits, target, reduction="sum")
                (grad,) = torch.autograd.grad(loss, delta)
                with torch.no_grad():
                    direction = grad.sign() if self.norm == "linf" else _l2_normalize(grad)
                    delta = _project(delta + self.step_size * direction, self.eps, self.norm)
                    delta = (x + delta).clamp(low, high) - x
            return (x + delta).detach()
        finally:
            model.train(was_training)

    def loss(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        bounds: tuple[float, float] | Sequence[float] = (0.0, 1.0),
    ) -> torch.Tensor:
        """The training objective on one batch, ready for ``.backward()`` (model left in train mode).

        For users with their own loop: ``trainer.loss(model, x, y).backward(); optimizer.step()``.
        """
        loss, _, _ = self._objective(model, x, y, check_bounds(bounds, _OWNER))
        return loss

    def _objective(
        self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bounds: tuple[float, float]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x_adv = self.perturb_batch(model, x, y, bounds=bounds)
        model.train()
        if self.method == "trades":
            logits_clean = model(x)
            logits_adv = model(x_adv)
            robust = F.kl_div(
                F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="batchmean"
            )
            loss = F.cross_entropy(logits_clean, y) + self.beta * robust
            return loss, logits_clean.detach(), logits_adv.detach()
        logits_adv = model(x_adv)
        with torch.no_grad():
            logits_clean = model(x)
        return F.cross_entropy(logits_adv, y), logits_clean, logits_adv.detach()

    def fit(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        data: Iterable[Any] | tuple[Any, Any],
        *,
        epochs: int,
        batch_size: int = 128,
        bounds: tuple[float, float] | Sequence[float] = (0.0, 1.0),
        device: str | torch.device = "cpu",
        scheduler: Any | None = None,
        progress: Callable[[EpochRecord], None] | None = None,
    ) -> AdversarialTrainer:
        """Adversarially train ``model`` in place with ``optimizer``; returns ``self``.

        Args:
            model: The user's classifier (logits out); moved to ``device`` and left in eval mode.
            optimizer: The user's optimiser over ``model``'s parameters.
            data: An iterable of ``(x, y)`` batches (a torch ``DataLoader``, iterated once per
                epoch), or a pair of arrays ``(x, y)`` shuffled under ``seed`` into ``batch_size``
                batches.
            epochs: Passes over the data, >= 1.
            batch_size: Rows per batch when ``data`` is a pair of arrays.
            bounds: Valid input range ``(low, high)``; the data must lie within it.
            device: Where to train (``"cpu"`` unless you ask for ``"cuda"``).
            scheduler: A learning-rate scheduler, stepped once per epoch.
            progress: Called with each epoch's :class:`EpochRecord`.

        Raises:
            InvalidParameterError: A parameter is out of its domain, or the data is malformed or
                outside ``bounds``.
        """
        if not isinstance(model, torch.nn.Module):
            raise invalid_parameter("model", _OWNER, "a torch.nn.Module", type(model).__name__)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise invalid_parameter("optimizer", _OWNER, "a torch.optim.Optimizer", type(optimizer).__name__)
        epochs = check_int(epochs, "epochs", _OWNER)
        batch_size = check_int(batch_size, "batch_size", _OWNER)
        low, high = check_bounds(bounds, _OWNER)
        dev = torch.device(device)
        model.to(dev)
        self._generator = None
        history: list[EpochRecord] = []
        batches = self._batches(data, batch_size, dev)
        for epoch in range(epochs):
            start = time.perf_counter()
            total = clean_ok = adv_ok = seen = 0.0
            for x, y in batches():
                if x.min() < low or x.max() > high:
                    raise InvalidParameterError(
                        f"Training inputs must lie within bounds ({low}, {high}); got values in "
                        f"[{float(x.min())}, {float(x.max())}]. Pass the data's bounds, or scale it."
                    )
                loss, logits_clean, logits_adv = self._objective(model, x, y, (low, high))
                optimizer.zero_grad(set_to_none=True)
                torch.autograd.backward(loss)
                optimizer.step()
                n = y.shape[0]
                total += float(loss.detach()) * n
                clean_ok += float((logits_clean.argmax(1) == y).sum())
                adv_ok += float((logits_adv.argmax(1) == y).sum())
                seen += n
            if seen == 0:
                raise InvalidParameterError("The training data yielded no batch; pass at least one sample.")
            if scheduler is not None:
                scheduler.step()
            record = EpochRecord(
                epoch=epoch,
                loss=total / seen,
                clean_accuracy=clean_ok / seen,
                adv_accuracy=adv_ok / seen,
                seconds=time.perf_counter() - start,
            )
            history.append(record)
            if progress is not None:
                progress(record)
        model.eval()
        self._history = history
        self._model = model
        return self

    def _batches(
        self, data: Iterable[Any] | tuple[Any, Any], batch_size: int, device: torch.device
    ) -> Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]:
        if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray | torch.Tensor):
            # A copy: read-only numpy arrays (e.g. a Dataset's) cannot back a tensor safely.
            x_all, y_all = torch.tensor(np.asarray(data[0])), torch.tensor(np.asarray(data[1]))
            if not x_all.is_floating_point():
                raise invalid_parameter("data", _OWNER, "floating-point inputs x", str(x_all.dtype))
            if y_all.dim() != 1 or y_all.shape[0] != x_all.shape[0] or y_all.is_floating_point():
                raise invalid_parameter(
                    "data", _OWNER, f"integer labels y of shape ({x_all.shape[0]},)", tuple(y_all.shape)
                )
            x_all, y_all = x_all.to(device), y_all.to(device=device, dtype=torch.long)
            shuffle = torch.Generator().manual_seed(self.seed)

            def from_arrays() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
                order = torch.randperm(x_all.shape[0], generator=shuffle).to(device)
                for i in range(0, x_all.shape[0], batch_size):
                    rows = order[i : i + batch_size]
                    yield x_all[rows], y_all[rows]

            return from_arrays

        def from_loader() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
            for batch in data:
                if not isinstance(batch, tuple | list) or len(batch) < 2:
                    raise invalid_parameter("data", _OWNER, "batches of (x, y)", type(batch).__name__)
                yield (
                    torch.as_tensor(batch[0]).to(device),
                    torch.as_tensor(batch[1]).to(device=device, dtype=torch.long),
                )

        return from_loader
