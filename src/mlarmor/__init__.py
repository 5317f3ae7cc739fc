"""mlarmor: find and fix the ways a machine-learning model can be attacked."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
