"""Session fixtures: the digits split and toy models trained on it in a couple of seconds."""

from __future__ import annotations

import pytest
import torch
from _models import Digits, ToyTarget, cnn, load_toy_digits, mlp, train


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; two threads spin against each other on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits() -> Digits:
    return load_toy_digits()


@pytest.fixture(scope="session")
def mlp_module(digits: Digits):
    return train(mlp(), digits)


@pytest.fixture(scope="session")
def cnn_module(digits: Digits):
    return train(cnn(), digits, epochs=10)


@pytest.fixture
def mlp_target(mlp_module) -> ToyTarget:
    """A fresh adapter (query counter at zero) over the session's trained MLP."""
    return ToyTarget(mlp_module, name="toy-mlp")


@pytest.fixture
def cnn_target(cnn_module) -> ToyTarget:
    return ToyTarget(cnn_module, name="toy-cnn")
