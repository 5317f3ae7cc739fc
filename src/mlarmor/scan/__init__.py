"""Static scanning of model files: find code that would run on load, without loading anything."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from mlarmor._progress import Progress
from mlarmor.findings import Severity, max_severity
from mlarmor.scan._base import Limits, Rule, Scope
from mlarmor.scan._engine import Scanner, sniff
from mlarmor.scan.policy import Policy, Verdict
from mlarmor.scan.rules import ALL_RULES, rule_by_id
from mlarmor.schema import FileResult, Report, Sections
from mlarmor.schema.sections import ScanSection

__all__ = [
    "ALL_RULES",
    "FileResult",
    "Limits",
    "Policy",
    "Rule",
    "ScanResult",
    "Scanner",
    "Scope",
    "Verdict",
    "rule_by_id",
    "scan",
    "scan_paths",
    "sniff",
]


def scan_paths(
    paths: Iterable[str | PathLike[str]], *, policy: Policy | None = None, limits: Limits | None = None
) -> list[FileResult]:
    """Scan files and folders with the default (or given) policy and limits."""
    return Scanner(policy=policy or Policy(), limits=limits or Limits()).scan_paths(paths)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of :func:`scan`: one :class:`FileResult` per file, in the order scanned.

    Attributes:
        paths: The paths given (files and folders).
        files: What the scanner found in each file.
    """

    paths: tuple[str, ...]
    files: tuple[FileResult, ...]

    @property
    def errors(self) -> list[str]:
        """The files that could not be read, each with the reason."""
        return [f"{r.path}: {r.findings[0].description}" for r in self.files if r.format == "unreadable"]

    @property
    def severity(self) -> Severity:
        """The highest verdict among the files."""
        return max_severity(f for r in self.files for f in r.findings)

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The ``kind="scan"`` report: ``files[]`` with their verdicts and findings, and ``errors``."""
        meta = {**(metadata or {}), "paths": list(self.paths)}
        counts = {s.label: 0 for s in Severity}
        for f in self.files:
            counts[f.severity.label] += 1
        section = ScanSection(
            paths=list(self.paths), files=len(self.files), by_severity=counts, unreadable=len(self.errors)
        )
        return Report(
            kind="scan",
            files=list(self.files),
            errors=self.errors,
            metadata=meta,
            sections=Sections(scan=section),
        )


def scan(
    paths: Iterable[str | PathLike[str]],
    *,
    policy: Policy | None = None,
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Scan model files and folders (recursively) without loading, importing or rendering anything.

    The function behind ``mlarmor scan``. Formats are recognised by content; a file that cannot be
    read becomes a result with an error finding (and is listed in :attr:`ScanResult.errors`).

    Args:
        paths: Files and folders.
        policy: Extra allowed globals and rule settings (:meth:`Policy.from_file`); the default
            policy when ``None``.
        limits: Size, depth and count limits; the defaults when ``None``.
        progress: Receives ``("scanning", done, total, file name)`` after each file.

    Example:
        >>> result = scan(["model.pt"])  # doctest: +SKIP
        >>> result.severity.label, result.to_report().files[0].format  # doctest: +SKIP
    """
    given = [str(p) for p in paths]
    scanner = Scanner(policy=policy or Policy(), limits=limits or Limits())
    files = list(scanner.iter_files(given))
    done = 0

    def advance(result: FileResult) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("scanning", done, len(files), Path(result.path).name)

    return ScanResult(tuple(given), tuple(scanner.scan_paths(files, on_result=advance)))
