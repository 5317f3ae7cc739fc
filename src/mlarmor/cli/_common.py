"""Shared CLI plumbing: error handling, consoles and output options."""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mlarmor import _progress
from mlarmor.errors import InvalidParameterError, MlarmorError, MlarmorWarning
from mlarmor.findings import Finding, Severity

if TYPE_CHECKING:
    from mlarmor.schema import Report
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
    "INPUT_SHAPE",
    "LABEL_COLUMN",
    "MEAN",
    "OUTPUT",
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
    "parse_params",
    "parse_severity",
    "parse_shape",
    "print_finding",
    "progress_bar",
    "progress_reporter",
    "status",
    "write_output",
    "write_side_file",
]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shells' convention

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
            with warnings.catch_warnings():
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


def write_output(text: str, output: Path | None, *, option: str = "--output") -> bool:
    """Write ``text`` to ``output`` (atomically) or to standard output; whether it was written.

    Nothing measured is thrown away when the file cannot be written at the end of a run: the report
    (``--output``) goes to standard output instead, before the exit-2 error; a side file (a plot, an
    image) is skipped with a warning and the run goes on to its report.
    """
    body = text if text.endswith("\n") else text + "\n"
    if output is None:
        sys.stdout.write(body)
        sys.stdout.flush()
        return True
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(output)
    except OSError as e:
        why = e.strerror or str(e)
        if option == "--output":
            sys.stdout.write(body)
            sys.stdout.flush()
            raise fail(
                f"cannot write {output}: {why}; the report was printed above instead",
                f"choose a writable {option} path",
            ) from None
        err_console.print(
            f"[yellow]warning:[/] cannot write {option} {output}: {why}; skipped", highlight=False
        )
        return False
    return True


def write_side_file(text: str, path: Path, option: str, what: str) -> None:
    """Write a plot or an image next to the report and say so (a warning when it cannot be written)."""
    if write_output(text, path, option=option):
        err_console.print(f"{what} written to {path}", highlight=False)


def check_output(path: Path | None, option: str, suffixes: tuple[str, ...] = ()) -> None:
    """Refuse an output path before a run that can take minutes.

    A folder, a place that cannot be written, or a name whose extension says another format than the
    option writes (``--plot x.png`` for an SVG) is a usage error before any work starts.
    """
    if path is None:
        return
    if suffixes and path.suffix.lower() not in suffixes:
        example = path.with_suffix(suffixes[0]).name
        raise fail(
            f"{option} writes {suffixes[0].lstrip('.').upper()}, but {path} is named "
            f"{path.suffix or 'without an extension'}.",
            f"give a name ending in {' or '.join(suffixes)}, e.g. {option} {example}",
        )
    if path.is_dir():
        raise fail(f"{option} {path} is a folder.", f"give a file name, e.g. {option} {path / 'out'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(
            f"cannot write {option} {path}: {e.strerror or e}.", f"choose a writable {option} path"
        ) from None
    if not os.access(path.parent, os.W_OK):
        raise fail(
            f"cannot write {option} {path}: its folder is not writable.", f"choose a writable {option} path"
        )


def check_format(value: str, formats: tuple[str, ...] = ("table", "json", "sarif")) -> str:
    """A ``--format`` value, or the usage error that lists the valid ones."""
    if value not in formats:
        raise fail(f"unknown --format {value!r}.", f"use one of: {', '.join(formats)}")
    return value


