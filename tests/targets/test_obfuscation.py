"""Output obfuscation: top-k, rounding and labels-only, by hand, on real models and in a privacy audit."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import mlarmor.defenses.runtime.obfuscation as obfuscation_module
from mlarmor.assess.privacy import audit_membership
from mlarmor.attacks import create
from mlarmor.attacks.inference.metrics import membership_metrics
from mlarmor.data import Dataset, load_dataset
from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.targets import (
    Differentiable,
    ObfuscatedTarget,
    SklearnTarget,
    Target,
    TorchTarget,
    obfuscate_scores,
)


@pytest.fixture(scope="module")
def cancer() -> Dataset:
    return load_dataset("demo:breast-cancer")


@pytest.fixture(scope="module")
def cancer_lr(cancer: Dataset) -> SklearnTarget:
    with threadpool_limits(limits=1):
        clf = LogisticRegression(max_iter=1000).fit(cancer.x, cancer.y)
    return SklearnTarget(clf, bounds=cancer.bounds)


def _reference(p: np.ndarray, top_k: int | None, decimals: int | None) -> np.ndarray:
    """Slow, obvious version of obfuscate_scores: one row and one class at a time."""
    out = np.array(p, dtype=np.float64)
    for row in out:
        if top_k is not None:
            keep: list[int] = []
            for _ in range(top_k):  # the largest remaining value; first index wins a tie
                best = max((i for i in range(len(row)) if i not in keep), key=lambda i: (row[i], -i))
                keep.append(best)
            total = sum(row[i] for i in keep)
            for i in range(len(row)):
                row[i] = row[i] / total if i in keep else 0.0
        if decimals is not None:
            for i in range(len(row)):
                row[i] = np.round(row[i], decimals)  # the same rounding rule (half to even)
    return out


# --- obfuscate_scores by hand -------------------------------------------------------------------


def test_top_k_keeps_the_largest_and_renormalises() -> None:
    p = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    out = obfuscate_scores(p, top_k=2)
    np.testing.assert_allclose(out, [[0.0, 0.6 / 0.9, 0.3 / 0.9], [0.5 / 0.8, 0.0, 0.3 / 0.8]])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_array_equal(obfuscate_scores(p, top_k=1), [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(p, [[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])  # the input is not changed


def test_top_k_ties_keep_the_lowest_class_index() -> None:
    np.testing.assert_array_equal(
        obfuscate_scores([[0.25, 0.25, 0.25, 0.25]], top_k=2), [[0.5, 0.5, 0.0, 0.0]]
    )
    np.testing.assert_array_equal(obfuscate_scores([[0.2, 0.4, 0.4]], top_k=1), [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(obfuscate_scores([[0.1, 0.3, 0.3, 0.3]], top_k=2), [[0.0, 0.5, 0.5, 0.0]])


def test_rounding_comes_after_top_k() -> None:
    p = np.array([[0.123456, 0.876544]])
    np.testing.assert_array_equal(obfuscate_scores(p, decimals=2), [[0.12, 0.88]])
    np.testing.assert_array_equal(obfuscate_scores(p, decimals=0), [[0.0, 1.0]])
    # 0.1 / 0.9 and 0.3 / 0.9 renormalised, then rounded (not rounded, then renormalised).
    np.testing.assert_array_equal(
        obfuscate_scores([[0.1, 0.6, 0.3]], top_k=2, decimals=2), [[0.0, 0.67, 0.33]]
    )


def test_no_option_returns_a_float64_copy() -> None:
    p = np.array([[0.25, 0.75]], dtype=np.float32)
    out = obfuscate_scores(p)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, p)
    out[0, 0] = 1.0
    assert p[0, 0] == np.float32(0.25)


def test_matches_the_slow_reference_with_many_ties() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 4, size=(200, 6)).astype(np.float64) + 1e-3 * rng.integers(0, 2, size=(200, 6))
    p = raw / raw.sum(axis=1, keepdims=True)
    for top_k in (None, 1, 2, 3, 6):
        for decimals in (None, 0, 1, 3):
            np.testing.assert_allclose(
                obfuscate_scores(p, top_k=top_k, decimals=decimals),
                _reference(p, top_k, decimals),
                rtol=0,
                atol=1e-12,
                err_msg=f"top_k={top_k}, decimals={decimals}",
            )


def test_rounding_may_tie_but_never_reorders() -> None:
    p = np.random.default_rng(1).dirichlet(np.ones(5), size=300)
    rounded = obfuscate_scores(p, decimals=1)
    i, j = np.triu_indices(5, k=1)
    larger = p[:, i] > p[:, j]
    assert np.all(rounded[:, i][larger] >= rounded[:, j][larger])
    assert np.any(rounded[:, i][larger] == rounded[:, j][larger])  # ties do appear


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": [0.2, 0.8]}, "shape (n, num_classes). Got shape (2,) instead."),
        ({"p": [[0.2, np.nan]]}, "finite, non-negative"),
        ({"p": [[-1.0, 2.0]]}, "not logits"),
        ({"p": [["a", "b"]]}, "must be an array of probabilities"),
        ({"p": [[0.2, 0.8]], "top_k": 3}, "'top_k' parameter of obfuscate_scores must be an int in [1, 2]"),
        ({"p": [[0.2, 0.8]], "top_k": 0}, "Got 0 instead"),
        ({"p": [[0.2, 0.8]], "top_k": True}, "Got True instead"),
        (
            {"p": [[0.2, 0.8]], "decimals": 16},
            "'decimals' parameter of obfuscate_scores must be an int in [0, 15]",
        ),
        ({"p": [[0.2, 0.8]], "decimals": -1}, "Got -1 instead"),
        ({"p": [[0.2, 0.8]], "decimals": 2.0}, "Got 2.0 instead"),
    ],
)
def test_obfuscate_scores_validates(kwargs: dict[str, object], message: str) -> None:
    p = kwargs.pop("p")
    with pytest.raises(InvalidParameterError) as info:
        obfuscate_scores(p, **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_docstring_examples() -> None:
    result = doctest.testmod(obfuscation_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3
    assert result.failed == 0


# --- the wrapper on a real model ----------------------------------------------------------------


def test_decisions_never_change(cancer: Dataset, cancer_lr: SklearnTarget) -> None:
    expected = cancer_lr.predict(cancer.x)
    raw = cancer_lr.predict_proba(cancer.x)
    for kwargs in ({"top_k": 1}, {"decimals": 0}, {"decimals": 1, "top_k": 2}, {"labels_only": True}):
        wrapped = ObfuscatedTarget(cancer_lr, **kwargs)  # type: ignore[arg-type]
        assert isinstance(wrapped, Target)
        np.testing.assert_array_equal(wrapped.predict(cancer.x), expected)
        if not wrapped.labels_only:
            np.testing.assert_array_equal(
                wrapped.predict_proba(cancer.x),
                obfuscate_scores(raw, top_k=wrapped.top_k, decimals=wrapped.decimals),
            )
    # top-1 renormalised is the one-hot decision: the model's confidence is gone.
    one_hot = ObfuscatedTarget(cancer_lr, top_k=1).predict_proba(cancer.x)
    np.testing.assert_array_equal(one_hot, np.eye(2)[expected])
    rounded = ObfuscatedTarget(cancer_lr, decimals=1).predict_proba(cancer.x)
    np.testing.assert_array_equal(rounded, np.round(rounded * 10) / 10)
    assert not np.array_equal(rounded, raw)


def test_wrapper_delegates_what_it_does_not_hide(cancer: Dataset, cancer_lr: SklearnTarget) -> None:
    wrapped = ObfuscatedTarget(cancer_lr, top_k=1, decimals=3)
    assert wrapped.bounds == cancer_lr.bounds
    assert wrapped.num_classes == 2
    assert wrapped.input_shape == (30,)
    assert wrapped.inner is cancer_lr
    assert wrapped.name == "LogisticRegression (obfuscated)"
    assert ObfuscatedTarget(cancer_lr, top_k=1, name="api").name == "api"
    assert repr(wrapped) == (
        "ObfuscatedTarget(inner='LogisticRegression', top_k=1, decimals=3, labels_only=False)"
    )
    cancer_lr.reset_queries()
    wrapped.predict(cancer.x[:7])
    wrapped.predict_proba(cancer.x[:5])
    assert wrapped.queries == cancer_lr.queries == 12
    wrapped.reset_queries()
    assert cancer_lr.queries == 0


def test_capabilities(cancer_lr: SklearnTarget) -> None:
    assert ObfuscatedTarget(cancer_lr, decimals=2).capabilities == frozenset({"scores", "labels"})
    assert ObfuscatedTarget(cancer_lr, labels_only=True).capabilities == frozenset({"labels"})


def test_gradients_are_never_exposed() -> None:
    torch.manual_seed(0)
    net = TorchTarget(torch.nn.Linear(4, 3), bounds=(0.0, 1.0), input_shape=(4,))
    assert "gradients" in net.capabilities
    wrapped = ObfuscatedTarget(net, top_k=2)
    assert wrapped.capabilities == frozenset({"scores", "labels"})
    assert not isinstance(wrapped, Differentiable)
    assert not hasattr(wrapped, "logits")
    x = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    with pytest.raises(UnsupportedModelError, match="'gradients' capability"):
        create("pgd", eps=0.1, steps=2)(wrapped, x, net.predict(x))


def test_labels_only_refuses_scores(cancer: Dataset, cancer_lr: SklearnTarget) -> None:
    wrapped = ObfuscatedTarget(cancer_lr, labels_only=True)
    with pytest.raises(UnsupportedModelError, match="returns labels only") as info:
        wrapped.predict_proba(cancer.x[:2])
    assert "no 'scores' capability" in str(info.value)
    assert "labels_only=True" in str(info.value)


def test_labels_only_stops_score_based_attacks_not_decision_based(
    cancer: Dataset, cancer_lr: SklearnTarget
) -> None:
    wrapped = ObfuscatedTarget(cancer_lr, labels_only=True)
    x, y = cancer.x[:4], cancer.y[:4]
    with pytest.raises(UnsupportedModelError) as info:
        create("square", n_queries=50)(wrapped, x, y, eps=0.1)
    message = str(info.value)
    assert "Square needs the 'scores' capability" in message
    assert "offers only: labels" in message
    assert "hopskipjump" in message  # the black-box alternative it names
    cancer_lr.reset_queries()
    result = create("hopskipjump", max_queries=50)(wrapped, x, y, eps=0.1)
    assert result.x_adv.shape == x.shape
    assert 0 < cancer_lr.queries <= 50 * len(x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs at least one option: top_k=K, decimals=D or labels_only=True"),
        ({"top_k": 3}, "'top_k' parameter of ObfuscatedTarget must be an int in [1, 2]"),
        ({"top_k": 0}, "Got 0 instead"),
        ({"top_k": 1.0}, "Got 1.0 instead"),
        ({"decimals": 16}, "'decimals' parameter of ObfuscatedTarget must be an int in [0, 15]"),
        ({"decimals": -1}, "Got -1 instead"),
        ({"labels_only": True, "decimals": 2}, "returns no probabilities to keep or round"),
        ({"labels_only": 1}, "'labels_only' parameter of ObfuscatedTarget must be a bool"),
        ({"top_k": 1, "name": 3}, "'name' parameter of ObfuscatedTarget must be a string"),
    ],
)
def test_wrapper_validates(cancer_lr: SklearnTarget, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        ObfuscatedTarget(cancer_lr, **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_wrapper_refuses_what_it_cannot_wrap(cancer_lr: SklearnTarget) -> None:
    with pytest.raises(InvalidParameterError, match="Got LogisticRegression instead"):
        ObfuscatedTarget(cancer_lr.estimator, top_k=1)  # type: ignore[arg-type]
    labels = ObfuscatedTarget(cancer_lr, labels_only=True)
    with pytest.raises(UnsupportedModelError, match="no probabilities for top_k or decimals"):
        ObfuscatedTarget(labels, top_k=1)
    assert ObfuscatedTarget(labels, labels_only=True).capabilities == frozenset({"labels"})


# --- the privacy effect -------------------------------------------------------------------------


def test_obfuscation_lowers_membership_leakage() -> None:
    """An MLP that memorised 100 digits; measured (seed 0): raw AUC 0.70, top-1 0.55, TPR@1% 5% -> 0.

    On half of digits the MLP generalises (97% held-out accuracy) and the threshold attacks barely
    beat chance (AUC 0.50-0.55), so a small training set is what makes the raw leak measurable.
    """
    digits = load_dataset("demo:digits")
    x = digits.x.reshape(len(digits.x), -1)
    order = np.random.default_rng(0).permutation(len(x))
    members = Dataset(x=x[order[:100]], y=digits.y[order[:100]], name="members")
    nonmembers = Dataset(x=x[order[100:200]], y=digits.y[order[100:200]], name="nonmembers")
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((64,), alpha=0.0, max_iter=400, random_state=0).fit(members.x, members.y)
    raw = SklearnTarget(clf, bounds=(0.0, 1.0), num_classes=10)

    def audit(target: Target) -> tuple[float, float, float]:
        result = audit_membership(target, members, nonmembers, n_reference=0)
        assert {o.name for o in result.outcomes} == {"loss", "confidence", "entropy", "modified-entropy"}
        best_auc = max(o.metrics.auc for o in result.outcomes)
        best_tpr = max(o.metrics.tpr_at_fpr["0.01"] for o in result.outcomes)
        return best_auc, best_tpr, result.outcome("loss").metrics.auc

    raw_auc, raw_tpr, _ = audit(raw)
    top1_auc, top1_tpr, top1_loss_auc = audit(ObfuscatedTarget(raw, top_k=1))
    _, rounded_tpr, _ = audit(ObfuscatedTarget(raw, decimals=1))

    assert raw_auc > 0.6  # the memorising model leaks through its scores
    # top-1 leaves only the decision: the loss attack is exactly the label-only one,
    # AUC = 1/2 + (accuracy on members - accuracy on non-members) / 2.
    gap = np.mean(raw.predict(members.x) == members.y) - np.mean(raw.predict(nonmembers.x) == nonmembers.y)
    assert top1_loss_auc == pytest.approx(0.5 + gap / 2, abs=1e-9)
    assert top1_auc <= raw_auc - 0.05
    # Why top-k renormalises: the kept top-1 value as it is would still be the model's confidence.
    x_all = np.concatenate([members.x, nonmembers.x])
    y_all = np.concatenate([members.y, nonmembers.y])
    p = raw.predict_proba(x_all)
    kept = np.where(p == p.max(axis=1, keepdims=True), p, 0.0)[np.arange(len(y_all)), y_all]
    is_member = np.r_[np.ones(members.n, bool), np.zeros(nonmembers.n, bool)]
    assert membership_metrics(kept, is_member).auc >= raw_auc - 0.01
    # Rounding ties every confident answer at 1.0: no threshold picks members at 1% FPR any more.
    assert raw_tpr > 0.0
    assert rounded_tpr == 0.0
    assert top1_tpr == 0.0
