"""Reference models: LiRA splits, a parallel pool that matches the in-process run, an on-disk cache."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mlarmor.assess import ReferenceOutputs, membership_splits, train_reference_models
from mlarmor.data import load_dataset
from mlarmor.errors import InputError, InvalidParameterError, ResourceLimitError
from mlarmor.targets import Recipe, SklearnRecipe, TorchRecipe

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N = 240  # examples: enough for every model to see every class, small enough to train in a blink

TRAIN_PY = """
from mlarmor.models import digits_mlp, fit_classifier


def train(x, y, seed):
    return fit_classifier(digits_mlp(hidden=16, seed=seed), x, y, epochs=2, lr=1e-2, seed=seed)


def explode(x, y, seed):
    raise RuntimeError(f"boom on {len(x)} rows")


def die(x, y, seed):
    import os

    os._exit(3)  # a crash in native code, or the kernel's out-of-memory killer, looks like this
"""


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """N demo digits, images (N, 1, 8, 8) in [0, 1] and labels 0..9."""
    data = load_dataset("demo:digits")
    return data.x[:N], data.y[:N]


@pytest.fixture
def train_py(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAIN_PY)
    return path


def _logistic() -> SklearnRecipe:
    return SklearnRecipe(LogisticRegression(max_iter=100), num_classes=10)


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize(("n_examples", "n_models"), [(1, 2), (7, 2), (100, 4), (1000, 16), (33, 64)])
def test_every_example_is_in_exactly_half_of_the_models(n_examples: int, n_models: int) -> None:
    keep = membership_splits(n_examples, n_models, seed=3)
    assert keep.shape == (n_models, n_examples)
    assert keep.dtype == bool
    assert np.all(keep.sum(axis=0) == n_models // 2)


def test_splits_are_seeded_and_balanced() -> None:
    keep = membership_splits(2000, 16, seed=0)
    np.testing.assert_array_equal(keep, membership_splits(2000, 16, seed=0))
    assert not np.array_equal(keep, membership_splits(2000, 16, seed=1))
    # each model trains on about half of the examples: binomial(2000, 1/2) has sd ~22
    assert np.all(np.abs(keep.sum(axis=1) - 1000) < 120)
    # and two models share about a quarter of them (independent halves), not all or none
    shared = (keep[0] & keep[1]).sum()
    assert 350 < shared < 650


@pytest.mark.parametrize("n_models", [0, 1, 3, 15, 2.0, True])
def test_an_odd_number_of_models_is_refused(n_models: object) -> None:
    with pytest.raises(InvalidParameterError, match="even number such as 16"):
        membership_splits(10, n_models)  # type: ignore[arg-type]


def test_split_parameters_are_checked() -> None:
    with pytest.raises(InvalidParameterError, match="'n_examples' parameter"):
        membership_splits(0, 4)
    with pytest.raises(InvalidParameterError, match="'seed' parameter"):
        membership_splits(10, 4, seed=-1)


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_pool_and_in_process_runs_agree(
    kind: str, train_py: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = digits
    recipe: Recipe
    if kind == "sklearn":
        x = x.reshape(len(x), -1)
        recipe = SklearnRecipe(MLPClassifier(hidden_layer_sizes=(16,), max_iter=20), num_classes=10)
    else:
        recipe = TorchRecipe(train_py, num_classes=10)
    calls: list[tuple[int, int]] = []
    pooled = train_reference_models(
        recipe, x, y, n_models=4, seed=5, workers=2, progress=lambda d, t: calls.append((d, t))
    )
    here = train_reference_models(recipe, x, y, n_models=4, seed=5, workers=1)
    assert isinstance(pooled, ReferenceOutputs)
    assert pooled.outputs.shape == (4, N, 10)
    assert pooled.outputs.dtype == np.float32
    assert pooled.logits is True  # torch models and scikit-learn MLPs both give logits
    assert pooled.cached == 0
    assert pooled.trained == 4
    np.testing.assert_array_equal(pooled.keep, membership_splits(N, 4, seed=5))
    np.testing.assert_array_equal(pooled.keep, here.keep)
    np.testing.assert_array_equal(pooled.outputs, here.outputs)
    assert pooled.seeds == here.seeds
    assert len(set(pooled.seeds)) == 4
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert not multiprocessing.active_children()
    # the models differ (different halves and seeds), and each fits its own half better
    assert not np.array_equal(pooled.outputs[0], pooled.outputs[1])
    hits = pooled.outputs.argmax(axis=2) == y
    assert hits[pooled.keep].mean() > hits[~pooled.keep].mean()
    with pytest.raises(ValueError, match="read-only"):
        pooled.outputs[0, 0, 0] = 1.0
    other = train_reference_models(recipe, x, y, n_models=4, seed=6, workers=1)
    assert not np.array_equal(other.keep, here.keep)


def test_cache_is_reused_and_keyed(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits[0].reshape(N, -1), digits[1]
    recipe = SklearnRecipe(MLPClassifier(hidden_layer_sizes=(32,), max_iter=60), num_classes=10)
    first = train_reference_models(recipe, x, y, n_models=4, workers=1, cache_dir=tmp_path / "cache")
    files = sorted((tmp_path / "cache").iterdir())
    assert first.cached == 0
    assert len(files) == 4
    assert all(f.suffix == ".npz" and len(f.stem) == 64 for f in files)  # no temporary files left
    calls: list[tuple[int, int]] = []
    second = train_reference_models(
        recipe,
        x,
        y,
        n_models=4,
        workers=2,
        cache_dir=tmp_path / "cache",
        progress=lambda d, t: calls.append((d, t)),
    )
    assert second.cached == 4
    assert calls == [(4, 4)]
    assert second.seconds < first.seconds / 3
    np.testing.assert_array_equal(second.outputs, first.outputs)
    # anything that changes the outputs is part of the key
    changed = SklearnRecipe(MLPClassifier(hidden_layer_sizes=(32,), max_iter=61), num_classes=10)
    assert (
        train_reference_models(changed, x, y, n_models=4, workers=1, cache_dir=tmp_path / "cache").cached == 0
    )
    assert (
        train_reference_models(
            recipe, x, y, n_models=4, seed=1, workers=1, cache_dir=tmp_path / "cache"
        ).cached
        == 0
    )
    flipped = y.copy()
    flipped[0] = (flipped[0] + 1) % 10
    assert (
        train_reference_models(recipe, x, flipped, n_models=4, workers=1, cache_dir=tmp_path / "cache").cached
        == 0
    )


def test_a_corrupt_cache_file_is_recomputed(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], canary: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = digits[0].reshape(N, -1), digits[1]
    first = train_reference_models(_logistic(), x, y, n_models=4, workers=1, cache_dir=tmp_path)
    files = sorted(tmp_path.glob("*.npz"))
    files[0].write_bytes(b"PK\x03\x04 this is not a zip archive")
    # an .npz whose outputs are pickled objects: loading them would run the payload into the canary
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(canary / "pwned")
    with files[1].open("wb") as fh:
        np.savez(fh, outputs=evil, logits=np.array(False), version=np.array(1))
    files[2].write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="mlarmor.assess.reference"):
        again = train_reference_models(_logistic(), x, y, n_models=4, workers=1, cache_dir=tmp_path)
    assert again.cached == 1
    assert sum("Ignoring the unreadable cache file" in r.getMessage() for r in caplog.records) == 3
    np.testing.assert_array_equal(again.outputs, first.outputs)
    assert train_reference_models(_logistic(), x, y, n_models=4, workers=1, cache_dir=tmp_path).cached == 4


class _Payload:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (str(self.path), "w"))


# ----------------------------------------------------------------------------- errors


def test_a_failing_recipe_stops_the_pool_with_a_clear_error(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits[0].reshape(N, -1), digits[1]
    recipe = SklearnRecipe(LogisticRegression(C=-1.0), num_classes=10)
    with pytest.raises(
        InputError, match=r"The recipe failed training reference model \d on \d+ examples: "
    ) as info:
        train_reference_models(recipe, x, y, n_models=4, workers=2)
    assert "'C' parameter of LogisticRegression" in str(info.value)
    assert "workers=1" in str(info.value)
    assert not multiprocessing.active_children()


def test_a_failing_recipe_in_process_keeps_its_cause(
    train_py: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    recipe = TorchRecipe(train_py, "explode", num_classes=10)
    with pytest.raises(
        InputError, match=r"reference model 0 on \d+ examples: RuntimeError: boom on \d+ rows"
    ) as info:
        train_reference_models(recipe, *digits, n_models=2, workers=1)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_dead_worker_is_reported_not_a_traceback(
    train_py: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    recipe = TorchRecipe(train_py, "die", num_classes=10)
    with pytest.raises(ResourceLimitError, match=r"A worker process died while training reference model \d"):
        train_reference_models(recipe, *digits, n_models=4, workers=2)
    assert not multiprocessing.active_children()


class _LocalRecipe:
    """A recipe that cannot travel to a worker process (it holds a lambda)."""

    name = "local"
    logits = False

    def __init__(self) -> None:
        self.scale = lambda v: v

    def fingerprint(self) -> str:
        return "0" * 64

    def train(self, x: np.ndarray, y: np.ndarray, seed: int) -> object:
        return None

    def outputs(self, model: object, x: np.ndarray) -> np.ndarray:
        return np.full((len(x), 2), 0.5, dtype=np.float32)


def test_parameters_are_checked(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    with pytest.raises(InvalidParameterError, match="even number such as 16"):
        train_reference_models(_logistic(), x, y, n_models=5)
    with pytest.raises(InvalidParameterError, match="'y' parameter"):
        train_reference_models(_logistic(), x, y[:-1], n_models=2)
    with pytest.raises(InvalidParameterError, match="'x' parameter"):
        train_reference_models(_logistic(), x[:0], y[:0], n_models=2)
    with pytest.raises(InvalidParameterError, match="'y' parameter"):
        train_reference_models(_logistic(), x, y.astype(np.float32), n_models=2)
    with pytest.raises(InvalidParameterError, match="'workers' parameter"):
        train_reference_models(_logistic(), x, y, n_models=2, workers=0)
    with pytest.raises(InvalidParameterError, match="must be a Recipe"):
        train_reference_models(LogisticRegression(), x, y, n_models=2)  # type: ignore[arg-type]
    local = _LocalRecipe()
    assert isinstance(local, Recipe)
    with pytest.raises(InvalidParameterError, match="cannot be sent to worker processes"):
        train_reference_models(local, x, y, n_models=2, workers=2)
    assert train_reference_models(local, x, y, n_models=2, workers=1).outputs.shape == (2, N, 2)


def test_queries_are_evaluated_but_never_trained_on() -> None:
    from sklearn.linear_model import LogisticRegression

    from mlarmor.assess.reference import train_reference_models
    from mlarmor.data import load_dataset
    from mlarmor.targets.recipe import SklearnRecipe

    digits = load_dataset("demo:digits")
    x, y = digits.x.reshape(len(digits.x), -1)[:200], digits.y[:200]
    extra = np.clip(x[:30] + 0.05, 0.0, 1.0)
    recipe = SklearnRecipe(LogisticRegression(max_iter=100), num_classes=10)
    refs = train_reference_models(recipe, x, y, n_models=2, workers=1, queries=extra)
    plain = train_reference_models(recipe, x, y, n_models=2, workers=1)
    assert refs.outputs.shape == (2, 230, 10)
    assert refs.keep.shape == (2, 200)
    np.testing.assert_array_equal(refs.outputs[:, :200], plain.outputs)  # the models are the same