def parse_severity(value: str) -> Severity:
    """A ``--fail-on`` value as a :class:`Severity` (a usage error when unknown)."""
    try:
        return Severity.parse(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """An ``--input-shape`` such as ``1,8,8`` or ``1x8x8``; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise fail(
            f"--input-shape {text!r} is not a shape.", "give positive integers, e.g. --input-shape 1,8,8"
        )
    return shape


def parse_params(items: list[str] | None, option: str = "--param") -> dict[str, object]:
    """Repeated ``KEY=VALUE`` options as a dict; values are JSON when they parse (lists become tuples)."""
    out: dict[str, object] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise fail(
                f"{option} {item!r} is not KEY=VALUE.", f"e.g. {option} n_queries=1000 {option} steps=20"
            )
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = tuple(value) if isinstance(value, list) else value
    return out


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on a terminal's stderr while the block runs; nothing when output is redirected."""
    if err_console.is_terminal:
        with err_console.status(message):
            yield
    else:
        yield


def print_finding(finding: Finding, out: Console, *, note: str = "", mitigations: bool = True) -> None:
    """A finding as the table views show it: severity and title, ATLAS/OWASP ids, mitigations."""
    out.print(f"[bold]{finding.severity.label.upper()}[/] {finding.title}{note}", highlight=False)
    out.print(f"  ATLAS {', '.join(finding.atlas)} · OWASP {', '.join(finding.owasp)}", highlight=False)
    if mitigations:
        for mitigation in finding.mitigations:
            out.print(f"  - {mitigation}", highlight=False)


def progress_bar(*, info: bool = False) -> Progress:
    """A transient progress bar on stderr, silent when stderr is not a terminal.

    With ``info`` a free-text column shows each task's ``info`` field (e.g. the last epoch's loss).
    """
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    return Progress(
        *columns,
        TimeElapsedColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
        transient=True,
    )


@contextlib.contextmanager
def progress_reporter() -> Iterator[_progress.Progress]:
    """A :class:`mlarmor._progress.Progress` drawn as transient bars on stderr, one per step.

    A step with a known length gets a bar with its remaining-time estimate, one without a pulsing
    bar; a step disappears when it is done. Silent when stderr is not a terminal.
    """
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    bar = Progress(*columns, console=err_console, disable=not err_console.is_terminal, transient=True)
    tasks: dict[str, TaskID] = {}

    def report(step: str, done: int, total: int | None, info: str = "") -> None:
        task = tasks.get(step)
        if task is None:
            task = tasks[step] = bar.add_task(step, total=total, info=info)
        bar.update(task, completed=done, total=total, info=info)
        if total is not None and done >= total:
            bar.remove_task(tasks.pop(step))

    with bar:
        yield report


def load_model(
    spec: str,
    *,
    bounds: tuple[float, float],
    input_shape: tuple[int, ...],
    weights: Path | None = None,
    classes: int | None = None,
    trust: bool = False,
    mean: list[float] | None = None,
    std: list[float] | None = None,
) -> Target:
    """Scan and load a ``--model`` (with a spinner), its errors shortened to one paragraph."""
    from mlarmor.targets import load_target

    with status(f"scanning and loading {spec}"), one_paragraph():
        return load_target(
            spec,
            bounds=bounds,
            weights=weights,
            num_classes=classes,
            trust=trust,
            mean=mean or None,
            std=std or None,
            input_shape=input_shape,
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


def emit_report(
    report: Report, output_format: str, output: Path | None, table: Callable[[Console], None]
) -> None:
    """Write ``report`` as JSON or SARIF, or draw it with ``table`` (to the terminal, or to ``output``)."""
    from mlarmor.report import to_json, to_sarif

    if output_format == "json":
        write_output(to_json(report), output)
    elif output_format == "sarif":
        write_output(to_sarif(report), output)
    elif output is not None:
        buffer = io.StringIO()
        table(Console(file=buffer, width=120, no_color=True))
        write_output(buffer.getvalue(), output)
    else:
        table(console)


def exit_for(report: Report, threshold: Severity) -> typer.Exit:
    """The exit to raise: 1 when a finding reaches ``threshold`` (and is above none), else 0."""
    reached = report.severity >= threshold and report.severity > Severity.NONE
    return typer.Exit(EXIT_FINDINGS if reached else EXIT_OK)


# Options that mean the same in every verb that loads a model and data (one definition, one help text).
WEIGHTS = typer.Option(None, "--weights", help="State dict for a file.py:factory model.")
LABEL_COLUMN = typer.Option(None, "--label-column", help="Label column of a CSV/Parquet table.")
BOUNDS = typer.Option(
    None, "--bounds", help="Valid input range LOW HIGH. Default: the data's.", show_default=False
)
CLASSES = typer.Option(None, "--classes", help="Number of classes, where it cannot be inferred.")
MEAN = typer.Option(None, "--mean", help="Normalisation mean (repeat per channel).")
STD = typer.Option(None, "--std", help="Normalisation std (repeat per channel).")
INPUT_SHAPE = typer.Option(None, "--input-shape", help="Shape of one input, e.g. 1,8,8. Default: the data's.")
TRUST = typer.Option(False, "--trust", help="Load the model even if the scan finds it unsafe.")
FORMAT = typer.Option("table", "--format", "-f", help="Output: table, json or sarif.")
OUTPUT = typer.Option(None, "--output", "-o", help="Write the report to this file.")
FAIL_ON = typer.Option(
    "high",
    "--fail-on",
    help="Exit 1 when a finding is at or above: low, medium, high, critical; none = any finding above none.",
)
