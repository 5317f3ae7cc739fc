"""Shared fixtures: nothing here downloads anything; models are trained in seconds."""

from __future__ import annotations

import os
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
