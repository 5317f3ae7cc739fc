"""The scikit-learn adapter: :class:`SklearnTarget`, a black-box target with scores and labels."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from mlarmor._validation import check_bounds, check_num_classes
from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.targets._common import (
    AdapterBase,
    as_batch,
    check_input_shape,
    fmt_shape,
    no_scores,
    softmax,
)
from mlarmor.targets.base import Capability

__all__ = ["SklearnTarget", "has_logits", "sklearn_logits"]

_OWNER = "SklearnTarget"


class SklearnTarget(AdapterBase):
    """A fitted scikit-learn classifier (or pipeline) with class scores and labels.

    Scores come from ``predict_proba`` or, when the estimator has none, from the softmax of
    ``decision_function`` (a binary ``decision_function`` ``d`` becomes the two columns
    ``(-d/2, d/2)``, so the probability of the positive class is ``sigmoid(d)``). Labels are the
    indices ``0..C-1`` of the estimator's ``classes_``, whatever the original labels were.

    Args:
        estimator: A fitted classifier with ``predict`` and ``classes_``.
        bounds: Valid input range ``(low, high)``.
        num_classes: Number of classes; inferred as ``len(estimator.classes_)`` and checked against it.
        input_shape: Shape of one input when it differs from the estimator's flat feature vector,
            e.g. ``(1, 8, 8)`` for images: inputs are checked against it and flattened to
            ``(n, features)`` before the estimator sees them. Defaults to ``(n_features_in_,)``.
        name: Human-readable identification; defaults to the estimator's class name.

    Raises:
        InvalidParameterError: A parameter is out of its domain.
        UnsupportedModelError: The estimator is not a fitted single-output classifier.

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> from sklearn.linear_model import LogisticRegression
        >>> from mlarmor.targets import SklearnTarget
        >>> x, y = load_breast_cancer(return_X_y=True)
        >>> x = (x - x.min(0)) / (x.max(0) - x.min(0))
        >>> target = SklearnTarget(LogisticRegression().fit(x, y), bounds=(0.0, 1.0))
        >>> target.num_classes, target.input_shape, sorted(target.capabilities)
        (2, (30,), ['labels', 'scores'])
    """

    def __init__(
        self,
        estimator: Any,
        *,
        bounds: tuple[float, float] | Sequence[float],
        num_classes: int | None = None,
        input_shape: tuple[int, ...] | None = None,
        name: str | None = None,
    ) -> None:
        self._bounds = check_bounds(bounds, _OWNER)
        given_classes = check_num_classes(num_classes, _OWNER)
        shape = check_input_shape(input_shape, _OWNER)
        self._name = name or type(estimator).__name__
        if not callable(getattr(estimator, "predict", None)):
            raise UnsupportedModelError(
                f"SklearnTarget wraps a fitted scikit-learn classifier with a 'predict' method. "
                f"Got {type(estimator).__name__} instead."
            )
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            raise UnsupportedModelError(
                f"{self._name} has no 'classes_': it is not a fitted classifier. Fit it first "
                "(a regressor or a clusterer cannot be assessed as a classifier)."
            )
        classes = np.asarray(classes)
        if classes.ndim != 1 or (classes.dtype == object and any(isinstance(c, np.ndarray) for c in classes)):
            raise UnsupportedModelError(
                f"{self._name} is a multi-output classifier; only single-output classifiers are supported."
            )
        if classes.size < 2:
            raise UnsupportedModelError(
                f"{self._name} was fitted on {classes.size} class; it needs two or more."
            )
        if given_classes is not None and given_classes != classes.size:
            raise InvalidParameterError(
                f"The 'num_classes' parameter of {_OWNER} is {given_classes}, but {self._name} was fitted "
                f"on {classes.size} classes {classes.tolist()[:20]}. Pass num_classes={classes.size} "
                "or omit it."
            )
        self._classes = classes
        self._lookup = {c: i for i, c in enumerate(classes.tolist())}
        n_features = getattr(estimator, "n_features_in_", None)
        if shape is None and isinstance(n_features, int | np.integer):
            shape = (int(n_features),)
        elif (
            shape is not None and isinstance(n_features, int | np.integer) and math.prod(shape) != n_features
        ):
            raise InvalidParameterError(
                f"The 'input_shape' parameter of {_OWNER} must hold {int(n_features)} values in all (the "
                f"estimator's n_features_in_). Got {shape} ({math.prod(shape)} values) instead."
            )
        self._input_shape = shape
        self._estimator = estimator
        self._source: Literal["predict_proba", "decision_function"] | None
        if hasattr(estimator, "predict_proba"):
            self._source = "predict_proba"
        elif hasattr(estimator, "decision_function"):
            self._source = "decision_function"
        else:
            self._source = None
        self._queries = 0

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Scores and labels; labels only for an estimator without predict_proba or decision_function."""
        return frozenset(("scores", "labels")) if self._source else frozenset(("labels",))

    @property
    def num_classes(self) -> int:
        """``len(estimator.classes_)``."""
        return int(self._classes.size)

    @property
    def class_labels(self) -> tuple[str, ...]:
        """The estimator's ``classes_`` as strings, in the order of its output columns."""
        return tuple(str(c) for c in self._classes.tolist())

    @property
    def estimator(self) -> Any:
        """The wrapped estimator."""
        return self._estimator

    @property
    def classes(self) -> np.ndarray:
        """The estimator's original class labels; label ``i`` of this target is ``classes[i]``."""
        return self._classes.copy()

    @property
    def scores_source(self) -> Literal["predict_proba", "decision_function"] | None:
        """Where :meth:`predict_proba` gets its scores from (``None``: labels only)."""
        return self._source

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels ``(n,)``, int64 indices into :attr:`classes`."""
        flat = self._prepare(x)
        if flat.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        raw = np.asarray(self._call("predict", flat)).reshape(-1)
        try:
            return np.fromiter((self._lookup[v] for v in raw.tolist()), dtype=np.int64, count=raw.size)
        except KeyError as e:
            raise UnsupportedModelError(
                f"{self._name}.predict returned the label {e.args[0]!r}, which is not in its classes_ "
                f"{self._classes.tolist()[:20]}."
            ) from None

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, num_classes)``, float64, columns in :attr:`classes` order."""
        if self._source is None:
            raise no_scores(self._name)
        flat = self._prepare(x)
        if flat.shape[0] == 0:
            return np.zeros((0, self.num_classes))
        raw = np.asarray(self._call(self._source, flat), dtype=np.float64)
        if self._source == "decision_function":
            if raw.ndim == 1 or raw.shape[1:] == (1,):
                d = raw.reshape(-1, 1)
                raw = np.concatenate([-d / 2, d / 2], axis=1)
            raw = softmax(raw)
        if raw.shape != (flat.shape[0], self.num_classes):
            raise UnsupportedModelError(
                f"{self._name}.{self._source} returned shape {fmt_shape(raw.shape)} for {flat.shape[0]} "
                f"inputs; expected ({flat.shape[0]}, {self.num_classes})."
            )
        return raw

    def __repr__(self) -> str:
        return (
            f"SklearnTarget(name={self._name!r}, bounds={self._bounds}, num_classes={self.num_classes}, "
            f"input_shape={self._input_shape})"
        )

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        arr = as_batch(x, self._input_shape, _OWNER)
        return arr.reshape(arr.shape[0], -1) if arr.ndim > 2 else arr

    def _call(self, method: str, flat: np.ndarray) -> Any:
        try:
            out = getattr(self._estimator, method)(flat)
        except ValueError as e:
            raise InvalidParameterError(
                f"{self._name}.{method} rejected inputs of shape {fmt_shape(flat.shape)}: {e}"
            ) from e
        self._queries += int(flat.shape[0])
        return out


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a,
    "relu": lambda a: np.maximum(a, 0.0),
    "tanh": np.tanh,
    "logistic": lambda a: 1.0 / (1.0 + np.exp(-a)),
}


