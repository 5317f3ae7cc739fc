"""A tiny Differentiable target over a torch module, and toy models trained on scikit-learn's digits.

The attacks depend only on the Target/Differentiable protocols, so the tests carry their own small
implementation instead of the real adapters. The toy models and their training loop come from
:mod:`mlarmor.models`. Nothing is downloaded: digits ships with scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlarmor.models import digits_cnn, digits_mlp, fit_classifier
from mlarmor.targets.base import Capability

ALL_CAPABILITIES: frozenset[Capability] = frozenset({"gradients", "scores", "labels"})


class ToyTarget:
    """The Differentiable protocol over an ``nn.Module``, with a query counter.

    ``dtype`` is the precision the module runs in: inputs are cast to it inside ``logits``, as a
    real adapter owns its preprocessing.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        num_classes: int = 10,
        bounds: tuple[float, float] = (0.0, 1.0),
        input_shape: tuple[int, ...] | None = (1, 8, 8),
        capabilities: frozenset[Capability] = ALL_CAPABILITIES,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        name: str = "toy",
    ) -> None:
        self._device = torch.device(device)
        self.module = module.to(self._device).eval()
        self._num_classes = num_classes
        self._bounds = bounds
        self._input_shape = input_shape
        self._capabilities = capabilities
        self._dtype = dtype
        self._name = name
        self._queries = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    @property
    def bounds(self) -> tuple[float, float]:
        return self._bounds

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return self._input_shape

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def queries(self) -> int:
        return self._queries

    def reset_queries(self) -> None:
        self._queries = 0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        self._queries += int(x.shape[0])
        return self.module(x.to(self._dtype))

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = self.logits(torch.as_tensor(np.asarray(x, dtype=np.float32), device=self._device))
        return z.argmax(dim=1).cpu().numpy().astype(np.int64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if "scores" not in self._capabilities:
            raise RuntimeError("this toy target offers labels only")
        with torch.no_grad():
            z = self.logits(torch.as_tensor(np.asarray(x, dtype=np.float32), device=self._device))
        return torch.softmax(z.double(), dim=1).cpu().numpy()

    def with_capabilities(self, capabilities: frozenset[Capability]) -> ToyTarget:
        """The same model seen through fewer capabilities."""
        return ToyTarget(
            self.module,
            num_classes=self._num_classes,
            bounds=self._bounds,
            input_shape=self._input_shape,
            capabilities=capabilities,
            dtype=self._dtype,
            device=self._device,
            name=self._name,
        )


class LabelsOnlyTarget:
    """A decision-only target that is not Differentiable at all (no ``logits``, no ``device``)."""

    def __init__(self, inner: ToyTarget) -> None:
        self._inner = inner

    name = property(lambda self: "labels-only")
    capabilities = property(lambda self: frozenset({"labels"}))
    bounds = property(lambda self: self._inner.bounds)
    num_classes = property(lambda self: self._inner.num_classes)
    input_shape = property(lambda self: self._inner.input_shape)
    queries = property(lambda self: self._inner.queries)

    def reset_queries(self) -> None:
        self._inner.reset_queries()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._inner.predict(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raise RuntimeError("labels only")


@dataclass(frozen=True)
class Digits:
    """scikit-learn's digits as 1x8x8 float32 images in [0, 1], split into train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_toy_digits(n_test: int = 400) -> Digits:
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return Digits(x[n_test:], y[n_test:], x[:n_test], y[:n_test])


def mlp() -> nn.Module:
    """The toy MLP: the zoo's digits MLP with one hidden layer of 64 (initialised by ``train``)."""
    return digits_mlp(hidden=64)


def cnn() -> nn.Module:
    """The toy CNN: the zoo's cheaper, stride-2 digits CNN (initialised by ``train``)."""
    return digits_cnn(variant="strided")


def train(module: nn.Module, digits: Digits, *, epochs: int = 20, seed: int = 0) -> nn.Module:
    """Initialise ``module`` from ``seed``, then mini-batch Adam on the training split, on one thread.

    The seed drives both the He (Kaiming) initialisation and the shuffling, through one generator, so
    the toy models are the same from run to run; a couple of seconds on a CPU.
    """
    gen = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.kaiming_uniform_(p, nonlinearity="relu", generator=gen)
        else:
            nn.init.zeros_(p)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit_classifier(
            module, digits.x_train, digits.y_train, epochs=epochs, batch_size=128, lr=1e-2, seed=gen
        )
    finally:
        torch.set_num_threads(threads)


def accuracy(target: ToyTarget, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(target.predict(x) == y))
