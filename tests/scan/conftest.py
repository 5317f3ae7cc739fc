"""Fixtures for scanner tests."""

from __future__ import annotations

import pytest

from mlarmor.scan import Scanner


@pytest.fixture(scope="session")
def scanner() -> Scanner:
    """A scanner with the default policy and limits."""
    return Scanner()
