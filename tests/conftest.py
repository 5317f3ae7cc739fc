"""Shared fixtures: nothing here downloads anything; models are trained in seconds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One compute thread per xdist worker: `pytest -n 2` on 2 cores would otherwise run 2 workers x
    # 2 OpenMP threads, and oversubscribed OpenMP spins instead of working. Set before torch loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Apply the single-thread rule above to torch too, when it was imported before this file."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A folder that a malicious payload would write into if anything ever ran it."""
    folder = tmp_path / "canary"
    folder.mkdir()
    yield folder
    assert sorted(p.name for p in folder.iterdir()) == [], "a scanned payload was executed"


@pytest.fixture(scope="session")
def user_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's folder with ``mynet.py``, ``custom_tx.py``, whole pickled models of their classes,
    ``data.csv`` and ``expected.npz`` (see ``tests/_user_modules.py``)."""
    from _user_modules import write_user_folder

    return write_user_folder(tmp_path_factory.mktemp("user") / "project")


@pytest.fixture
def no_user_modules() -> Iterator[None]:
    """Fails a test that changes ``sys.path``; forgets the user's modules after it (the library keeps
    them imported by design, see ``load_target``), so that the next test starts without them."""
    import sys

    user = ("mynet", "custom_tx")
    assert not any(m in sys.modules for m in user), "a previous test leaked a user module"
    path = list(sys.path)
    yield
    changed = sys.path != path
    for m in user:
        sys.modules.pop(m, None)
    sys.path[:] = path
    assert not changed, "sys.path was not restored"
