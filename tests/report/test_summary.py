"""``summary`` agrees with ``severity`` in every kind of report."""

from __future__ import annotations

from mlarmor.findings import Family, Finding, Severity
from mlarmor.schema import FileResult, Report


def _finding(severity: Severity) -> Finding:
    return Finding(id="integrity.wrong-key", family=Family.INTEGRITY, title="t", severity=severity)


def test_a_report_without_files_counts_its_findings() -> None:
    report = Report(kind="verify", findings=[_finding(Severity.CRITICAL), _finding(Severity.CRITICAL)])
    assert report.severity == Severity.CRITICAL
    assert report.summary["critical"] == 2
    assert sum(report.summary.values()) == 2


def test_a_scan_report_counts_files_by_verdict() -> None:
    files = [
        FileResult(path="a.pkl", format="pickle", findings=[_finding(Severity.HIGH), _finding(Severity.LOW)]),
        FileResult(path="b.pkl", format="pickle"),
    ]
    report = Report(kind="scan", files=files)
    assert report.summary == {"none": 1, "low": 0, "medium": 0, "high": 1, "critical": 0}
    assert report.severity == Severity.HIGH


def test_an_empty_report_is_all_zero() -> None:
    assert set(Report().summary.values()) == {0}
