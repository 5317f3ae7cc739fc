"""``mlarmor harden``: adversarial training and the feature-squeezing detector, end to end on real models."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mlarmor.cli import app
from mlarmor.data import load_dataset
from mlarmor.schema import SCHEMA_VERSION

runner = CliRunner()

FACTORY = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)  # the same initial weights whatever ran before in this test worker
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("harden")
    (folder / "net.py").write_text(FACTORY)
    from sklearn.neural_network import MLPClassifier

    tabular = load_dataset("demo:breast-cancer")
    clf = MLPClassifier((16,), max_iter=300, random_state=0).fit(tabular.x, tabular.y)
    joblib.dump(clf, folder / "clf.joblib")
    return {"factory": folder / "net.py", "sklearn": folder / "clf.joblib", "folder": folder}


def _run(*args: str):
    return runner.invoke(app, ["harden", *args])


def test_adversarial_training_report_and_saved_weights(files: dict[str, Path], tmp_path: Path) -> None:
    out, saved = tmp_path / "report.json", tmp_path / "hardened.pt"
    result = _run(
        "--method", "adversarial-training", "--model", f"{files['factory']}:build", "--data", "demo:digits",
        "--eps", "0.1", "--epochs", "3", "--attack", "pgd", "--param", "steps=5", "--n-samples", "120",
        "--save", str(saved), "--format", "json", "--output", str(out), "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["kind"] == "harden"
    defense = report["defense"]
    assert defense["method"] == "adversarial-training"
    assert defense["algorithm"] == "trades"
    assert len(defense["history"]) == 3
    # From random weights, training must raise clean accuracy; the report's top level is the after state.
    assert defense["after"]["clean_accuracy"] > defense["before"]["clean_accuracy"] + 0.3
    assert report["clean_accuracy"] == defense["after"]["clean_accuracy"]
    assert report["robust_accuracy"] == defense["after"]["robust_accuracy"]
    assert defense["saved"] == str(saved)
    section = report["sections"]["harden"]
    assert section["method"] == "adversarial-training"
    assert section["before"] == {k: defense["before"][k] for k in ("clean_accuracy", "robust_accuracy")}
    assert section["after"]["robust_accuracy"] == report["sections"]["evasion"]["robust_accuracy"]
    assert section["saved"] == str(saved)

    # The saved state dict loads into the factory's model and reproduces the reported clean accuracy.
    import importlib.util

    spec = importlib.util.spec_from_file_location("harden_net", files["factory"])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build()
    net.load_state_dict(torch.load(saved, weights_only=True))
    digits = load_dataset("demo:digits")
    with torch.no_grad():
        accuracy = float(
            (net.eval()(torch.from_numpy(digits.x)).argmax(1) == torch.from_numpy(digits.y)).float().mean()
        )
    assert accuracy > defense["before"]["clean_accuracy"] + 0.3  # the trained weights, not the initial ones
    assert any(f["id"] == "evasion.accuracy-loss" for f in report["findings"])

    # ... and `mlarmor evasion` accepts it (scanned first, like any weights file).
    again = runner.invoke(
        app,
        ["evasion", "--model", f"{files['factory']}:build", "--weights", str(saved), "--data", "demo:digits",
         "--attack", "pgd", "--eps", "0.1", "--n-samples", "50", "--fail-on", "critical"],
    )  # fmt: skip
    assert again.exit_code == 0, again.output


def test_table_output_shows_before_and_after(files: dict[str, Path]) -> None:
    result = _run(
        "--method", "adversarial-training", "--model", f"{files['factory']}:build", "--data", "demo:digits",
        "--eps", "0.1", "--epochs", "1", "--attack", "fgsm", "--n-samples", "60", "--fail-on", "critical",
        "--algorithm", "pgd-at", "--steps", "3", "--optimizer", "sgd", "--lr", "0.05",
    )  # fmt: skip
    # One epoch from the factory's random weights: the residual risk may reach critical (exit 1).
    assert result.exit_code in (0, 1), result.output
    assert "clean accuracy" in result.output
    assert "→" in result.output
    assert "pgd-at for 1 epochs" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "magic"], "unknown --method"),
        (["--method", "adversarial-training", "--algorithm", "fast"], "unknown --algorithm"),
        (["--method", "adversarial-training", "--eps", "0"], "--eps must be a float in (0, inf), got 0.0"),
        (["--method", "adversarial-training", "--epochs", "0"], "--epochs must be an int >= 1, got 0"),
        (["--method", "adversarial-training", "--test-fraction", "1.5"], "--test-fraction must be in (0, 1)"),
        (["--method", "adversarial-training", "--attack", "nope"], "unknown --attack"),
        (["--method", "adversarial-training", "--optimizer", "rmsprop"], "unknown --optimizer"),
    ],
)
def test_bad_options_exit_2(files: dict[str, Path], args: list[str], message: str) -> None:
    base = {"--model": f"{files['factory']}:build", "--data": "demo:digits", "--eps": "0.1"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    merged = [item for key, value in {**base, **given}.items() for item in (key, value)]
    result = _run(*merged)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_adversarial_training_refuses_a_model_without_gradients(files: dict[str, Path]) -> None:
    result = _run(
        "--method", "adversarial-training", "--model", str(files["sklearn"]), "--data", "demo:breast-cancer",
        "--eps", "0.05",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "needs a PyTorch model" in result.output
    assert "feature-squeezing" in result.output


def test_unwritable_save_path_is_a_clear_error(files: dict[str, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _run(
        "--method", "adversarial-training", "--model", f"{files['factory']}:build", "--data", "demo:digits",
        "--eps", "0.1", "--epochs", "1", "--attack", "fgsm", "--n-samples", "30",
        "--save", str(blocker / "sub" / "w.pt"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--save" in result.output
    assert "Traceback" not in result.output


def test_explicit_test_set(files: dict[str, Path], tmp_path: Path) -> None:
    digits = load_dataset("demo:digits")
    train, test = digits.split(0.5, seed=1)
    np.savez(tmp_path / "train.npz", x=train.x, y=train.y)
    np.savez(tmp_path / "test.npz", x=test.x, y=test.y)
    result = _run(
        "--method", "adversarial-training", "--model", f"{files['factory']}:build",
        "--data", str(tmp_path / "train.npz"), "--test", str(tmp_path / "test.npz"), "--eps", "0.1",
        "--epochs", "1", "--attack", "fgsm", "--n-samples", "40", "-f", "json", "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["defense"]["train_samples"] == train.n
    assert report["metadata"]["test"] == str(tmp_path / "test.npz")


def test_feature_squeezing_on_a_black_box_model(files: dict[str, Path], tmp_path: Path) -> None:
    saved = tmp_path / "detector.json"
    result = _run(
        "--method", "feature-squeezing", "--model", str(files["sklearn"]), "--data", "demo:breast-cancer",
        "--eps", "0.1", "--param", "n_queries=300", "--n-samples", "80", "--save", str(saved),
        "-f", "json", "--fail-on", "critical", "--no-reliability-checks", "--bits", "5",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output  # 1: a finding reached --fail-on
    report = json.loads(result.stdout)
    assert report["kind"] == "harden"
    defense = report["defense"]
    assert defense["method"] == "feature-squeezing"
    assert report["metadata"]["attack"] == "square"  # no gradients: the black-box default
    assert 0.0 <= defense["detection_rate"] <= 1.0
    assert 0.0 <= defense["false_alarm_rate"] <= 1.0
    finding = report["findings"][0]
    assert finding["id"] == "evasion.detector"
    assert finding["evidence"]["detection_rate"] == defense["detection_rate"]
    stored = json.loads(saved.read_text())
    assert stored["detector"] == "FeatureSqueezing"
    assert stored["fitted"]["threshold"] == defense["threshold"]
    assert stored["fitted"]["squeezers"] == ["bit-depth"]  # tabular inputs: no median filter
    assert defense["params"]["params"]["bits"] == 5  # --bits, as the detector's warning suggests


def test_the_evaluations_reliability_checks_show_progress(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from mlarmor.cli import _output

    screen = io.StringIO()
    monkeypatch.setattr(_output, "err_console", Console(file=screen, force_terminal=True, width=160))
    result = _run(
        "--method", "feature-squeezing", "--model", str(files["sklearn"]), "--data", "demo:breast-cancer",
        "--eps", "0.1", "--param", "n_queries=100", "--n-samples", "40", "-f", "json",
        "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    drawn = screen.getvalue()
    assert "attacking 40 held-out samples" in drawn
    assert "reliability checks" in drawn  # the evaluation's own steps, not one silent block
