"""Static scanning of model files: find code that would run on load, without loading anything."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

from mlarmor.scan._base import Limits, Rule, Scope
from mlarmor.scan._engine import Scanner, sniff
from mlarmor.scan.policy import Policy, Verdict
from mlarmor.scan.rules import ALL_RULES, rule_by_id
from mlarmor.schema import FileResult

__all__ = [
    "ALL_RULES",
    "FileResult",
    "Limits",
    "Policy",
    "Rule",
    "Scanner",
    "Scope",
    "Verdict",
    "rule_by_id",
    "scan_paths",
    "sniff",
]


def scan_paths(
    paths: Iterable[str | PathLike[str]], *, policy: Policy | None = None, limits: Limits | None = None
) -> list[FileResult]:
    """Scan files and folders with the default (or given) policy and limits."""
    return Scanner(policy=policy or Policy(), limits=limits or Limits()).scan_paths(paths)
