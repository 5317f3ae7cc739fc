"""Readable terminal output with Rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlarmor.findings import Severity
from mlarmor.schema import Report

__all__ = ["SEVERITY_STYLE", "print_report"]

SEVERITY_STYLE = {
    Severity.NONE: "green",
    Severity.LOW: "cyan",
    Severity.MEDIUM: "yellow",
    Severity.HIGH: "bold red",
    Severity.CRITICAL: "bold white on red",
}


def _sev(s: Severity) -> Text:
    label = "clean" if s == Severity.NONE else s.label
    return Text(label, style=SEVERITY_STYLE[s])


def print_report(
    report: Report, console: Console, *, min_detail: Severity = Severity.LOW, verbose: bool = False
) -> None:
    """Print a scan report: one row per file, then the findings of each file that has any."""
    table = Table(title="mlarmor scan", show_lines=False, header_style="bold")
    table.add_column("Verdict")
    table.add_column("File", overflow="fold")
    table.add_column("Format")
    table.add_column("Findings", justify="right")
    for f in report.files:
        table.add_row(_sev(f.severity), f.path, f.format, str(len(f.findings)))
    console.print(table)
    for f in report.files:
        shown = [x for x in f.findings if x.severity >= min_detail or verbose]
        if not shown:
            continue
        console.print(Text.assemble(("\n" + f.path, "bold"), "  ", _sev(f.severity)))
        for x in shown:
            where = []
            if x.location.member:
                where.append(f"member {x.location.member}")
            if x.location.offset is not None:
                opcode = x.evidence.get("opcode")
                where.append(f"offset {x.location.offset}" + (f" ({opcode})" if opcode else ""))
            line = Text.assemble("  ", _sev(x.severity), " ", (x.id, "dim"), "  ", x.title)
            console.print(line, highlight=False)
            if where:
                console.print(Text("      at " + ", ".join(where), style="dim"), highlight=False)
            samples = x.evidence.get("call_samples")
            if isinstance(samples, list) and samples:
                console.print(Text("      call: " + str(samples[0]), style="dim"), highlight=False)
            if x.atlas or x.owasp:
                console.print(Text("      " + " ".join([*x.atlas, *x.owasp]), style="dim"), highlight=False)
    counts = report.summary
    parts = [
        f"{counts[s.label]} {('clean' if s == Severity.NONE else s.label)}"
        for s in reversed(Severity)
        if counts[s.label]
    ]
    console.print(f"\n{len(report.files)} file(s) scanned: " + (", ".join(parts) or "nothing found"))
    for err in report.errors:
        console.print(Text(f"error: {err}", style="red"))
