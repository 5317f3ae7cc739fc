"""Reliability checks: each weak-evaluation pattern is flagged, an ordinary MLP is not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlarmor.assess import check_reliability, evaluate_evasion, to_report
from mlarmor.data import Dataset, load_dataset
from mlarmor.errors import InvalidParameterError
from mlarmor.findings import Family, Severity
from mlarmor.models import digits_mlp, fit_classifier
from mlarmor.targets import SklearnTarget, TorchTarget


class _Round(torch.nn.Module):
    """Input quantisation: a non-differentiable step whose gradient is zero everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 4) / 4


class _Noise(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * torch.randn_like(x)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("demo:digits")


def _train(digits: Dataset, *front: torch.nn.Module) -> torch.nn.Sequential:
    net = torch.nn.Sequential(*front, *digits_mlp(hidden=32))
    return fit_classifier(net, digits.x, digits.y, epochs=120, batch_size=None, lr=1e-2)


@pytest.fixture(scope="module")
def mlp(digits: Dataset) -> torch.nn.Sequential:
    return _train(digits)


@pytest.fixture(scope="module")
def rounded(digits: Dataset) -> TorchTarget:
    return TorchTarget(_train(digits, _Round()), bounds=(0.0, 1.0), input_shape=(1, 8, 8), name="round")


def _sample(digits: Dataset, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(0).permutation(digits.n)[:n]
    return digits.x[idx], digits.y[idx]


def _ids(findings: list) -> set[str]:
    return {f.id.removeprefix("evasion.reliability.") for f in findings}


def test_ordinary_mlp_has_no_findings(mlp: torch.nn.Sequential, digits: Dataset) -> None:
    target = TorchTarget(mlp, bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    assert check_reliability(target, *_sample(digits)) == []


def test_probability_outputs_flagged(mlp: torch.nn.Sequential, digits: Dataset) -> None:
    net = torch.nn.Sequential(mlp, torch.nn.Softmax(dim=1))
    target = TorchTarget(net, bounds=(0.0, 1.0), input_shape=(1, 8, 8), name="softmaxed")
    findings = check_reliability(target, *_sample(digits))
    assert "probability-outputs" in _ids(findings)
    finding = next(f for f in findings if f.id == "evasion.reliability.probability-outputs")
    assert finding.severity is Severity.MEDIUM
    assert finding.family is Family.EVASION
    assert finding.atlas == ["AML.T0043.000"]
    assert finding.owasp == ["ML01"]
    assert finding.evidence["declared_probabilities"] is True
    assert finding.location.path == "softmaxed"
    assert any("logits" in m for m in finding.mitigations)


@pytest.mark.parametrize("kind", ["dropout", "noise"])
def test_randomness_flagged(mlp: torch.nn.Sequential, digits: Dataset, kind: str) -> None:
    front = torch.nn.Dropout(0.3) if kind == "dropout" else _Noise()
    net = torch.nn.Sequential(front, mlp)
    target = TorchTarget(net, bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    net.train()  # the adapter set eval mode; a careless deployment leaves dropout active
    findings = check_reliability(target, *_sample(digits))
    assert "nondeterministic" in _ids(findings)
    finding = next(f for f in findings if f.id == "evasion.reliability.nondeterministic")
    assert finding.evidence["max_abs_difference"] > 1e-6
    assert any("Expectation over Transformation" in m for m in finding.mitigations)


def test_quantised_input_flags_zero_gradients_and_no_drop(rounded: TorchTarget, digits: Dataset) -> None:
    findings = check_reliability(rounded, *_sample(digits))
    ids = _ids(findings)
    assert {"zero-gradients", "no-accuracy-drop-at-large-eps"} <= ids
    assert "nondeterministic" not in ids
    assert "probability-outputs" not in ids
    by_id = {f.id: f for f in findings}
    zero = by_id["evasion.reliability.zero-gradients"]
    assert zero.evidence["zero_gradient_share"] == 1.0
    drop = by_id["evasion.reliability.no-accuracy-drop-at-large-eps"]
    assert drop.evidence["eps"] == 0.5
    assert drop.evidence["robust_accuracy"] > 0.1


def test_nan_gradients_are_high(mlp: torch.nn.Sequential, digits: Dataset) -> None:
    class _Sqrt(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sqrt(x)  # d/dx sqrt(x) is infinite at the zero pixels of every digit

    target = TorchTarget(torch.nn.Sequential(_Sqrt(), mlp), bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    findings = check_reliability(target, *_sample(digits, 50))
    nan = next(f for f in findings if f.id == "evasion.reliability.nan-gradients")
    assert nan.severity is Severity.HIGH
    assert nan.evidence["nonfinite_share"] > 0


def test_evaluate_evasion_stores_and_reports_them(rounded: TorchTarget, digits: Dataset) -> None:
    assessment = evaluate_evasion(rounded, digits, attack="pgd", eps=[0.1], n_samples=60, seed=1)
    ids = _ids(list(assessment.reliability))
    # Square finds what PGD cannot see through the rounding.
    assert {"zero-gradients", "no-accuracy-drop-at-large-eps", "black-box-beats-white-box"} <= ids
    report = to_report(assessment)
    assert report.findings[0].id == "evasion.accuracy-loss"
    assert [f.id for f in report.findings[1:]] == [f.id for f in assessment.reliability]
    black = next(f for f in assessment.reliability if f.id.endswith("black-box-beats-white-box"))
    assert black.evidence["square_robust_accuracy"] < black.evidence["white_box_robust_accuracy"]
    assert black.evidence["same_samples"] is True

    off = evaluate_evasion(rounded, digits, attack="pgd", eps=[0.1], n_samples=60, seed=1, reliability=False)
    assert off.reliability == ()
    assert len(to_report(off).findings) == 1


def test_black_box_target_checks_determinism_only(digits: Dataset) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _sample(digits, 200)
    clf = LogisticRegression(max_iter=200).fit(x.reshape(len(x), -1), y)
    target = SklearnTarget(clf, bounds=(0.0, 1.0), input_shape=(64,))
    assert check_reliability(target, x.reshape(len(x), -1), y) == []


def test_mismatched_inputs_rejected(mlp: torch.nn.Sequential, digits: Dataset) -> None:
    target = TorchTarget(mlp, bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    x, y = _sample(digits, 10)
    with pytest.raises(InvalidParameterError, match="check_reliability"):
        check_reliability(target, x, y[:5])


def test_progress_reports_every_reliability_check(rounded: TorchTarget, digits: Dataset) -> None:
    calls: list[tuple[str, int, int | None, str]] = []

    def record(step: str, done: int, total: int | None, info: str = "") -> None:
        calls.append((step, done, total, info))

    assessment = evaluate_evasion(
        rounded, digits, attack="pgd", eps=[0.1], n_samples=60, seed=1, progress=record
    )
    attack = [c for c in calls if c[0].startswith("attacking 60 samples with pgd")]
    assert [(done, total) for _, done, total, _ in attack] == [(0, None), (1, 1)]
    checks = [c for c in calls if c[0] == "reliability checks"]
    assert [(done, total) for _, done, total, _ in checks] == [(i, 4) for i in range(5)]  # counts: an ETA
    assert [info for *_, info in checks[:4]] == [
        "outputs of 60 samples, twice",
        "input gradients",
        "PGD at half the input range, 20 steps",
        "black-box Square, 1000 queries",
    ]
    assert calls.index(attack[-1]) < calls.index(checks[0])  # in the order they run
    # The same findings as without a callback: reporting changes nothing.
    quiet = evaluate_evasion(rounded, digits, attack="pgd", eps=[0.1], n_samples=60, seed=1)
    assert [f.evidence for f in quiet.reliability] == [f.evidence for f in assessment.reliability]


def test_progress_of_a_black_box_target(digits: Dataset) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _sample(digits, 50)
    clf = LogisticRegression(max_iter=200).fit(x.reshape(len(x), -1), y)
    target = SklearnTarget(clf, bounds=(0.0, 1.0), input_shape=(64,))
    calls: list[tuple[str, int, int | None, str]] = []
    check_reliability(
        target, x.reshape(len(x), -1), y, progress=lambda s, d, t, i="": calls.append((s, d, t, i))
    )
    assert [c[:3] for c in calls] == [("reliability checks", 0, 1), ("reliability checks", 1, 1)]
    assert calls[0][3] == "scores of 50 samples, twice"
