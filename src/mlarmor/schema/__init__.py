"""The one versioned report schema (pydantic) behind JSON output, CLI summaries and the HTTP API.

A :class:`Report` is what every verb produces: a common envelope (tool, time, target, findings,
errors, metadata) with one typed section per kind of run in ``sections``
(:mod:`mlarmor.schema.sections`), so that one report can hold several. Single-verb reports also keep
the flat fields they have always had (``files``, ``clean_accuracy``, ``robust_accuracy``,
``attacks``, ``suspicious_indices``, ``scores``, ``infected``, ...). ``schema_version`` follows
semantic versioning: a minor bump adds optional fields, a major bump changes or removes one. The
JSON Schema document is ``Report.model_json_schema()`` (``mlarmor scan --schema`` prints it).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from mlarmor import __version__
from mlarmor.findings import Finding, Severity, SeverityField, max_severity
from mlarmor.schema.sections import Sections, TargetInfo

__all__ = ["SCHEMA_VERSION", "FileResult", "Report", "Sections", "TargetInfo", "ToolInfo"]

SCHEMA_VERSION = "1.4.0"


class ToolInfo(BaseModel):
    """Which program wrote the report."""

    model_config = ConfigDict(frozen=True)

    name: str = "mlarmor"
    version: str = __version__


class FileResult(BaseModel):
    """Everything the scanner learned about one file (or one directory entry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    format: str = Field(description="Detected format, e.g. 'pytorch-zip', 'pickle', 'joblib', 'gguf'.")
    size: int | None = None
    findings: list[Finding] = Field(default_factory=list)
    members: int = Field(default=0, description="Archive members and embedded streams examined.")
    bytes_read: int = Field(default=0, description="Bytes the scanner read or decompressed.")
    seconds: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def severity(self) -> SeverityField:
        """Highest severity among the findings: the file's verdict."""
        return max_severity(self.findings)


class Report(BaseModel):
    """A complete result of one mlarmor run."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = SCHEMA_VERSION
    kind: Literal["scan", "verify", "evasion", "harden", "privacy", "poisoning"] = "scan"
    tool: ToolInfo = Field(default_factory=ToolInfo)
    created_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    target: TargetInfo | None = Field(default=None, description="The model and data assessed.")
    sections: Sections = Field(
        default_factory=Sections, description="One typed section per kind of run the report holds."
    )
    files: list[FileResult] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list, description="Findings not tied to one file.")
    errors: list[str] = Field(default_factory=list, description="Inputs that could not be processed.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Attack results: evasion (per-ε accuracy) and the privacy audit (per-attack metrics). Absent for scans.
    clean_accuracy: float | None = Field(default=None, description="Accuracy on the evaluated clean inputs.")
    robust_accuracy: dict[str, float] | None = Field(
        default=None, description="Accuracy under attack, keyed by the perturbation budget ε (as a string)."
    )
    attacks: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Per-attack details (parameters, per-ε metrics, queries, time)."
    )
    defense: dict[str, Any] | None = Field(
        default=None,
        description="What a hardening run did (kind 'harden'): method, parameters, metrics before and "
        "after, the artefact it saved.",
    )
    # Poisoning and backdoor inspection (kind 'poisoning'). Absent elsewhere.
    suspicious_indices: list[int] | None = Field(
        default=None, description="Training rows a data inspection flags, the most suspicious first."
    )
    scores: list[float] | None = Field(
        default=None, description="Suspicion score of every training row (higher is more suspicious)."
    )
    infected: bool | None = Field(default=None, description="Whether a model inspection found a backdoor.")
    target_class: int | None = Field(
        default=None, description="The class a backdoor found by model inspection leads to."
    )
    anomaly_index: float | None = Field(
        default=None,
        description="The model inspection's largest anomaly index (infected above 2 by default).",
    )
    inspection: dict[str, Any] | None = Field(
        default=None,
        description="Details of a poisoning run: the simulation curve, per-class summaries, score "
        "histograms, per-class trigger figures.",
    )

    def all_findings(self) -> list[Finding]:
        """Findings of every file plus the report-level ones."""
        out = list(self.findings)
        for f in self.files:
            out.extend(f.findings)
        return out

    @computed_field  # type: ignore[prop-decorator]
    @property
    def severity(self) -> SeverityField:
        """Highest severity in the whole report."""
        return max_severity(self.all_findings())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> dict[str, int]:
        """Files at each verdict severity; findings at each severity for a report without files."""
        counts = {s.label: 0 for s in Severity}
        for item in self.files or self.findings:
            counts[item.severity.label] += 1
        return counts
