"""Golden snapshots of the JSON report schema and of a SARIF log: changes must be deliberate.

Regenerate with ``MLARMOR_UPDATE_SNAPSHOTS=1 pytest tests/report`` and bump
``mlarmor.schema.SCHEMA_VERSION`` when the report schema changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlarmor.findings import Family, Finding, Location, Severity
from mlarmor.report import to_json, to_sarif
from mlarmor.schema import SCHEMA_VERSION, FileResult, Report

HERE = Path(__file__).parent
UPDATE = os.environ.get("MLARMOR_UPDATE_SNAPSHOTS") == "1"


def _check(name: str, text: str) -> None:
    path = HERE / "snapshots" / name
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"snapshot {name} was missing and has been written; re-run")
    assert text == path.read_text(), f"{name} changed; regenerate deliberately (see module docstring)"


def _report() -> Report:
    finding = Finding(
        id="pickle.dangerous-global",
        family=Family.TROJAN,
        title="Pickle calls os.system (process)",
        severity=Severity.CRITICAL,
        description="why",
        evidence={"global": "os.system", "calls": 1},
        location=Location(path="models/evil.pkl", offset=21),
        atlas=["AML.T0011.000"],
        owasp=["ML06"],
        mitigations=["Do not load this file."],
    )
    member = finding.model_copy(
        update={
            "location": Location(path="models/evil.pt", member="archive/data.pkl"),
            "id": "archive.zip-tampering",
            "severity": Severity.HIGH,
            "title": "Zip member tampering",
        }
    )
    return Report(
        created_at="2026-01-01T00:00:00+00:00",
        files=[
            FileResult(path="models/evil.pkl", format="pickle", size=57, findings=[finding]),
            FileResult(path="models/evil.pt", format="pytorch-zip", size=900, findings=[member]),
            FileResult(path="models/good.pt", format="pytorch-zip", size=900),
        ],
    )


def test_report_json_schema_snapshot() -> None:
    _check(
        f"report-schema-{SCHEMA_VERSION}.json",
        json.dumps(Report.model_json_schema(), indent=2, sort_keys=True),
    )


def test_report_json_roundtrip() -> None:
    report = _report()
    data = json.loads(to_json(report))
    assert data["severity"] == "critical"
    assert data["summary"] == {"none": 1, "low": 0, "medium": 0, "high": 1, "critical": 1}
    again = Report.model_validate(
        {k: v for k, v in data.items() if k not in {"severity", "summary"}}
        | {"files": [{k: v for k, v in f.items() if k != "severity"} for f in data["files"]]}
    )
    assert again.files[0].findings[0].severity == Severity.CRITICAL


def test_sarif_snapshot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    log = json.loads(to_sarif(_report()))
    log["runs"][0]["originalUriBaseIds"] = {}
    log["runs"][0]["tool"]["driver"]["version"] = "X"
    log["runs"][0]["tool"]["driver"]["semanticVersion"] = "X"
    _check("scan.sarif.json", json.dumps(log, indent=2, sort_keys=True))
    run = log["runs"][0]
    assert [r["level"] for r in run["results"]] == ["error", "error"]
    assert (
        run["results"][1]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "archive/data.pkl"
    )
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] == 1 for r in run["results"])
    assert "at byte offset 21" in run["results"][0]["message"]["text"]
    for rule in run["tool"]["driver"]["rules"]:
        assert float(rule["properties"]["security-severity"]) > 0
