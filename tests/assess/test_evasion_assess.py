"""The Python API of the evasion assessment: evaluate_evasion, to_report, severities, saving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlarmor.assess import eps_key, evaluate_evasion, save_adversarial, severity_for_loss, to_report
from mlarmor.data import Dataset, load_dataset
from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.findings import Family, Severity
from mlarmor.models import digits_mlp, fit_classifier
from mlarmor.report import to_json
from mlarmor.targets import SklearnTarget, TorchTarget


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("demo:digits")


@pytest.fixture(scope="module")
def target(digits: Dataset) -> TorchTarget:
    net = fit_classifier(digits_mlp(hidden=32), digits.x, digits.y, epochs=120, batch_size=None, lr=1e-2)
    return TorchTarget(net, bounds=(0.0, 1.0), input_shape=(1, 8, 8), name="mlp")


@pytest.fixture(scope="module")
def assessment(target: TorchTarget, digits: Dataset):
    return evaluate_evasion(target, digits, attack="pgd", eps=[0.1, 0.02], n_samples=80, seed=3)


def test_results_per_eps_ascending(assessment) -> None:
    assert assessment.eps == (0.02, 0.1)
    assert [r.eps for r in assessment.results] == [0.02, 0.1]
    assert assessment.budget_eps == 0.1  # the largest eps by default
    assert assessment.n_samples == 80
    assert set(assessment.robust_accuracy) == {"0.02", "0.1"}
    robust = assessment.robust_accuracy
    assert assessment.clean_accuracy > 0.9
    assert robust["0.1"] <= robust["0.02"] <= assessment.clean_accuracy
    assert robust["0.1"] < assessment.clean_accuracy  # PGD at 0.1 breaks an undefended MLP
    assert assessment.seconds > 0


def test_samples_are_a_seeded_shuffle(assessment, target: TorchTarget, digits: Dataset) -> None:
    expected = np.random.default_rng(3).permutation(digits.n)[:80]
    np.testing.assert_array_equal(assessment.indices, expected)
    np.testing.assert_array_equal(assessment.results[0].y, digits.y[expected])
    again = evaluate_evasion(target, digits, attack="pgd", eps=[0.1, 0.02], n_samples=80, seed=3)
    assert again.robust_accuracy == assessment.robust_accuracy
    everything = evaluate_evasion(target, digits, attack="fgsm", eps=[0.0], n_samples=10_000)
    assert everything.n_samples == digits.n


def test_report_fields(assessment) -> None:
    report = to_report(assessment, metadata={"extra": 1})
    assert report.kind == "evasion"
    assert report.clean_accuracy == assessment.clean_accuracy
    assert report.robust_accuracy == assessment.robust_accuracy
    assert report.attacks is not None
    assert list(report.attacks) == ["pgd"]
    details = report.attacks["pgd"]
    assert details["params"]["steps"] == 40
    assert details["norm"] == "linf"
    assert details["capability"] == "gradients"
    assert details["n_samples"] == 80
    assert set(details["eps"]) == {"0.02", "0.1"}
    row = details["eps"]["0.1"]
    assert row["robust_accuracy"] == report.robust_accuracy["0.1"]
    assert 0.0 < row["median_norm"] <= 0.1 + 1e-6
    assert row["mean_queries"] > 0
    assert row["total_queries"] > 0
    assert report.metadata["extra"] == 1
    assert report.metadata["budget_eps"] == 0.1

    (finding,) = report.findings
    lost = 100 * (report.clean_accuracy - report.robust_accuracy["0.1"])
    assert finding.family is Family.EVASION
    assert finding.severity == severity_for_loss(lost) == report.severity
    assert finding.evidence["accuracy_lost_points"] == pytest.approx(lost)
    assert finding.evidence["robust_accuracy"] == report.robust_accuracy["0.1"]
    assert finding.atlas == ["AML.T0043.000", "AML.T0015"]
    assert finding.owasp == ["ML01"]
    assert any("mlarmor harden --method adversarial-training" in m for m in finding.mitigations)
    assert json.loads(to_json(report))["robust_accuracy"] == report.robust_accuracy


def test_budget_eps_sets_severity_and_is_evaluated(target: TorchTarget, digits: Dataset) -> None:
    small = evaluate_evasion(target, digits, attack="fgsm", eps=[0.2], budget_eps=0.0, n_samples=50)
    assert small.eps == (0.0, 0.2)
    assert small.robust_accuracy["0.0"] == small.clean_accuracy
    report = to_report(small)
    assert report.findings[0].severity is Severity.NONE
    assert report.findings[0].evidence["budget_eps"] == 0.0


@pytest.mark.parametrize(
    ("points", "severity"),
    [
        (100.0, Severity.CRITICAL),
        (50.0, Severity.CRITICAL),
        (49.99, Severity.HIGH),
        (25.0, Severity.HIGH),
        (24.99, Severity.MEDIUM),
        (10.0, Severity.MEDIUM),
        (9.99, Severity.LOW),
        (0.01, Severity.LOW),
        (0.0, Severity.NONE),
    ],
)
def test_severity_thresholds(points: float, severity: Severity) -> None:
    assert severity_for_loss(points) is severity


def test_eps_keys() -> None:
    assert [eps_key(e) for e in (0.1, 1, 0.03, 8 / 255)] == ["0.1", "1.0", "0.03", repr(8 / 255)]


def test_black_box_report_and_capability_error() -> None:
    from sklearn.linear_model import LogisticRegression

    data = load_dataset("demo:breast-cancer")
    clf = LogisticRegression(max_iter=500).fit(data.x, data.y)
    target = SklearnTarget(clf, bounds=(0.0, 1.0), name="logreg")
    with pytest.raises(UnsupportedModelError, match=r"gradients.*square"):
        evaluate_evasion(target, data, attack="pgd", eps=[0.1], n_samples=20)
    result = evaluate_evasion(
        target, data, attack="square", eps=[0.1], n_samples=20, params={"n_queries": 200}
    )
    finding = to_report(result).findings[0]
    assert finding.atlas[0] == "AML.T0043.001"
    assert result.params["n_queries"] == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"eps": []},
        {"eps": [-0.1]},
        {"eps": [float("nan")]},
        {"eps": [0.1], "budget_eps": -1.0},
        {"eps": [0.1], "norm": "l1"},
        {"eps": [0.1], "attack": "nope"},
        {"eps": [0.1], "n_samples": 0},
        {"eps": [0.1], "params": {"steps": -3}},
    ],
)
def test_bad_parameters(target: TorchTarget, digits: Dataset, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterError):
        evaluate_evasion(target, digits, **{"attack": "fgsm", **kwargs})  # type: ignore[arg-type]


def test_data_that_does_not_fit_the_target(target: TorchTarget) -> None:
    tabular = load_dataset("demo:breast-cancer")
    with pytest.raises(InvalidParameterError, match="shape"):
        evaluate_evasion(target, tabular, attack="fgsm", eps=[0.1])


def test_save_adversarial(assessment, tmp_path: Path) -> None:
    path = save_adversarial(assessment, tmp_path / "sub" / "adv")
    assert path.name == "adv.npz"
    with np.load(path, allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["indices"], assessment.indices)
        np.testing.assert_array_equal(saved["eps"], [0.02, 0.1])
        for r in assessment.results:
            key = eps_key(r.eps)
            np.testing.assert_array_equal(saved[f"x_adv_{key}"], r.x_adv)
            np.testing.assert_array_equal(saved[f"success_{key}"], r.success)
            assert saved[f"x_adv_{key}"].shape == (80, 1, 8, 8)
        np.testing.assert_array_equal(saved["y"], assessment.results[0].y)
