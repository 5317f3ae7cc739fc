"""Shared CLI plumbing: error handling, consoles and output options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

import typer
from rich.console import Console

from mlarmor.errors import MlarmorError

__all__ = [
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_OK",
    "OutputFormat",
    "console",
    "err_console",
    "fail",
    "handles_errors",
    "write_output",
]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

OutputFormat = Literal["table", "json", "sarif"]

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, hint: str | None = None) -> typer.Exit:
    """Print a clear error (what was wrong, what to do) and return the exit-2 exception to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"[dim]hint:[/] {hint}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_ERROR)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn mlarmor errors and unexpected failures into a message and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except MlarmorError as e:
            raise fail(str(e)) from None
        except KeyboardInterrupt:
            raise fail("interrupted") from None
        except Exception as e:  # an internal bug must still not show a traceback to users
            raise fail(
                f"internal error: {type(e).__name__}: {e}",
                "please report this at the mlarmor issue tracker with the command you ran",
            ) from None

    return wrapper


def write_output(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` (atomically) or to standard output."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        tmp.replace(output)
    except OSError as e:
        raise fail(f"cannot write {output}: {e.strerror or e}", "choose a writable --output path") from None
