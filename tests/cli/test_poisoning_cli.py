"""``mlarmor poisoning``: simulate, end to end on small real models trained by a recipe file."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from typer.testing import CliRunner

from mlarmor.cli import app
from mlarmor.data import load_dataset
from mlarmor.schema import SCHEMA_VERSION

runner = CliRunner()

RECIPE = """
from mlarmor.models import digits_mlp, fit_classifier


def train(x, y, seed):
    return fit_classifier(digits_mlp(hidden=64, seed=seed), x, y, epochs=25, lr=3e-3, seed=seed)
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("poisoning")
    (folder / "train.py").write_text(RECIPE)
    ds = load_dataset("demo:digits")
    np.savez(folder / "flat.npz", x=ds.x.reshape(len(ds.x), -1), y=ds.y)
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=300).fit(ds.x.reshape(len(ds.x), -1)[:600], ds.y[:600])
    joblib.dump(clf, folder / "clf.joblib")
    return {"recipe": folder / "train.py", "flat": folder / "flat.npz", "sklearn": folder / "clf.joblib"}


def _run(*args: str):
    return runner.invoke(app, ["poisoning", *args])


def test_simulate_measures_the_backdoor_curve(files: dict[str, Path], tmp_path: Path) -> None:
    out, saved, svg, plot = (tmp_path / n for n in ("sim.json", "poisoned.npz", "trigger.svg", "curve.svg"))
    result = _run(
        "simulate", "--data", "demo:digits", "--recipe", f"{files['recipe']}:train", "--fraction", "0.1",
        "--fraction", "0.02", "--target-class", "3", "--save-poisoned", str(saved),
        "--trigger-image", str(svg), "--plot", str(plot), "--format", "json", "--output", str(out),
        "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["kind"] == "poisoning"
    curve = report["attacks"]["badnets"]["curve"]
    assert [p["fraction"] for p in curve] == [0.0, 0.02, 0.1]
    typed = report["sections"]["poisoning"]["curves"]["badnets"]
    assert [(p["fraction"], p["attack_success"]) for p in typed] == [
        (p["fraction"], p["attack_success"]) for p in curve
    ]
    baseline, top = curve[0], curve[-1]
    # A clean model ignores the patch; 10% BadNets poisoning plants a working backdoor at little cost.
    assert baseline["attack_success"] < 0.2
    assert top["attack_success"] > 0.8
    assert top["clean_accuracy"] > baseline["clean_accuracy"] - 0.05
    (finding,) = report["findings"]
    assert finding["id"] == "poisoning.badnets"
    assert finding["severity"] in ("high", "critical")
    assert finding["atlas"] == ["AML.T0020"]
    assert finding["owasp"] == ["ML02", "ML10"]
    with np.load(saved) as data:
        assert data["x"].shape[1:] == (1, 8, 8)
        assert int(data["poisoned"].sum()) == top["n_poisoned"]
        assert (data["y"][data["poisoned"]] == 3).all()
        assert (data["x"][data["poisoned"]][:, 0, -2:, -2:].max(axis=(1, 2)) == 1.0).all()
    assert svg.read_text().startswith("<?xml")
    assert "badnets trigger" in svg.read_text()
    assert "attack success" in plot.read_text()


def test_simulate_clones_a_scikit_learn_model_on_flat_rows(files: dict[str, Path]) -> None:
    result = _run(
        "simulate", "--data", str(files["flat"]), "--model", str(files["sklearn"]), "--input-shape", "1,8,8",
        "--attack", "label-flip", "--attack", "blend", "--fraction", "0.2", "--source-class", "1",
        "--target-class", "7", "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "label-flip" in result.output
    assert "blend" in result.output
    assert "clean model" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fraction", "1.5"], "outside (0, 1)"),
        (["--fraction", "0"], "outside (0, 1)"),
        (["--attack", "trojan"], "unknown --attack"),
        (
            ["--target-class", "12"],
            "--target-class must be a class index in [0, 10), got '12'",
        ),  # the option, not the Python name
        (["--param", "size=3"], "ATTACK.KEY=VALUE"),
        (["--param", "badnets.colour=3"], "BadNets has no parameter 'colour'. Its parameters are: pattern"),
        (["--input-shape", "1,9,9"], "does not fit"),
        (["--classes", "5"], "--classes 5 does not fit"),
    ],
)
def test_simulate_refuses_bad_input_with_exit_code_2(
    files: dict[str, Path], args: list[str], message: str
) -> None:
    result = _run("simulate", "--data", "demo:digits", "--recipe", f"{files['recipe']}:train", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_simulate_needs_exactly_one_way_to_train(files: dict[str, Path]) -> None:
    result = _run("simulate", "--data", "demo:digits")
    assert result.exit_code == 2
    assert "exactly one of --recipe and --model" in result.output
    # An image trigger named on flat rows is refused (the default on flat rows is feature-trigger).
    result = _run(
        "simulate",
        "--data",
        str(files["flat"]),
        "--recipe",
        f"{files['recipe']}:train",
        "--attack",
        "badnets",
    )
    assert result.exit_code == 2
    assert "image" in result.output.lower()


def test_simulate_runs_the_clean_label_attack_with_a_torch_recipe(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "clean-label.json"
    result = _run(
        "simulate", "--data", "demo:digits", "--recipe", f"{files['recipe']}:train",
        "--attack", "clean-label", "--fraction", "0.05", "--param", "clean-label.steps=10",
        "--param", "clean-label.victims=3",
        "--format", "json", "--output", str(out), "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    entry = json.loads(out.read_text())["attacks"]["clean-label"]
    assert [p["fraction"] for p in entry["curve"]] == [0.0, 0.05]
    # Clean labels: the poisoned rows are all of the target class, with their labels unchanged.
    assert entry["curve"][1]["n_poisoned"] > 0
    assert entry["params"]["adversarial_class"] == 0
    assert 0.0 <= entry["curve"][1]["attack_success"] <= 1.0
    refused = _run(
        "simulate", "--data", str(files["flat"]), "--model", str(files["sklearn"]), "--input-shape", "1,8,8",
        "--attack", "clean-label", "--fraction", "0.05",
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "PyTorch recipe" in " ".join(refused.output.split())
