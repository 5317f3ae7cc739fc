"""JSON output: the :class:`mlarmor.schema.Report` model, serialised."""

from __future__ import annotations

from mlarmor.schema import Report

__all__ = ["to_json"]


def to_json(report: Report) -> str:
    """Serialise ``report`` following the versioned schema."""
    return report.model_dump_json(indent=2)
