"""Parameter and data validation: one message shape, raised at construction or at the call."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from _models import LabelsOnlyTarget

from mlarmor.attacks import (
    FGSM,
    PGD,
    REGISTRY,
    Attack,
    EvasionResult,
    Family,
    FixedBudgetAttack,
    available,
    create,
    register,
)
from mlarmor.errors import InvalidParameterError, UnsupportedModelError


def message(cls, name, expected, got):
    return re.escape(f"The {name!r} parameter of {cls} must be {expected}. Got {got} instead.")


@pytest.mark.parametrize(
    ("params", "name", "expected", "got"),
    [
        ({"eps": -0.1}, "eps", "a float in [0, inf)", "-0.1"),
        ({"eps": float("nan")}, "eps", "a float in [0, inf)", "nan"),
        ({"eps": True}, "eps", "a float in [0, inf)", "True"),
        ({"eps": "0.1"}, "eps", "a float in [0, inf)", "'0.1'"),
        ({"steps": 0}, "steps", "an int >= 1", "0"),
        ({"steps": 2.5}, "steps", "an int >= 1", "2.5"),
        ({"step": 0.0}, "step", "a float in (0, inf)", "0.0"),
        ({"restarts": 0}, "restarts", "an int >= 1", "0"),
        ({"loss": "dlr"}, "loss", "one of 'ce', 'margin'", "'dlr'"),
        ({"norm": "l1"}, "norm", "one of 'linf', 'l2'", "'l1'"),
        ({"seed": -1}, "seed", "an int >= 0", "-1"),
        ({"batch_size": 0}, "batch_size", "an int >= 1", "0"),
        ({"random_start": 1}, "random_start", "a bool", "1"),
        (
            {"restarts": 3, "random_start": False},
            "restarts",
            "1 when random_start is False (every restart would repeat the first)",
            "3",
        ),
    ],
)
def test_pgd_parameters_are_validated_at_construction(params, name, expected, got):
    with pytest.raises(InvalidParameterError, match=message("PGD", name, expected, got)):
        PGD(**params)


def test_fgsm_parameters_are_validated_at_construction():
    with pytest.raises(InvalidParameterError, match=message("FGSM", "loss", "one of 'ce', 'margin'", "'x'")):
        FGSM(loss="x")
    with pytest.raises(InvalidParameterError, match=message("FGSM", "eps", "a float in [0, inf)", "-1")):
        FGSM(eps=-1)


def test_values_are_normalised_and_attacks_are_frozen():
    attack = PGD(eps=1, step=1)
    assert isinstance(attack.eps, float)
    assert isinstance(attack.step, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        attack.eps = 0.5  # type: ignore[misc]
    assert attack.params["steps"] == 40
    assert attack.name == "pgd"


def test_eps_is_required_somewhere(mlp_target, digits):
    x, y = digits.x_test[:5], digits.y_test[:5]
    with pytest.raises(
        InvalidParameterError, match=r"given to the constructor or the call\. Got None instead"
    ):
        PGD()(mlp_target, x, y)
    with pytest.raises(InvalidParameterError, match="non-empty sequence"):
        PGD()(mlp_target, x, y, eps=[])
    with pytest.raises(InvalidParameterError, match=message("PGD", "eps", "a float in [0, inf)", "-0.5")):
        PGD()(mlp_target, x, y, eps=[0.1, -0.5])
    with pytest.raises(InvalidParameterError, match="'eps' parameter of PGD"):
        PGD()(mlp_target, x, y, eps="0.1")
    # The call's eps overrides the constructor's.
    assert FGSM(eps=0.3)(mlp_target, x, y, eps=0.0).eps == 0.0
    assert FGSM(eps=0.3)(mlp_target, x, y).eps == 0.3
    assert [r.eps for r in FGSM()(mlp_target, x, y, eps=np.array([0.1, 0.2]))] == [0.1, 0.2]
    assert FGSM()(mlp_target, x, y, eps=np.array(0.1)).eps == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda x, y: ((x * 255).astype(np.uint8), y),
            r"'x' parameter of PGD must be a floating-point array.*Got dtype uint8",
        ),
        (
            lambda x, y: (x.reshape(len(x), -1), y),
            r"must be an array of shape \(n, 1, 8, 8\).*Got shape \(5, 64\)",
        ),
        (lambda x, y: (x[0], y), r"'x' parameter .* Got shape \(1, 8, 8\)"),
        (
            lambda x, y: (x + 0.5, y),
            r"within the target's bounds \[0, 1\].*Got values in \[0.5, 1.5\] instead",
        ),
        (lambda x, y: (np.where(x > 0.5, np.nan, x), y), r"finite \(no NaN or inf\)"),
        (lambda x, y: (x, y[:3]), r"'y' parameter of PGD must be an array of shape \(5,\)"),
        (lambda x, y: (x, y.astype(np.float32)), r"'y' parameter of PGD must be an integer array"),
        (lambda x, y: (x, y + 10), r"labels in \[0, 10\) for a target with 10 classes"),
    ],
)
def test_data_is_validated_against_the_target(mutate, pattern, mlp_target, digits):
    x, y = mutate(digits.x_test[:5].copy(), digits.y_test[:5].copy())
    with pytest.raises(InvalidParameterError, match=pattern):
        PGD(eps=0.1)(mlp_target, x, y)


def test_a_target_that_is_not_an_adapter(mlp_target, digits):
    with pytest.raises(InvalidParameterError, match=r"'target' parameter of PGD .* Got Sequential instead"):
        PGD(eps=0.1)(mlp_target.module, digits.x_test, digits.y_test)


def test_unsupported_capability_suggests_registered_black_box_attacks(mlp_target, digits, monkeypatch):
    @dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
    class ScoreAttack(FixedBudgetAttack):
        capability = "scores"

        def _perturb(self, target, x, y, eps, generator):
            raise NotImplementedError

    for name in [n for n in available(Family.EVASION) if REGISTRY[n].capability != "gradients"]:
        monkeypatch.delitem(REGISTRY, name)  # leave only the fake black-box attack below
    monkeypatch.setitem(REGISTRY, "score-attack", ScoreAttack)
    scores_only = mlp_target.with_capabilities(frozenset({"scores", "labels"}))
    with pytest.raises(UnsupportedModelError) as info:
        PGD(eps=0.1)(scores_only, digits.x_test[:5], digits.y_test[:5])
    text = str(info.value)
    assert "PGD needs the 'gradients' capability" in text
    assert "offers only: labels, scores" in text
    assert "Use a black-box attack that needs only what it offers: score-attack." in text
    assert "PyTorch adapter" in text
    monkeypatch.delitem(REGISTRY, "score-attack")
    with pytest.raises(
        UnsupportedModelError, match="No registered attack works with only these capabilities"
    ):
        PGD(eps=0.1)(scores_only, digits.x_test[:5], digits.y_test[:5])


def test_declared_gradients_without_logits(mlp_target, digits):
    class Pretender(LabelsOnlyTarget):
        capabilities = property(lambda self: frozenset({"gradients", "labels"}))

    with pytest.raises(UnsupportedModelError, match="declares it but does not implement the Differentiable"):
        FGSM(eps=0.1)(Pretender(mlp_target), digits.x_test[:5], digits.y_test[:5])


def test_create_lists_known_names_and_parameters():
    assert isinstance(create("pgd", eps=0.1, steps=3), PGD)
    with pytest.raises(
        InvalidParameterError, match=r"must be one of .*'fgsm'.*'pgd'.*Got 'nope' instead"
    ) as info:
        create("nope")
    assert all(repr(name) in str(info.value) for name in REGISTRY)
    with pytest.raises(
        InvalidParameterError, match=r"PGD has no parameter 'stepz'. Its parameters are: .*steps"
    ):
        create("pgd", stepz=3)
    with pytest.raises(InvalidParameterError, match=r"'steps' parameter of PGD"):
        create("pgd", steps=-1)


def test_register_refuses_a_taken_name():
    with pytest.raises(InvalidParameterError, match=r"a non-empty name not registered yet\. Got 'pgd'"):
        register("pgd")(FGSM)
    assert REGISTRY["pgd"] is PGD
    assert register("pgd")(PGD) is PGD  # registering the same class again is harmless


def test_every_registered_evasion_attack_is_a_configured_dataclass():
    for name in available(Family.EVASION):
        cls = REGISTRY[name]
        assert issubclass(cls, Attack), name
        assert cls.family is Family.EVASION
        assert cls.capability in {"gradients", "scores", "labels"}
        assert cls.__doc__ is not None
        assert "Reference:" in cls.__doc__, name
        assert "Threat model:" in cls.__doc__, name
        assert not hasattr(cls(), "__dict__"), f"{name} is not slotted"


def test_available_filters_by_family():
    everything = available()
    evasion = available(Family.EVASION)
    assert set(evasion) <= set(everything)
    assert {"pgd", "fgsm", "auto"} <= set(evasion)
    assert available("evasion") == evasion  # the enum's value works too
    for family in Family:
        assert all(REGISTRY[n].family is family for n in available(family))
    assert sorted(n for f in Family for n in available(f)) == list(everything)
    with pytest.raises(InvalidParameterError, match="'family' parameter of available"):
        available("evasoin")  # type: ignore[arg-type]


def test_register_refuses_a_class_without_a_family():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class NoFamily:
        seed: int = 0

    with pytest.raises(InvalidParameterError, match="family: ClassVar"):
        register("no-family")(NoFamily)  # type: ignore[type-var]
    assert "no-family" not in REGISTRY


def test_results_are_read_only_and_derive_their_summaries(mlp_target, digits):
    x, y = digits.x_test[:60], digits.y_test[:60]
    result = PGD(eps=0.1, steps=5)(mlp_target, x, y)
    assert isinstance(result, EvasionResult)
    with pytest.raises(ValueError, match="read-only"):
        result.x_adv[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.eps = 1.0  # type: ignore[misc]
    correct = result.y_pred_clean == y
    assert result.clean_accuracy == pytest.approx(correct.mean())
    assert result.robust_accuracy == pytest.approx((result.y_pred_adv == y).mean())
    assert result.success_rate == pytest.approx(result.success[correct].mean())
    assert result.n_samples == 60
    assert result.attack == "pgd"
    assert result.params["steps"] == 5
    assert y.flags.writeable  # the caller's arrays are left alone
