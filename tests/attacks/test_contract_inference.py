"""The contract every registered membership-inference attack keeps, run over the whole registry.

A new inference attack joins this suite by being registered (``@register`` on a
:class:`MembershipAttack`); give it quick settings in SETTINGS if its defaults are slow. What it
reads from the evidence comes from its declared ``capability`` and ``min_reference``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlarmor.attacks import REGISTRY, Family, MembershipAttack, MembershipEvidence, available, create
from mlarmor.attacks.inference import MEMBERSHIP_ATTACKS
from mlarmor.errors import InvalidParameterError

SETTINGS: dict[str, dict[str, object]] = {"label-only": {"max_queries": 60}}
"""Per-attack settings that keep the suite quick (defaults otherwise)."""

NAMES = available(Family.INFERENCE)
N, M, C = 240, 4, 3


def make(name: str, **params: object) -> MembershipAttack:
    attack = create(name, **{**SETTINGS.get(name, {}), **params})
    assert isinstance(attack, MembershipAttack)
    return attack


@pytest.fixture(scope="module")
def scores_evidence() -> MembershipEvidence:
    """Outputs of a target and M reference models in which training on an example raises its logit."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, C, size=N)
    member = np.arange(N) < N // 2
    keep = rng.random((M, N)).argsort(0).argsort(0) < M // 2  # each example in half of the models
    onehot = np.eye(C)[y]
    target = rng.normal(0.0, 1.0, size=(N, C)) + onehot * (1.0 + 1.5 * member[:, None])
    reference = rng.normal(0.0, 1.0, size=(M, N, C)) + onehot * (1.0 + 1.5 * keep[:, :, None])
    return MembershipEvidence(
        y=y,
        target=target,
        logits=True,
        reference=reference,
        keep=keep,
        population=np.flatnonzero(~member),
    )


@pytest.fixture
def query_evidence(mlp_target, digits) -> MembershipEvidence:
    return MembershipEvidence.from_queries(mlp_target, digits.x_test[:16], digits.y_test[:16])


def evidence_for(attack: MembershipAttack, scores: MembershipEvidence, queries: MembershipEvidence):
    return queries if attack.capability == "labels" else scores


def test_the_family_is_registered() -> None:
    assert {"threshold", "shadow", "lira", "rmia", "label-only"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_is_a_frozen_documented_configuration(name: str) -> None:
    cls = REGISTRY[name]
    assert issubclass(cls, MembershipAttack)
    assert dataclasses.is_dataclass(cls)
    assert cls.family is Family.INFERENCE
    assert cls.capability in {"scores", "labels"}
    assert cls.__doc__ is not None
    assert "Reference:" in cls.__doc__
    assert "Threat model:" in cls.__doc__
    attack = make(name)
    assert attack.name == name
    first = dataclasses.fields(attack)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(attack, first, getattr(attack, first))


@pytest.mark.parametrize("name", NAMES)
def test_create_round_trips_the_parameters(name: str) -> None:
    attack = make(name)
    again = create(name, **attack.params)
    assert again == attack
    assert again.params == attack.params
    assert type(attack)(**attack.params) == attack
    with pytest.raises(InvalidParameterError, match="has no parameter 'nope'"):
        create(name, nope=1)


@pytest.mark.parametrize("name", NAMES)
def test_its_label_is_one_the_report_knows(name: str) -> None:
    attack = make(name)
    assert attack.label in MEMBERSHIP_ATTACKS
    assert type(MEMBERSHIP_ATTACKS[attack.label]) is type(attack)


def test_every_reported_label_is_a_registered_configuration() -> None:
    for label, attack in MEMBERSHIP_ATTACKS.items():
        assert attack.label == label
        assert REGISTRY[attack.name] is type(attack)


@pytest.mark.parametrize("name", NAMES)
def test_one_finite_score_per_example_deterministic(name, scores_evidence, query_evidence) -> None:
    attack = make(name)
    evidence = evidence_for(attack, scores_evidence, query_evidence)
    scores = attack.score(evidence)
    assert scores.shape == (len(evidence.y),)
    assert scores.dtype.kind == "f"
    assert np.isfinite(scores).all()
    again = create(name, **attack.params).score(evidence)
    np.testing.assert_array_equal(scores, again)


@pytest.mark.parametrize("name", NAMES)
def test_refuses_evidence_without_what_it_reads(name, scores_evidence, query_evidence) -> None:
    attack = make(name)
    if attack.capability == "labels":
        with pytest.raises(InvalidParameterError, match="from_queries"):
            attack.score(scores_evidence)
    else:
        with pytest.raises(InvalidParameterError, match="reads the target's scores"):
            attack.score(query_evidence)
    if type(attack).min_reference > 0:
        none = dataclasses.replace(
            scores_evidence, reference=scores_evidence.reference[:0], keep=scores_evidence.keep[:0]
        )
        with pytest.raises(InvalidParameterError, match="reference models"):
            attack.score(none)
