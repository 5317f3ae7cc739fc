"""simulate_poisoning: the curve, the baseline, the severity rules and the parameter checks."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

from mlarmor.assess.poisoning import (
    SimulationPoint,
    poisoning_severity,
    simulate_poisoning,
    to_poisoning_report,
)
from mlarmor.attacks import REGISTRY, Family, LabelFlip, available
from mlarmor.data import load_dataset
from mlarmor.errors import InvalidParameterError
from mlarmor.findings import Severity
from mlarmor.targets.recipe import SklearnRecipe


@pytest.fixture(scope="module")
def split():  # type: ignore[no-untyped-def]
    return load_dataset("demo:digits").split(0.3, seed=0)


@pytest.fixture(scope="module")
def recipe() -> SklearnRecipe:
    return SklearnRecipe(LogisticRegression(max_iter=200), num_classes=10)


def test_badnets_curve_rises_and_the_report_carries_it(split, recipe) -> None:  # type: ignore[no-untyped-def]
    train, test = split
    calls: list[tuple[int, int, str]] = []
    sim = simulate_poisoning(
        recipe, train, test, attacks=["badnets"], fractions=[0.2, 0.02], target_class=4,
        trigger_params={"badnets": {"size": 3}}, progress=lambda *a: calls.append(a),
    )  # fmt: skip
    curve = sim.curve("badnets")
    assert [p.fraction for p in curve] == [0.0, 0.02, 0.2]
    assert curve[2].n_poisoned == round(0.2 * int((train.y != 4).sum()))
    assert curve[2].attack_success > curve[0].attack_success + 0.5
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    report = to_poisoning_report(sim)
    assert report.kind == "poisoning"
    assert report.attacks is not None
    assert report.attacks["badnets"]["params"] == {"size": 3}
    assert report.findings[0].evidence["curve"][2]["fraction"] == 0.2
    assert sim.examples["badnets"].n_poisoned == curve[2].n_poisoned


def test_random_label_flips_have_no_attack_success(split, recipe) -> None:  # type: ignore[no-untyped-def]
    train, test = split
    sim = simulate_poisoning(recipe, train, test, attacks=["label-flip"], fractions=[0.3])
    assert all(p.attack_success is None for p in sim.points)
    finding = to_poisoning_report(sim).findings[0]
    assert finding.owasp == ["ML02"]


def _curve(*points: tuple[float, float, float | None]) -> list[SimulationPoint]:
    return [SimulationPoint("badnets", f, 1, acc, asr, 0.0) for f, acc, asr in points]


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0.0, 0.95, 0.02), (0.01, 0.95, 0.97)], Severity.CRITICAL),
        ([(0.0, 0.95, 0.02), (0.01, 0.95, 0.5), (0.05, 0.94, 0.9)], Severity.HIGH),
        ([(0.0, 0.95, 0.02), (0.1, 0.95, 0.6)], Severity.MEDIUM),
        ([(0.0, 0.95, None), (0.1, 0.85, None)], Severity.MEDIUM),
        ([(0.0, 0.95, 0.1), (0.1, 0.95, 0.35)], Severity.LOW),
        ([(0.0, 0.95, 0.1), (0.1, 0.94, 0.2)], Severity.NONE),
    ],
)
def test_severity_rules(points: list[tuple[float, float, float | None]], expected: Severity) -> None:
    assert poisoning_severity(_curve(*points))[0] == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fractions": [1.0]}, "fractions"),
        ({"fractions": []}, "fractions"),
        ({"attacks": ["nope"]}, "attacks"),
        ({"target_class": 10}, "target_class"),
        ({"attacks": ["label-flip"], "source_class": 0}, "source_class"),
        ({"fractions": [1e-5]}, "fraction"),
    ],
)
def test_bad_parameters_fail_before_training(split, recipe, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    train, test = split
    with pytest.raises(InvalidParameterError, match=message):
        simulate_poisoning(recipe, train, test, **kwargs)


def test_train_and_test_must_share_the_input_shape(split, recipe) -> None:  # type: ignore[no-untyped-def]
    train, _ = split
    tabular = load_dataset("demo:breast-cancer")
    with pytest.raises(InvalidParameterError, match="same input shape"):
        simulate_poisoning(recipe, train, tabular)


def test_a_registered_poisoning_attack_is_simulated_without_changes_here(split, recipe, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import dataclass

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Relabel(LabelFlip):
        """Targeted flips from class 1, registered under another name (test only)."""

        source_class: int | None = 1

    monkeypatch.setitem(REGISTRY, "relabel", Relabel)
    assert "relabel" in available(Family.POISONING)
    train, test = split
    sim = simulate_poisoning(recipe, train, test, attacks=["relabel"], fractions=[0.3], target_class=4)
    assert [p.attack for p in sim.points] == ["relabel", "relabel"]
    assert sim.points[1].attack_success is not None
    assert sim.configured["relabel"] == Relabel()
    assert to_poisoning_report(sim).findings[0].id == "poisoning.relabel"


def test_unknown_attack_parameters_fail_before_training(split, recipe) -> None:  # type: ignore[no-untyped-def]
    train, test = split
    with pytest.raises(InvalidParameterError, match="LabelFlip has no parameter 'size'"):
        simulate_poisoning(
            recipe, train, test, attacks=["label-flip"], trigger_params={"label-flip": {"size": 3}}
        )
