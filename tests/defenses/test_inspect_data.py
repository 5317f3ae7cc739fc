"""Poisoned-sample detectors on synthetic representations with a planted sub-cluster, and ``activations``.

The synthetic set has five Gaussian classes in 32 dimensions; 8% of class 2 is shifted along one
direction (a backdoor's trace in the representation). Spectral signatures flags ``ceil(1.5 * ef *
n_c)`` samples in every class by design, so its false flags are measured on the clean samples of the
poisoned class, where the method has to tell them apart from the poison.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from mlarmor.defenses.inspect import Suspicion, activation_clustering, activations, spectral_signatures
from mlarmor.errors import InvalidParameterError
from mlarmor.models import digits_mlp, fit_classifier

N_PER_CLASS, DIM, N_CLASSES, TARGET, POISON_FRACTION = 400, 32, 5, 2, 0.08


def _planted(seed: int = 0, *, class_offset: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and the poison mask; ``class_offset`` moves the target class far from 0."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(N_CLASSES, DIM))
    y = np.repeat(np.arange(N_CLASSES), N_PER_CLASS)
    x = means[y] + rng.normal(size=(len(y), DIM))
    target = np.flatnonzero(y == TARGET)
    poison = rng.choice(target, int(POISON_FRACTION * N_PER_CLASS), replace=False)
    shift = rng.normal(size=DIM)
    x[poison] += 5.0 * shift / np.linalg.norm(shift)
    if class_offset:
        direction = rng.normal(size=DIM)
        x[target] += class_offset * direction / np.linalg.norm(direction)
    mask = np.zeros(len(y), dtype=bool)
    mask[poison] = True
    return x, y, mask


def _rates(flagged: np.ndarray, poison: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Recall on the poison, false-flag rate on the clean samples of the target class."""
    clean_target = (y == TARGET) & ~poison
    return float(flagged[poison].mean()), float(flagged[clean_target].mean())


def test_spectral_signatures_recovers_the_planted_cluster() -> None:
    x, y, poison = _planted()
    result = spectral_signatures(x, y, expected_fraction=0.06)
    recall, false_rate = _rates(result.flagged, poison, y)
    assert recall >= 0.9
    assert false_rate <= 0.05
    k = math.ceil(1.5 * 0.06 * N_PER_CLASS)
    assert all(info["flagged"] == k and info["clean_class"] is None for info in result.per_class.values())
    assert result.n_flagged == N_CLASSES * k
    assert result.method == "spectral_signatures"


def test_spectral_signatures_needs_the_class_mean_removed() -> None:
    x, y, poison = _planted(class_offset=60.0)
    recall, false_rate = _rates(spectral_signatures(x, y, expected_fraction=0.06).flagged, poison, y)
    assert recall >= 0.9
    assert false_rate <= 0.05

    # The variant without centring: the top singular vector points at the class mean, and the
    # score measures how far out along the mean a sample lies, not the planted shift.
    idx = np.flatnonzero(y == TARGET)
    raw = x[idx]
    v = np.linalg.svd(raw, full_matrices=False)[2][0]
    top = idx[np.argsort(-((raw @ v) ** 2))[: math.ceil(1.5 * 0.06 * len(idx))]]
    uncentred = np.zeros(len(y), dtype=bool)
    uncentred[top] = True
    assert _rates(uncentred, poison, y)[0] < 0.5


def test_activation_clustering_flags_the_poisoned_class_only() -> None:
    x, y, poison = _planted()
    result = activation_clustering(x, y)
    assert result.per_class[TARGET]["clean_class"] is False
    clean = [c for c in range(N_CLASSES) if c != TARGET]
    assert all(result.per_class[c]["clean_class"] is True for c in clean)
    assert all(result.per_class[c]["flagged"] == 0 for c in clean)
    assert not result.flagged[y != TARGET].any()
    recall, false_rate = _rates(result.flagged, poison, y)
    assert recall >= 0.9
    assert false_rate <= 0.05
    # Flagged samples outrank every other one.
    assert result.scores[result.flagged].min() > result.scores[~result.flagged].max()
    assert result.per_class[TARGET]["small_cluster_fraction"] < 0.35


def test_activation_clustering_leaves_a_clean_set_alone() -> None:
    x, y, poison = _planted()
    result = activation_clustering(x[~poison], y[~poison])
    assert result.n_flagged == 0
    assert all(info["clean_class"] for info in result.per_class.values())


def test_suspicion_ranking_and_dict() -> None:
    x, y, _ = _planted()
    result = spectral_signatures(x, y)
    order = result.suspicious_indices()
    assert set(order.tolist()) == set(np.flatnonzero(result.flagged).tolist())
    assert np.all(np.diff(result.scores[order]) <= 0)
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["n_flagged"] == result.n_flagged
    assert doc["suspicious_indices"] == order.tolist()
    assert isinstance(result, Suspicion)


def test_small_classes_are_skipped_with_a_note() -> None:
    x, y, _ = _planted()
    x, y = np.vstack([x, np.zeros((3, DIM))]), np.concatenate([y, [9, 9, 9]])
    for detector in (spectral_signatures, activation_clustering):
        result = detector(x, y)
        assert "skipped" in result.per_class[9]
        assert not result.flagged[y == 9].any()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda x, y: spectral_signatures(x, y, expected_fraction=0.5), "expected_fraction"),
        (lambda x, y: spectral_signatures(x, y, expected_fraction=0.0), "expected_fraction"),
        (lambda x, y: spectral_signatures(x[:, 0], y), "features"),
        (lambda x, y: spectral_signatures(np.where(x > 5, np.nan, x), y), "features"),
        (lambda x, y: spectral_signatures(x, y[:-1]), "y"),
        (lambda x, y: spectral_signatures(x, y + 0.5), "y"),
        (lambda x, y: activation_clustering(x, y, size_threshold=0.6), "size_threshold"),
        (lambda x, y: activation_clustering(x, y, n_components=0), "n_components"),
        (lambda x, y: activation_clustering(x, y, seed=-1), "seed"),
    ],
)
def test_invalid_parameters(call: object, name: str) -> None:
    x, y, _ = _planted()
    with pytest.raises(InvalidParameterError, match=f"'{name}'"):
        call(x, y)  # type: ignore[operator]


@pytest.fixture(scope="module")
def digits_model() -> tuple[torch.nn.Module, np.ndarray]:
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    model = fit_classifier(digits_mlp(hidden=(32, 16)), x[:600], digits.target[:600], epochs=3)
    return model, x[:300]


def test_activations_default_is_the_penultimate_representation(
    digits_model: tuple[torch.nn.Module, np.ndarray],
) -> None:
    model, x = digits_model
    model.train()
    feats = activations(model, x, batch_size=64)
    assert model.training  # restored
    assert feats.shape == (300, 16)
    assert feats.dtype == np.float32
    names = [name for name, _ in model.named_modules() if name]
    relu_before_last = names[-2]
    assert np.array_equal(activations(model, x, layer=relu_before_last), feats)
    first = activations(model, x, layer=names[1])
    assert first.shape == (300, 32)
    assert np.array_equal(activations(model, x, layer="0"), x.reshape(300, -1))


def test_activations_unknown_layer_lists_the_names(digits_model: tuple[torch.nn.Module, np.ndarray]) -> None:
    model, x = digits_model
    with pytest.raises(InvalidParameterError, match=r"'layer'.*\['0', '1'"):
        activations(model, x, layer="fc9")
    with pytest.raises(InvalidParameterError, match="'layer'"):
        activations(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.ReLU()), x)
