"""Fixtures for the adapter tests: tiny models trained in seconds on scikit-learn's bundled data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from mlarmor.models import digits_mlp, fit_classifier

DIGITS_MEAN = 0.3
DIGITS_STD = 0.4


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Train on one thread: on a small, busy machine, spinning BLAS/OpenMP pools cost seconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


class Net(torch.nn.Module):
    """A small MLP on 1x8x8 digits images (the zoo's ``digits_mlp(hidden=32)``, as ``body``)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = digits_mlp(hidden=32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """Digits as float32 images ``(n, 1, 8, 8)`` in [0, 1] and int64 labels."""
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64)


@pytest.fixture(scope="session")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    """Breast cancer features scaled to [0, 1] and 0/1 labels."""
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    return x.astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="session")
def torch_net(digits: tuple[np.ndarray, np.ndarray]) -> Net:
    """An MLP trained on normalised digits ((x - DIGITS_MEAN) / DIGITS_STD), about 95% accurate."""
    x, y = digits
    with single_thread():
        return fit_classifier(Net(), (x - DIGITS_MEAN) / DIGITS_STD, y, epochs=150, batch_size=None, lr=0.01)


@pytest.fixture(scope="session")
def digits_lr(digits: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    """Logistic regression on flattened digits."""
    x, y = digits
    with single_thread():
        return LogisticRegression(max_iter=300).fit(x.reshape(len(x), -1), y)
