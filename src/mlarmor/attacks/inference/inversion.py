"""Model inversion: reconstruct a representative input of each class from a white-box model.

:func:`invert_classes` optimises one input per class so that the target is as sure as it can be of
that class, under smoothness priors, starting from a neutral image: what comes out is what the model
has learned a class *looks like*. When the classes are people (a face recogniser) or a sensitive
attribute, that picture is itself a disclosure of the training data (Fredrikson, Jha and Ristenpart
2015). The reconstructions are scored against real data: :func:`class_mean_similarity` measures how
close each one is to the mean of its class, relative to the mean of all classes.

Example:
    >>> from mlarmor.data import load_dataset
    >>> from mlarmor.models import digits_mlp, fit_classifier
    >>> from mlarmor.targets import TorchTarget
    >>> digits = load_dataset("demo:digits")
    >>> model = fit_classifier(digits_mlp(seed=0), digits.x, digits.y, epochs=10, lr=1e-2)
    >>> target = TorchTarget(model, bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    >>> result = invert_classes(target, steps=100, reference=digits)
    >>> result.images.shape, result.mean_similarity > result.baseline_similarity
    ((10, 1, 8, 8), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from mlarmor._validation import check_float, check_int, check_positive, describe
from mlarmor.attacks._checks import check_data
from mlarmor.errors import InvalidParameterError, UnsupportedModelError, invalid_parameter
from mlarmor.targets.base import Differentiable, Target

if TYPE_CHECKING:
    from mlarmor.data import Dataset

__all__ = ["InversionResult", "Objective", "class_mean_similarity", "invert_classes"]

Objective = Literal["logit", "log-prob"]
"""What is maximised per class: the class logit (default) or its log-probability."""

_OWNER = "invert_classes"
_OBJECTIVES: tuple[Objective, ...] = ("logit", "log-prob")
# Standard deviation of the start in the unconstrained space: sigmoid'(0) = 1/4, so the start is
# mid-range plus noise of about 2.5 % of the input range.
_START_NOISE = 0.1


@dataclass(frozen=True)
class InversionResult:
    """Reconstructed class representatives and how much they resemble the real classes.

    Arrays are read-only. Similarities are cosines in ``[-1, 1]`` of images centred on the mean of
    the reference data (see :func:`class_mean_similarity`); they are NaN (and ``most_similar`` is -1)
    when no reference data was given, or none of that class.

    Attributes:
        classes: The inverted classes ``(K,)``, int64.
        images: One reconstruction per class ``(K, *input_shape)``, float32, within the target's bounds.
        confidence: The target's probability of each class for its reconstruction ``(K,)``.
        similarity: Centred cosine similarity of each reconstruction to the mean of its class ``(K,)``.
        most_similar: The class whose mean each reconstruction is most similar to ``(K,)``, int64.
        mean_similarity: Mean of ``similarity`` over the classes with reference data (NaN if none).
        baseline_similarity: The same mean for a neutral image, the constant mid-range input: what a
            reconstruction scores without having learned anything from the model.
        steps: Optimisation steps per class.
        queries: Inputs sent to the target (``K`` per step, plus ``K`` to measure the confidence).
        objective: What was maximised: ``"logit"`` or ``"log-prob"``.
    """

    classes: np.ndarray
    images: np.ndarray
    confidence: np.ndarray
    similarity: np.ndarray
    most_similar: np.ndarray
    mean_similarity: float
    baseline_similarity: float
    steps: int
    queries: int
    objective: Objective

    def __post_init__(self) -> None:
        for name in ("classes", "images", "confidence", "similarity", "most_similar"):
            getattr(self, name).setflags(write=False)

    @property
    def identifiable(self) -> np.ndarray:
        """Whether each reconstruction is closest to the mean of its own class ``(K,)``, bool."""
        result: np.ndarray = self.most_similar == self.classes
        return result

    @property
    def identifiable_rate(self) -> float:
        """Fraction of the classes with reference data whose reconstruction is identifiable (NaN if none)."""
        scored = ~np.isnan(self.similarity)
        return float(self.identifiable[scored].mean()) if scored.any() else math.nan

    @property
    def similarity_gain(self) -> float:
        """``mean_similarity - baseline_similarity``: how much better than a neutral image."""
        return self.mean_similarity - self.baseline_similarity

    def to_dict(self, *, images: bool = True) -> dict[str, Any]:
        """JSON-ready summary; NaN becomes ``None``.

        Args:
            images: Include the reconstructions as nested lists rounded to 4 decimals; without them
                ``images_omitted`` is true (the shape is always given).
        """
        out: dict[str, Any] = {
            "objective": self.objective,
            "steps": self.steps,
            "queries": self.queries,
            "classes": self.classes.tolist(),
            "image_shape": list(self.images.shape[1:]),
            "confidence": [_finite(v) for v in self.confidence.tolist()],
            "similarity": [_finite(v) for v in self.similarity.tolist()],
            "most_similar": [None if v < 0 else v for v in self.most_similar.tolist()],
            "identifiable": self.identifiable.tolist(),
            "identifiable_rate": _finite(self.identifiable_rate),
            "mean_similarity": _finite(self.mean_similarity),
            "baseline_similarity": _finite(self.baseline_similarity),
            "images_omitted": not images,
        }
        if images:
            out["images"] = np.round(self.images.astype(np.float64), 4).tolist()
        return out


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def _as_differentiable(target: object) -> Differentiable:
    if not isinstance(target, Target):
        raise invalid_parameter(
            "target",
            _OWNER,
            "a model adapter implementing mlarmor.targets.Target (bounds, num_classes, predict, ...)",
            describe(type(target).__name__),
        )
    capabilities: frozenset[str] = frozenset(getattr(target, "capabilities", ()))
    if "gradients" in capabilities and isinstance(target, Differentiable):
        return target
    if "gradients" in capabilities:
        gap = "declares it but does not implement the Differentiable protocol (device, logits). "
    else:
        gap = "offers only: " + (", ".join(sorted(capabilities)) or "nothing") + ". "
    raise UnsupportedModelError(
        f"{_OWNER} needs the 'gradients' capability (white-box: a differentiable PyTorch model), but "
        f"the target {target.name!r} {gap}Model inversion follows the gradient of the target's output "
        "with respect to its input; load the model through the PyTorch adapter (TorchTarget) to run it."
    )


def _check_classes(classes: Sequence[int] | None, num_classes: int) -> np.ndarray:
    expected = f"a non-empty sequence of distinct ints in [0, {num_classes}) or None"
    if classes is None:
        return np.arange(num_classes, dtype=np.int64)
    if isinstance(classes, str | bytes) or not isinstance(classes, Sequence | np.ndarray):
        raise invalid_parameter("classes", _OWNER, expected, classes)
    values = list(classes)
    if (
        not values
        or any(isinstance(c, bool) or not isinstance(c, Integral) for c in values)
        or any(not 0 <= int(c) < num_classes for c in values)
        or len(set(int(c) for c in values)) != len(values)
    ):
        raise invalid_parameter("classes", _OWNER, expected, classes)
    return np.asarray([int(c) for c in values], dtype=np.int64)


def _reference_arrays(
    target: Target, reference: Dataset | tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray] | None:
    if reference is None:
        return None
    if isinstance(reference, tuple) and len(reference) == 2:
        x, y = reference
    elif hasattr(reference, "x") and hasattr(reference, "y"):
        x, y = reference.x, reference.y
    else:
        raise invalid_parameter(
            "reference",
            _OWNER,
            "a Dataset, a pair (x, y) of arrays or None",
            describe(type(reference).__name__),
        )
    return check_data(_OWNER, target, x, y)


def _input_shape(target: Target, reference: tuple[np.ndarray, np.ndarray] | None) -> tuple[int, ...]:
    if target.input_shape is not None:
        return tuple(target.input_shape)
    if reference is not None:
        return tuple(reference[0].shape[1:])
    raise InvalidParameterError(
        f"{_OWNER} needs the shape of one input, but the target {target.name!r} does not state it. "
        "Give the adapter input_shape=(...), or pass reference data to take it from."
    )


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring values along the last two axes, per sample."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1).mean(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).pow(2).flatten(1).mean(1)
    return dh + dw


def _class_scores(
    target: Differentiable, x: torch.Tensor, classes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logit and the log-probability of ``classes[i]`` for input ``x[i]``.

    A model that returns probabilities hides its logits ``z``; ``log p`` gives them back up to a
    constant per input, so the logit score is the centred ``log p_c - mean_k log p_k = z_c - mean_k z_k``.
    """
    out = target.logits(x)
    rows = torch.arange(len(classes), device=out.device)
    if getattr(target, "outputs_probabilities", False):
        log_p = out.clamp_min(1e-30).log()
        centred = log_p - log_p.mean(dim=1, keepdim=True)
        return centred[rows, classes], log_p[rows, classes]
    return out[rows, classes], torch.log_softmax(out, dim=1)[rows, classes]


