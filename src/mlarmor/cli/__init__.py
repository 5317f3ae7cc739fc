"""The ``mlarmor`` command line: thin Typer commands, one module per verb."""

from __future__ import annotations

from mlarmor.cli.app import app, main

__all__ = ["app", "main"]
