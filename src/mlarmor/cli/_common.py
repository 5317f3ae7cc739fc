"""Shared CLI plumbing: error handling and model loading.

The output helpers (consoles, exit codes, report and file writing, progress) live in
:mod:`mlarmor.cli._output` and the shared options with their parsers in :mod:`mlarmor.cli._options`;
both are re-exported here, so that a command imports from one place.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from mlarmor._syspath import imports_restored, keep_on_path
from mlarmor.cli._options import (
    BOUNDS,
    CLASSES,
    FAIL_ON,
    FORMAT,
    HEADER_ENV,
    HTTP_OUTPUT,
    INPUT_SHAPE,
    LABEL_COLUMN,
    MEAN,
    OUTPUT,
    PYTHON_PATH,
    REQUEST_KEY,
    RESPONSE_KEY,
    STD,
    TRUST,
    WEIGHTS,
    parse_classes,
    parse_header_env,
    parse_params,
    parse_severity,
    parse_shape,
)
from mlarmor.cli._output import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    OutputFormat,
    check_format,
    check_output,
    console,
    emit_report,
    err_console,
    exit_for,
    fail,
    print_finding,
    progress_bar,
    progress_reporter,
    status,
    write_output,
    write_side_file,
)
from mlarmor.errors import InvalidParameterError, MlarmorError, MlarmorWarning

if TYPE_CHECKING:
    from mlarmor.targets import Target

__all__ = [
    "BOUNDS",
    "CLASSES",
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "FAIL_ON",
    "FORMAT",
    "HEADER_ENV",
    "HTTP_OUTPUT",
    "INPUT_SHAPE",
    "LABEL_COLUMN",
    "MEAN",
    "OUTPUT",
    "PYTHON_PATH",
    "REQUEST_KEY",
    "RESPONSE_KEY",
    "STD",
    "TRUST",
    "WEIGHTS",
    "OutputFormat",
    "check_format",
    "check_output",
    "console",
    "emit_report",
    "err_console",
    "exit_for",
    "fail",
    "handles_errors",
    "load_model",
    "one_paragraph",
    "parse_classes",
    "parse_header_env",
    "parse_params",
    "parse_severity",
    "parse_shape",
    "print_finding",
    "progress_bar",
    "progress_reporter",
    "shown",
    "status",
    "write_output",
    "write_side_file",
]


P = ParamSpec("P")
R = TypeVar("R")


def _option_name(command: Callable[..., object], parameter: str | None) -> str | None:
    """The command's option for a Python parameter name (``epsilon`` -> ``--epsilon``), if it has one."""
    declared = inspect.signature(command).parameters.get(parameter or "")
    if declared is None or not isinstance(declared.default, typer.models.OptionInfo):
        return None
    longs = [d for d in declared.default.param_decls or () if d.startswith("--")]
    return longs[0].split("/")[0] if longs else "--" + declared.name.replace("_", "-")


def _in_option_words(command: Callable[..., object], e: InvalidParameterError) -> typer.Exit | None:
    """A library parameter error worded for the command line, when the parameter is an option."""
    option = _option_name(command, e.parameter)
    if option is None:
        return None
    if e.choices:
        return fail(f"unknown {option} {e.got!r}.", f"use one of: {', '.join(e.choices)}")
    if e.got is None:
        return fail(f"this run needs {option}: {e.expected}.", e.hint or None)
    return fail(f"{option} must be {e.expected}, got {e.got!r}.", e.hint or None)


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn mlarmor errors and unexpected failures into a message and exit code 2, never a traceback.

    A library :class:`~mlarmor.errors.InvalidParameterError` about a parameter that is also an option
    of the command is worded with the option's name; :class:`~mlarmor.errors.MlarmorWarning` is
    printed as ``warning: ...`` on stderr.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with warnings.catch_warnings(), imports_restored():
                warnings.simplefilter("always", MlarmorWarning)
                warnings.showwarning = _show_warning  # restored on exit
                return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except typer.BadParameter as e:  # a bad option value found inside the command
            raise fail(e.format_message()) from None
        except InvalidParameterError as e:
            raise (_in_option_words(func, e) or fail(str(e))) from None
        except MlarmorError as e:
            raise fail(str(e)) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as e:  # an internal bug must still not show a traceback to users
            raise fail(
                f"internal error: {type(e).__name__}: {e}",
                "please report this at the mlarmor issue tracker with the command you ran",
            ) from None

    return wrapper


def shown(spec: str) -> str:
    """A ``--model`` as reports may show it: a URL without its credentials, query or fragment."""
    if spec.lower().startswith(("http://", "https://")):
        from mlarmor.targets.http import redact_url

        return redact_url(spec)
    return spec


def load_model(
    spec: str,
    *,
    bounds: tuple[float, float],
    input_shape: tuple[int, ...],
    weights: Path | None = None,
    classes: str | int | None = None,
    trust: bool = False,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    header_env: list[str] | None = None,
    http_output: str = "probabilities",
    request_key: str = "inputs",
    response_key: str | None = None,
    python_path: list[Path] | None = None,
) -> Target:
    """Scan and load a ``--model`` (with a spinner); ``--python-path`` stays until the command ends."""
    from mlarmor.targets import load_target

    headers = parse_header_env(header_env)
    keep_on_path(python_path or [])
    count, names = parse_classes(classes)
    with status(f"scanning and loading {shown(spec)}"), one_paragraph():
        return load_target(
            spec,
            bounds=bounds,
            weights=weights,
            num_classes=count,
            class_labels=names,
            trust=trust,
            mean=mean or None,
            std=std or None,
            input_shape=input_shape,
            headers=headers,
            output=http_output,  # type: ignore[arg-type]  # checked by HttpTarget
            request_key=request_key,
            response_key=response_key,
            python_path=python_path or None,
        )


@contextlib.contextmanager
def one_paragraph() -> Iterator[None]:
    """Shorten a multi-line error (a TorchScript interpreter trace quoted in it) to one paragraph."""
    try:
        yield
    except MlarmorError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        if len(lines) <= 3:
            raise
        raise type(e)(f"{lines[0]} … {' '.join(lines[-2:])}") from None