_LINEAR = ("LogisticRegression", "LogisticRegressionCV", "SGDClassifier", "RidgeClassifier")


def has_logits(estimator: Any) -> bool:
    """Whether :func:`sklearn_logits` can compute this (fitted or unfitted) estimator's logits."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        estimator = steps[-1][1]
    name = type(estimator).__name__
    if name == "MLPClassifier":
        return getattr(estimator, "activation", "") in _ACTIVATIONS
    if name == "SGDClassifier":
        return getattr(estimator, "loss", "") in ("log_loss", "modified_huber")
    return name in _LINEAR


def sklearn_logits(estimator: Any, x: np.ndarray) -> np.ndarray | None:
    """The pre-softmax scores ``(n, C)`` float64 of a fitted scikit-learn classifier, where it has them.

    Probabilities saturate: a model that is sure of itself returns ``p_y = 1.0`` exactly in float64,
    which erases the differences membership attacks read. The logits do not. Supported:
    ``MLPClassifier`` (its forward pass recomputed from ``coefs_`` and ``intercepts_`` up to the
    output layer), linear classifiers with ``decision_function`` over several classes
    (``LogisticRegression`` and friends; a binary decision ``d`` becomes ``[0, d]``), and a
    ``Pipeline`` ending in either. Anything else returns ``None`` (use the probabilities).

    Args:
        estimator: A fitted classifier.
        x: Rows ``(n, features)`` as the estimator takes them.
    """
    rows = np.asarray(x, dtype=np.float64)
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        for _, transform in steps[:-1]:
            if transform is None or transform == "passthrough":
                continue
            rows = np.asarray(transform.transform(rows), dtype=np.float64)
        estimator = steps[-1][1]
    name = type(estimator).__name__
    if name == "MLPClassifier" and hasattr(estimator, "coefs_"):
        act = _ACTIVATIONS.get(getattr(estimator, "activation", ""))
        if act is None:
            return None
        a = rows
        last = len(estimator.coefs_) - 1
        for i, (w, b) in enumerate(zip(estimator.coefs_, estimator.intercepts_, strict=True)):
            a = a @ w + b
            if i < last:
                a = act(a)
        if a.shape[1] == 1:  # binary: one logistic output unit
            a = np.concatenate([np.zeros_like(a), a], axis=1)
        return a
    if has_logits(estimator) and hasattr(estimator, "decision_function"):
        d = np.asarray(estimator.decision_function(rows), dtype=np.float64)
        if d.ndim == 1:
            d = np.stack([np.zeros_like(d), d], axis=1)
        return d
    return None
