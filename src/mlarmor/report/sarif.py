"""SARIF 2.1.0 output, accepted by GitHub code scanning."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mlarmor import __version__
from mlarmor.findings import Finding, Severity
from mlarmor.risk.catalogue import ATLAS, OWASP_ML
from mlarmor.scan.rules import ALL_RULES, rule_by_id
from mlarmor.schema import Report

__all__ = ["to_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.NONE: "none",
}
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.NONE: "0.0",
}


def _uri(path: str | None) -> str:
    if not path:
        return "unknown"
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.resolve().as_uri() if p.is_absolute() or p.exists() else p.as_posix()


def _rule_descriptor(rule_id: str, sample: Finding) -> dict[str, Any]:
    rule = rule_by_id(rule_id)
    severity = rule.severity if rule else sample.severity
    title = rule.title if rule else sample.title
    description = rule.description if rule else sample.description or sample.title
    mitigations = list(rule.mitigations) if rule else sample.mitigations
    atlas = list(rule.atlas) if rule else sample.atlas
    owasp = list(rule.owasp) if rule else sample.owasp
    tags = [
        "security",
        *(f"{a} {ATLAS.get(a, '')}".strip() for a in atlas),
        *(f"OWASP-{o} {OWASP_ML.get(o, '')}".strip() for o in owasp),
    ]
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in rule_id.replace(".", "-").split("-")),
        "shortDescription": {"text": title},
        "fullDescription": {"text": description},
        "help": {
            "text": "\n".join(f"- {m}" for m in mitigations) or description,
            "markdown": "\n".join(f"- {m}" for m in mitigations) or description,
        },
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {"tags": tags, "security-severity": _SECURITY_SEVERITY[severity], "precision": "high"},
    }


def to_sarif(report: Report) -> str:
    """Render ``report`` as a SARIF 2.1.0 log with one run."""
    findings = report.all_findings()
    rule_ids: list[str] = []
    samples: dict[str, Finding] = {}
    for f in findings:
        if f.id not in samples:
            samples[f.id] = f
            rule_ids.append(f.id)
    known = [r.id for r in ALL_RULES if r.id in samples]
    ordered = known + [r for r in rule_ids if r not in known]
    index = {rid: i for i, rid in enumerate(ordered)}
    results = []
    for f in findings:
        # GitHub code scanning needs region.startLine to show a result (GH1003); model files are binary,
        # so the byte offset goes into the message and the properties instead of a binary region.
        location: dict[str, Any] = {
            "physicalLocation": {
                "artifactLocation": {"uri": _uri(f.location.path)},
                "region": {"startLine": 1},
            }
        }
        if f.location.member:
            location["logicalLocations"] = [{"fullyQualifiedName": f.location.member, "kind": "member"}]
        text = f.title
        if f.location.member:
            text += f" (in {f.location.member})"
        if f.location.offset is not None:
            text += f" at byte offset {f.location.offset}"
        fingerprint = hashlib.sha256(
            f"{f.id}|{f.location.path}|{f.location.member}|{f.title}".encode()
        ).hexdigest()
        results.append(
            {
                "ruleId": f.id,
                "ruleIndex": index[f.id],
                "level": _LEVEL[f.severity],
                "message": {"text": text},
                "locations": [location],
                "partialFingerprints": {"mlarmorFinding/v1": fingerprint},
                "properties": {
                    "severity": f.severity.label,
                    "atlas": f.atlas,
                    "owasp": f.owasp,
                    "evidence": f.evidence,
                },
            }
        )
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlarmor",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": "https://github.com/mlarmor/mlarmor",
                        "rules": [_rule_descriptor(rid, samples[rid]) for rid in ordered],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(os.getcwd()).resolve().as_uri() + "/"}},
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": not report.errors,
                        "toolExecutionNotifications": [
                            {"message": {"text": e}, "level": "error"} for e in report.errors
                        ],
                    }
                ],
            }
        ],
    }
    return json.dumps(log, indent=2, default=str)
