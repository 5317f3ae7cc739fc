"""``mlarmor scan`` through the real Typer app: exit codes, formats, no tracebacks."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlarmor.cli import app
from mlarmor.schema import SCHEMA_VERSION

runner = CliRunner()


class _R:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


@pytest.fixture
def files(tmp_path: Path, canary: Path) -> dict[str, Path]:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_R(f"touch {canary / 'ran'}")))
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    unknown = tmp_path / "custom.pkl"
    unknown.write_bytes(b"\x80\x02cmycompany.models\nNet\n)\x81}b.")  # NEWOBJ + BUILD of a class
    called = tmp_path / "called.pkl"
    called.write_bytes(b"\x80\x02cmycompany.helpers\nrun\n)R.")  # REDUCE of a function
    return {"evil": evil, "good": good, "unknown": unknown, "called": called}


def test_exit_codes(files: dict[str, Path]) -> None:
    assert runner.invoke(app, ["scan", str(files["good"])]).exit_code == 0
    assert runner.invoke(app, ["scan", str(files["evil"])]).exit_code == 1
    assert runner.invoke(app, ["scan", str(files["unknown"])]).exit_code == 0
    assert runner.invoke(app, ["scan", str(files["unknown"]), "--fail-on", "medium"]).exit_code == 1
    called = runner.invoke(app, ["scan", str(files["called"])])
    assert called.exit_code == 1
    assert "pickle.unknown-call" in called.output


def test_missing_path_exit_2_without_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def test_bad_options_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    assert runner.invoke(app, ["scan", str(files["good"]), "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["scan", str(files["good"]), "--fail-on", "severe"]).exit_code == 2
    bad_policy = tmp_path / "p.toml"
    bad_policy.write_text("[pickle]\nallow = 3\n")
    result = runner.invoke(app, ["scan", str(files["good"]), "--policy", str(bad_policy)])
    assert result.exit_code == 2
    assert "must be a list" in result.output
    assert runner.invoke(app, ["scan", str(files["good"]), "--max-depth", "0"]).exit_code == 2


def test_json_report_shape(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["scan", str(files["evil"].parent), "--format", "json", "--output", str(out)])
    assert result.exit_code == 1
    report = json.loads(out.read_text())
    assert report["schema_version"] == SCHEMA_VERSION
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    section = report["sections"]["scan"]
    assert section["files"] == len(report["files"])
    assert section["by_severity"]["critical"] == sum(f["severity"] == "critical" for f in report["files"])
    assert by_name["evil.pkl"]["severity"] == "critical"
    assert by_name["good.pkl"]["severity"] == "none"
    finding = by_name["evil.pkl"]["findings"][0]
    assert {"id", "severity", "title", "evidence", "location", "atlas", "owasp", "mitigations"} <= set(
        finding
    )
    assert "AML.T0011.000" in finding["atlas"]


def test_sarif_output(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["scan", str(files["evil"]), "--format", "sarif"])
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert "pickle.dangerous-global" in rules
    res = run["results"][0]
    assert res["level"] == "error"
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("evil.pkl")
    assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]


def test_policy_file_allows_class(files: dict[str, Path], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("pickle:\n  allow: ['mycompany.models.Net']\n")
    result = runner.invoke(app, ["scan", str(files["unknown"]), "--format", "json", "--policy", str(policy)])
    assert json.loads(result.stdout)["files"][0]["severity"] == "none"


def test_schema_flag_prints_json_schema() -> None:
    result = runner.invoke(app, ["scan", "--schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "Report"


def test_help_has_example() -> None:
    result = runner.invoke(app, ["scan", "--help"])
    assert result.exit_code == 0
    assert "mlarmor scan model.pt" in result.output


def test_ctrl_c_exits_130_without_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import mlarmor.cli.scan as scan_cli

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(scan_cli, "run", interrupted)
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04N.")
    result = runner.invoke(app, ["scan", str(tmp_path / "m.pkl")])
    assert result.exit_code == 130
    assert "interrupted" in result.output
    assert "Traceback" not in result.output


def test_a_truncated_or_empty_model_fails_the_default_gate(tmp_path: Path) -> None:
    """Issue 11, point 5: a model file that cannot be what its name says does not pass silently."""
    torch = pytest.importorskip("torch")
    whole = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(64, 64)}, whole)
    data = whole.read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.onnx").write_bytes(b"")
    ok = runner.invoke(app, ["scan", str(whole)])
    assert ok.exit_code == 0, ok.output
    for name in ("half.pt", "empty.onnx"):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["scan", str(tmp_path / name), "-f", "json", "-o", str(out)])
        assert result.exit_code == 1, result.output
        ids = {f["id"] for f in json.loads(out.read_text())["files"][0]["findings"]}
        assert "format.not-a-model" in ids
