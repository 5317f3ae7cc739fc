"""``mlarmor scan``: static scan of model files and folders."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mlarmor.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    check_format,
    check_output,
    emit_report,
    exit_for,
    fail,
    handles_errors,
    parse_severity,
    progress_reporter,
    write_output,
)
from mlarmor.report import print_report
from mlarmor.scan import Limits, Policy
from mlarmor.scan import scan as run

__all__ = ["scan"]

_DEFAULT = Limits()


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
        from mlarmor.schema import Report

        write_output(json.dumps(Report.model_json_schema(), indent=2), output)
        raise typer.Exit(EXIT_OK)
    if not paths:
        raise fail("no path given.", "pass one or more model files or folders, e.g. `mlarmor scan model.pt`")
    check_format(output_format)
    check_output(output, "--output")
    threshold = parse_severity(fail_on)
    policy = Policy.from_file(policy_file) if policy_file else Policy()
    limits = Limits(
        max_depth=max_depth,
        max_members=max_members,
        max_total_bytes=max_total_bytes,
        max_member_bytes=max_member_bytes,
        max_pickle_calls=max_pickle_calls,
        max_pickle_memory=max_pickle_memory,
    )
    with progress_reporter() as progress:
        result = run(paths, policy=policy, limits=limits, progress=progress)
    report = result.to_report(metadata={"fail_on": threshold.label})
    emit_report(report, output_format, output, lambda out: print_report(report, out, verbose=verbose))
    if report.errors:
        raise typer.Exit(EXIT_ERROR)
    raise exit_for(report, threshold)
