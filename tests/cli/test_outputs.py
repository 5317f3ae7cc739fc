"""Output paths are checked before the work, and nothing measured is lost when writing fails at the end.

Issue 11, point 7.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mlarmor.cli import app
from mlarmor.cli._common import write_output, write_side_file

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evasion", "--model", "m.pt", "--data", "demo:digits", "--plot", "curve.png"], "--plot writes SVG"),
        (["evasion", "--model", "m.pt", "--data", "demo:digits", "--output", "."], "is a folder"),
        (
            [
                "privacy",
                "--model",
                "m.pt",
                "--members",
                "a.npz",
                "--nonmembers",
                "b.npz",
                "--plot",
                "roc.pdf",
            ],
            "--plot writes SVG",
        ),
        (
            [
                "poisoning",
                "simulate",
                "--data",
                "demo:digits",
                "--recipe",
                "demo:digits-cnn",
                "--plot",
                "c.png",
            ],
            "SVG",
        ),
        (["poisoning", "inspect-data", "--model", "m.pt", "--data", "d.npz", "--histogram", "h.txt"], "SVG"),
    ],
)
def test_a_bad_output_path_is_refused_before_any_work(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the model and data files do not exist: the check comes first
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "does not exist" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_report_is_printed_instead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(typer.Exit) as stop:
        write_output('{"kind": "scan"}', blocker / "sub" / "report.json")
    assert stop.value.exit_code == 2
    assert '{"kind": "scan"}' in capsys.readouterr().out


def test_an_unwritable_side_file_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    write_side_file(
        "<svg/>", blocker / "sub" / "plot.svg", "--plot", "curve"
    )  # no exception: the run goes on
    captured = capsys.readouterr()
    assert "cannot write --plot" in captured.err
    assert "written to" not in captured.err
