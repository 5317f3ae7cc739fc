"""Input checks and small statistics shared by the fitted detectors (feature squeezing, STRIP).

Each check takes the owner's name, so the message reads as the owner's own:
``The 'x' parameter of STRIP must be ... Got ... instead.``
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlarmor._validation import describe
from mlarmor.attacks.inference.metrics import auc
from mlarmor.errors import InvalidParameterError, UnsupportedModelError, invalid_parameter
from mlarmor.targets.base import Target

__all__ = [
    "bad_dict",
    "check_batch",
    "check_same_model",
    "check_scores_target",
    "fitted_target",
    "mann_whitney_auc",
    "read_payload",
]


def mann_whitney_auc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """ROC AUC of ``positives`` against ``negatives``, higher scores meaning positive.

    The Mann-Whitney U statistic over ``n_pos * n_neg`` (ties count one half), computed by the one
    AUC of mlarmor, :func:`mlarmor.attacks.inference.metrics.auc`.
    """
    scores = np.concatenate([np.ravel(negatives), np.ravel(positives)])
    positive = np.r_[np.zeros(np.size(negatives), dtype=bool), np.ones(np.size(positives), dtype=bool)]
    return auc(scores, positive)


def bad_dict(owner: str, expected: str, got: object) -> InvalidParameterError:
    """The error for a ``from_dict`` payload that is not what ``to_dict`` wrote."""
    return InvalidParameterError(
        f"The 'data' parameter of {owner}.from_dict must hold {expected} (what to_dict returns). "
        f"Got {got!r} instead."
    )


def check_scores_target(target: object, owner: str, why: str) -> Target:
    """``target`` as a :class:`Target` offering scores; ``why`` says what the owner does with them."""
    if not isinstance(target, Target):
        raise invalid_parameter(
            "target",
            owner,
            "a model adapter implementing mlarmor.targets.Target (bounds, num_classes, predict_proba, ...)",
            describe(type(target).__name__),
        )
    offered = sorted(c for c in target.capabilities if c in ("gradients", "scores", "labels"))
    if "scores" not in offered:
        raise UnsupportedModelError(
            f"{owner} needs the 'scores' capability (class probabilities or logits for any input), but "
            f"the target {target.name!r} offers only: {', '.join(offered) or 'nothing'}. {why}; expose "
            "the model's scores (a scikit-learn estimator with predict_proba or decision_function, a "
            "PyTorch or ONNX model, an endpoint that returns probabilities)."
        )
    return target


def check_batch(
    x: object, name: str, owner: str, input_shape: tuple[int, ...] | None, bounds: tuple[float, float]
) -> np.ndarray:
    """Return ``x`` as a non-empty, finite, numeric batch ``(n, *input_shape)`` inside ``bounds``."""
    try:
        xs = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise invalid_parameter(name, owner, "a numeric array", describe(type(x).__name__)) from e
    if xs.dtype.kind not in "fiu":
        raise invalid_parameter(
            name, owner, "a numeric (float or integer) array", describe(f"dtype {xs.dtype}")
        )
    expected = "(n, " + ", ".join(map(str, input_shape)) + ")" if input_shape else "(n, *input_shape)"
    if xs.ndim < 2 or xs.shape[0] == 0 or (input_shape is not None and xs.shape[1:] != input_shape):
        raise invalid_parameter(
            name,
            owner,
            f"a non-empty batch of shape {expected} (reshape a single input with x[None])",
            describe(f"shape {xs.shape}"),
        )
    if not np.all(np.isfinite(xs)):
        raise invalid_parameter(name, owner, "finite (no NaN or inf)", describe("non-finite values"))
    low, high = bounds
    x_min, x_max = float(xs.min()), float(xs.max())
    if x_min < low or x_max > high:
        raise invalid_parameter(
            name,
            owner,
            f"within the target's bounds [{low:g}, {high:g}] (rescale the data or fix the bounds)",
            describe(f"values in [{x_min:g}, {x_max:g}]"),
        )
    return xs


def read_payload(
    data: object, owner: str, version: int, params: tuple[str, ...]
) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """The ``params`` and ``fitted`` parts of a ``to_dict`` payload, after checking its envelope."""
    if not isinstance(data, Mapping) or data.get("detector") != owner:
        raise bad_dict(owner, f"a mapping with 'detector': '{owner}'", data)
    if data.get("version") != version:
        raise bad_dict(owner, f"version {version}", data.get("version"))
    saved, fitted = data.get("params"), data.get("fitted")
    if not isinstance(saved, Mapping) or set(saved) != set(params):
        raise bad_dict(owner, f"'params' with the constructor's {len(params)} parameters", saved)
    if fitted is not None and not isinstance(fitted, Mapping):
        raise bad_dict(owner, "'fitted' as a mapping or None", fitted)
    return saved, fitted


def fitted_target(target: object, owner: str, why: str) -> Target:
    """The target a fitted detector is rebuilt with: required, and offering scores."""
    if target is None:
        raise InvalidParameterError(
            f"The 'target' parameter of {owner}.from_dict is required for a fitted detector: it needs the "
            "target the detector was fitted with; pass from_dict(data, target)."
        )
    return check_scores_target(target, owner, why)


def check_same_model(
    target: Target, bounds: tuple[float, ...], num_classes: int, shape: tuple[int, ...]
) -> None:
    """Refuse a target whose bounds, classes or input shape differ from those a detector was fitted on."""
    known = target.input_shape
    now = tuple(float(b) for b in target.bounds)
    if (tuple(bounds), num_classes) != (now, target.num_classes) or (
        known is not None and tuple(known) != shape
    ):
        raise InvalidParameterError(
            f"The detector was fitted on a model with bounds {tuple(bounds)}, {num_classes} classes and "
            f"inputs of shape {shape}; target {target.name!r} has bounds {now}, {target.num_classes} classes "
            f"and input shape {known}. Pass the model it was fitted with, or fit a new detector."
        )
