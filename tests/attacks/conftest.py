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


CONTRACT_PARAMS: dict[str, dict[str, object]] = {"square": {"n_queries": 300}}
"""Per-attack settings that keep the contract suite quick, merged into ``test_contract.FAST``."""


@pytest.fixture(scope="session")
def surrogate_module(digits: Digits):
    """An MLP trained like the toy one with another seed: the attacker's own model for transfer."""
    return train(mlp(), digits, seed=1)


@pytest.fixture(autouse=True)
def _contract_params(request):
    """Give attacks run by a module with a ``FAST`` table their test settings from here.

    Settings that are objects built from fixtures (the transfer attack's surrogate) are made here,
    and only for the tests that run that attack.
    """
    fast = getattr(request.module, "FAST", None)
    callspec = getattr(request.node, "callspec", None)
    name = callspec.params.get("name") if callspec is not None else None
    if not isinstance(fast, dict) or not isinstance(name, str):
        yield
        return
    extra = dict(CONTRACT_PARAMS.get(name, {}))
    if name == "transfer":
        extra["surrogate"] = ToyTarget(request.getfixturevalue("surrogate_module"), name="surrogate")
    saved = fast.get(name)
    fast[name] = {**extra, **(saved or {})}
    yield
    if saved is None:
        fast.pop(name, None)
    else:
        fast[name] = saved
