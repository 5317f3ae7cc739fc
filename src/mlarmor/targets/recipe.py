"""Recipes: how to train a fresh model like the target, for reference (shadow) models and defenses.

A membership-inference audit trains many models like the target on random halves of the data. A
:class:`Recipe` says how: :meth:`~Recipe.train` builds and trains one model on ``(x, y)`` with a
seed, :meth:`~Recipe.outputs` computes its outputs on any inputs, and :meth:`~Recipe.fingerprint`
identifies the training procedure so that finished models can be cached.

* :class:`SklearnRecipe`: ``sklearn.base.clone`` of an estimator (fitted or not), with every
  ``random_state`` set to the seed; outputs are ``predict_proba``.
* :class:`TorchRecipe`: a ``file.py:train`` entry point, where
  ``train(x: np.ndarray, y: np.ndarray, seed: int) -> torch.nn.Module`` returns a trained module that
  maps input-space ``x`` to logits; outputs are those logits.

Recipes are picklable (a :class:`TorchRecipe` keeps the path and the function's name, and imports
the file where it trains), so a process pool can run them. :func:`load_recipe` reads the
``--recipe file.py:train`` option; :func:`recipe_for` derives the recipe of a scikit-learn target.

Like the factory of ``--model file.py:factory``, the recipe's Python file is code you ask mlarmor to
run: it is imported and executed as it is, not scanned.

Example:
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mlarmor.data import load_dataset
    >>> from mlarmor.targets.recipe import SklearnRecipe
    >>> data = load_dataset("demo:digits")
    >>> x, y = data.x.reshape(data.n, -1), data.y
    >>> recipe = SklearnRecipe(LogisticRegression(max_iter=200), num_classes=10)
    >>> model = recipe.train(x[:500], y[:500], seed=0)
    >>> recipe.outputs(model, x[:3]).shape, recipe.logits
    ((3, 10), False)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import re
import types
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mlarmor._validation import check_int
from mlarmor.errors import InputError, InvalidParameterError, UnsupportedModelError, invalid_parameter
from mlarmor.targets._common import looks_like_probabilities
from mlarmor.targets.sklearn import has_logits, sklearn_logits

__all__ = ["Recipe", "SklearnRecipe", "TorchRecipe", "load_recipe", "recipe_for"]

logger = logging.getLogger(__name__)

_SPEC = re.compile(r"^(?P<file>.+\.py)(?::(?P<name>[A-Za-z_][A-Za-z0-9_]*))?$", re.IGNORECASE)
_DEFAULT_FUNCTION = "train"
_BATCH = 1024
_RECIPE_HELP = (
    "Pass a training recipe, --recipe file.py:train (load_recipe('file.py:train', num_classes=N)), "
    "where train(x, y, seed) returns a trained torch.nn.Module that outputs logits"
)
# Imported train functions, by (file, function, file digest): a worker that trains many reference
# models imports the file once; a changed file is a new key.
_FUNCTIONS: dict[tuple[str, str, str], Callable[..., Any]] = {}


@runtime_checkable
class Recipe(Protocol):
    """How to train a fresh model like the target and read its outputs.

    Implementations must be picklable: reference models train in worker processes.
    """

    @property
    def name(self) -> str:
        """Human-readable identification, shown in messages and reports."""
        ...

    @property
    def logits(self) -> bool:
        """Whether :meth:`outputs` returns logits (``True``) or probabilities (``False``)."""
        ...

    def fingerprint(self) -> str:
        """Hex SHA-256 identifying the training procedure: equal fingerprints train alike (caching)."""
        ...

    def train(self, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        """A freshly trained model on ``x`` and class indices ``y``, seeded with ``seed``."""
        ...

    def outputs(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Outputs ``(n, num_classes)`` float32 of a model from :meth:`train` on ``x``."""
        ...


_ABSENT_LOGIT = -1e4


