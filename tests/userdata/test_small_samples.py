"""Small samples (issue 11, point 3): rates only at levels the sample measures, with intervals.

A privacy audit with 72 non-members used to be rated critical from a "TPR at 0.1% FPR" that 72
non-members cannot measure (the smallest non-zero FPR is 1/72 = 1.4%): that TPR was the share of
members scoring above every non-member. Evasion accuracies on 30 samples came without any interval.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from mlarmor import audit_privacy
from mlarmor._stats import auc_interval, clopper_pearson
from mlarmor.assess import evaluate_evasion
from mlarmor.attacks.inference.metrics import tpr_at_fpr
from mlarmor.cli import app
from mlarmor.data import load_dataset
from mlarmor.errors import MlarmorWarning
from mlarmor.findings import Severity
from mlarmor.risk import severity as rules
from mlarmor.targets import SklearnTarget
from mlarmor.testing.tables import customers as customer_table

runner = CliRunner()


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("customers")
    frame = customer_table(144, seed=0)
    frame[:72].to_csv(tmp / "members.csv", index=False)
    frame[72:].to_csv(tmp / "heldout.csv", index=False)
    features, status = frame.drop(columns="status").to_numpy(), frame["status"].to_numpy()
    # Trained to memorise its 72 members: no regularisation.
    mlp = make_pipeline(StandardScaler(), MLPClassifier((64,), alpha=0.0, max_iter=3000, random_state=0))
    joblib.dump(mlp.fit(features[:72], status[:72]), tmp / "mlp.joblib")
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    joblib.dump(linear.fit(features[:72], status[:72]), tmp / "linear.joblib")
    return {
        "members": tmp / "members.csv",
        "heldout": tmp / "heldout.csv",
        "mlp": tmp / "mlp.joblib",
        "linear": tmp / "linear.joblib",
    }


def _target(path: Path, *datasets) -> SklearnTarget:  # type: ignore[no-untyped-def]
    bounds = (min(d.bounds[0] for d in datasets), max(d.bounds[1] for d in datasets))
    return SklearnTarget(joblib.load(path), bounds=bounds)


def test_72_non_members_cannot_rate_from_a_tpr_at_0_1_pct_fpr(customers: dict[str, Path]) -> None:
    members = load_dataset(str(customers["members"]), label_column="status")
    nonmembers = load_dataset(str(customers["heldout"]), label_column="status")
    target = _target(customers["mlp"], members, nonmembers)
    with pytest.warns(MlarmorWarning, match=r"Only 72 non-members: too few to measure a TPR at 0\.1% FPR"):
        result = audit_privacy(target, members, nonmembers, reference_models=4, workers=1)
    audit = result.membership
    best = audit.best.metrics
    for outcome in audit.outcomes:
        m = outcome.metrics
        assert m.tpr_at_fpr == {}  # neither 0.1% nor 1% FPR is measurable with 72 non-members
        assert m.unmeasured_fprs == {"0.001": 1000, "0.01": 100}
        assert m.auc_ci == auc_interval(m.auc, 72, 72)
    # What the old code rated from: the share of members above every non-member, far above 10%.
    old_tpr = tpr_at_fpr(audit.best.scores, audit.is_member, 0.001)
    assert rules.membership(best.auc, old_tpr, 0.0) == Severity.CRITICAL
    report = result.to_report()
    finding = report.findings[0]
    assert finding.severity == rules.membership(best.auc_ci[0], None, None) < Severity.CRITICAL
    assert "not measurable with 72 non-members" in finding.description
    assert finding.evidence["unmeasured_fprs"] == {"0.001": 1000, "0.01": 100}
    assert "Only 72 non-members" in finding.evidence["sample_note"]
    section = report.sections.privacy
    assert section is not None
    assert section.attacks[audit.best.name].tpr_at_fpr == {}
    _, nonmembers_ci = audit.target_accuracy_ci
    assert nonmembers_ci == clopper_pearson(round(audit.target_accuracy[1] * 72), 72)


def test_privacy_cli_reports_intervals_and_warns(customers: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "privacy", "--model", str(customers["mlp"]), "--members", str(customers["members"]),
            "--nonmembers", str(customers["heldout"]), "--label-column", "status",
            "--reference-models", "0", "-f", "json", "--fail-on", "critical",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # never critical: nothing measured can make it so
    assert "warning: Only 72 non-members" in result.stderr
    report = json.loads(result.stdout)
    for name, attack in report["attacks"].items():
        assert attack["tpr_at_fpr"] == attack["tpr_at_fpr_ci"] == {}, name
        assert attack["unmeasured_fprs"] == {"0.001": 1000, "0.01": 100}
        assert attack["auc_ci"] == pytest.approx(list(auc_interval(attack["auc"], 72, 72)))
        assert attack["auc_ci"][0] < attack["auc"] < attack["auc_ci"][1]
    finding = report["findings"][0]
    best = report["attacks"][finding["evidence"]["best_attack"]]
    assert finding["severity"] == rules.membership(best["auc_ci"][0], None, None).label
    assert finding["evidence"]["tpr_at_fpr"] == {}
    table = runner.invoke(
        app,
        [
            "privacy", "--model", str(customers["mlp"]), "--members", str(customers["members"]),
            "--nonmembers", str(customers["heldout"]), "--label-column", "status",
            "--reference-models", "0", "-o", str(tmp_path / "table.txt"),
        ],
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    text = (tmp_path / "table.txt").read_text(encoding="utf-8")  # 120 columns wide
    assert "n/a (< 1000)" in text
    assert "with 95% intervals" in text
    assert f"{best['auc']:.3f} [{best['auc_ci'][0]:.2f}, {best['auc_ci'][1]:.2f}]" in text


def test_evasion_on_30_samples_reports_intervals_and_warns(customers: dict[str, Path]) -> None:
    data = load_dataset(str(customers["heldout"]), label_column="status")
    target = _target(customers["linear"], data)
    with pytest.warns(MlarmorWarning, match="Only 30 samples were attacked"):
        assessment = evaluate_evasion(
            target, data, eps=[0.5], n_samples=30, params={"n_queries": 100}, reliability=False
        )
    correct = round(assessment.clean_accuracy * 30)
    assert assessment.clean_accuracy_ci == clopper_pearson(correct, 30)
    robust = assessment.robust_accuracy["0.5"]
    low, high = assessment.robust_accuracy_ci["0.5"]
    assert (low, high) == clopper_pearson(round(robust * 30), 30)
    clean_low, clean_high = assessment.clean_accuracy_ci
    assert clean_high - clean_low > 0.25  # 30 samples cannot pin an accuracy down
    report = assessment.to_report()
    section = report.sections.evasion
    assert section is not None
    assert section.clean_accuracy_ci == assessment.clean_accuracy_ci
    assert section.robust_accuracy_ci == {"0.5": (low, high)}
    finding = report.findings[0]
    assert finding.evidence["clean_accuracy_ci"] == list(assessment.clean_accuracy_ci)
    assert "Only 30 samples were evaluated" in finding.description
    # The severity reads the measured points lost, never lowered for the small sample.
    assert finding.severity == rules.accuracy_loss(assessment.accuracy_lost)


def test_evasion_cli_on_30_samples(customers: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "evasion", "--model", str(customers["linear"]), "--data", str(customers["heldout"]),
            "--label-column", "status", "--eps", "0.5", "--n-samples", "30", "--param", "n_queries=100",
            "--no-reliability-checks", "-f", "json", "--fail-on", "critical",
        ],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    assert "warning: Only 30 samples were attacked" in result.stderr
    report = json.loads(result.stdout)
    section = report["sections"]["evasion"]
    correct = round(section["clean_accuracy"] * 30)
    assert section["clean_accuracy_ci"] == pytest.approx(list(clopper_pearson(correct, 30)))
    robust = round(section["robust_accuracy"]["0.5"] * 30)
    assert section["robust_accuracy_ci"]["0.5"] == pytest.approx(list(clopper_pearson(robust, 30)))
    details = report["attacks"][section["attack"]]["eps"]["0.5"]
    assert details["robust_accuracy_ci"] == section["robust_accuracy_ci"]["0.5"]


def test_no_warning_with_enough_samples(customers: dict[str, Path]) -> None:
    data = load_dataset(str(customers["members"]), label_column="status")
    big = data.subset(np.tile(np.arange(data.n), 2))  # 144 rows
    with warnings.catch_warnings():
        warnings.simplefilter("error", MlarmorWarning)
        evaluate_evasion(
            _target(customers["linear"], data), big, eps=[0.5], params={"n_queries": 20}, reliability=False
        )
