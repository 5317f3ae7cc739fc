"""Recipes train fresh models like the target: scikit-learn clones and file.py:train entry points."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mlarmor.data import load_dataset
from mlarmor.errors import InputError, InvalidParameterError, UnsupportedModelError
from mlarmor.models import digits_mlp
from mlarmor.targets import (
    Recipe,
    SklearnRecipe,
    SklearnTarget,
    TorchRecipe,
    TorchTarget,
    load_recipe,
    recipe_for,
)

TRAIN_PY = """
from mlarmor.models import digits_mlp, fit_classifier


def train(x, y, seed):
    return fit_classifier(digits_mlp(hidden=16, seed=seed), x, y, epochs=2, lr=1e-2, seed=seed)


def broken(x, y, seed):
    return {"not": "a module"}


not_a_function = 3
"""


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The demo digits: images (n, 1, 8, 8) in [0, 1] and labels 0..9."""
    data = load_dataset("demo:digits")
    return data.x, data.y


@pytest.fixture
def train_py(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAIN_PY)
    return path


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def test_sklearn_recipe_trains_and_outputs_probabilities(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    recipe = SklearnRecipe(GaussianNB(), num_classes=10)  # no logits: probabilities
    assert isinstance(recipe, Recipe)
    assert recipe.name == "GaussianNB"
    assert recipe.logits is False
    model = recipe.train(_flat(x[:400]), y[:400], seed=0)
    out = recipe.outputs(model, _flat(x[400:450]))
    assert out.shape == (50, 10)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert (out.argmax(axis=1) == y[400:450]).mean() > 0.7
    # images are flattened for the estimator, so both layouts give the same outputs
    np.testing.assert_array_equal(recipe.outputs(model, x[400:450]), out)


def test_sklearn_recipe_maps_a_missing_class_to_a_zero_column(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = _flat(digits[0][:400]), digits[1][:400]
    subset = y != 3
    recipe = SklearnRecipe(GaussianNB(), num_classes=10)
    model = recipe.train(x[subset], y[subset], seed=0)
    out = recipe.outputs(model, x)
    assert out.shape == (400, 10)
    assert np.all(out[:, 3] == 0.0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    others = [c for c in range(10) if c != 3]
    np.testing.assert_allclose(out[:, others], model.predict_proba(x), rtol=1e-6)


def test_sklearn_recipe_gives_logits_where_the_model_has_them(digits: tuple[np.ndarray, np.ndarray]) -> None:
    # Probabilities saturate at 1.0 on confident predictions; MLPs and linear models give logits.
    x, y = _flat(digits[0][:400]), digits[1][:400]
    subset = y != 3
    recipe = SklearnRecipe(LogisticRegression(max_iter=200), num_classes=10)
    assert recipe.logits is True
    model = recipe.train(x[subset], y[subset], seed=0)
    out = recipe.outputs(model, x).astype(np.float64)
    assert np.all(out[:, 3] <= -1e3)  # a class never seen: probability ~0 after the softmax
    soft = np.exp(out - out.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    others = [c for c in range(10) if c != 3]
    np.testing.assert_allclose(soft[:, others], model.predict_proba(x), atol=1e-5)


def test_sklearn_recipe_seeds_every_random_state(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = _flat(digits[0][:300]), digits[1][:300]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=30))
    recipe = SklearnRecipe(pipe, num_classes=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a, b, c = (recipe.train(x, y, seed=s) for s in (7, 7, 8))
    assert a.named_steps["mlpclassifier"].random_state == 7
    assert pipe.named_steps["mlpclassifier"].random_state is None  # the user's estimator is untouched
    np.testing.assert_array_equal(recipe.outputs(a, x), recipe.outputs(b, x))
    assert not np.array_equal(recipe.outputs(a, x), recipe.outputs(c, x))


def test_sklearn_fingerprint_follows_the_hyper_parameters(digits: tuple[np.ndarray, np.ndarray]) -> None:
    def fp(estimator: object, num_classes: int = 10) -> str:
        return SklearnRecipe(estimator, num_classes=num_classes).fingerprint()

    base = fp(LogisticRegression(C=1.0))
    assert len(base) == 64
    assert int(base, 16) >= 0
    assert fp(LogisticRegression(C=1.0)) == base
    assert fp(LogisticRegression(C=0.5)) != base
    assert fp(LogisticRegression(C=1.0), num_classes=11) != base
    assert fp(LogisticRegression(C=1.0, random_state=3)) == base  # the seed replaces random_state
    fitted = LogisticRegression(C=1.0, max_iter=200).fit(_flat(digits[0][:200]), digits[1][:200])
    assert fp(fitted) == fp(LogisticRegression(C=1.0, max_iter=200))
    nested = fp(make_pipeline(StandardScaler(), MLPClassifier(alpha=1e-4)))
    assert nested != fp(make_pipeline(StandardScaler(), MLPClassifier(alpha=1e-3)))


def test_sklearn_recipe_refusals(digits: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(UnsupportedModelError, match="predict_proba"):
        SklearnRecipe(LinearSVC(), num_classes=10)
    with pytest.raises(UnsupportedModelError, match="scikit-learn estimator"):
        SklearnRecipe(object(), num_classes=10)
    with pytest.raises(UnsupportedModelError, match="instance"):
        SklearnRecipe(LogisticRegression, num_classes=10)
    with pytest.raises(InvalidParameterError, match="'num_classes' parameter of SklearnRecipe"):
        SklearnRecipe(LogisticRegression(), num_classes=1)
    recipe = SklearnRecipe(LogisticRegression(max_iter=50), num_classes=10)
    x, y = _flat(digits[0][:100]), digits[1][:100]
    model = recipe.train(x, y + 10, seed=0)  # labels that are not class indices 0..9
    with pytest.raises(InvalidParameterError, match=r"class indices 0\.\.9"):
        recipe.outputs(model, x)


def test_torch_recipe_outputs_logits(train_py: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    recipe = load_recipe(f"{train_py}:train", num_classes=10)
    assert isinstance(recipe, TorchRecipe)
    assert isinstance(recipe, Recipe)
    assert recipe.name == "train.py:train"
    assert recipe.logits is True
    model = recipe.train(x[:500], y[:500], seed=1)
    assert isinstance(model, torch.nn.Module)
    out = recipe.outputs(model, x[500:700])
    assert out.shape == (200, 10)
    assert out.dtype == np.float32
    assert not np.allclose(out.sum(axis=1), 1.0)  # logits, not probabilities
    assert (out.argmax(axis=1) == y[500:700]).mean() > 0.5
    again = recipe.outputs(recipe.train(x[:500], y[:500], seed=1), x[500:700])
    np.testing.assert_array_equal(out, again)


def test_torch_recipe_pickles_as_path_and_name(train_py: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    recipe = TorchRecipe(train_py, "train", num_classes=10, batch_size=7)
    blob = pickle.dumps(recipe)
    assert TRAIN_PY.encode() not in blob
    assert b"fit_classifier" not in blob
    copy = pickle.loads(blob)
    assert copy.name == recipe.name
    assert copy.fingerprint() == recipe.fingerprint()
    x, y = digits
    out = copy.outputs(copy.train(x[:200], y[:200], seed=0), x[:20])  # 20 rows in batches of 7
    np.testing.assert_array_equal(out, recipe.outputs(recipe.train(x[:200], y[:200], seed=0), x[:20]))


def test_torch_fingerprint_follows_the_file(train_py: Path) -> None:
    base = TorchRecipe(train_py, num_classes=10).fingerprint()
    assert TorchRecipe(train_py, num_classes=10).fingerprint() == base
    assert TorchRecipe(train_py, "broken", num_classes=10).fingerprint() != base
    train_py.write_text(TRAIN_PY.replace("epochs=2", "epochs=3"))
    assert TorchRecipe(train_py, num_classes=10).fingerprint() != base


def test_torch_recipe_errors(train_py: Path, tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits[0][:50], digits[1][:50]
    with pytest.raises(InputError, match="does not exist"):
        load_recipe(str(tmp_path / "missing.py:train"), num_classes=10)
    with pytest.raises(InputError, match="has no function 'nope'"):
        TorchRecipe(train_py, "nope", num_classes=10).train(x, y, 0)
    with pytest.raises(InputError, match="has no function 'not_a_function'"):
        TorchRecipe(train_py, "not_a_function", num_classes=10).train(x, y, 0)
    with pytest.raises(UnsupportedModelError, match=r"train.py:broken returned a dict"):
        TorchRecipe(train_py, "broken", num_classes=10).train(x, y, 0)
    five = TorchRecipe(train_py, num_classes=5)
    with pytest.raises(UnsupportedModelError, match=r"expected logits of shape \(50, 5\)"):
        five.outputs(five.train(x, y, 0), x)
    bad = tmp_path / "bad.py"
    bad.write_text("raise ImportError('no such thing')\n")
    with pytest.raises(InputError, match="failed to import: ImportError: no such thing"):
        TorchRecipe(bad, num_classes=10).train(x, y, 0)


def test_load_recipe_parses_the_option(train_py: Path) -> None:
    assert load_recipe(str(train_py), num_classes=10).name == "train.py:train"
    assert load_recipe(f"{train_py}:broken", num_classes=10).name == "train.py:broken"
    for spec in ("model.onnx", "train.py:1bad", ""):
        with pytest.raises(InvalidParameterError, match=r"file\.py:function"):
            load_recipe(spec, num_classes=10)
    with pytest.raises(InvalidParameterError, match="num_classes"):
        load_recipe(str(train_py), num_classes=0)


def test_recipe_for_clones_scikit_learn_models(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = _flat(digits[0][:200]), digits[1][:200]
    estimator = LogisticRegression(C=0.3, max_iter=100).fit(x, y)
    target = SklearnTarget(estimator, bounds=(0.0, 1.0))
    recipe = recipe_for(target, num_classes=10)
    assert isinstance(recipe, SklearnRecipe)
    assert (
        recipe.fingerprint()
        == SklearnRecipe(LogisticRegression(C=0.3, max_iter=100), num_classes=10).fingerprint()
    )
    assert recipe_for(estimator, num_classes=10).fingerprint() == recipe.fingerprint()
    with pytest.raises(InvalidParameterError, match="has 10 classes"):
        recipe_for(target, num_classes=9)


def test_recipe_for_refuses_pytorch_models() -> None:
    net = digits_mlp(hidden=8)
    for model in (net, TorchTarget(net, bounds=(0.0, 1.0), input_shape=(1, 8, 8))):
        with pytest.raises(InvalidParameterError, match=r"PyTorch model.*--recipe file\.py:train"):
            recipe_for(model, num_classes=10)
    with pytest.raises(InvalidParameterError, match=r"--recipe file\.py:train"):
        recipe_for("model.onnx", num_classes=10)


def test_load_recipe_knows_the_built_in_demo_recipes() -> None:
    from mlarmor.data import load_dataset

    recipe = load_recipe("demo:digits-mlp", num_classes=10)
    assert recipe.name == "recipes.py:train_digits_mlp"
    ds = load_dataset("demo:digits")
    model = recipe.train(ds.x[:300], ds.y[:300], 0)
    logits = recipe.outputs(model, ds.x[300:400])
    assert logits.shape == (100, 10)
    assert np.mean(logits.argmax(1) == ds.y[300:400]) > 0.7
    with pytest.raises(InvalidParameterError, match="demo:digits-cnn"):
        load_recipe("demo:resnet", num_classes=10)