def _flat(x: np.ndarray) -> np.ndarray:
    """Rows of features, as scikit-learn wants them (images ``(n, 1, 8, 8)`` become ``(n, 64)``)."""
    arr = np.asarray(x)
    return arr.reshape(arr.shape[0], -1) if arr.ndim > 2 else arr


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _canonical(value: Any) -> str:
    """A stable text for a hyper-parameter value: no memory addresses, no truncated reprs."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        params = value.get_params(deep=False)
        inner = ", ".join(f"{k}={_canonical(params[k])}" for k in sorted(params) if not _is_seed(k))
        return f"{type(value).__module__}.{type(value).__qualname__}({inner})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_canonical(value[k])}" for k in sorted(value, key=repr)) + "}"
    if isinstance(value, list | tuple):
        inner = ", ".join(_canonical(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return f"ndarray({value.dtype.str}, {value.shape}, {digest})"
    if isinstance(value, types.FunctionType | types.BuiltinFunctionType | type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def _is_seed(param: str) -> bool:
    return param == "random_state" or param.endswith("__random_state")


class SklearnRecipe:
    """Train clones of a scikit-learn estimator; outputs are probabilities.

    :meth:`train` fits ``sklearn.base.clone(estimator)`` after setting every ``random_state``
    parameter (of the estimator and of nested ones, e.g. the steps of a ``Pipeline``) to the seed,
    so that the same seed trains the same model. Inputs with more than two axes (images) are
    flattened to rows of features. :meth:`outputs` are ``predict_proba`` mapped to the columns
    ``0..num_classes-1`` through the model's ``classes_``: a class missing from a model's training
    subset gets probability 0.

    The :meth:`fingerprint` hashes the estimator's class, its hyper-parameters (nested estimators
    included, ``random_state`` excluded since the seed replaces it), ``num_classes`` and the
    scikit-learn version: changing a hyper-parameter changes the fingerprint, so cached reference
    models of the old setting are not reused.

    Args:
        estimator: A scikit-learn classifier with ``predict_proba`` (fitted or not; only its
            hyper-parameters are used).
        num_classes: Number of classes ``C``; labels are class indices ``0..C-1``.
        name: Human-readable identification; defaults to the estimator's class name.
        batch_size: Rows per ``predict_proba`` call in :meth:`outputs`.

    Raises:
        InvalidParameterError: ``num_classes`` or ``batch_size`` is out of its domain.
        UnsupportedModelError: The estimator cannot be cloned or has no ``predict_proba``.
    """

    def __init__(
        self, estimator: Any, *, num_classes: int, name: str | None = None, batch_size: int = 4096
    ) -> None:
        from sklearn.base import clone

        owner = "SklearnRecipe"
        self._num_classes = check_int(num_classes, "num_classes", owner, low=2)
        self._batch_size = check_int(batch_size, "batch_size", owner)
        kind = type(estimator).__name__
        if isinstance(estimator, type):
            raise UnsupportedModelError(
                f"SklearnRecipe needs an estimator instance, e.g. {estimator.__name__}(). "
                f"Got the class {estimator.__name__} instead."
            )
        try:
            self._estimator = clone(estimator)
        except (TypeError, RuntimeError) as e:
            raise UnsupportedModelError(
                f"SklearnRecipe needs a scikit-learn estimator (with get_params, for "
                f"sklearn.base.clone). Got a {kind} instead: {e}"
            ) from e
        if not callable(getattr(self._estimator, "fit", None)):
            raise UnsupportedModelError(f"{kind} has no 'fit' method; a recipe must train a classifier.")
        if not hasattr(self._estimator, "predict_proba"):
            raise UnsupportedModelError(
                f"{kind} has no predict_proba, and reference models need class probabilities. Use an "
                "estimator that has it, e.g. SVC(probability=True) or CalibratedClassifierCV(LinearSVC())."
            )
        self._name = name or kind

    @property
    def name(self) -> str:
        """The name given, or the estimator's class name."""
        return self._name

    @property
    def logits(self) -> bool:
        """Whether outputs are logits: MLPs and linear models (see ``mlarmor.targets.sklearn.has_logits``).

        Probabilities saturate at exactly 1.0 on confident predictions, which hides what membership
        attacks read; other estimators give probabilities.
        """
        return has_logits(self._estimator)

    @property
    def num_classes(self) -> int:
        """Number of output columns."""
        return self._num_classes

    @property
    def estimator(self) -> Any:
        """An unfitted clone of the estimator the recipe trains."""
        from sklearn.base import clone

        return clone(self._estimator)

    def fingerprint(self) -> str:
        """Hex SHA-256 of the class path, hyper-parameters, ``num_classes`` and scikit-learn version."""
        text = (
            f"mlarmor-sklearn-recipe\0{_canonical(self._estimator)}\0{self._num_classes}\0logits={self.logits}"
            f"\0{_version('scikit-learn')}"
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def train(self, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        """Fit a clone of the estimator on ``x`` (flattened to rows) and ``y``, every random_state = seed."""
        from sklearn.base import clone
        from sklearn.exceptions import ConvergenceWarning

        model = clone(self._estimator)
        seeds = {key: int(seed) for key in model.get_params(deep=True) if _is_seed(key)}
        if seeds:
            model.set_params(**seeds)
        # A reference model repeats the target's training, warnings included: an iteration limit the
        # target already hit would print once per reference model, from every worker.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(_flat(x), np.asarray(y))
        return model

    def outputs(self, model: Any, x: np.ndarray) -> np.ndarray:
        """``predict_proba`` of ``model`` on ``x``, as ``(n, num_classes)`` float32 in class-index order."""
        rows = _flat(x)
        classes = np.asarray(getattr(model, "classes_", ()))
        if (
            classes.ndim != 1
            or classes.size == 0
            or not np.issubdtype(classes.dtype, np.integer)
            or classes.min() < 0
            or classes.max() >= self._num_classes
        ):
            raise InvalidParameterError(
                f"{self._name} was trained on the labels {classes.tolist()[:20]}; a recipe needs class "
                f"indices 0..{self._num_classes - 1} (num_classes={self._num_classes}). Encode the labels "
                "as indices, or pass the right num_classes."
            )
        if self.logits:
            # A class the model never saw gets a logit far below the others (probability ~0).
            out = np.full((rows.shape[0], self._num_classes), _ABSENT_LOGIT, dtype=np.float32)
            for start in range(0, rows.shape[0], self._batch_size):
                z = sklearn_logits(model, rows[start : start + self._batch_size])
                if z is None or z.shape[1] != classes.size:
                    raise UnsupportedModelError(
                        f"{self._name}: cannot compute its logits ({type(model).__name__})."
                    )
                out[start : start + z.shape[0], classes] = z
            return out
        out = np.zeros((rows.shape[0], self._num_classes), dtype=np.float32)
        for start in range(0, rows.shape[0], self._batch_size):
            proba = np.asarray(model.predict_proba(rows[start : start + self._batch_size]))
            if proba.shape != (min(self._batch_size, rows.shape[0] - start), classes.size):
                raise UnsupportedModelError(
                    f"{self._name}.predict_proba returned shape {proba.shape}; expected one column per "
                    f"class in classes_ ({classes.size})."
                )
            out[start : start + proba.shape[0], classes] = proba
        return out

    def __repr__(self) -> str:
        return f"SklearnRecipe({self._estimator!r}, num_classes={self._num_classes})"


class TorchRecipe:
    """Train PyTorch models with a ``train`` function from a Python file; outputs are logits.

    The file defines ``train(x: np.ndarray, y: np.ndarray, seed: int) -> torch.nn.Module``: it builds
    a model, trains it on ``x`` (input space, as the target sees it) and class indices ``y``, and
    returns it. The module must map inputs to logits ``(n, num_classes)``. Use ``seed`` for the
    weight initialisation and the data order (e.g. ``mlarmor.models.fit_classifier(..., seed=seed)``)
    so that reference models are reproducible; torch's global generator is also seeded with ``seed``
    around the call (and restored after), for code that draws from it.

    The file is imported lazily, where training happens (in each worker process), so the recipe
    pickles as its path and function name. Like ``--model file.py:factory``, the file is user code
    and is executed, not scanned.

    :meth:`fingerprint` hashes the file's bytes, the function name and the torch version. Modules the
    file imports are not part of it: after changing one, clear the reference-model cache.

    Args:
        file: The Python file.
        function: The name of the train function in it.
        num_classes: Number of classes ``C``; the model's outputs must be ``(n, C)``.
        batch_size: Rows per forward pass in :meth:`outputs`.

    Raises:
        InputError: The file does not exist.
        InvalidParameterError: A parameter is out of its domain.

    Example:
        >>> from mlarmor.targets.recipe import TorchRecipe
        >>> recipe = TorchRecipe("train.py", "train", num_classes=10)  # doctest: +SKIP
    """

    def __init__(
        self,
        file: str | Path,
        function: str = _DEFAULT_FUNCTION,
        *,
        num_classes: int,
        batch_size: int = _BATCH,
    ) -> None:
        owner = "TorchRecipe"
        self._num_classes = check_int(num_classes, "num_classes", owner, low=2)
        self._batch_size = check_int(batch_size, "batch_size", owner)
        if not isinstance(function, str) or not function.isidentifier():
            raise invalid_parameter("function", owner, "the name of a Python function", function)
        path = Path(file)
        if not path.is_file():
            raise InputError(
                f"The recipe file {path} does not exist or is not a file. Check the path in "
                f"{path}:{function}."
            )
        self._file = str(path.resolve())
        self._function = function

    @property
    def name(self) -> str:
        """``file.py:function``."""
        return f"{Path(self._file).name}:{self._function}"

    @property
    def logits(self) -> bool:
        """``True``: outputs are logits."""
        return True

    @property
    def num_classes(self) -> int:
        """Number of outputs per input."""
        return self._num_classes

    @property
    def file(self) -> Path:
        """The recipe's Python file (absolute)."""
        return Path(self._file)

    @property
    def function(self) -> str:
        """The name of the train function."""
        return self._function

    def fingerprint(self) -> str:
        """Hex SHA-256 of the file's bytes, the function name and the torch version."""
        digest = hashlib.sha256(b"mlarmor-torch-recipe\0")
        digest.update(self._read())
        digest.update(f"\0{self._function}\0{_version('torch')}".encode())
        return digest.hexdigest()

    def train(self, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        """Call ``train(x, y, seed)`` from the file and check that it returned a ``torch.nn.Module``."""
        import torch

        fn = self._load()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = fn(x, y, int(seed))
        if not isinstance(model, torch.nn.Module):
            raise UnsupportedModelError(
                f"{self.name} returned a {type(model).__name__}; it must return the trained torch.nn.Module."
            )
        return model

    def outputs(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Logits ``(n, num_classes)`` float32: eval mode, no gradients, in batches on the model's device."""
        import torch

        first = next((p for p in model.parameters() if p.is_floating_point()), None)
        device = first.device if first is not None else torch.device("cpu")
        dtype = first.dtype if first is not None else torch.float32
        arr = np.asarray(x)
        out = np.empty((arr.shape[0], self._num_classes), dtype=np.float32)
        model.eval()
        with torch.no_grad():
            for start in range(0, arr.shape[0], self._batch_size):
                chunk = np.array(arr[start : start + self._batch_size])  # a writable copy, for torch
                batch = torch.from_numpy(chunk).to(dtype=dtype, device=device)
                logits = model(batch)
                if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (
                    batch.shape[0],
                    self._num_classes,
                ):
                    got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                    raise UnsupportedModelError(
                        f"The model from {self.name} returned {got} for {batch.shape[0]} inputs; expected "
                        f"logits of shape ({batch.shape[0]}, {self._num_classes}), one per class."
                    )
                out[start : start + batch.shape[0]] = logits.float().cpu().numpy()
        if looks_like_probabilities(out[: min(len(out), 256)]):
            logger.warning(
                "%s: the model's outputs sum to 1 like probabilities; it should return logits "
                "(remove a final softmax)",
                self.name,
            )
        return out

    def __repr__(self) -> str:
        return f"TorchRecipe({self._file!r}, {self._function!r}, num_classes={self._num_classes})"

    def _read(self) -> bytes:
        try:
            return Path(self._file).read_bytes()
        except OSError as e:
            raise InputError(f"The recipe file {self._file} cannot be read: {e}") from e

    def _load(self) -> Callable[..., Any]:
        from mlarmor.targets._factory import _import_file

        key = (self._file, self._function, hashlib.sha256(self._read()).hexdigest())
        fn = _FUNCTIONS.get(key)
        if fn is None:
            candidate = getattr(_import_file(Path(self._file)), self._function, None)
            if not callable(candidate):
                raise InputError(
                    f"{self._file} has no function {self._function!r}; define "
                    f"def {self._function}(x, y, seed) -> torch.nn.Module in it, or name the function: "
                    "file.py:function."
                )
            fn = _FUNCTIONS[key] = candidate
        return fn


def load_recipe(spec: str, *, num_classes: int) -> Recipe:
    """Read a ``--recipe`` option: ``file.py:function`` (or ``file.py``, for ``file.py:train``).

    ``demo:digits-cnn`` and ``demo:digits-mlp`` name the built-in recipes of
    :mod:`mlarmor.models.recipes` (the demo's models, for the ``demo:digits`` data).

    Args:
        spec: ``file.py:function``; the function trains a ``torch.nn.Module`` (see :class:`TorchRecipe`).
            Or ``demo:NAME`` for a built-in recipe.
        num_classes: Number of classes.

    Returns:
        A :class:`TorchRecipe`.

    Raises:
        InvalidParameterError: ``spec`` is not of the form ``file.py:function``.
        InputError: The file does not exist.
    """
    if isinstance(spec, str) and spec.startswith("demo:"):
        from mlarmor.models import recipes

        name = spec.removeprefix("demo:")
        if name not in recipes.RECIPES:
            raise InvalidParameterError(
                f"Unknown built-in recipe {spec!r}; use one of "
                f"{', '.join('demo:' + r for r in recipes.RECIPES)}, or file.py:function."
            )
        return TorchRecipe(
            recipes.__file__,
            recipes.RECIPES[name],
            num_classes=check_int(num_classes, "num_classes", "load_recipe", low=2),
        )
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise InvalidParameterError(
            "The recipe must be file.py:function, a Python file whose function train(x, y, seed) returns "
            f"a trained torch.nn.Module. Got {spec!r} instead."
        )
    return TorchRecipe(
        match["file"],
        match["name"] or _DEFAULT_FUNCTION,
        num_classes=check_int(num_classes, "num_classes", "load_recipe", low=2),
    )


def recipe_for(target_or_estimator: Any, *, num_classes: int) -> Recipe:
    """The recipe of a scikit-learn model: a :class:`SklearnRecipe` cloning its estimator.

    Args:
        target_or_estimator: A scikit-learn estimator (fitted or not) or a
            :class:`~mlarmor.targets.SklearnTarget`.
        num_classes: Number of classes.

    Returns:
        A :class:`SklearnRecipe`.

    Raises:
        InvalidParameterError: The model is not a scikit-learn one (PyTorch, ONNX, HTTP targets need
            a recipe: :func:`load_recipe`), or ``num_classes`` does not match the target's.
        UnsupportedModelError: The estimator has no ``predict_proba``.
    """
    from mlarmor.targets.sklearn import SklearnTarget

    classes = check_int(num_classes, "num_classes", "recipe_for", low=2)
    estimator = target_or_estimator
    if isinstance(target_or_estimator, SklearnTarget):
        if target_or_estimator.num_classes != classes:
            raise InvalidParameterError(
                f"The 'num_classes' parameter of recipe_for is {classes}, but the target "
                f"{target_or_estimator.name!r} has {target_or_estimator.num_classes} classes. Pass "
                f"num_classes={target_or_estimator.num_classes}."
            )
        estimator = target_or_estimator.estimator
    if not (callable(getattr(estimator, "get_params", None)) and callable(getattr(estimator, "fit", None))):
        kind = type(target_or_estimator).__name__
        pytorch = "a PyTorch model" if _is_torch(target_or_estimator) else f"a {kind}"
        raise InvalidParameterError(
            f"mlarmor cannot retrain {pytorch} by itself: only scikit-learn estimators are cloned. "
            f"{_RECIPE_HELP}."
        )
    return SklearnRecipe(estimator, num_classes=classes)


def _is_torch(obj: Any) -> bool:
    import torch

    from mlarmor.targets.torch import TorchTarget

    return isinstance(obj, TorchTarget | torch.nn.Module)