def _optimise(
    target: Differentiable,
    start: torch.Tensor,
    classes: torch.Tensor,
    *,
    steps: int,
    lr: float,
    tv_weight: float,
    l2_weight: float,
    objective: Objective,
) -> torch.Tensor:
    """Adam on the unconstrained ``w`` with ``x = low + (high - low) * sigmoid(w)``; returns final ``x``."""
    low, high = target.bounds
    span = high - low
    w = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=lr)
    spatial = w.dim() >= 3  # (K, H, W) or (K, C, H, W): neighbouring values along the last two axes
    which = 0 if objective == "logit" else 1
    for _ in range(steps):
        unit = torch.sigmoid(w)  # the input rescaled to [0, 1]: the priors do not depend on the bounds
        score = _class_scores(target, low + span * unit, classes)[which]
        loss = -score + l2_weight * (unit - 0.5).pow(2).flatten(1).mean(1)
        if spatial and tv_weight > 0:
            loss = loss + tv_weight * _total_variation(unit)
        # Only w's gradient: the model's parameters keep their .grad untouched.
        (grad,) = torch.autograd.grad(loss.sum(), [w])
        w.grad = grad
        optimizer.step()
    with torch.no_grad():
        return (low + span * torch.sigmoid(w)).clamp_(low, high)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine ``(len(a), len(b))`` of rows; 0 where either row is zero."""
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a @ b.T) / (na * nb.T)
    result: np.ndarray = np.clip(np.nan_to_num(cos, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
    return result


def class_mean_similarity(
    images: np.ndarray, classes: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Centred cosine similarity of each image to the real mean of its class, and the closest class.

    With ``m`` the mean of all of ``x`` and ``mu_c`` the mean of the rows of class ``c``, image ``i``
    scores ``cos(images[i] - m, mu_{classes[i]} - m)``. Subtracting ``m`` first keeps an image that
    merely "looks like the average input" from scoring high for every class: only what sets a class
    apart from the others counts. A zero vector scores 0.

    Args:
        images: Reconstructions ``(K, ...)``, one per entry of ``classes``.
        classes: The class of each image ``(K,)``.
        x: Real inputs ``(n, ...)``, the same shape per row as ``images``.
        y: Their labels ``(n,)``.

    Returns:
        ``(similarity, most_similar)``: ``(K,)`` floats, NaN for a class absent from ``y``, and
        ``(K,)`` the class (among those in ``y``) whose centred mean each image is most similar to.
    """
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    imgs = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    labels = np.asarray(y)
    overall = flat.mean(axis=0)
    present = np.unique(labels)
    means = np.stack([flat[labels == c].mean(axis=0) for c in present]) - overall
    cos = _cosine(imgs - overall, means)
    column = {int(c): j for j, c in enumerate(present)}
    similarity = np.array(
        [cos[i, column[int(c)]] if int(c) in column else math.nan for i, c in enumerate(classes)]
    )
    most_similar = present[cos.argmax(axis=1)].astype(np.int64)
    return similarity, most_similar


