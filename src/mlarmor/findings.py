"""The uniform record every part of mlarmor emits: :class:`Finding`, with :class:`Severity`."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

__all__ = ["Family", "Finding", "Location", "Severity", "SeverityField", "max_severity"]


class Severity(IntEnum):
    """How bad a finding is; a file's or a run's verdict is the maximum of its findings."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """Lower-case name used in the CLI and the JSON schema."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """Read a severity from its name (any case) or number."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"Unknown severity {value!r}; expected one of: {names}.") from None


SeverityField = Annotated[
    Severity,
    BeforeValidator(Severity.parse),
    PlainSerializer(lambda s: s.label, return_type=str),
]
"""A severity that reads names or numbers and serialises as its lower-case name."""


class Family(StrEnum):
    """Threat families (see DESIGN.md)."""

    TROJAN = "trojan"
    POISONING = "poisoning"
    BACKDOOR = "backdoor"
    EVASION = "evasion"
    INFERENCE = "inference"
    SPYING = "spying"
    INTEGRITY = "integrity"


class Location(BaseModel):
    """Where a finding was observed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str | None = None
    member: str | None = Field(default=None, description="Path inside an archive, '/'-joined for nesting.")
    offset: int | None = Field(default=None, description="Byte offset inside the file or member.")
    samples: list[int] | None = Field(default=None, description="Sample indices, for data findings.")


class Finding(BaseModel):
    """One observation with its severity, evidence, location, ATLAS/OWASP ids and mitigations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Rule identifier, such as 'pickle.code-execution'.")
    family: Family
    title: str
    severity: SeverityField
    description: str = Field(default="", description="Why this matters.")
    likelihood: float | None = Field(default=None, ge=0.0, le=1.0)
    impact: float | None = Field(default=None, ge=0.0, le=1.0)
    evidence: dict[str, Any] = Field(default_factory=dict)
    location: Location = Field(default_factory=Location)
    atlas: list[str] = Field(default_factory=list)
    owasp: list[str] = Field(default_factory=list)
    mitigations: list[str] = Field(default_factory=list)


def max_severity(findings: Any) -> Severity:
    """Highest severity among ``findings`` (``Severity.NONE`` when empty)."""
    return max((f.severity for f in findings), default=Severity.NONE)
