"""Feature squeezing, a run-time input detector fitted on clean data, and its :class:`DetectionReport`.

A detector works on arrays and on any target that gives class scores, whatever the framework. The
two squeezers are plain functions, :func:`reduce_bit_depth` and :func:`median_smooth`, that the
detector and the tests call directly. The module is longer than most because it holds one concept
whole: the squeezers, the detector with its serialisation, its report and the input checks they
share; more than half of it is docstrings and error messages.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any, Final, Literal, get_args

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlarmor._stats import clopper_pearson
from mlarmor._validation import (
    check_fraction,
    check_int,
    check_optional_int,
    describe,
    is_int,
)
from mlarmor.defenses._validate import (
    bad_dict,
    check_batch,
    check_same_model,
    check_scores_target,
    fitted_target,
    mann_whitney_auc,
    read_payload,
)
from mlarmor.errors import InvalidParameterError, NotFittedError, invalid_parameter
from mlarmor.targets.base import Target

__all__ = ["DetectionReport", "FeatureSqueezing", "Squeezer", "median_smooth", "reduce_bit_depth"]

_log = logging.getLogger(__name__)

Squeezer = Literal["bit-depth", "median"]
_SQUEEZERS: Final[tuple[Squeezer, ...]] = get_args(Squeezer)
_OWNER: Final = "FeatureSqueezing"
_AUTO_BITS: Final = range(1, 9)
_ACCURACY_TOLERANCE: Final = 0.01  # "within 1 point" of the unsqueezed accuracy
_SCHEMA_VERSION: Final = 1
_PARAMS: Final = ("squeezers", "bits", "median_size", "false_alarm_rate", "batch_size")


def reduce_bit_depth(x: np.ndarray, bits: int, bounds: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Quantise every feature of ``x`` to ``2**bits`` evenly spaced levels within ``bounds``.

    Each value is scaled to ``[0, 1]`` by the bounds, rounded with ``round(v * (2**bits - 1)) /
    (2**bits - 1)`` (numpy's ``rint``: exact halves go to the even level) and scaled back.

    Args:
        x: Inputs of any shape, inside ``bounds``.
        bits: Bit depth, an int in ``[1, 16]``.
        bounds: Valid input range ``(low, high)``.

    Returns:
        The squeezed inputs, same shape; a floating ``x`` keeps its dtype, integers become float64.

    Example:
        >>> reduce_bit_depth(np.array([0.2, 0.49, 0.51, 0.9]), bits=1).tolist()
        [0.0, 0.0, 1.0, 1.0]
    """
    levels = 2 ** check_int(bits, "bits", "reduce_bit_depth", high=16) - 1
    low, high = float(bounds[0]), float(bounds[1])
    v = np.clip((np.asarray(x, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    out = np.clip(low + np.rint(v * levels) / levels * (high - low), low, high)
    result: np.ndarray = out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)
    return result


def median_smooth(x: np.ndarray, size: int = 2) -> np.ndarray:
    """Median filter over the last two axes (the spatial ones) of ``x``, a ``size`` x ``size`` window.

    The window of a pixel covers rows ``i - (size - 1) // 2 .. i + size // 2`` and the same columns:
    centred for an odd size, and for an even size the pixel and the ones below and to its right
    (the paper's convention). Edges are padded by reflection that repeats the edge pixel (numpy's
    ``"symmetric"``, scipy's ``"reflect"``). For an even window the median is the mean of the two
    middle values. Vectorised over every leading axis (batch, channels).

    Args:
        x: Inputs ``(..., H, W)``, e.g. ``(n, C, H, W)`` or ``(n, H, W)``.
        size: Window side, an int >= 2.

    Returns:
        The smoothed inputs, same shape; a floating ``x`` keeps its dtype, integers become float64.

    Example:
        >>> median_smooth(np.array([[1.0, 2.0], [3.0, 5.0]])).tolist()
        [[2.5, 3.5], [4.0, 5.0]]
    """
    check_int(size, "size", "median_smooth", low=2)
    if x.ndim < 2:
        raise invalid_parameter(
            "x", "median_smooth", "an array with two spatial axes (..., H, W)", describe(f"shape {x.shape}")
        )
    k = int(size)
    pad = [(0, 0)] * (x.ndim - 2) + [((k - 1) // 2, k // 2)] * 2
    windows = sliding_window_view(np.pad(x, pad, mode="symmetric"), (k, k), axis=(-2, -1))
    out = np.median(windows, axis=(-2, -1))
    result: np.ndarray = out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)
    return result


@dataclass(frozen=True, slots=True)
class DetectionReport:
    """How well a fitted detector separates clean inputs from adversarial ones.

    Attributes:
        detection_rate: Share of the adversarial rows (those selected by the mask, when one is given)
            that are flagged.
        false_alarm_rate: Share of the clean rows that are flagged.
        auc: ROC AUC of the scores, adversarial against clean (0.5 is chance, 1 perfect separation;
            ties count one half), independent of the threshold.
        threshold: The threshold in use: an input is flagged when its score is above it.
        n_clean: Number of clean rows evaluated.
        n_adversarial: Number of adversarial rows evaluated (after the mask).
    """

    detection_rate: float
    false_alarm_rate: float
    auc: float
    threshold: float
    n_clean: int
    n_adversarial: int

    @property
    def detection_rate_ci(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of ``detection_rate`` (n_adversarial trials)."""
        return clopper_pearson(round(self.detection_rate * self.n_adversarial), self.n_adversarial)

    @property
    def false_alarm_rate_ci(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of ``false_alarm_rate`` (n_clean trials)."""
        return clopper_pearson(round(self.false_alarm_rate * self.n_clean), self.n_clean)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict, with the 95% intervals of both rates."""
        return {
            **asdict(self),
            "detection_rate_ci": list(self.detection_rate_ci),
            "false_alarm_rate_ci": list(self.false_alarm_rate_ci),
        }


class FeatureSqueezing:
    """Flags inputs whose prediction moves a lot when the input is squeezed (feature squeezing).

    The score of an input is the largest L1 distance between the target's probability vector on the
    input and on each squeezed copy of it. :meth:`fit` sets the threshold to the
    ``1 - false_alarm_rate`` quantile of the scores of clean inputs (numpy's linear interpolation),
    so that about ``false_alarm_rate`` of clean inputs score above it and are flagged.

    Squeezers: ``"bit-depth"`` (:func:`reduce_bit_depth` to ``bits`` bits within the target's bounds)
    and ``"median"`` (:func:`median_smooth` with a ``median_size`` window over the last two axes, so
    inputs must be channels-first ``(C, H, W)`` or ``(H, W)`` per sample). ``squeezers=None`` uses
    bit depth, plus the median for image-shaped inputs (two or more axes per sample) unless it costs
    more than 1 point of accuracy on the fit data (then :attr:`squeezers_` leaves it out).

    With ``bits=None`` the bit depth is chosen in :meth:`fit`: the smallest depth in 1..8 whose
    accuracy on the fit data is within 1 point (0.01) of the accuracy on the unsqueezed fit data.
    Accuracy is measured against ``y`` when it is given, otherwise against the target's own
    predictions on the unsqueezed inputs (whose accuracy is then 1). If no depth up to 8 qualifies,
    8 is used and a warning is logged.

    Fit on clean data the model was not trained on (its scores on training data are smaller, which
    would set the threshold too low), and evaluate on yet other clean data. Each scored input costs
    one query plus one per squeezer.

    Reference:
        Xu, Evans and Qi, "Feature Squeezing: Detecting Adversarial Examples in Deep Neural
        Networks", NDSS 2018. https://arxiv.org/abs/1704.01155

    Threat model:
        Detects white-box and black-box evasion inputs at test time (MITRE ATLAS AML.T0043, OWASP
        ML01) by an attacker who does not know about the detector. An adaptive attacker who knows
        the squeezers can craft inputs that fool the model and the detector together (He, Wei,
        Chen, Carlini and Song, "Adversarial Example Defenses: Ensembles of Weak Defenses are not
        Strong", WOOT 2017, https://arxiv.org/abs/1706.04701): treat it as a tripwire, not a
        guarantee.

    Args:
        squeezers: Names among ``"bit-depth"``, ``"median"`` (one name or a sequence), or ``None``
            for the default described above.
        bits: Bit depth in ``[1, 16]``, or ``None`` to choose it in :meth:`fit`. Ignored without
            ``"bit-depth"``.
        median_size: Side of the median window, >= 2 (2 as in the paper for MNIST and CIFAR-10).
        false_alarm_rate: Share of clean inputs to flag, in ``(0, 1)``.
        batch_size: Rows per call to the target, >= 1.

    Attributes:
        threshold_: Inputs scoring above it are flagged.
        squeezers_: The squeezers in use.
        bits_: The bit depth in use (``None`` without ``"bit-depth"``).
        bit_accuracies_: Accuracy on the fit data per bit depth tried.
        clean_accuracy_: Accuracy of the target on the unsqueezed fit data (``None`` without ``y``).
        fit_scores_: Scores of the fit data.
        target_: The target the detector scores with.
        input_shape_: Shape of one input.

    Raises:
        InvalidParameterError: A parameter is out of its domain (at construction).

    Example:
        >>> detector = FeatureSqueezing(false_alarm_rate=0.05)      # doctest: +SKIP
        >>> detector.fit(target, x_heldout).detect(x_incoming)      # doctest: +SKIP
    """

    def __init__(
        self,
        squeezers: Squeezer | Sequence[Squeezer] | None = None,
        *,
        bits: int | None = None,
        median_size: int = 2,
        false_alarm_rate: float = 0.05,
        batch_size: int = 256,
    ) -> None:
        self.squeezers = _check_squeezers(squeezers)
        self.bits = check_optional_int(bits, "bits", _OWNER, high=16, hint="None chooses it in fit")
        self.median_size = check_int(median_size, "median_size", _OWNER, low=2)
        self.false_alarm_rate: float = check_fraction(false_alarm_rate, "false_alarm_rate", _OWNER)
        self.batch_size: int = check_int(batch_size, "batch_size", _OWNER)
        self._fitted: _Fitted | None = None

    def __repr__(self) -> str:
        return (
            f"FeatureSqueezing(squeezers={self.squeezers!r}, bits={self.bits}, "
            f"median_size={self.median_size}, false_alarm_rate={self.false_alarm_rate}, "
            f"batch_size={self.batch_size})"
        )

    # -- fitting -------------------------------------------------------------------------------------

    def fit(self, target: Target, x: np.ndarray, y: np.ndarray | None = None) -> FeatureSqueezing:
        """Choose the squeezers and bit depth and set the threshold from clean inputs.

        Args:
            target: A model adapter with the ``"scores"`` capability.
            x: Clean inputs ``(n, *input_shape)`` within the target's bounds, held out from training.
            y: Optional true labels ``(n,)``, used by the bit-depth rule and :attr:`clean_accuracy_`.

        Returns:
            The fitted detector.

        Raises:
            UnsupportedModelError: The target gives no class scores.
            InvalidParameterError: ``x``, ``y`` or the squeezers do not suit the target or the data.
        """
        target = _check_target(target)
        shape = target.input_shape
        xs = _check_x(x, "x", tuple(shape) if shape is not None else None, target.bounds)
        sample_shape = tuple(xs.shape[1:])
        squeezers = self._resolve_squeezers(sample_shape)
        probs = self._proba(target, xs)
        if y is None:
            reference, clean_accuracy = probs.argmax(axis=1), None
        else:
            reference = _check_y(y, xs.shape[0], target.num_classes)
            clean_accuracy = float(np.mean(probs.argmax(axis=1) == reference))
        baseline = 1.0 if clean_accuracy is None else clean_accuracy
        distances: list[np.ndarray] = []
        bits: int | None = None
        accuracies: dict[int, float] = {}
        if "bit-depth" in squeezers:
            bits, accuracies, squeezed = self._choose_bits(target, xs, reference, baseline)
            distances.append(np.abs(probs - squeezed).sum(axis=1))
        if "median" in squeezers:
            smoothed = self._proba(target, median_smooth(xs, self.median_size))
            median_accuracy = float(np.mean(smoothed.argmax(axis=1) == reference))
            costly = median_accuracy < baseline - _ACCURACY_TOLERANCE
            if costly and self.squeezers is None and distances:
                # The default keeps only squeezers that leave clean predictions alone (the rule that
                # picks the bit depth): a filter that wipes out small images would flag clean inputs.
                squeezers = tuple(q for q in squeezers if q != "median")
                _log.info(
                    "The median squeezer (%dx%d) lowers accuracy on the fit data from %.3f to %.3f: "
                    "left out of the default squeezers.",
                    self.median_size,
                    self.median_size,
                    baseline,
                    median_accuracy,
                )
            else:
                distances.append(np.abs(probs - smoothed).sum(axis=1))
                if costly:
                    _log.warning(
                        "The median squeezer (%dx%d) lowers accuracy on the fit data from %.3f to %.3f: "
                        "clean scores will be high and so will the threshold. Consider "
                        "squeezers=['bit-depth'] (small images such as 8x8 lose their content to the "
                        "median filter).",
                        self.median_size,
                        self.median_size,
                        baseline,
                        median_accuracy,
                    )
        scores = np.max(np.stack(distances), axis=0)
        if xs.shape[0] < math.ceil(1.0 / self.false_alarm_rate):
            _log.warning(
                "FeatureSqueezing was fitted on %d clean inputs; a false-alarm rate of %g needs at "
                "least %d, otherwise the threshold is little more than the largest clean score.",
                xs.shape[0],
                self.false_alarm_rate,
                math.ceil(1.0 / self.false_alarm_rate),
            )
        self._fitted = _Fitted(
            target=target,
            threshold=float(np.quantile(scores, 1.0 - self.false_alarm_rate)),
            squeezers=squeezers,
            bits=bits,
            input_shape=sample_shape,
            clean_accuracy=clean_accuracy,
            bit_accuracies=accuracies,
            scores=scores,
        )
        return self

    def _choose_bits(
        self, target: Target, x: np.ndarray, reference: np.ndarray, baseline: float
    ) -> tuple[int, dict[int, float], np.ndarray]:
        """The bit depth to use, the accuracy of each depth tried, the probabilities at the chosen one."""
        accuracies: dict[int, float] = {}
        candidates = _AUTO_BITS if self.bits is None else (self.bits,)
        for bits in candidates:
            squeezed = self._proba(target, reduce_bit_depth(x, bits, target.bounds))
            accuracies[bits] = float(np.mean(squeezed.argmax(axis=1) == reference))
            if accuracies[bits] >= baseline - _ACCURACY_TOLERANCE - 1e-12:
                break
        else:
            if self.bits is None:
                _log.warning(
                    "No bit depth in 1..8 keeps accuracy within 1 point of %.3f on the fit data; using 8 "
                    "bits. Pass bits=... (mlarmor harden --bits N) to choose another.",
                    baseline,
                )
        return bits, accuracies, squeezed

    def _resolve_squeezers(self, sample_shape: tuple[int, ...]) -> tuple[Squeezer, ...]:
        image = len(sample_shape) >= 2
        if self.squeezers is None:
            squeezers: tuple[Squeezer, ...] = ("bit-depth", "median") if image else ("bit-depth",)
        elif "median" in self.squeezers and not image:
            raise InvalidParameterError(
                f"The 'median' squeezer of {_OWNER} filters over two spatial axes, but the inputs have "
                f"shape {sample_shape} per sample (flat, tabular data). Use squeezers=['bit-depth'] "
                "(or None, the default) for such inputs."
            )
        else:
            squeezers = self.squeezers
        if "median" in squeezers and self.median_size > min(sample_shape[-2:]):
            raise invalid_parameter(
                "median_size",
                _OWNER,
                f"at most the image's height and width {sample_shape[-2:]}",
                self.median_size,
            )
        return squeezers

    # -- scoring -------------------------------------------------------------------------------------

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` float64: the largest L1 distance between probabilities before and after squeezing.

        Raises:
            NotFittedError: Before :meth:`fit` (or :meth:`from_dict`).
            InvalidParameterError: ``x`` is empty, has the wrong shape, is not finite or is out of bounds.
        """
        fitted = self._state("score")
        xs = _check_x(x, "x", fitted.input_shape, fitted.target.bounds)
        return self._scores(fitted, xs)

    def detect(self, x: np.ndarray) -> np.ndarray:
        """Flags ``(n,)`` bool: ``score(x) > threshold_``."""
        threshold = self.threshold_
        flags: np.ndarray = self.score(x) > threshold
        return flags

    def evaluate(
        self, x_clean: np.ndarray, x_adv: np.ndarray, *, adversarial: np.ndarray | None = None
    ) -> DetectionReport:
        """Detection rate on ``x_adv``, false-alarm rate on ``x_clean`` and the ROC AUC between them.

        Args:
            x_clean: Clean inputs, other than the ones the detector was fitted on.
            x_adv: Adversarial inputs.
            adversarial: Optional bool mask ``(len(x_adv),)`` of the rows to count, e.g. the
                ``success`` of an :class:`~mlarmor.attacks.EvasionResult` (only the inputs that
                fool the model need detecting).

        Raises:
            NotFittedError: Before :meth:`fit`.
            InvalidParameterError: Bad inputs, or a mask that selects no row.
        """
        fitted = self._state("evaluate")
        xc = _check_x(x_clean, "x_clean", fitted.input_shape, fitted.target.bounds)
        xa = _check_x(x_adv, "x_adv", fitted.input_shape, fitted.target.bounds)
        if adversarial is not None:
            mask = np.asarray(adversarial)
            if mask.dtype != np.bool_ or mask.shape != (xa.shape[0],):
                raise invalid_parameter(
                    "adversarial",
                    _OWNER,
                    f"a bool array of shape ({xa.shape[0]},), one flag per row of x_adv",
                    describe(f"dtype {mask.dtype}, shape {mask.shape}"),
                )
            if not mask.any():
                raise InvalidParameterError(
                    f"The 'adversarial' mask of {_OWNER}.evaluate selects no row of x_adv, so there is "
                    "nothing to detect. Pass adversarial=None to count every row, or attack more inputs."
                )
            xa = xa[mask]
        clean, adv = self._scores(fitted, xc), self._scores(fitted, xa)
        return DetectionReport(
            detection_rate=float(np.mean(adv > fitted.threshold)),
            false_alarm_rate=float(np.mean(clean > fitted.threshold)),
            auc=mann_whitney_auc(clean, adv),
            threshold=fitted.threshold,
            n_clean=int(clean.size),
            n_adversarial=int(adv.size),
        )

    def _scores(self, fitted: _Fitted, x: np.ndarray) -> np.ndarray:
        target = fitted.target
        probs = self._proba(target, x)
        out = np.zeros(x.shape[0])
        for name in fitted.squeezers:
            if name == "median":
                squeezed = median_smooth(x, self.median_size)
            elif fitted.bits is not None:  # always, with "bit-depth": fit and from_dict set it
                squeezed = reduce_bit_depth(x, fitted.bits, target.bounds)
            else:
                continue
            out = np.maximum(out, np.abs(probs - self._proba(target, squeezed)).sum(axis=1))
        return out

    def _proba(self, target: Target, x: np.ndarray) -> np.ndarray:
        parts = [
            np.asarray(target.predict_proba(x[i : i + self.batch_size]), dtype=np.float64)
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return np.concatenate(parts)

    # -- fitted state --------------------------------------------------------------------------------

    def _state(self, what: str) -> _Fitted:
        if self._fitted is None:
            raise NotFittedError(
                f"This FeatureSqueezing detector is not fitted yet: call fit(target, x_clean) (or "
                f"FeatureSqueezing.from_dict(data, target)) before using {what}."
            )
        return self._fitted

    @property
    def threshold_(self) -> float:
        """Inputs scoring above it are flagged."""
        return self._state("threshold_").threshold

    @property
    def squeezers_(self) -> tuple[Squeezer, ...]:
        """The squeezers in use."""
        return self._state("squeezers_").squeezers

    @property
    def bits_(self) -> int | None:
        """The bit depth in use (``None`` without the bit-depth squeezer)."""
        return self._state("bits_").bits

    @property
    def bit_accuracies_(self) -> dict[int, float]:
        """Accuracy on the fit data per bit depth tried (empty after :meth:`from_dict`)."""
        return dict(self._state("bit_accuracies_").bit_accuracies)

    @property
    def clean_accuracy_(self) -> float | None:
        """Accuracy of the target on the unsqueezed fit data, when ``y`` was given to :meth:`fit`."""
        return self._state("clean_accuracy_").clean_accuracy

    @property
    def fit_scores_(self) -> np.ndarray:
        """Scores of the fit data (empty after :meth:`from_dict`)."""
        return self._state("fit_scores_").scores.copy()

    @property
    def target_(self) -> Target:
        """The target the detector scores with."""
        return self._state("target_").target

    @property
    def input_shape_(self) -> tuple[int, ...]:
        """Shape of one input."""
        return self._state("input_shape_").input_shape

    # -- serialisation -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The configuration and, once fitted, the threshold and what it depends on, as JSON-ready data.

        The model itself is not included: :meth:`from_dict` takes it separately. Never pickled.
        """
        params = {
            "squeezers": None if self.squeezers is None else list(self.squeezers),
            "bits": self.bits,
            "median_size": self.median_size,
            "false_alarm_rate": self.false_alarm_rate,
            "batch_size": self.batch_size,
        }
        fitted = None
        if self._fitted is not None:
            f = self._fitted
            fitted = {
                "threshold": f.threshold,
                "squeezers": list(f.squeezers),
                "bits": f.bits,
                "input_shape": list(f.input_shape),
                "bounds": list(f.target.bounds),
                "num_classes": f.target.num_classes,
                "clean_accuracy": f.clean_accuracy,
            }
        return {"detector": _OWNER, "version": _SCHEMA_VERSION, "params": params, "fitted": fitted}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], target: Target | None = None) -> FeatureSqueezing:
        """Rebuild a detector from :meth:`to_dict`, scoring with ``target``.

        The threshold only holds for the model it was fitted with: the target's bounds, input shape
        and number of classes are checked against the saved ones, the weights cannot be.

        Args:
            data: What :meth:`to_dict` returned (e.g. read back from JSON).
            target: The model the detector was fitted with; required when ``data`` holds a threshold.

        Raises:
            InvalidParameterError: ``data`` is malformed or does not match ``target``.
            UnsupportedModelError: The target gives no class scores.
        """
        params, fitted = read_payload(data, _OWNER, _SCHEMA_VERSION, _PARAMS)
        detector = cls(**params)
        if fitted is None:
            return detector
        target = fitted_target(target, _OWNER, _WHY)
        try:
            threshold = float(fitted["threshold"])
            squeezers = _check_squeezers(fitted["squeezers"])
            bits = fitted["bits"]
            shape = tuple(int(d) for d in fitted["input_shape"])
            saved = (tuple(float(b) for b in fitted["bounds"]), int(fitted["num_classes"]))
            accuracy = fitted["clean_accuracy"]
        except (KeyError, TypeError, ValueError) as e:
            raise _bad_dict("'fitted' as written by to_dict", fitted) from e
        if squeezers is None or not math.isfinite(threshold) or threshold < 0:
            raise _bad_dict("a finite threshold >= 0 and a list of squeezers", fitted)
        if ("bit-depth" in squeezers) != (bits is not None) or (
            bits is not None and (not is_int(bits) or not 1 <= bits <= 16)
        ):
            raise _bad_dict("bits in [1, 16] exactly when 'bit-depth' is a squeezer", fitted)
        if accuracy is not None and not isinstance(accuracy, Real):
            raise _bad_dict("clean_accuracy as a float or None", fitted)
        check_same_model(target, *saved, shape)
        detector._fitted = _Fitted(
            target=target,
            threshold=threshold,
            squeezers=squeezers,
            bits=bits,
            input_shape=shape,
            clean_accuracy=None if accuracy is None else float(accuracy),
            bit_accuracies={},
            scores=np.zeros(0),
        )
        return detector


@dataclass(frozen=True, slots=True, eq=False)
class _Fitted:
    """What :meth:`FeatureSqueezing.fit` learns, kept together so it is set all at once."""

    target: Target
    threshold: float
    squeezers: tuple[Squeezer, ...]
    bits: int | None
    input_shape: tuple[int, ...]
    clean_accuracy: float | None
    bit_accuracies: dict[int, float]
    scores: np.ndarray


def _check_squeezers(value: object) -> tuple[Squeezer, ...] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    expected = f"None, or one or more distinct names among {list(_SQUEEZERS)}"
    if not isinstance(names, Sequence) or isinstance(names, bytes) or not names:
        raise invalid_parameter("squeezers", _OWNER, expected, value)
    if any(n not in _SQUEEZERS for n in names) or len(set(names)) != len(names):
        raise invalid_parameter("squeezers", _OWNER, expected, value)
    return tuple(n for n in _SQUEEZERS if n in names)


def _check_y(y: object, n: int, num_classes: int) -> np.ndarray:
    ys = np.asarray(y)
    if ys.dtype.kind not in "iu" or ys.shape != (n,):
        raise invalid_parameter(
            "y",
            _OWNER,
            f"an integer array of shape ({n},), one label per row of x",
            describe(f"dtype {ys.dtype}, shape {ys.shape}"),
        )
    if int(ys.min()) < 0 or int(ys.max()) >= num_classes:
        raise invalid_parameter(
            "y",
            _OWNER,
            f"labels in [0, {num_classes})",
            describe(f"labels in [{int(ys.min())}, {int(ys.max())}]"),
        )
    return ys


def _bad_dict(expected: str, got: object) -> InvalidParameterError:
    return bad_dict(_OWNER, expected, got)


_WHY = "Feature squeezing compares probability vectors"


def _check_target(target: object) -> Target:
    return check_scores_target(target, _OWNER, _WHY)


def _check_x(
    x: object, name: str, input_shape: tuple[int, ...] | None, bounds: tuple[float, float]
) -> np.ndarray:
    return check_batch(x, name, _OWNER, input_shape, bounds)
