"""``mlarmor scan``: static scan of model files and folders."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlarmor.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    console,
    err_console,
    fail,
    handles_errors,
    write_output,
)
from mlarmor.findings import Severity
from mlarmor.report import print_report, to_json, to_sarif
from mlarmor.scan import Limits, Policy, Scanner
from mlarmor.schema import FileResult, Report

__all__ = ["scan"]

_FORMATS = ("table", "json", "sarif")
_DEFAULT = Limits()


def _severity(value: str) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


@handles_errors
def scan(
    paths: list[Path] = typer.Argument(
        None, help="Model files or folders to scan (folders recursively).", show_default=False
    ),
    output_format: str = typer.Option("table", "--format", "-f", help="Output: table, json or sarif."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    fail_on: str = typer.Option(
        "high", "--fail-on", help="Exit 1 when a finding is at or above: low, medium, high, critical."
    ),
    policy_file: Path | None = typer.Option(None, "--policy", help="TOML/YAML file allowing extra globals."),
    max_depth: int = typer.Option(
        _DEFAULT.max_depth, help="Nesting limit for archives and embedded streams."
    ),
    max_members: int = typer.Option(_DEFAULT.max_members, help="Archive members examined per file."),
    max_total_bytes: int = typer.Option(_DEFAULT.max_total_bytes, help="Bytes decompressed per file."),
    max_member_bytes: int = typer.Option(_DEFAULT.max_member_bytes, help="Decompressed size of one member."),
    max_pickle_calls: int = typer.Option(_DEFAULT.max_pickle_calls, help="Calls recorded per pickle."),
    max_pickle_memory: int = typer.Option(
        _DEFAULT.max_pickle_memory, help="Memory ceiling (bytes) for analysing one large pickle stream."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show low-severity details too."),
    schema: bool = typer.Option(False, "--schema", help="Print the JSON Schema of the report and exit."),
) -> None:
    """Scan model files without loading them: find code that would run on load.

    Pickle, PyTorch (zip, legacy, tar, TorchScript), joblib, NumPy, Keras, ONNX, GGUF, safetensors and
    zip/tar/7z archives are recognised by content. Nothing is ever unpickled, imported or rendered.

    Example: `mlarmor scan model.pt`

    Example: `mlarmor scan models/ --format sarif --output mlarmor.sarif --fail-on medium`

    Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or scan error.
    """
    if schema:
        write_output(json.dumps(Report.model_json_schema(), indent=2), output)
        raise typer.Exit(EXIT_OK)
    if not paths:
        raise fail("no path given.", "pass one or more model files or folders, e.g. `mlarmor scan model.pt`")
    if output_format not in _FORMATS:
        raise fail(f"unknown --format {output_format!r}.", f"use one of: {', '.join(_FORMATS)}")
    threshold = _severity(fail_on)
    policy = Policy.from_file(policy_file) if policy_file else Policy()
    limits = Limits(
        max_depth=max_depth,
        max_members=max_members,
        max_total_bytes=max_total_bytes,
        max_member_bytes=max_member_bytes,
        max_pickle_calls=max_pickle_calls,
        max_pickle_memory=max_pickle_memory,
    )
    scanner = Scanner(policy=policy, limits=limits)
    files = list(scanner.iter_files(paths))
    results: list[FileResult] = []
    show_progress = len(files) > 1 and err_console.is_terminal
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("scanning", total=len(files))

        def advance(result: FileResult) -> None:
            progress.update(task, advance=1, description=f"scanning {Path(result.path).name}")

        results = scanner.scan_paths(files, on_result=advance)
    errors = [f"{r.path}: {r.findings[0].description}" for r in results if r.format == "unreadable"]
    report = Report(
        kind="scan",
        files=results,
        errors=errors,
        metadata={"fail_on": threshold.label, "paths": [str(p) for p in paths]},
    )
    if output_format == "json":
        write_output(to_json(report), output)
    elif output_format == "sarif":
        write_output(to_sarif(report), output)
    else:
        target = console
        if output is not None:
            from rich.console import Console

            with output.open("w", encoding="utf-8") as fh:
                print_report(report, Console(file=fh, width=120, no_color=True), verbose=verbose)
        else:
            print_report(report, target, verbose=verbose)
    if errors:
        raise typer.Exit(2)
    raise typer.Exit(
        EXIT_FINDINGS if report.severity >= threshold and report.severity > Severity.NONE else EXIT_OK
    )