def invert_classes(
    target: Differentiable,
    *,
    classes: Sequence[int] | None = None,
    steps: int = 300,
    lr: float = 0.1,
    tv_weight: float = 30.0,
    l2_weight: float = 10.0,
    objective: Objective = "logit",
    seed: int = 0,
    batch_size: int | None = None,
    reference: Dataset | tuple[np.ndarray, np.ndarray] | None = None,
) -> InversionResult:
    """Reconstruct one representative input per class by gradient ascent on the target's confidence.

    For each class ``c`` the input is parametrised as ``x = low + (high - low) * sigmoid(w)``, so it
    always stays inside the target's bounds, and ``w`` starts at small seeded noise (``x`` at
    mid-range plus about 2.5 % of the range). Adam then maximises

        ``score_c(x) - tv_weight * TV(u) - l2_weight * mean((u - 1/2)^2)``,  ``u = (x - low) / (high - low)``

    where ``score_c`` is the class logit (``objective="logit"``) or its log-probability
    (``"log-prob"``), ``TV`` the mean squared difference of neighbouring values along the last two
    axes (images; skipped for 1-D inputs) and the L2 term pulls towards the neutral mid-range input.
    The logit is the default: the log-probability saturates as soon as the class wins, so the image
    stops moving close to its neutral start, while the logit keeps adding class evidence until the
    priors balance it (the class-model visualisation of Simonyan, Vedaldi and Zisserman 2014). For a
    model whose forward pass returns probabilities the logit is taken as ``log p_c - mean_k log p_k``
    (the logit up to a constant per input). All classes run as one batch, or in chunks of
    ``batch_size``: Adam works per coordinate, so the results are the same up to float rounding.

    With ``reference`` data the reconstructions are scored by :func:`class_mean_similarity`, and the
    same score is computed for the neutral mid-range input as a baseline.

    Args:
        target: A white-box target (capability ``"gradients"``).
        classes: Classes to invert (default: all).
        steps: Adam steps, at least 1.
        lr: Adam's learning rate in the unconstrained space, > 0.
        tv_weight: Weight of the total-variation prior, >= 0.
        l2_weight: Weight of the L2 prior towards the mid-range input, >= 0.
        objective: ``"logit"`` or ``"log-prob"``.
        seed: Seed of the start (a ``torch.Generator``; the global random state is not used).
        batch_size: Classes optimised together (default: all of them).
        reference: Real data ``(x, y)`` or a :class:`~mlarmor.data.Dataset` to score against; within
            the target's bounds, with the target's input shape.

    Returns:
        The :class:`InversionResult`.

    Raises:
        UnsupportedModelError: The target does not offer gradients.
        InvalidParameterError: A parameter is out of its domain, the reference data does not fit the
            target, or the input shape is unknown (neither the target nor ``reference`` gives it).

    Threat model:
        MITRE ATLAS AML.T0024.001 (Invert ML Model), OWASP ML03 (Model Inversion). The attacker has
        white-box access to the trained model (weights or gradients) but none of its training data,
        and learns what a typical member of each class looks like: for a model whose classes are
        individuals or sensitive groups, a recognisable likeness. The reference data is used only to
        measure the attack, never by it.

    Reference:
        Fredrikson, Jha and Ristenpart, "Model Inversion Attacks that Exploit Confidence Information
        and Basic Countermeasures", CCS 2015, https://doi.org/10.1145/2810103.2813677. Priors as in
        Mahendran and Vedaldi, "Understanding Deep Image Representations by Inverting Them", CVPR 2015.
    """
    differentiable = _as_differentiable(target)
    wanted = _check_classes(classes, differentiable.num_classes)
    steps = check_int(steps, "steps", _OWNER)
    lr = check_positive(lr, "lr", _OWNER)
    tv_weight = check_float(tv_weight, "tv_weight", _OWNER, low=0.0)
    l2_weight = check_float(l2_weight, "l2_weight", _OWNER, low=0.0)
    if objective not in _OBJECTIVES:
        raise invalid_parameter("objective", _OWNER, "one of 'logit', 'log-prob'", objective)
    seed = check_int(seed, "seed", _OWNER, low=0)
    chunk = len(wanted) if batch_size is None else check_int(batch_size, "batch_size", _OWNER)
    ref = _reference_arrays(differentiable, reference)
    shape = _input_shape(differentiable, ref)

    device = differentiable.device
    start = _START_NOISE * torch.randn(
        (len(wanted), *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float32
    )
    first_query = differentiable.queries
    parts, confidence = [], []
    for lo in range(0, len(wanted), chunk):
        cls = torch.as_tensor(wanted[lo : lo + chunk], device=device)
        x = _optimise(
            differentiable,
            start[lo : lo + chunk].to(device),
            cls,
            steps=steps,
            lr=lr,
            tv_weight=tv_weight,
            l2_weight=l2_weight,
            objective=objective,
        )
        with torch.no_grad():
            log_p = _class_scores(differentiable, x, cls)[1]
        parts.append(x.detach().float().cpu().numpy())
        confidence.append(log_p.exp().double().cpu().numpy())
    images = np.concatenate(parts).astype(np.float32)
    low, high = differentiable.bounds

    similarity = np.full(len(wanted), math.nan)
    most_similar = np.full(len(wanted), -1, dtype=np.int64)
    mean_similarity = baseline = math.nan
    if ref is not None:
        similarity, most_similar = class_mean_similarity(images, wanted, *ref)
        neutral = np.full((len(wanted), *shape), (low + high) / 2)
        neutral_similarity, _ = class_mean_similarity(neutral, wanted, *ref)
        if not np.isnan(similarity).all():
            mean_similarity = float(np.nanmean(similarity))
            baseline = float(np.nanmean(neutral_similarity))
    return InversionResult(
        classes=wanted,
        images=images,
        confidence=np.concatenate(confidence),
        similarity=similarity,
        most_similar=most_similar,
        mean_similarity=mean_similarity,
        baseline_similarity=baseline,
        steps=steps,
        queries=differentiable.queries - first_query,
        objective=objective,
    )
