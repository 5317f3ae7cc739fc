"""CLI output: consoles, exit codes, errors, report and file writing, progress (private).

Re-exported by :mod:`mlarmor.cli._common`, the one import the commands use.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

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
from mlarmor.findings import Finding, Severity

if TYPE_CHECKING:
    from mlarmor.schema import Report

__all__ = [
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "OutputFormat",
    "check_format",
    "check_output",
    "console",
    "emit_report",
    "err_console",
    "exit_for",
    "fail",
    "live",
    "print_finding",
    "progress_bar",
    "progress_reporter",
    "set_quiet",
    "status",
    "write_output",
    "write_side_file",
]

OutputFormat = Literal["table", "json", "sarif"]
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shells' convention
console = Console()
err_console = Console(stderr=True)
_quiet = [False]  # set by the root --quiet option on every invocation


def set_quiet(quiet: bool) -> None:
    """Silence (or not) spinners and progress bars for this invocation (``mlarmor --quiet``)."""
    _quiet[0] = quiet


def live() -> bool:
    """Whether to draw spinners and progress bars: stderr is a terminal and ``--quiet`` is off."""
    return err_console.is_terminal and not _quiet[0]


def fail(message: str, hint: str | None = None) -> typer.Exit:
    """Print a clear error (what was wrong, what to do) and return the exit-2 exception to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"[dim]hint:[/] {hint}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_ERROR)


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


def print_finding(finding: Finding, out: Console, *, note: str = "", mitigations: bool = True) -> None:
    """A finding as the table views show it: severity and title, ATLAS/OWASP ids, mitigations."""
    out.print(f"[bold]{finding.severity.label.upper()}[/] {finding.title}{note}", highlight=False)
    out.print(f"  ATLAS {', '.join(finding.atlas)} · OWASP {', '.join(finding.owasp)}", highlight=False)
    if mitigations:
        for mitigation in finding.mitigations:
            out.print(f"  - {mitigation}", highlight=False)


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on a terminal's stderr while the block runs; nothing when output is redirected."""
    if live():
        with err_console.status(message):
            yield
    else:
        yield


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
        disable=not live(),
        transient=True,
    )


@contextlib.contextmanager
def progress_reporter() -> Iterator[_progress.Progress]:
    """A :class:`mlarmor._progress.Progress` drawn as transient bars on stderr, one per step.

    A step with a known length gets a bar with its remaining-time estimate, one without a pulsing
    bar; a step disappears when it is done. Silent with ``--quiet`` or when stderr is not a terminal.
    """
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    bar = Progress(*columns, console=err_console, disable=not live(), transient=True)
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
