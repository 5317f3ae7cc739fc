"""``--python-path``: whole pickled models whose classes live in the user's own module, from the CLI."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlarmor.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_user_modules")


@pytest.fixture
def shipped(user_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The models and the CSV in a folder of their own, which is the working directory."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    for name in ("model.pt", "pipe.joblib", "data.csv"):
        shutil.copy(user_folder / name, folder / name)
    monkeypatch.chdir(folder)
    return folder


def _evasion(model: str, *extra: str):
    return runner.invoke(
        app,
        ["evasion", "--model", model, "--data", "data.csv", "--label-column", "species", "--attack", "pgd",
         "--eps", "0.05", "--n-samples", "48", "--no-reliability-checks", "-f", "json", *extra],
    )  # fmt: skip


@pytest.mark.parametrize(("model", "module"), [("model.pt", "mynet"), ("pipe.joblib", "custom_tx")])
def test_without_python_path_the_module_is_named_with_the_fix(
    shipped: Path, user_folder: Path, model: str, module: str
) -> None:
    moved = shipped / "code"
    moved.mkdir()
    shutil.copy(user_folder / f"{module}.py", moved / f"{module}.py")
    (shipped / model).rename(moved / model)  # the model beside its code, one folder down
    result = _evasion(f"code/{model}")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert "internal error" not in message
    assert f"needs the Python module '{module}'" in message
    assert f"found ./code/{module}.py next to the model" in message
    assert "Rerun with --python-path ./code" in message
    assert module not in sys.modules


def test_python_path_runs_evasion_on_the_torch_model(shipped: Path, user_folder: Path) -> None:
    path = list(sys.path)
    result = _evasion("model.pt", "--python-path", str(user_folder))
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    expected = np.load(user_folder / "expected.npz")
    assert report["clean_accuracy"] == pytest.approx(float(expected["torch_acc"]))
    assert report["clean_accuracy"] > 0.6  # a trained model, not chance
    assert 0.0 <= report["robust_accuracy"]["0.05"] <= report["clean_accuracy"]
    assert sys.path == path
    assert "mynet" not in sys.modules


def test_python_path_runs_evasion_on_the_sklearn_pipeline(shipped: Path, user_folder: Path) -> None:
    result = _evasion("pipe.joblib", "--python-path", str(user_folder), "--attack", "square",
                      "--param", "n_queries=50")  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    expected = np.load(user_folder / "expected.npz")
    assert report["clean_accuracy"] == pytest.approx(float(expected["sklearn_acc"]))
    assert report["clean_accuracy"] > 0.6
    assert "custom_tx" not in sys.modules


def test_python_path_must_be_a_directory(shipped: Path) -> None:
    result = _evasion("model.pt", "--python-path", "missing_dir")
    assert result.exit_code == 2
    assert "--python-path" in result.output
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "verb",
    [["evasion"], ["harden"], ["privacy"], ["poisoning", "simulate"], ["poisoning", "inspect-model"],
     ["poisoning", "inspect-data"], ["poisoning", "sanitize"]],
)  # fmt: skip
def test_every_command_that_loads_a_model_has_python_path(verb: list[str]) -> None:
    result = runner.invoke(app, [*verb, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--python-path" in result.output
