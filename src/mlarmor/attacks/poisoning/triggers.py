"""Poisoning simulators: label flips and dirty-label backdoors with BadNets, blended and WaNet triggers.

Everything here is numpy in, numpy out: the arrays given are never changed in place and every random
choice is drawn from ``np.random.default_rng(seed)``, so a run is reproduced by its seed. Image
triggers take ``(n, C, H, W)`` or ``(n, H, W)`` inputs whose values lie in ``bounds``, and keep them
there.

Typical use: poison a training set, train on it, then measure how often the trigger takes a clean
test input to the target class::

    p = poison(x_train, y_train, trigger="badnets", fraction=0.1, target_class=0)
    model = train(p.x, p.y)
    asr = attack_success_rate(predict, x_test, y_test, trigger=p.trigger, target_class=0, **p.params)

Threat model: the attacker controls a share of the training rows (their inputs and labels) but not
the training procedure; at test time they may add the trigger to any input (MITRE ATLAS AML.T0020,
OWASP ML02 data poisoning; OWASP ML10 for the planted backdoor).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mlarmor._validation import (
    check_bounds,
    check_choice,
    check_float,
    check_fraction,
    check_int,
    check_seed,
)
from mlarmor.errors import invalid_parameter

__all__ = [
    "Poisoned",
    "Position",
    "Trigger",
    "apply_trigger",
    "attack_success_rate",
    "blend_trigger",
    "flip_labels",
    "patch_trigger",
    "poison",
    "poisoned_count",
    "warp_field",
    "warp_trigger",
]

Trigger = Literal["badnets", "blend", "warp"]
Position = Literal["bottom-right", "bottom-left", "top-right", "top-left"]
_TRIGGERS: tuple[str, ...] = ("badnets", "blend", "warp")
_POSITIONS: tuple[str, ...] = ("bottom-right", "bottom-left", "top-right", "top-left")
_PATTERNS: tuple[str, ...] = ("checkerboard", "solid")

Bounds = tuple[float, float]


@dataclass(frozen=True, eq=False)
class Poisoned:
    """A poisoned copy of a dataset.

    Attributes:
        x: The inputs, with the trigger applied to the poisoned rows (unchanged by label flips).
        y: The labels, changed on the poisoned rows.
        poisoned: Boolean mask ``(n,)`` of the rows that were changed.
        target_class: The class the poisoned rows were relabelled to, or ``None`` for random flips.
        trigger: ``"badnets"``, ``"blend"``, ``"warp"``, or ``"label-flip"``.
        params: For a backdoor, the keywords that rebuild the same trigger:
            ``apply_trigger(x, p.trigger, **p.params)``. For label flips, the flip's parameters.
    """

    x: np.ndarray
    y: np.ndarray
    poisoned: np.ndarray
    target_class: int | None
    trigger: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_poisoned(self) -> int:
        """Number of rows changed."""
        return int(self.poisoned.sum())

    @property
    def poison_rate(self) -> float:
        """Share of all rows changed."""
        return float(self.poisoned.mean()) if self.poisoned.size else 0.0


# -- validation ---------------------------------------------------------------------------------


def _check_class(value: object, name: str, owner: str, num_classes: int) -> int:
    """A class index, in ``[0, num_classes)``."""
    return check_int(value, name, owner, low=0, high=num_classes - 1)


def _check_images(x: object, owner: str, bounds: Bounds) -> tuple[np.ndarray, tuple[int, ...]]:
    """Return a float copy of ``x`` as ``(n, C, H, W)`` and the original shape."""
    arr = np.asarray(x)
    if arr.ndim not in (3, 4) or arr.shape[-1] < 1 or arr.shape[-2] < 1:
        raise invalid_parameter(
            "x", owner, "images of shape (n, C, H, W) or (n, H, W)", f"an array of shape {arr.shape}"
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise invalid_parameter("x", owner, "a numeric array", f"dtype {arr.dtype}")
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
    out = np.array(arr, dtype=dtype, copy=True)
    if out.size and (not np.isfinite(out).all() or out.min() < bounds[0] or out.max() > bounds[1]):
        raise invalid_parameter(
            "x",
            owner,
            f"finite values within bounds {bounds}",
            f"values in [{float(np.nanmin(out))}, {float(np.nanmax(out))}]",
        )
    return (out[:, None] if out.ndim == 3 else out), arr.shape


def _check_labels(y: object, n: int, owner: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
        raise invalid_parameter(
            "y",
            owner,
            f"non-negative integer labels of shape ({n},)",
            f"shape {arr.shape}, dtype {arr.dtype}",
        )
    return np.array(arr, copy=True)


def poisoned_count(fraction: float, eligible: int, owner: str, *, what: str = "eligible rows") -> int:
    """How many of ``eligible`` rows ``fraction`` poisons: ``round(fraction * eligible)``, at least one.

    The one rule for every poisoning attack: a fraction that rounds to no row is refused, naming the
    fraction that poisons exactly one row of this data (``1 / eligible``, rounded up), rather than
    silently poisoning more rows than asked for (which would overstate the risk of that fraction).

    Raises:
        InvalidParameterError: When no row is eligible or ``fraction`` rounds to 0 rows.
    """
    k = round(fraction * eligible)
    if eligible < 1:
        raise invalid_parameter(
            "fraction", owner, f"a share of some {what}", fraction, hint=f"there are no {what} to poison"
        )
    if k < 1:
        raise invalid_parameter(
            "fraction",
            owner,
            f"large enough to poison one of the {eligible} {what}: {math.ceil(1e4 / eligible) / 1e4:g} "
            f"(1/{eligible}) or more",
            fraction,
            hint=f"{fraction:g} x {eligible} rounds to no row; give a larger fraction or more data",
        )
    return int(k)


def _choose(candidates: np.ndarray, fraction: float, rng: np.random.Generator, owner: str) -> np.ndarray:
    """Pick ``round(fraction * len(candidates))`` candidate row indices, sorted (:func:`poisoned_count`)."""
    k = poisoned_count(fraction, int(candidates.size), owner)
    return np.sort(rng.choice(candidates, size=k, replace=False))


# -- label flips --------------------------------------------------------------------------------


def flip_labels(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    fraction: float,
    num_classes: int,
    target_class: int | None = None,
    source_class: int | None = None,
    seed: int = 0,
) -> Poisoned:
    """Flip the labels of a share of the rows; the inputs are left as they are.

    The eligible rows are those of ``source_class`` (every row when it is ``None``), less those
    already of ``target_class``. Exactly ``round(fraction * eligible)`` of them, drawn without
    replacement, get ``target_class`` (targeted flip), or when it is ``None`` a class drawn uniformly
    from the ``num_classes - 1`` others (random flip).

    Args:
        x: Inputs ``(n, ...)``; copied into the result unchanged.
        y: Integer labels ``(n,)`` in ``[0, num_classes)``.
        fraction: Share of the eligible rows to flip, in ``(0, 1)``.
        num_classes: Number of classes, at least 2.
        target_class: The class to flip to, or ``None`` for random flips.
        source_class: Only flip rows of this class, or ``None`` for any class.
        seed: Seed of every random choice.

    Returns:
        A :class:`Poisoned` with ``trigger="label-flip"``.

    Raises:
        InvalidParameterError: For a ``fraction`` outside ``(0, 1)`` or too small to flip one row, a
            class out of range, labels of the wrong shape, or no eligible row.

    Reference:
        Biggio, Nelson & Laskov, "Poisoning Attacks against Support Vector Machines", ICML 2012,
        https://arxiv.org/abs/1206.6389 (label flipping as the baseline poisoning attack).

    Threat model:
        The attacker relabels a share of the training rows (noisy or malicious annotators).
    """
    owner = "flip_labels"
    frac = check_fraction(fraction, "fraction", owner)
    num_classes = check_int(num_classes, "num_classes", owner, low=2)
    target = None if target_class is None else _check_class(target_class, "target_class", owner, num_classes)
    source = None if source_class is None else _check_class(source_class, "source_class", owner, num_classes)
    if target is not None and source == target:
        raise invalid_parameter("source_class", owner, "a class other than target_class", source_class)
    rng = np.random.default_rng(check_seed(seed, owner))
    x_out = np.array(x, copy=True)
    labels = _check_labels(y, x_out.shape[0] if x_out.ndim else -1, owner)
    if labels.size and labels.max() >= num_classes:
        raise invalid_parameter("y", owner, f"labels in [0, {num_classes})", f"a label {int(labels.max())}")
    eligible = np.ones(labels.shape, dtype=bool)
    if source is not None:
        eligible &= labels == source
    if target is not None:
        eligible &= labels != target
    rows = _choose(np.flatnonzero(eligible), frac, rng, owner)
    if target is not None:
        labels[rows] = target
    else:
        # A shift in [1, C) modulo C is uniform over the other classes and never the same one.
        labels[rows] = (labels[rows] + rng.integers(1, num_classes, size=rows.size)) % num_classes
    mask = np.zeros(labels.shape, dtype=bool)
    mask[rows] = True
    params = {"fraction": frac, "num_classes": num_classes, "source_class": source, "seed": int(seed)}
    return Poisoned(
        x=x_out, y=labels, poisoned=mask, target_class=target, trigger="label-flip", params=params
    )


# -- triggers -----------------------------------------------------------------------------------


def patch_trigger(
    x: npt.ArrayLike,
    *,
    size: int = 2,
    value: float | None = None,
    position: Position = "bottom-right",
    pattern: Literal["checkerboard", "solid"] = "checkerboard",
    bounds: Bounds = (0.0, 1.0),
) -> np.ndarray:
    """Stamp a small square patch in a corner of every image, in every channel (BadNets).

    The patch covers ``size x size`` pixels at ``position``. ``"solid"`` sets them all to ``value``;
    ``"checkerboard"`` sets pixel ``(r, c)`` of the patch (counted from its top-left) to ``value``
    when ``r + c`` is even and to ``bounds[0]`` otherwise.

    Args:
        x: Images ``(n, C, H, W)`` or ``(n, H, W)`` within ``bounds``.
        size: Side of the patch in pixels, from 1 to the image's smaller side.
        value: Intensity of the lit pixels; defaults to ``bounds[1]``.
        position: The corner holding the patch.
        pattern: ``"checkerboard"`` or ``"solid"``.
        bounds: The input range ``(low, high)``.

    Returns:
        A triggered copy, same shape and dtype (integers become float64).

    Raises:
        InvalidParameterError: For non-image shapes, values outside ``bounds``, a patch larger than
            the image, or an unknown ``position`` or ``pattern``.

    Reference:
        Gu, Dolan-Gavitt & Garg, "BadNets: Identifying Vulnerabilities in the Machine Learning Model
        Supply Chain", 2017, https://arxiv.org/abs/1708.06733.

    Threat model:
        Dirty-label backdoor: the attacker stamps the patch on training rows it relabels, then on
        test inputs it wants sent to the target class.
    """
    owner = "patch_trigger"
    low, high = check_bounds(bounds, owner)
    imgs, shape = _check_images(x, owner, (low, high))
    check_choice(position, "position", owner, _POSITIONS)
    check_choice(pattern, "pattern", owner, _PATTERNS)
    h, w = imgs.shape[-2:]
    s = check_int(size, "size", owner, high=min(h, w), hint=f"the image is {h}x{w}")
    lit = high if value is None else check_float(value, "value", owner, low=low, high=high)
    patch = np.full((s, s), lit)
    if pattern == "checkerboard":
        r, c = np.indices((s, s))
        patch[(r + c) % 2 == 1] = low
    top = 0 if position.startswith("top") else h - s
    left = 0 if position.endswith("left") else w - s
    imgs[..., top : top + s, left : left + s] = patch
    return imgs.reshape(shape)


def blend_trigger(
    x: npt.ArrayLike,
    *,
    pattern: npt.ArrayLike | None = None,
    alpha: float = 0.2,
    seed: int = 0,
    bounds: Bounds = (0.0, 1.0),
) -> np.ndarray:
    """Blend a fixed pattern into every image: ``(1 - alpha) * x + alpha * pattern``.

    Args:
        x: Images ``(n, C, H, W)`` or ``(n, H, W)`` within ``bounds``.
        pattern: The key pattern, broadcastable to one image (``x.shape[1:]``) and within
            ``bounds``; defaults to uniform noise in ``bounds`` of one image's shape, drawn from
            ``seed`` (the same pattern for every row and every call with that seed).
        alpha: Blend ratio in ``(0, 1]``; 1 replaces the image by the pattern.
        seed: Seed of the default pattern.
        bounds: The input range ``(low, high)``.

    Returns:
        A triggered copy, same shape and dtype (integers become float64), within ``bounds``.

    Raises:
        InvalidParameterError: For non-image shapes, values outside ``bounds``, ``alpha`` outside
            ``(0, 1]``, or a pattern that does not fit.

    Reference:
        Chen, Liu, Li, Lu & Song, "Targeted Backdoor Attacks on Deep Learning Systems Using Data
        Poisoning", 2017, https://arxiv.org/abs/1712.05526 (the blended injection strategy).

    Threat model:
        Dirty-label backdoor with a faint, image-wide key instead of a visible patch.
    """
    owner = "blend_trigger"
    low, high = check_bounds(bounds, owner)
    _, shape = _check_images(x, owner, (low, high))
    arr = np.asarray(x)
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
    check_float(alpha, "alpha", owner, low=0.0, high=1.0, low_open=True)
    if pattern is None:
        key = np.random.default_rng(check_seed(seed, owner)).uniform(low, high, size=shape[1:])
    else:
        key = np.asarray(pattern, dtype=np.float64)
        try:
            np.broadcast_to(key, shape[1:])
        except ValueError as e:
            raise invalid_parameter(
                "pattern", owner, f"an array broadcastable to {shape[1:]}", f"shape {key.shape}"
            ) from e
        if not np.isfinite(key).all() or key.min() < low or key.max() > high:
            raise invalid_parameter(
                "pattern", owner, f"values within bounds [{low}, {high}]", "values outside them"
            )
    a = float(alpha)
    out = (1.0 - a) * arr.astype(np.float64) + a * key
    return np.clip(out, low, high).astype(dtype)


def _interp_matrix(k: int, n: int) -> np.ndarray:
    """Linear interpolation weights ``(n, k)`` from ``k`` evenly spread control points to ``n`` points.

    Both ends are aligned (``align_corners=True``): output 0 is control 0 and output ``n-1`` is
    control ``k-1``.
    """
    pos = np.linspace(0.0, k - 1.0, n) if n > 1 else np.zeros(1)
    lo = np.minimum(np.floor(pos).astype(int), k - 1)
    hi = np.minimum(lo + 1, k - 1)
    frac = pos - lo
    weights = np.zeros((n, k))
    np.add.at(weights, (np.arange(n), lo), 1.0 - frac)
    np.add.at(weights, (np.arange(n), hi), frac)
    return weights


def warp_field(height: int, width: int, *, strength: float = 0.5, grid: int = 4, seed: int = 0) -> np.ndarray:
    """The displacement field of :func:`warp_trigger`, in pixels: ``(2, height, width)`` (dy, dx).

    ``P`` is drawn uniformly from ``[-1, 1]^(2 x grid x grid)`` with ``seed`` and normalised to a mean
    absolute value of 1 (WaNet's ``psi``); each of its two planes is upsampled bilinearly to
    ``height x width`` with aligned corners, and the result is scaled by ``strength``.

    Args:
        height: Image height, at least 1.
        width: Image width, at least 1.
        strength: Scale of the shift, in pixels (about the mean shift before upsampling smooths it);
            ``0`` gives the identity.
        grid: Side ``k`` of the control grid, at least 2; smaller grids give smoother warps.
        seed: Seed of ``P``.

    Returns:
        The field ``(2, height, width)``, float64.

    Raises:
        InvalidParameterError: For a negative ``strength``, a ``grid`` below 2 or bad sizes.
    """
    owner = "warp_trigger"
    n_h, n_w = check_int(height, "height", owner), check_int(width, "width", owner)
    check_float(strength, "strength", owner, low=0.0)
    k = check_int(grid, "grid", owner, low=2)
    p = np.random.default_rng(check_seed(seed, owner)).uniform(-1.0, 1.0, size=(2, k, k))
    p /= np.mean(np.abs(p))
    a_h, a_w = _interp_matrix(k, n_h), _interp_matrix(k, n_w)
    up: np.ndarray = np.einsum("hk,ckl,wl->chw", a_h, p, a_w)
    return float(strength) * up


def warp_trigger(
    x: npt.ArrayLike,
    *,
    strength: float = 0.5,
    grid: int = 4,
    seed: int = 0,
    bounds: Bounds = (0.0, 1.0),
) -> np.ndarray:
    """Warp every image with one fixed, smooth random field (WaNet).

    With ``(dy, dx) = warp_field(H, W, strength=strength, grid=grid, seed=seed)``, output pixel
    ``(i, j)`` is the bilinear interpolation of the input at ``(clip(i + dy[i, j], 0, H - 1),
    clip(j + dx[i, j], 0, W - 1))`` in every channel. Bilinear sampling is a convex combination of
    input pixels, so the output stays within ``bounds``; ``strength=0`` returns an exact copy.

    WaNet writes the field in normalised coordinates, ``grid = identity + s * psi(up(psi(P))) / H``;
    here ``strength`` is in pixels instead, about ``s / 2`` in its terms, so one value means the
    same visible shift at any image size. The defaults (a 4x4 control grid, half a pixel) fit
    8x8 digits: the digit keeps its shape and class to the eye, while the shift is systematic
    enough for a network to learn.

    Args:
        x: Images ``(n, C, H, W)`` or ``(n, H, W)`` within ``bounds``.
        strength: Scale of the shift in pixels, at least 0.
        grid: Side of the control grid, at least 2.
        seed: Seed of the field (the same field for every row and every call with that seed).
        bounds: The input range ``(low, high)``.

    Returns:
        A warped copy, same shape and dtype (integers become float64).

    Raises:
        InvalidParameterError: For non-image shapes, values outside ``bounds``, a negative
            ``strength`` or a ``grid`` below 2.

    Reference:
        Nguyen & Tran, "WaNet -- Imperceptible Warping-based Backdoor Attack", ICLR 2021,
        https://arxiv.org/abs/2102.10369.

    Threat model:
        Dirty-label backdoor whose key is a geometric distortion rather than added pixels.
    """
    owner = "warp_trigger"
    low, high = check_bounds(bounds, owner)
    imgs, shape = _check_images(x, owner, (low, high))
    h, w = imgs.shape[-2:]
    dy, dx = warp_field(h, w, strength=strength, grid=grid, seed=seed)
    if float(strength) == 0.0:
        return imgs.reshape(shape)
    rows, cols = np.indices((h, w), dtype=np.float64)
    sy = np.clip(rows + dy, 0.0, h - 1.0)
    sx = np.clip(cols + dx, 0.0, w - 1.0)
    y0 = np.floor(sy).astype(int)
    x0 = np.floor(sx).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    fy, fx = sy - y0, sx - x0
    src = imgs.astype(np.float64)
    out: np.ndarray = (
        src[..., y0, x0] * (1 - fy) * (1 - fx)
        + src[..., y0, x1] * (1 - fy) * fx
        + src[..., y1, x0] * fy * (1 - fx)
        + src[..., y1, x1] * fy * fx
    )
    warped: np.ndarray = np.clip(out, low, high).astype(imgs.dtype)
    return warped.reshape(shape)


_APPLY: dict[str, Callable[..., np.ndarray]] = {
    "badnets": patch_trigger,
    "blend": blend_trigger,
    "warp": warp_trigger,
}


def apply_trigger(x: npt.ArrayLike, trigger: Trigger, **params: Any) -> np.ndarray:
    """Apply a named trigger: ``"badnets"`` (:func:`patch_trigger`), ``"blend"`` or ``"warp"``.

    Use the same ``params`` as at poisoning time (``Poisoned.params`` holds them) to attack a
    backdoored model at test time.

    Raises:
        InvalidParameterError: For an unknown trigger or invalid parameters.
    """
    check_choice(trigger, "trigger", "apply_trigger", _TRIGGERS)
    try:
        out: np.ndarray = _APPLY[trigger](x, **params)
    except TypeError as e:
        raise invalid_parameter(
            "params", "apply_trigger", f"keywords accepted by the {trigger!r} trigger", sorted(params)
        ) from e
    return out


def poison(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    trigger: Trigger,
    fraction: float,
    target_class: int,
    bounds: Bounds = (0.0, 1.0),
    num_classes: int | None = None,
    seed: int = 0,
    **trigger_params: Any,
) -> Poisoned:
    """Plant a dirty-label backdoor: trigger a share of the rows and relabel them to the target.

    Of the rows not already of ``target_class``, exactly ``round(fraction * eligible)`` are drawn
    without replacement (from ``seed``); the trigger is applied to their inputs and their labels
    become ``target_class``. Every other row is copied unchanged.

    Args:
        x: Images ``(n, C, H, W)`` or ``(n, H, W)`` within ``bounds``.
        y: Integer labels ``(n,)``.
        trigger: ``"badnets"``, ``"blend"`` or ``"warp"``.
        fraction: Share of the eligible rows to poison, in ``(0, 1)``.
        target_class: The class the trigger should lead to.
        bounds: The input range ``(low, high)``.
        num_classes: Number of classes; defaults to ``max(y) + 1``.
        seed: Seed of the row choice and of the trigger's own randomness (the default blend
            pattern, the warp field); ``params`` records it for test time.
        **trigger_params: Keywords of the trigger function (``size``, ``alpha``, ``strength``...).

    Returns:
        A :class:`Poisoned` whose ``params`` rebuild the trigger: ``apply_trigger(x, p.trigger,
        **p.params)``.

    Raises:
        InvalidParameterError: For a ``fraction`` outside ``(0, 1)`` or too small to poison one
            row, a ``target_class`` out of range, non-image inputs, labels that do not match, or
            invalid trigger parameters.
    """
    owner = "poison"
    check_choice(trigger, "trigger", owner, _TRIGGERS)
    frac = check_fraction(fraction, "fraction", owner)
    low, high = check_bounds(bounds, owner)
    seed = check_seed(seed, owner)
    arr = np.asarray(x)
    imgs, _ = _check_images(arr, owner, (low, high))
    labels = _check_labels(y, imgs.shape[0], owner)
    if num_classes is None:
        n_cls = int(labels.max()) + 1 if labels.size else 0
    else:
        n_cls = check_int(num_classes, "num_classes", owner, low=2)
        if labels.size and labels.max() >= n_cls:
            raise invalid_parameter("y", owner, f"labels in [0, {n_cls})", f"a label {int(labels.max())}")
    target = _check_class(target_class, "target_class", owner, n_cls)
    params: dict[str, Any] = {"bounds": (low, high), **trigger_params}
    if trigger in ("blend", "warp"):
        params["seed"] = seed
    rng = np.random.default_rng(seed)
    rows = _choose(np.flatnonzero(labels != target), frac, rng, owner)
    x_out = np.array(arr, dtype=imgs.dtype, copy=True)
    x_out[rows] = apply_trigger(arr[rows], trigger, **params)
    labels[rows] = target
    mask = np.zeros(labels.shape, dtype=bool)
    mask[rows] = True
    return Poisoned(x=x_out, y=labels, poisoned=mask, target_class=target, trigger=trigger, params=params)


def attack_success_rate(
    predict: Callable[[np.ndarray], npt.ArrayLike],
    x_clean: npt.ArrayLike,
    y_clean: npt.ArrayLike,
    *,
    trigger: Trigger,
    target_class: int,
    **params: Any,
) -> float:
    """Share of the clean inputs not of ``target_class`` that the model puts in it once triggered.

    Args:
        predict: Maps inputs to labels ``(n,)``, or to scores ``(n, C)`` whose arg-max is taken.
        x_clean: Clean test images.
        y_clean: Their true labels ``(n,)``.
        trigger: ``"badnets"``, ``"blend"`` or ``"warp"``.
        target_class: The backdoor's target.
        **params: The trigger's keywords, as in ``Poisoned.params``.

    Returns:
        The attack success rate, in ``[0, 1]``.

    Raises:
        InvalidParameterError: When no input is outside ``target_class``, for mismatched shapes, or
            for predictions of the wrong shape.
    """
    owner = "attack_success_rate"
    x = np.asarray(x_clean)
    labels = _check_labels(y_clean, x.shape[0] if x.ndim else -1, owner)
    keep = labels != check_int(target_class, "target_class", owner, low=0)
    if not keep.any():
        raise invalid_parameter("y_clean", owner, "at least one label other than target_class", "none")
    triggered = apply_trigger(x[keep], trigger, **params)
    pred = np.asarray(predict(triggered))
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    if pred.shape != (int(keep.sum()),):
        raise invalid_parameter(
            "predict",
            owner,
            f"a function returning labels ({int(keep.sum())},) or scores (n, C)",
            f"shape {pred.shape}",
        )
    return float(np.mean(pred == int(target_class)))
