"""Shared fixtures: nothing here downloads anything; models are trained in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A folder that a malicious payload would write into if anything ever ran it."""
    folder = tmp_path / "canary"
    folder.mkdir()
    yield folder
    assert sorted(p.name for p in folder.iterdir()) == [], "a scanned payload was executed"
