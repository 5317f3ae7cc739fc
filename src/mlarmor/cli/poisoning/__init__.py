"""``mlarmor poisoning``: simulate data poisoning, find poisoned samples, inspect models for backdoors.

One module per sub-command (``simulate``, ``inspect-model``, ``inspect-data``, ``sanitize``), each a
thin layer over its function in :mod:`mlarmor` (:func:`~mlarmor.simulate_poisoning`,
:func:`~mlarmor.inspect_model`, :func:`~mlarmor.inspect_data`, :func:`~mlarmor.sanitize`).
"""

from __future__ import annotations

import typer

from mlarmor.cli.poisoning.inspect_data import inspect_data
from mlarmor.cli.poisoning.inspect_model import inspect_model
from mlarmor.cli.poisoning.sanitize import sanitize
from mlarmor.cli.poisoning.simulate import simulate

__all__ = ["app"]

app = typer.Typer(
    name="poisoning",
    help="Simulate data poisoning, find poisoned training samples, inspect models for backdoors.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.command("simulate", no_args_is_help=True)(simulate)
app.command("inspect-model", no_args_is_help=True)(inspect_model)
app.command("inspect-data", no_args_is_help=True)(inspect_data)
app.command("sanitize", no_args_is_help=True)(sanitize)
