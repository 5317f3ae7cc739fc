"""The privacy audit end to end on a real overfitted model: Python API and ``mlarmor privacy``."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier
from typer.testing import CliRunner

from mlarmor.assess.privacy import audit_membership, privacy_severity, to_privacy_report
from mlarmor.attacks.inference import LabelOnlyAttack, LiRA, ThresholdAttack
from mlarmor.cli import app
from mlarmor.data import Dataset, load_dataset
from mlarmor.errors import InvalidParameterError
from mlarmor.findings import Severity
from mlarmor.schema import SCHEMA_VERSION
from mlarmor.targets import SklearnTarget
from mlarmor.targets.recipe import recipe_for

runner = CliRunner()


@pytest.fixture(scope="module")
def split() -> tuple[Dataset, Dataset]:
    digits = load_dataset("demo:digits")
    x = digits.x.reshape(len(digits.x), -1)
    order = np.random.default_rng(0).permutation(len(x))[:800]
    a, b = order[:400], order[400:]
    return (
        Dataset(x=x[a], y=digits.y[a], bounds=(0.0, 1.0), name="members"),
        Dataset(x=x[b], y=digits.y[b], bounds=(0.0, 1.0), name="nonmembers"),
    )


@pytest.fixture(scope="module")
def target(split) -> SklearnTarget:
    members, _ = split
    # Little data, no regularisation, trained to zero training error: it memorises.
    clf = MLPClassifier((64,), alpha=0.0, max_iter=400, random_state=0).fit(members.x, members.y)
    return SklearnTarget(clf, bounds=(0.0, 1.0), num_classes=10)


@pytest.fixture(scope="module")
def audit(split, target):
    members, nonmembers = split
    return audit_membership(
        target, members, nonmembers, recipe=recipe_for(target, num_classes=10), n_reference=4, workers=1
    )


def test_audit_measures_every_default_attack(audit) -> None:
    names = [o.name for o in audit.outcomes]
    assert {"loss", "lira-online", "lira-offline", "rmia-online", "rmia-offline", "shadow-model"} <= set(
        names
    )
    for o in audit.outcomes:
        m = o.metrics
        assert 0.0 <= m.auc <= 1.0
        assert 0.5 <= m.balanced_accuracy <= 1.0
        # 400 non-members measure a 1% FPR (100 needed) but not 0.1% (1000 needed).
        assert set(m.tpr_at_fpr) == set(m.tpr_at_fpr_ci) == {"0.01"}
        assert m.unmeasured_fprs == {"0.001": 1000}
        assert m.epsilon.epsilon >= 0.0
        assert o.scores.shape == (800,)
    assert audit.n_members == audit.n_nonmembers == 400
    assert audit.target_accuracy[0] == 1.0  # memorised
    # An overfitted model leaks: the strongest attack is clearly better than guessing.
    assert audit.best.metrics.auc > 0.6
    assert len(audit.exposed) == 10
    assert all(0 <= i < 400 for i, _ in audit.exposed)


def test_report(audit) -> None:
    report = to_privacy_report(audit, metadata={"members": "m.npz"})
    data = json.loads(report.model_dump_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["kind"] == "privacy"
    lira = data["attacks"]["lira-online"]
    assert set(lira) >= {"auc", "balanced_accuracy", "tpr_at_fpr", "epsilon_lower_bound"}
    assert set(lira["tpr_at_fpr"]) == {"0.01"}
    low, high = lira["tpr_at_fpr_ci"]["0.01"]
    assert low <= lira["tpr_at_fpr"]["0.01"] <= high
    finding = data["findings"][0]
    assert finding["id"] == "privacy.membership-inference"
    assert finding["atlas"] == ["AML.T0024.000"]
    assert finding["owasp"] == ["ML04"]
    assert finding["severity"] == privacy_severity(audit.best.metrics).label
    assert data["metadata"]["members"] == "m.npz"


def test_no_reference_models_runs_the_threshold_attacks(split, target) -> None:
    members, nonmembers = split
    audit = audit_membership(target, members, nonmembers, n_reference=0)
    assert {o.name for o in audit.outcomes} == {"loss", "confidence", "entropy", "modified-entropy"}
    with pytest.raises(InvalidParameterError, match="reference models"):
        audit_membership(target, members, nonmembers, n_reference=0, attacks=[LiRA()])


def test_label_only_access(split, target) -> None:
    members, nonmembers = split
    audit = audit_membership(
        target,
        members,
        nonmembers,
        access="labels",
        attacks=[LabelOnlyAttack(max_queries=150)],
        label_only_samples=40,
    )
    (outcome,) = audit.outcomes
    assert outcome.name == "label-only"
    assert np.isfinite(outcome.scores).sum() == 80
    assert outcome.metrics.n_members == outcome.metrics.n_nonmembers == 40


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("overlap", "both in the members and in the non-members"),
        ("shape", "same input shape"),
        ("odd", "must be even"),
        ("recipe", "recipe"),
    ],
)
def test_bad_input(split, target, change, message) -> None:
    members, nonmembers = split
    kwargs: dict[str, object] = {"n_reference": 2, "recipe": recipe_for(target, num_classes=10)}
    if change == "overlap":
        nonmembers = Dataset(
            x=np.concatenate([nonmembers.x, members.x[:3]]),
            y=np.concatenate([nonmembers.y, members.y[:3]]),
            bounds=(0.0, 1.0),
        )
    elif change == "shape":
        nonmembers = Dataset(x=nonmembers.x[:, :32], y=nonmembers.y, bounds=(0.0, 1.0))
    elif change == "odd":
        kwargs["n_reference"] = 3
    else:
        kwargs["recipe"] = None
    with pytest.raises(InvalidParameterError, match=message):
        audit_membership(target, members, nonmembers, **kwargs)  # type: ignore[arg-type]


def test_severity_thresholds(audit) -> None:
    from dataclasses import replace

    # A million of each: the intervals shrink to the point estimates.
    m = replace(audit.best.metrics, n_members=10**6, n_nonmembers=10**6)
    assert privacy_severity(replace(m, auc=0.5, tpr_at_fpr={"0.001": 0.0, "0.01": 0.0})) == Severity.NONE
    assert privacy_severity(replace(m, auc=0.56, tpr_at_fpr={"0.001": 0.0, "0.01": 0.0})) == Severity.LOW
    assert privacy_severity(replace(m, auc=0.5, tpr_at_fpr={"0.001": 0.0, "0.01": 0.06})) == Severity.MEDIUM
    assert privacy_severity(replace(m, auc=0.5, tpr_at_fpr={"0.001": 0.03, "0.01": 0.06})) == Severity.HIGH
    assert privacy_severity(replace(m, auc=0.5, tpr_at_fpr={"0.001": 0.2, "0.01": 0.3})) == Severity.CRITICAL


def test_severity_reads_lower_bounds_at_measurable_levels(audit) -> None:
    from dataclasses import replace

    m = replace(audit.best.metrics, auc=0.5, n_members=400, n_nonmembers=400)
    # 0.1% FPR needs 1000 non-members: a TPR there sets nothing, even when inserted by hand.
    assert privacy_severity(replace(m, tpr_at_fpr={"0.001": 0.5})) == Severity.NONE
    # 24 of 400 members (6%) at 1% FPR: the interval reaches below 5%, so not medium yet.
    assert privacy_severity(replace(m, tpr_at_fpr={"0.01": 24 / 400})) == Severity.NONE
    assert privacy_severity(replace(m, tpr_at_fpr={"0.01": 40 / 400})) == Severity.MEDIUM
    # AUC 0.62 on 400 + 400 has a lower end above 0.58: low; on 30 + 30 it shows nothing.
    assert privacy_severity(replace(m, auc=0.62, tpr_at_fpr={})) == Severity.LOW
    tiny = replace(m, auc=0.62, n_members=30, n_nonmembers=30, tpr_at_fpr={})
    assert privacy_severity(tiny) == Severity.NONE


def test_cli(split, target, tmp_path: Path) -> None:
    members, nonmembers = split
    np.savez(tmp_path / "m.npz", x=members.x, y=members.y)
    np.savez(tmp_path / "n.npz", x=nonmembers.x, y=nonmembers.y)
    joblib.dump(target.estimator, tmp_path / "clf.joblib")
    args = [
        "privacy", "--model", str(tmp_path / "clf.joblib"), "--members", str(tmp_path / "m.npz"),
        "--nonmembers", str(tmp_path / "n.npz"), "--reference-models", "2", "--workers", "1",
        "--cache-dir", str(tmp_path / "cache"), "--attack", "loss", "--attack", "lira-offline",
        "--plot", str(tmp_path / "roc.svg"), "-f", "json", "--fail-on", "critical",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert set(report["attacks"]) == {"loss", "lira-offline"}
    section = report["sections"]["privacy"]
    assert set(section["attacks"]) == {"loss", "lira-offline"}
    assert section["attacks"]["loss"]["auc"] == report["attacks"]["loss"]["auc"]
    assert (section["n_reference"], section["best_attack"]) == (2, report["metadata"]["best_attack"])
    assert (tmp_path / "roc.svg").read_text().startswith("<?xml")
    assert list((tmp_path / "cache").rglob("*.npz"))  # reference outputs cached
    again = runner.invoke(app, args)
    assert json.loads(again.output[again.output.index("{") :])["metadata"]["cached_reference"] == 2
    bad = runner.invoke(app, [*args[:7], "--reference-models", "3"])
    assert bad.exit_code == 2
    assert "even" in bad.output


def test_threshold_attack_alone(split, target) -> None:
    members, nonmembers = split
    audit = audit_membership(target, members, nonmembers, n_reference=0, attacks=[ThresholdAttack("logit")])
    assert audit.best.name == "logit"


def test_lira_query_augmentation_on_images(split, target) -> None:
    members, nonmembers = split
    images = [
        Dataset(x=d.x.reshape(-1, 1, 8, 8), y=d.y, bounds=(0.0, 1.0), name=d.name)
        for d in (members, nonmembers)
    ]
    image_target = SklearnTarget(target.estimator, bounds=(0.0, 1.0), num_classes=10, input_shape=(1, 8, 8))
    kwargs = {
        "recipe": recipe_for(image_target, num_classes=10),
        "n_reference": 2,
        "workers": 1,
        "attacks": [LiRA()],
    }
    plain = audit_membership(image_target, *images, **kwargs)  # type: ignore[arg-type]
    shifted = audit_membership(image_target, *images, augmentations=2, **kwargs)  # type: ignore[arg-type]
    assert not np.array_equal(plain.outcomes[0].scores, shifted.outcomes[0].scores)
    assert 0.0 <= shifted.outcomes[0].metrics.auc <= 1.0
    with pytest.raises(InvalidParameterError, match="flat features"):
        audit_membership(target, members, nonmembers, augmentations=2, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="augmentations"):
        audit_membership(image_target, *images, augmentations=9, **kwargs)  # type: ignore[arg-type]


def test_cli_model_inversion(tmp_path: Path) -> None:
    import torch

    from mlarmor.models import digits_mlp, fit_classifier

    digits = load_dataset("demo:digits")
    order = np.random.default_rng(1).permutation(digits.n)
    inside, outside = order[:600], order[600:1000]
    model = fit_classifier(digits_mlp(seed=0), digits.x[inside], digits.y[inside], epochs=30, seed=0)
    torch.jit.save(torch.jit.script(model), str(tmp_path / "mlp.pt"))
    np.savez(tmp_path / "m.npz", x=digits.x[inside], y=digits.y[inside])
    np.savez(tmp_path / "n.npz", x=digits.x[outside], y=digits.y[outside])
    result = runner.invoke(
        app,
        ["privacy", "--model", str(tmp_path / "mlp.pt"), "--members", str(tmp_path / "m.npz"),
         "--nonmembers", str(tmp_path / "n.npz"), "--reference-models", "0", "--invert",
         "--invert-images", str(tmp_path / "inv.svg"), "-f", "json", "--fail-on", "critical"],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.output[result.output.index("{") :])
    inversion = report["attacks"]["inversion"]
    assert inversion["mean_similarity"] > inversion["baseline_similarity"]
    finding = next(f for f in report["findings"] if f["id"] == "privacy.model-inversion")
    assert finding["atlas"] == ["AML.T0024.001"]
    assert (tmp_path / "inv.svg").read_text().startswith("<?xml")
    # A model without gradients cannot be inverted: a clear error.
    members = load_dataset(str(tmp_path / "m.npz"))
    clf = MLPClassifier((16,), max_iter=50, random_state=0).fit(members.x.reshape(members.n, -1), members.y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    refused = runner.invoke(
        app,
        ["privacy", "--model", str(tmp_path / "clf.joblib"), "--members", str(tmp_path / "m.npz"),
         "--nonmembers", str(tmp_path / "n.npz"), "--reference-models", "0", "--invert"],
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "gradients" in refused.output


@pytest.mark.parametrize(
    ("gain", "rate", "expected"),
    [
        (0.05, 1.0, "none"),
        (0.15, 0.2, "low"),
        (0.25, 0.6, "medium"),
        (0.35, 0.9, "high"),
        (0.35, 0.6, "medium"),
    ],
)
def test_inversion_severity(gain: float, rate: float, expected: str) -> None:
    from mlarmor.assess.privacy import inversion_severity

    assert inversion_severity(gain, rate).label == expected


def test_obfuscation_lowers_what_the_audit_finds(split, target, tmp_path: Path) -> None:
    members, nonmembers = split
    recipe = recipe_for(target, num_classes=10)
    plain = audit_membership(target, members, nonmembers, recipe=recipe, n_reference=4, workers=1)
    from mlarmor.targets import ObfuscatedTarget

    hidden = audit_membership(
        ObfuscatedTarget(target, top_k=1), members, nonmembers, recipe=recipe, n_reference=4, workers=1
    )
    # Only the decision is left: no attack does better than the train/test accuracy gap allows.
    assert hidden.best.metrics.auc < plain.best.metrics.auc
    gap = 0.5 + 0.5 * (hidden.target_accuracy[0] - hidden.target_accuracy[1])
    assert hidden.best.metrics.auc <= gap + 0.05
    # The command line does the same with --top-k.
    np.savez(tmp_path / "m.npz", x=members.x, y=members.y)
    np.savez(tmp_path / "n.npz", x=nonmembers.x, y=nonmembers.y)
    joblib.dump(target.estimator, tmp_path / "clf.joblib")
    result = runner.invoke(
        app,
        ["privacy", "--model", str(tmp_path / "clf.joblib"), "--members", str(tmp_path / "m.npz"),
         "--nonmembers", str(tmp_path / "n.npz"), "--reference-models", "2", "--workers", "1", "--no-cache",
         "--top-k", "1", "-f", "json", "--fail-on", "critical"],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["metadata"]["model"].endswith("clf.joblib")
