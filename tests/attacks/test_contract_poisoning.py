"""The contract every registered poisoning attack keeps, run over the whole registry.

A new poisoning attack joins this suite by being registered (``@register`` on a
:class:`PoisoningAttack`); give it quick settings in SETTINGS if its defaults are slow. Attacks
that declare ``needs_recipe`` get a small PyTorch recipe and the held-out data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mlarmor.attacks import REGISTRY, Family, Poisoned, PoisoningAttack, available, create
from mlarmor.errors import InvalidParameterError
from mlarmor.targets.recipe import TorchRecipe

SETTINGS: dict[str, dict[str, object]] = {"clean-label": {"steps": 4, "victims": 2}}
"""Per-attack settings that keep the suite quick (defaults otherwise)."""

NAMES = available(Family.POISONING)
CONFIGS = [pytest.param(name, SETTINGS.get(name, {}), id=name) for name in NAMES] + [
    pytest.param("label-flip", {"source_class": 1}, id="label-flip-targeted"),
]
TARGET, FRACTION, BOUNDS = 3, 0.1, (0.0, 1.0)

RECIPE = """
from mlarmor.models import digits_mlp, fit_classifier


def train(x, y, seed):
    return fit_classifier(digits_mlp(seed=seed), x, y, epochs=2, lr=1e-3, seed=seed)
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> TorchRecipe:
    path: Path = tmp_path_factory.mktemp("recipe") / "train.py"
    path.write_text(RECIPE)
    return TorchRecipe(path, num_classes=10)


@pytest.fixture
def data(digits):
    return digits.x_train[:300], digits.y_train[:300], digits.x_test[:100], digits.y_test[:100]


def make(name: str, params: dict[str, object]) -> PoisoningAttack:
    attack = create(name, **params)
    assert isinstance(attack, PoisoningAttack)
    return attack


def run(attack: PoisoningAttack, data, recipe, seed: int = 0) -> Poisoned:
    x, y, xt, yt = data
    extra = {"recipe": recipe, "x_test": xt, "y_test": yt} if attack.needs_recipe else {}
    return attack(
        x, y, fraction=FRACTION, target_class=TARGET, bounds=BOUNDS, num_classes=10, seed=seed, **extra
    )


def test_the_family_is_registered() -> None:
    assert {"badnets", "blend", "warp", "label-flip", "clean-label"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_is_a_frozen_documented_configuration(name: str) -> None:
    cls = REGISTRY[name]
    assert issubclass(cls, PoisoningAttack)
    assert dataclasses.is_dataclass(cls)
    assert cls.family is Family.POISONING
    assert cls.__doc__ is not None
    assert "Reference:" in cls.__doc__
    assert "Threat model:" in cls.__doc__
    attack = make(name, SETTINGS.get(name, {}))
    assert attack.name == name
    assert not hasattr(attack, "__dict__"), f"{name} is not slotted"
    for f in dataclasses.fields(attack):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(attack, f.name, getattr(attack, f.name))


@pytest.mark.parametrize(("name", "params"), CONFIGS)
def test_create_round_trips_the_parameters(name: str, params: dict[str, object]) -> None:
    attack = make(name, params)
    again = create(name, **attack.params)
    assert again == attack
    assert again.params == attack.params
    with pytest.raises(InvalidParameterError, match="has no parameter 'nope'"):
        create(name, nope=1)


@pytest.mark.parametrize(("name", "params"), CONFIGS)
def test_changes_exactly_the_declared_rows_within_bounds(name, params, data, recipe) -> None:
    x, y, _, _ = data
    x_before, y_before = x.copy(), y.copy()
    p = run(make(name, params), data, recipe)
    np.testing.assert_array_equal(x, x_before)  # the call never changes its inputs
    np.testing.assert_array_equal(y, y_before)
    assert p.x.shape == x.shape
    assert p.x.dtype == x.dtype
    assert p.y.shape == y.shape
    assert p.y.dtype.kind in "iu"
    assert p.poisoned.shape == y.shape
    assert p.poisoned.dtype == bool
    assert p.n_poisoned >= 1
    changed = (p.x != x).reshape(len(x), -1).any(axis=1) | (p.y != y)
    np.testing.assert_array_equal(changed, p.poisoned)
    assert p.x.min() >= BOUNDS[0]
    assert p.x.max() <= BOUNDS[1]


@pytest.mark.parametrize(("name", "params"), CONFIGS)
def test_deterministic_under_a_seed(name, params, data, recipe) -> None:
    attack = make(name, params)
    first, again = run(attack, data, recipe, seed=0), run(attack, data, recipe, seed=0)
    for field in ("x", "y", "poisoned"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    other = run(attack, data, recipe, seed=1)
    assert not np.array_equal(first.poisoned, other.poisoned)


@pytest.mark.parametrize(("name", "params"), CONFIGS)
def test_attack_success_is_measurable(name, params, data, recipe) -> None:
    _, _, xt, yt = data
    attack = make(name, params)
    p = run(attack, data, recipe)

    def always(cls: int):
        return lambda inputs: np.full(len(inputs), cls)

    hit = attack.success_rate(always(TARGET), p, xt, yt)
    if hit is None:  # only random label flips have no success of their own: they cost accuracy
        assert name == "label-flip"
        assert not params
        return
    assert hit == 1.0
    assert attack.success_rate(always((TARGET + 1) % 10), p, xt, yt) == 0.0
    scores = attack.success_rate(lambda inputs: np.eye(10)[np.full(len(inputs), TARGET)], p, xt, yt)
    assert scores == 1.0  # scores (n, C) count by their arg-max
    foreign = dataclasses.replace(p, trigger="foreign")
    with pytest.raises(InvalidParameterError, match="poisoned"):
        attack.success_rate(always(TARGET), foreign, xt, yt)


@pytest.mark.parametrize("name", [n for n in NAMES if REGISTRY[n].needs_recipe])
def test_an_attack_that_needs_a_recipe_refuses_none(name, data) -> None:
    x, y, xt, yt = data
    attack = make(name, SETTINGS.get(name, {}))
    with pytest.raises(InvalidParameterError, match="PyTorch recipe"):
        attack(x, y, fraction=FRACTION, target_class=TARGET, num_classes=10, x_test=xt, y_test=yt)
