"""``mlarmor demo`` end to end: trojans flagged, no false alarm, no payload run, evasion and privacy shown."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mlarmor.cli import app


def test_demo_runs_clean(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "benign files flagged high or critical:    0/" in result.output
    assert "canary folder: empty" in result.output
    assert list((out / "canary").iterdir()) == []
    flagged = next(line for line in result.output.splitlines() if line.startswith("malicious files flagged"))
    caught, total = flagged.rsplit(" ", 1)[1].split("/")
    assert caught == total
    assert int(total) >= 60
    assert "Robust accuracy" in result.output
    assert "Privacy: membership inference" in result.output
    assert "lira-online" in result.output
    assert "Neural Cleanse: infected, target class 0" in " ".join(result.output.split())
