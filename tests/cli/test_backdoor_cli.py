"""``mlarmor poisoning inspect-model | inspect-data | sanitize`` on a real BadNets-backdoored digits CNN."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mlarmor.attacks.poisoning import poison
from mlarmor.cli import app
from mlarmor.data import load_dataset
from mlarmor.models.recipes import train_digits_cnn

runner = CliRunner()

FACTORY = """
from mlarmor.models import digits_cnn


def build():
    return digits_cnn(seed=0)
"""
STEPS = "150"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("backdoor")
    train, test = load_dataset("demo:digits").split(0.3, seed=0)
    p = poison(train.x, train.y, trigger="badnets", fraction=0.1, target_class=0, seed=0)
    np.savez(folder / "train.npz", x=p.x, y=p.y)
    np.savez(folder / "test.npz", x=test.x, y=test.y)
    (folder / "net.py").write_text(FACTORY)
    torch.save(train_digits_cnn(p.x, p.y, 0).state_dict(), folder / "net.pt")
    from sklearn.linear_model import LogisticRegression

    joblib.dump(
        LogisticRegression(max_iter=50).fit(test.x.reshape(len(test.x), -1), test.y), folder / "clf.joblib"
    )
    return {"folder": folder, "poisoned": p.poisoned, "model": ["--model", f"{folder / 'net.py'}:build"]}


def _run(case: dict[str, Any], verb: str, *args: str) -> Any:
    folder = case["folder"]
    return runner.invoke(app, ["poisoning", verb, *case["model"], "--weights", str(folder / "net.pt"), *args])


def test_inspect_model_finds_the_backdoor_and_unlearning_removes_it(
    case: dict[str, Any], tmp_path: Path
) -> None:
    out, svg, saved = tmp_path / "model.json", tmp_path / "trigger.svg", tmp_path / "repaired.pt"
    result = _run(
        case, "inspect-model", "--data", str(case["folder"] / "test.npz"), "--steps", STEPS,
        "--trigger-image", str(svg), "--mitigate", "unlearning", "--save", str(saved),
        "--format", "json", "--output", str(out), "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["kind"] == "poisoning"
    assert report["infected"] is True
    assert report["target_class"] == 0
    assert report["anomaly_index"] > 2.0
    assert report["findings"][0]["severity"] == "high"
    defense = report["defense"]
    assert defense["attack_success"]["after"] < 0.2 < defense["attack_success"]["before"]
    section = report["sections"]["poisoning"]
    assert section["mode"] == "inspect-model"
    assert (section["infected"], section["target_class"]) == (True, 0)
    assert section["attack_success"] == defense["attack_success"]
    assert "(suspect)" in svg.read_text()
    state = torch.load(saved, weights_only=True)
    assert set(state) == set(torch.load(case["folder"] / "net.pt", weights_only=True))


def test_inspect_data_flags_the_poisoned_rows(case: dict[str, Any], tmp_path: Path) -> None:
    out, hist, kept = tmp_path / "data.json", tmp_path / "hist.svg", tmp_path / "kept.npz"
    result = _run(
        case, "inspect-data", "--data", str(case["folder"] / "train.npz"), "--steps", STEPS,
        "--histogram", str(hist), "--save-clean", str(kept), "--format", "json", "--output", str(out),
        "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    poisoned = case["poisoned"]
    flagged = np.zeros(len(poisoned), dtype=bool)
    flagged[report["suspicious_indices"]] = True
    assert len(report["scores"]) == len(poisoned)
    assert flagged[poisoned].mean() >= 0.9
    assert flagged[~poisoned].mean() <= 0.05
    assert report["infected"] is True
    section = report["sections"]["poisoning"]
    assert (section["mode"], section["n_samples"]) == ("inspect-data", len(poisoned))
    assert section["n_flagged"] == int(flagged.sum())
    with np.load(kept) as data:
        assert len(data["y"]) == len(poisoned) - int(flagged.sum())
    assert hist.read_text().startswith("<?xml")


def test_sanitize_retrains_without_the_backdoor(case: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "sanitize.json"
    result = _run(
        case, "sanitize", "--data", str(case["folder"] / "train.npz"),
        "--test", str(case["folder"] / "test.npz"), "--recipe", "demo:digits-cnn",
        "--trigger", "badnets", "--target-class", "0", "--steps", STEPS,
        "--format", "json", "--output", str(out), "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    defense = json.loads(out.read_text())["defense"]
    assert defense["policy"] == "backdoor"  # model inspection found it: its rows are dropped
    assert defense["attack_success"]["before"] > 0.9
    assert defense["attack_success"]["after"] < 0.05
    assert defense["clean_accuracy"]["after"] >= defense["clean_accuracy"]["before"] - 0.02


@pytest.mark.parametrize(
    ("verb", "args", "message"),
    [
        ("inspect-data", ["--layer", "no.such.layer"], "no.such.layer"),
        ("inspect-model", ["--mitigate", "prayer"], "unknown --mitigate"),
        ("inspect-model", ["--save", "x.pt"], "needs --mitigate"),
        ("inspect-model", ["--input-shape", "2,4,8"], "fails on inputs of shape"),
        ("inspect-model", ["--classes", "5"], "classes"),
        ("sanitize", ["--test", "TEST"], "--recipe"),
        (
            "sanitize",
            ["--test", "TEST", "--recipe", "demo:digits-cnn", "--trigger", "badnets"],
            "--target-class",
        ),
    ],
)
def test_bad_input_exits_2_without_a_traceback(
    case: dict[str, Any], verb: str, args: list[str], message: str
) -> None:
    args = [str(case["folder"] / "test.npz") if a == "TEST" else a for a in args]
    result = (
        _run(case, verb, "--data", str(case["folder"] / "train.npz"), "--no-inspect-model", *args)
        if (verb == "inspect-data")
        else _run(case, verb, "--data", str(case["folder"] / "train.npz"), "--steps", "5", *args)
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_score_only_model_gets_the_black_box_inspection(case: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "blackbox.json"
    sklearn_model = [
        "--model",
        str(case["folder"] / "clf.joblib"),
        "--data",
        str(case["folder"] / "test.npz"),
    ]
    result = runner.invoke(
        app,
        ["poisoning", "inspect-model", *sklearn_model, "--queries", "30000", "-f", "json", "-o", str(out),
         "--fail-on", "critical"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert isinstance(report["infected"], bool)
    assert 0 < report["inspection"]["queries"] <= 30000
    # What needs the PyTorch module itself says so.
    for verb, extra in (("inspect-model", ["--mitigate", "unlearning"]), ("inspect-data", [])):
        refused = runner.invoke(app, ["poisoning", verb, *sklearn_model, *extra])
        assert refused.exit_code == 2
        assert "needs a PyTorch model" in " ".join(refused.output.split())
