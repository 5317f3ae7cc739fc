"""Attribute inference on real small models: a model that uses the sensitive feature leaks it, one that
ignores it does not; categorical and numeric features; errors; ``mlarmor privacy --sensitive``."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from mlarmor.assess.privacy import attribute_finding, attribute_severity
from mlarmor.attacks.inference import AttributeResult, attribute_inference
from mlarmor.cli import app
from mlarmor.data import Dataset
from mlarmor.errors import InvalidParameterError
from mlarmor.findings import Family, Severity
from mlarmor.targets import ObfuscatedTarget, SklearnTarget

runner = CliRunner()
NAMES = ("a", "b", "c", "s", "d", "e")
SENSITIVE = 3


def make(n: int, kind: str, seed: int = 0) -> Dataset:
    """Five uniform features and a sensitive one at index 3, independent of them, that drives the label.

    The label is noisy, so the label and the other features tell an imputer little about the
    sensitive value; the model's output on the record tells it much more.
    """
    rng = np.random.default_rng(seed)
    others = rng.random((n, 5))
    s = rng.integers(0, 2, n).astype(float) if kind == "categorical" else rng.random(n)
    logit = (2.5 if kind == "categorical" else 4.0) * (s - 0.5) + 2.0 * (others[:, 0] - 0.5)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    x = np.column_stack([others[:, :3], s, others[:, 3:]])
    return Dataset(x=x, y=y, bounds=(0.0, 1.0), feature_names=NAMES, name=kind)


def fit(data: Dataset, *, ignore_sensitive: bool = False) -> SklearnTarget:
    x = np.array(data.x)
    if ignore_sensitive:
        x[:, SENSITIVE] = 0.0  # its coefficient stays exactly 0: the model cannot depend on it
    return SklearnTarget(LogisticRegression().fit(x, data.y), bounds=(0.0, 1.0))


@pytest.fixture(scope="module")
def categorical() -> Dataset:
    return make(800, "categorical")


@pytest.fixture(scope="module")
def numeric() -> Dataset:
    return make(800, "numeric")


def test_categorical_leak_and_no_leak(categorical: Dataset) -> None:
    leaky = attribute_inference(fit(categorical), categorical, "s")
    assert leaky.kind == "categorical"
    assert leaky.metric == "balanced_accuracy"
    assert leaky.feature == "s"
    assert leaky.index == SENSITIVE
    assert leaky.candidates.tolist() == [0.0, 1.0]
    assert leaky.n_train == leaky.n_test == 400
    assert leaky.lift == pytest.approx(leaky.attack_score - leaky.baseline_score)
    # The label alone lets imputation beat chance; the model's output nearly gives the value away.
    assert 0.6 < leaky.baseline_score < 0.8
    assert leaky.attack_score > 0.95
    assert leaky.lift > 0.15
    assert leaky.lift_interval[0] > 0.1
    assert attribute_severity(leaky) >= Severity.HIGH

    blind = attribute_inference(fit(categorical, ignore_sensitive=True), categorical, SENSITIVE)
    assert blind.baseline_score == leaky.baseline_score  # same split, same imputer
    assert abs(blind.lift) < 0.05
    assert blind.lift_interval[0] <= 0 <= blind.lift_interval[1]
    assert attribute_severity(blind) == Severity.NONE


def test_numeric_leak_and_no_leak(numeric: Dataset) -> None:
    leaky = attribute_inference(fit(numeric), numeric, SENSITIVE)
    assert leaky.kind == "numeric"
    assert leaky.metric == "r2"
    assert leaky.feature == "s"
    assert len(leaky.candidates) == 11  # quantile grid of the known values
    assert leaky.attack_score > 0.8
    assert leaky.lift > 0.5
    blind = attribute_inference(fit(numeric, ignore_sensitive=True), numeric, "s")
    assert abs(blind.lift) < 0.08
    assert attribute_severity(blind) == Severity.NONE


def test_result_arrays_and_dict(categorical: Dataset) -> None:
    result = attribute_inference(fit(categorical), categorical, "s", seed=3)
    assert result.per_example.shape == result.truth.shape == result.test_index.shape == (400,)
    assert np.array_equal(result.truth, categorical.x[result.test_index, SENSITIVE])
    assert set(np.unique(result.per_example)) <= {0.0, 1.0}
    accuracy = np.mean(result.per_example == result.truth)
    assert accuracy > 0.95
    # 400 + 400 records, each queried with both candidate values and once as it is.
    assert result.queries == 800 * 3
    exposed = result.exposed()
    assert 0 < len(exposed) <= 10
    for i in exposed:
        row = int(np.flatnonzero(result.test_index == i)[0])
        assert result.per_example[row] == result.truth[row] != result.baseline_per_example[row]
    d = result.to_dict()
    assert d["feature"] == "s"
    assert d["metric"] == "balanced_accuracy"
    assert d["lift"] == result.lift
    assert d["n_candidates"] == 2
    assert len(d["lift_interval"]) == 2
    json.dumps(d)  # plain numbers only
    again = attribute_inference(fit(categorical), categorical, "s", seed=3)
    assert np.array_equal(again.per_example, result.per_example)
    assert again.lift == result.lift


def test_known_reference_data_attacks_all_of_data(categorical: Dataset) -> None:
    members, population = categorical.subset(np.arange(400)), categorical.subset(np.arange(400, 800))
    result = attribute_inference(fit(members), members, "s", known=population)
    assert result.n_train == 400
    assert result.n_test == 400
    assert np.array_equal(result.test_index, np.arange(400))
    assert result.lift > 0.15


def test_queries_only_and_labels_only(categorical: Dataset) -> None:
    target = fit(categorical)
    # Without the record's own output the candidates' confidences are a function of the other
    # features and the label: for a model that generalises, about what imputation learns itself.
    queries_only = attribute_inference(target, categorical, "s", observed_output=False)
    assert queries_only.queries == 800 * 2
    assert abs(queries_only.lift) < 0.05
    labels = attribute_inference(ObfuscatedTarget(target, labels_only=True), categorical, "s")
    assert labels.access == "labels"
    # Here the predicted label is mostly the sensitive value itself: the decision leaks it.
    assert labels.lift > 0.15
    with pytest.raises(InvalidParameterError, match="labels only"):
        attribute_inference(ObfuscatedTarget(target, labels_only=True), categorical, "s", access="scores")


def test_categorical_override(numeric: Dataset, categorical: Dataset) -> None:
    target = fit(categorical)
    as_numeric = attribute_inference(target, categorical, "s", categorical=False)
    assert as_numeric.kind == "numeric"
    assert as_numeric.metric == "r2"
    coarse = Dataset(
        x=np.column_stack([numeric.x[:, :3], np.round(numeric.x[:, 3] * 4) / 4, numeric.x[:, 4:]]),
        y=numeric.y,
        feature_names=NAMES,
    )
    assert attribute_inference(fit(coarse), coarse, "s").kind == "numeric"  # not integers
    forced = attribute_inference(fit(coarse), coarse, "s", categorical=True)
    assert forced.kind == "categorical"
    assert forced.candidates.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(InvalidParameterError, match="at most 100"):
        attribute_inference(fit(numeric), numeric, "s", categorical=True)


def test_finding(categorical: Dataset) -> None:
    result = attribute_inference(fit(categorical), categorical, "s")
    finding = attribute_finding(result, target_name="clf.joblib")
    assert finding.id == "privacy.attribute-inference"
    assert finding.family == Family.INFERENCE
    assert finding.atlas == ["AML.T0024.001"]
    assert finding.owasp == ["ML03"]
    assert finding.severity == attribute_severity(result)
    assert finding.mitigations
    assert "'s'" in finding.title
    assert "lift +" in finding.title
    assert finding.evidence["lift"] == result.lift
    assert finding.location.samples == list(result.exposed())


@pytest.mark.parametrize(
    ("values", "interval", "severity"),
    [
        ((0.5, 0.5), (-0.1, 0.1), Severity.NONE),
        ((0.6, 0.5), (-0.01, 0.2), Severity.NONE),  # interval reaches 0
        ((0.51, 0.5), (0.001, 0.02), Severity.NONE),  # too small to matter
        ((0.55, 0.5), (0.01, 0.1), Severity.LOW),
        ((0.65, 0.5), (0.1, 0.2), Severity.MEDIUM),
        ((0.75, 0.5), (0.2, 0.3), Severity.HIGH),
        ((0.95, 0.5), (0.4, 0.5), Severity.CRITICAL),
    ],
)
def test_severity_thresholds(values, interval, severity) -> None:
    result = AttributeResult(
        feature="s", index=0, kind="categorical", metric="balanced_accuracy", attack_score=values[0],
        baseline_score=values[1], lift_interval=interval, n_train=100, n_test=100, access="scores",
        observed_output=True, candidates=np.array([0.0, 1.0]), queries=0, seconds=0.0,
        per_example=np.zeros(1), baseline_per_example=np.zeros(1), truth=np.zeros(1),
        test_index=np.zeros(1, int),
    )  # fmt: skip
    assert attribute_severity(result) == severity


@pytest.mark.parametrize(
    ("feature", "kwargs", "message"),
    [
        ("age", {}, "feature name among: a, b, c, s, d, e"),
        (6, {}, r"\[0, 6\)"),
        (-1, {}, r"\[0, 6\)"),
        (True, {}, "index \\(int\\) or name"),
        ("s", {"test_fraction": 1.5}, "test_fraction"),
        ("s", {"categorical": "yes"}, "categorical"),
        ("s", {"access": "logits"}, "access"),
        ("s", {"seed": 0.5}, "seed"),
    ],
)
def test_bad_parameters(categorical: Dataset, feature, kwargs, message) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        attribute_inference(fit(categorical), categorical, feature, **kwargs)


def test_bad_data(categorical: Dataset) -> None:
    target = fit(categorical)
    constant = Dataset(
        x=np.column_stack([categorical.x[:, :3], np.zeros(800), categorical.x[:, 4:]]), y=categorical.y
    )
    with pytest.raises(InvalidParameterError, match="constant"):
        attribute_inference(target, constant, 3)
    with pytest.raises(InvalidParameterError, match="constant"):
        attribute_inference(target, categorical, 3, known=constant)
    with pytest.raises(InvalidParameterError, match="no feature names"):
        attribute_inference(target, constant, "s")
    with pytest.raises(InvalidParameterError, match="at least 20 reference records and 10 attacked"):
        attribute_inference(target, categorical.subset(np.arange(30)), "s")
    with pytest.raises(InvalidParameterError, match="at least 20"):
        attribute_inference(target, categorical, "s", known=categorical.subset(np.arange(10)))
    wide = Dataset(x=np.hstack([categorical.x, categorical.x[:, :1]]), y=categorical.y)
    with pytest.raises(InvalidParameterError, match="expects inputs of shape"):
        attribute_inference(target, wide, 3)
    with pytest.raises(InvalidParameterError, match="same population"):
        attribute_inference(target, categorical, 3, known=wide)
    three = Dataset(x=categorical.x, y=np.arange(800) % 3)
    with pytest.raises(InvalidParameterError, match="outputs 2 classes"):
        attribute_inference(target, three, 3)


def test_cli(categorical: Dataset, tmp_path: Path) -> None:
    members, nonmembers = categorical.subset(np.arange(400)), categorical.subset(np.arange(400, 800))
    np.savez(tmp_path / "m.npz", x=members.x, y=members.y)
    np.savez(tmp_path / "n.npz", x=nonmembers.x, y=nonmembers.y)
    joblib.dump(fit(members).estimator, tmp_path / "clf.joblib")
    args = [
        "privacy", "--model", str(tmp_path / "clf.joblib"), "--members", str(tmp_path / "m.npz"),
        "--nonmembers", str(tmp_path / "n.npz"), "--reference-models", "0", "--sensitive", "3",
        "--fail-on", "critical",
    ]  # fmt: skip
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    attack = report["attacks"]["attribute:3"]
    assert attack["kind"] == "categorical"
    assert attack["n_train"] == attack["n_test"] == 400
    assert attack["lift"] > 0.15
    assert "loss" in report["attacks"]  # the membership audit still runs
    ids = [f["id"] for f in report["findings"]]
    assert ids == ["privacy.membership-inference", "privacy.attribute-inference"]
    assert report["findings"][1]["severity"] in ("high", "critical")
    assert report["metadata"]["sensitive"] == ["3"]

    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "attribute inference" in table.output
    assert "Attribute inference of '3'" in table.output

    gated = runner.invoke(app, [*args[:-2], "--fail-on", "high", "-f", "json"])
    assert gated.exit_code == 1  # the attribute finding counts towards --fail-on

    bad = runner.invoke(app, [*args[:-4], "--sensitive", "age"])
    assert bad.exit_code == 2
    assert "no feature names" in bad.output


def test_cli_without_sensitive_is_unchanged(categorical: Dataset, tmp_path: Path) -> None:
    members, nonmembers = categorical.subset(np.arange(400)), categorical.subset(np.arange(400, 800))
    np.savez(tmp_path / "m.npz", x=members.x, y=members.y)
    np.savez(tmp_path / "n.npz", x=nonmembers.x, y=nonmembers.y)
    joblib.dump(fit(members).estimator, tmp_path / "clf.joblib")
    result = runner.invoke(
        app,
        [
            "privacy", "--model", str(tmp_path / "clf.joblib"), "--members", str(tmp_path / "m.npz"),
            "--nonmembers", str(tmp_path / "n.npz"), "--reference-models", "0", "-f", "json",
        ],
    )  # fmt: skip
    report = json.loads(result.output[result.output.index("{") :])
    assert not any(name.startswith("attribute:") for name in report["attacks"])
    assert [f["id"] for f in report["findings"]] == ["privacy.membership-inference"]
    assert "sensitive" not in report["metadata"]
