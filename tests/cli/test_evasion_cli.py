"""``mlarmor evasion`` through the real Typer app: JSON shape, exit codes, errors without tracebacks."""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mlarmor.cli import app
from mlarmor.data import load_dataset
from mlarmor.models import digits_mlp, fit_classifier
from mlarmor.schema import SCHEMA_VERSION

runner = CliRunner()


class _Payload:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    digits = load_dataset("demo:digits")
    net = fit_classifier(digits_mlp(hidden=32), digits.x, digits.y, epochs=120, batch_size=None, lr=1e-2)
    torch.jit.save(torch.jit.script(net), str(folder / "mlp.pt"))

    from sklearn.neural_network import MLPClassifier

    tabular = load_dataset("demo:breast-cancer")
    clf = MLPClassifier((16,), max_iter=300, random_state=0).fit(tabular.x, tabular.y)
    joblib.dump(clf, folder / "clf.joblib")
    return {"torch": folder / "mlp.pt", "sklearn": folder / "clf.joblib"}


def _run(*args: str):
    return runner.invoke(app, ["evasion", *args])


def test_json_report(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = _run(
        "--model", str(models["torch"]), "--data", "demo:digits", "--attack", "pgd",
        "--eps", "0.05", "--eps", "0.1", "--n-samples", "60", "--format", "json", "--output", str(out),
        "--fail-on", "critical",
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["kind"] == "evasion"
    assert report["schema_version"] == SCHEMA_VERSION
    assert set(report["robust_accuracy"]) == {"0.05", "0.1"}
    clean, robust = report["clean_accuracy"], report["robust_accuracy"]
    assert clean > 0.9
    assert robust["0.1"] <= robust["0.05"] <= clean
    details = report["attacks"]["pgd"]
    assert set(details["eps"]) == {"0.05", "0.1"}
    assert details["params"]["steps"] == 40
    assert {"robust_accuracy", "success_rate", "median_norm", "mean_queries"} <= set(details["eps"]["0.1"])
    (finding,) = report["findings"]
    lost = 100 * (clean - robust["0.1"])
    expected = "critical" if lost >= 50 else "high" if lost >= 25 else "medium" if lost >= 10 else "low"
    assert finding["severity"] == expected
    assert finding["evidence"]["budget_eps"] == 0.1
    assert result.exit_code == (1 if expected == "critical" else 0)
    assert report["metadata"]["n_samples"] == 60
    # The typed section says the same as the flat fields (which stay where scripts read them).
    section = report["sections"]["evasion"]
    assert section["clean_accuracy"] == clean
    assert section["robust_accuracy"] == robust
    assert section["per_eps"]["0.1"]["robust_accuracy"] == robust["0.1"]
    assert (section["attack"], section["capability"], section["budget_eps"]) == ("pgd", "gradients", 0.1)
    assert report["target"]["name"] == Path(models["torch"]).name


def test_exit_codes_follow_fail_on(models: dict[str, Path]) -> None:
    base = ["--model", str(models["torch"]), "--data", "demo:digits", "--attack", "fgsm", "--n-samples", "40"]
    broken = _run(*base, "--eps", "0.3", "--format", "json")
    assert broken.exit_code == 1, broken.output
    assert json.loads(broken.stdout)["findings"][0]["severity"] in ("high", "critical")
    assert _run(*base, "--eps", "0.3", "--fail-on", "critical", "--budget-eps", "0").exit_code == 0
    table = _run(*base, "--eps", "0.3", "--fail-on", "low")
    assert table.exit_code == 1
    assert "robust" in table.stdout
    assert "AML.T0043.000" in table.stdout


def test_default_eps_and_sarif(models: dict[str, Path]) -> None:
    result = _run(
        "--model", str(models["torch"]), "--data", "demo:digits", "--attack", "fgsm",
        "--n-samples", "30", "--format", "json", "--fail-on", "critical",
    )  # fmt: skip
    assert set(json.loads(result.stdout)["robust_accuracy"]) == {"0.03", "0.1"}
    sarif = _run(
        "--model", str(models["torch"]), "--data", "demo:digits", "--attack", "fgsm", "--norm", "l2",
        "--n-samples", "30", "--format", "sarif", "--fail-on", "critical",
    )  # fmt: skip
    assert json.loads(sarif.stdout)["version"] == "2.1.0"


def test_black_box_square_on_sklearn(models: dict[str, Path]) -> None:
    result = _run(
        "--model", str(models["sklearn"]), "--data", "demo:breast-cancer", "--attack", "square",
        "--eps", "0.1", "--n-samples", "30", "--param", "n_queries=200", "--format", "json",
        "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert report["attacks"]["square"]["params"]["n_queries"] == 200
    assert report["robust_accuracy"]["0.1"] <= report["clean_accuracy"]
    assert report["findings"][0]["atlas"][0] == "AML.T0043.001"


def test_white_box_attack_on_sklearn_names_capability(models: dict[str, Path]) -> None:
    result = _run("--model", str(models["sklearn"]), "--data", "demo:breast-cancer", "--attack", "pgd")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "'gradients' capability" in message
    assert "square" in message
    assert "hopskipjump" in message
    assert "Traceback" not in result.output


def test_malicious_model_refused_without_trust(tmp_path: Path, canary: Path) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Payload(f"touch {canary / 'ran'}")))
    result = _run("--model", str(evil), "--data", "demo:digits")
    assert result.exit_code == 2
    assert "failed the scan" in result.stderr
    assert "--trust" in result.stderr
    assert "Traceback" not in result.output
    # the `canary` fixture asserts that the payload never ran


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--data", "demo:breast-cancer"], "shape"),  # 30 features into a 1x8x8 model
        (["--data", "demo:digits", "--bounds", "0", "0.5"], "bounds"),
        (["--data", "missing.npz"], "missing.npz"),
        (["--data", "demo:digits", "--attack", "nope"], "unknown --attack"),
        (["--data", "demo:digits", "--norm", "l1"], "unknown --norm"),
        (["--data", "demo:digits", "--eps", "-1"], "eps"),
        (["--data", "demo:digits", "--input-shape", "a,b"], "--input-shape"),
        (["--data", "demo:digits", "--param", "oops"], "KEY=VALUE"),
        (["--data", "demo:digits", "--attack", "transfer"], "surrogate"),
    ],
)
def test_bad_input_exit_2(models: dict[str, Path], args: list[str], needle: str) -> None:
    result = _run("--model", str(models["torch"]), "--n-samples", "5", *args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "Traceback" not in result.output


def test_missing_model_exit_2(tmp_path: Path) -> None:
    result = _run("--model", str(tmp_path / "nope.pt"), "--data", "demo:digits")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_save_adv(models: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "adv.npz"
    result = _run(
        "--model", str(models["torch"]), "--data", "demo:digits", "--attack", "fgsm", "--eps", "0.1",
        "--eps", "0.2", "--n-samples", "25", "--save-adv", str(path), "--format", "json",
        "--fail-on", "critical",
    )  # fmt: skip
    report = json.loads(result.stdout)
    with np.load(path, allow_pickle=False) as saved:
        assert saved["x_adv_0.1"].shape == saved["x_adv_0.2"].shape == (25, 1, 8, 8)
        assert saved["y"].shape == (25,)
        assert saved["indices"].shape == (25,)
        assert (
            float(np.abs(saved["x_adv_0.1"] - load_dataset("demo:digits").x[saved["indices"]]).max())
            <= 0.1 + 1e-6
        )
        assert 1 - saved["success_0.2"].mean() == pytest.approx(report["robust_accuracy"]["0.2"])


def test_help_has_examples() -> None:
    result = runner.invoke(app, ["evasion", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    assert "mlarmor evasion --model model.pt --data demo:digits --eps 0.1 --eps 0.2" in result.stdout
    assert "--attack square" in result.stdout
    assert "--save-adv" in result.stdout


def test_plot_writes_a_robustness_curve(models: dict[str, Path], tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    svg = tmp_path / "curve.svg"
    result = _run(
        "--model", str(models["torch"]), "--data", "demo:digits", "--attack", "fgsm",
        "--eps", "0.05", "--eps", "0.1", "--n-samples", "40", "--plot", str(svg), "--fail-on", "critical",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output  # 1: the finding reached --fail-on
    root = ET.fromstring(svg.read_text())
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(list(root.iter(f"{ns}polyline"))) == 1
    # One marker per point: the clean accuracy at ε = 0, then each ε.
    assert len(list(root.iter(f"{ns}circle"))) == 3


def test_transfer_from_a_surrogate_file(models: dict[str, Path]) -> None:
    # The attacker's copy of the model is the ideal surrogate: the crafted inputs must transfer.
    result = _run(
        "--model", str(models["sklearn"]), "--data", "demo:breast-cancer", "--attack", "pgd",
        "--surrogate", str(models["torch"]),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--surrogate only applies to --attack transfer" in result.output
    result = _run(
        "--model", str(models["torch"]), "--data", "demo:digits", "--attack", "transfer",
        "--surrogate", str(models["torch"]), "--eps", "0.2", "--n-samples", "60", "-f", "json",
        "--fail-on", "critical", "--no-reliability-checks",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)  # warnings go to stderr
    assert report["robust_accuracy"]["0.2"] < report["clean_accuracy"] - 0.3
    # A surrogate without gradients is refused with the reason.
    result = _run(
        "--model", str(models["sklearn"]), "--data", "demo:breast-cancer", "--attack", "transfer",
        "--surrogate", str(models["sklearn"]), "--eps", "0.05",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "surrogate" in result.output
    assert "gradients" in result.output


def test_immutable_features_from_the_command_line(models: dict[str, Path], tmp_path: Path) -> None:
    adv = tmp_path / "adv.npz"
    result = _run(
        "--model", str(models["sklearn"]), "--data", "demo:breast-cancer", "--attack", "square",
        "--param", "n_queries=100", "--eps", "0.05", "--n-samples", "30", "--save-adv", str(adv),
        "--immutable", "0", "--immutable", "mean texture", "--fail-on", "critical", "--no-reliability-checks",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    saved = np.load(adv)
    data = load_dataset("demo:breast-cancer")
    x = data.x[saved["indices"]]
    changed = saved["x_adv_0.05"] != x
    assert changed.any()
    assert not changed[:, :2].any()  # feature 0 and "mean texture" (feature 1) never move
    bad = _run("--model", str(models["sklearn"]), "--data", "demo:breast-cancer", "--immutable", "no such")
    assert bad.exit_code == 2
    assert "no such" in bad.output


def test_default_attack_falls_back_to_black_box_without_gradients(models: dict[str, Path]) -> None:
    """Issue 11, point 4: the default works on every target and says what it ran."""
    result = _run(
        "--model", str(models["sklearn"]), "--data", "demo:breast-cancer", "--eps", "0.05",
        "--n-samples", "30", "--param", "n_queries=100", "--format", "json", "--fail-on", "critical",
        "--no-reliability-checks",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    section = report["sections"]["evasion"]
    assert (section["requested_attack"], section["attack"]) == ("auto", "square")
    assert section["capability"] == "scores"
    assert report["metadata"]["requested_attack"] == "auto"
    finding = report["findings"][0]
    assert "black-box" in finding["title"].lower()
    assert "looser upper bound" in finding["description"]
    assert finding["evidence"]["requested_attack"] == "auto"


def test_reliability_checks_show_progress_on_a_terminal_only(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from mlarmor.cli import _output

    args = ("--model", str(models["torch"]), "--data", "demo:digits", "--attack", "pgd", "--eps", "0.1",
            "--n-samples", "40", "-f", "json")  # fmt: skip
    redirected = _run(*args)  # CliRunner's output is not a terminal: no bars, clean JSON
    assert redirected.exit_code in (0, 1), redirected.output
    assert "reliability checks" not in redirected.output
    assert "attacking" not in redirected.output
    screen = io.StringIO()
    monkeypatch.setattr(_output, "err_console", Console(file=screen, force_terminal=True, width=160))
    shown = _run(*args)
    assert shown.exit_code in (0, 1), shown.output
    drawn = screen.getvalue()
    assert "attacking 40 samples with pgd" in drawn
    assert "reliability checks" in drawn
    assert "PGD at half the input range" in drawn or "black-box Square" in drawn
    # --quiet silences the bars on a terminal too, and the report is unchanged.
    screen.truncate(0)
    quiet = runner.invoke(app, ["--quiet", "evasion", *args])
    assert quiet.exit_code == shown.exit_code, quiet.output
    assert screen.getvalue() == ""
    assert json.loads(quiet.stdout)["robust_accuracy"] == json.loads(shown.stdout)["robust_accuracy"]
