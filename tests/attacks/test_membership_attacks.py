"""Membership signals and attacks on evidence whose membership effect is known by construction.

Each example has its own difficulty (a base logit-scaled confidence that varies a lot between
examples) and training on it adds a fixed shift. A global threshold is confused by the difficulty;
the attacks that calibrate per example on reference models (LiRA, RMIA) are not. That is the effect
the reference-model attacks exist for, so the tests check it rather than a fixed number.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlarmor.attacks.inference import (
    MEMBERSHIP_ATTACKS,
    RMIA,
    LiRA,
    MembershipEvidence,
    ShadowModelAttack,
    ThresholdAttack,
    default_attacks,
)
from mlarmor.attacks.inference import signals as S
from mlarmor.errors import InvalidParameterError


def _auc(scores: np.ndarray, member: np.ndarray) -> float:
    pos, neg = scores[member], scores[~member]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def _split(n: int, m: int, seed: int) -> np.ndarray:
    rank = np.random.default_rng(seed).random((m, n)).argsort(0).argsort(0)
    return rank < m // 2


def _logits(phi: np.ndarray) -> np.ndarray:
    """Two-class logits whose class-1 logit-scaled confidence is exactly ``phi``."""
    return np.stack([np.zeros_like(phi), phi], axis=-1)


@pytest.fixture(scope="module")
def evidence() -> tuple[MembershipEvidence, np.ndarray]:
    rng = np.random.default_rng(0)
    n, m, shift = 2000, 16, 1.0
    base = rng.normal(2.0, 3.0, size=n)  # per-example difficulty, much larger than the shift
    member = np.zeros(n, bool)
    member[: n // 2] = True
    keep = _split(n, m, 1)
    phi_ref = base + shift * keep + rng.normal(0, 0.3, size=(m, n))
    phi_target = base + shift * member + rng.normal(0, 0.3, size=n)
    y = np.ones(n, dtype=np.int64)
    ev = MembershipEvidence(
        y=y,
        target=_logits(phi_target),
        logits=True,
        reference=_logits(phi_ref).astype(np.float32),
        keep=keep,
        population=np.flatnonzero(~member),
    )
    return ev, member


def test_signals_by_hand() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    y = np.array([0, 1])
    np.testing.assert_allclose(S.confidence(p, y), [0.7, 0.1])
    np.testing.assert_allclose(S.loss(p, y), [-math.log(0.7), -math.log(0.1)])
    np.testing.assert_allclose(S.entropy(p), -(p * np.log(p)).sum(1))
    mentr0 = -(0.3) * math.log(0.7) - 0.2 * math.log(0.8) - 0.1 * math.log(0.9)
    mentr1 = -(0.9) * math.log(0.1) - 0.1 * math.log(0.9) - 0.8 * math.log(0.2)
    np.testing.assert_allclose(S.modified_entropy(p, y), [mentr0, mentr1])
    # Higher means member for every signal once oriented.
    assert (
        S.member_score("loss", np.log(p), y, logits=True)[0]
        > S.member_score("loss", np.log(p), y, logits=True)[1]
    )


def test_logit_confidence_is_exact_and_stable() -> None:
    z = np.array([[2.0, 0.5, -1.0], [1000.0, 0.0, -5.0]])
    y = np.array([0, 0])
    p = S.probabilities(z[:1], logits=True)[0]
    np.testing.assert_allclose(S.logit_confidence(z[:1], y[:1], logits=True), [math.log(p[0] / (1 - p[0]))])
    phi = S.logit_confidence(z, y, logits=True)
    assert np.isfinite(phi).all()
    assert phi[1] == pytest.approx(1000.0 - math.log(1.0 + math.exp(-5.0)))
    # From probabilities the same value (clipped only at 1e-30).
    np.testing.assert_allclose(
        S.logit_confidence(S.probabilities(z[:1], logits=True), y[:1], logits=False), phi[:1]
    )


def test_reference_model_attacks_see_through_example_difficulty(evidence) -> None:
    ev, member = evidence
    global_loss = _auc(ThresholdAttack("loss").score(ev), member)
    lira_on = _auc(LiRA(online=True).score(ev), member)
    lira_off = _auc(LiRA(online=False).score(ev), member)
    rmia_on = _auc(RMIA(online=True).score(ev), member)
    rmia_off = _auc(RMIA(online=False).score(ev), member)
    assert global_loss < 0.7  # the difficulty hides the shift from a global threshold
    for auc in (lira_on, lira_off, rmia_on, rmia_off):
        assert auc > global_loss + 0.2
    # LiRA works on the logit scale; RMIA on probabilities, which saturate for the easiest examples.
    assert min(lira_on, lira_off, rmia_on) > 0.9


def test_shadow_model_and_class_dependent_thresholds_learn_from_references(evidence) -> None:
    ev, member = evidence
    assert _auc(ShadowModelAttack().score(ev), member) > 0.55
    # Two classes with very different typical confidence: per-class thresholds help the loss attack.
    rng = np.random.default_rng(3)
    n, m = 1200, 8
    y = rng.integers(0, 2, size=n)
    offset = np.where(y == 0, -2.0, 4.0)
    member = rng.random(n) < 0.5
    keep = _split(n, m, 2)
    phi_ref = offset + 1.0 * keep + rng.normal(0, 0.5, size=(m, n))
    phi_t = offset + 1.0 * member + rng.normal(0, 0.5, size=n)
    z_ref = np.zeros((m, n, 2))
    z_ref[:, np.arange(n), y] = phi_ref
    z_t = np.zeros((n, 2))
    z_t[np.arange(n), y] = phi_t
    ev2 = MembershipEvidence(y=y, target=z_t, logits=True, reference=z_ref, keep=keep)
    flat = _auc(ThresholdAttack("loss").score(ev2), member)
    per_class = _auc(ThresholdAttack("loss", class_dependent=True).score(ev2), member)
    assert per_class > flat + 0.05


def test_global_variance_is_the_default_with_few_models(evidence) -> None:
    ev, _member = evidence
    auto = LiRA().score(ev)
    np.testing.assert_array_equal(auto, LiRA(global_variance=True).score(ev))
    assert not np.array_equal(auto, LiRA(global_variance=False).score(ev))


def test_rmia_offline_correction_changes_scores(evidence) -> None:
    ev, _ = evidence
    assert not np.array_equal(RMIA(online=False, a=0.3).score(ev), RMIA(online=False, a=1.0).score(ev))
    with pytest.raises(InvalidParameterError, match="'a'"):
        RMIA(a=1.5)
    with pytest.raises(InvalidParameterError, match="'gamma'"):
        RMIA(gamma=0)


def test_too_few_reference_models(evidence) -> None:
    ev, _ = evidence
    none = MembershipEvidence(
        y=ev.y, target=ev.target, logits=True, reference=ev.reference[:0], keep=ev.keep[:0]
    )
    for attack in (LiRA(), ShadowModelAttack(), RMIA(), ThresholdAttack("loss", class_dependent=True)):
        with pytest.raises(InvalidParameterError, match="reference models"):
            attack.score(none)
    assert ThresholdAttack("entropy").score(none).shape == (len(ev.y),)


def test_registry_and_defaults() -> None:
    assert {"loss", "lira-online", "lira-offline", "rmia-online", "rmia-offline", "label-only"} <= set(
        MEMBERSHIP_ATTACKS
    )
    assert [a.label for a in default_attacks("labels", 16)] == ["label-only"]
    names = [a.label for a in default_attacks("scores", 0)]
    assert "lira-online" not in names
    assert "loss" in names
    assert "lira-online" in [a.label for a in default_attacks("scores", 16)]
    with pytest.raises(InvalidParameterError, match="signal"):
        ThresholdAttack("magic")  # type: ignore[arg-type]
