"""STRIP, a run-time detector of trojaned inputs: :class:`STRIP`, :class:`StripReport`, :func:`strip_entropy`.

A backdoored model predicts the attacker's class whenever the trigger is present, whatever else the
image shows. STRIP blends an incoming input with clean images: a clean input's prediction then
wanders between classes (high entropy), a triggered input's stays on the target class (low entropy).
The detector works on arrays and on any target that gives class scores, whatever the framework.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

from mlarmor._stats import clopper_pearson
from mlarmor._validation import check_fraction, check_int, check_seed, describe
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

__all__ = ["STRIP", "StripReport", "strip_entropy"]

_log = logging.getLogger(__name__)

_OWNER: Final = "STRIP"
_SCHEMA_VERSION: Final = 1
_PARAMS: Final = ("n_overlays", "alpha", "false_rejection_rate", "batch_size", "seed")


def strip_entropy(
    target: Target,
    x: np.ndarray,
    overlays: np.ndarray,
    *,
    alpha: float | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Mean Shannon entropy (bits) of the target's predictions on ``x`` blended with each overlay.

    Every input ``x[i]`` is superimposed on every overlay ``o[j]``: ``x[i] + o[j]`` as in the paper
    (``alpha=None``), or ``alpha * x[i] + (1 - alpha) * o[j]``; either way clipped to the target's
    bounds, and the entropy ``-sum_c p_c log2 p_c`` of each blend's probability vector is averaged
    over the overlays. Inputs are processed in chunks of
    ``max(1, batch_size // len(overlays))``: all the blends of a chunk go to the target in one
    ``predict_proba`` call. No validation: :class:`STRIP` checks the inputs.

    Args:
        target: A model adapter with the ``"scores"`` capability.
        x: Inputs ``(n, *input_shape)``.
        overlays: Clean inputs ``(N, *input_shape)`` to blend with.
        alpha: ``None`` to add the images (the paper's superimposition), or the weight of the input
            in a weighted blend, in ``(0, 1)``.
        batch_size: Rows (blends) per call to the target, about.

    Returns:
        Entropies ``(n,)`` float64, in ``[0, log2(num_classes)]``.
    """
    n_over = overlays.shape[0]
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    low, high = target.bounds
    chunk = max(1, batch_size // n_over)
    weight = 1.0 if alpha is None else alpha
    background = (1.0 if alpha is None else 1.0 - alpha) * overlays.astype(np.float64, copy=False)
    out = np.empty(x.shape[0])
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk].astype(np.float64, copy=False)
        blends = np.clip(weight * part[:, None] + background[None], low, high)
        flat = blends.reshape(-1, *x.shape[1:]).astype(dtype, copy=False)
        probs = np.asarray(target.predict_proba(flat), dtype=np.float64)
        p = np.clip(probs, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0.0, -p * np.log2(np.where(p > 0.0, p, 1.0)), 0.0)
        out[start : start + part.shape[0]] = terms.sum(axis=1).reshape(part.shape[0], n_over).mean(axis=1)
    return out


@dataclass(frozen=True, slots=True)
class StripReport:
    """How well a fitted :class:`STRIP` separates clean inputs from triggered ones.

    Attributes:
        detection_rate: Share of the triggered inputs flagged (entropy below the threshold).
        false_rejection_rate: Share of the clean inputs flagged.
        auc: ROC AUC of triggered against clean, lower entropy counting as more suspect (0.5 is
            chance, 1 perfect separation; ties count one half), independent of the threshold.
        threshold: Inputs with a mean entropy below it are flagged.
        n_clean: Number of clean inputs evaluated.
        n_triggered: Number of triggered inputs evaluated.
    """

    detection_rate: float
    false_rejection_rate: float
    auc: float
    threshold: float
    n_clean: int
    n_triggered: int

    @property
    def detection_rate_ci(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of ``detection_rate`` (n_triggered trials)."""
        return clopper_pearson(round(self.detection_rate * self.n_triggered), self.n_triggered)

    @property
    def false_rejection_rate_ci(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of ``false_rejection_rate`` (n_clean trials)."""
        return clopper_pearson(round(self.false_rejection_rate * self.n_clean), self.n_clean)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict, with the 95% intervals of both rates."""
        return {
            **asdict(self),
            "detection_rate_ci": list(self.detection_rate_ci),
            "false_rejection_rate_ci": list(self.false_rejection_rate_ci),
        }


@dataclass(frozen=True, slots=True, eq=False)
class _Fitted:
    """What :meth:`STRIP.fit` learns, kept together so it is set all at once."""

    target: Target
    threshold: float
    overlays: np.ndarray
    input_shape: tuple[int, ...]
    entropies: np.ndarray


class STRIP:
    """Flags inputs whose prediction survives blending with clean images: likely trojaned (STRIP).

    :meth:`fit` keeps ``n_overlays`` clean inputs drawn at random (seeded) from ``x_clean`` and
    scores the remaining ones, held out, with :func:`strip_entropy`. The threshold is the
    ``false_rejection_rate`` quantile of these held-out entropies (numpy's linear interpolation), so
    that about that share of clean inputs is flagged. If fewer than ``ceil(1 /
    false_rejection_rate)`` inputs are left after drawing the overlays, every input of ``x_clean``
    is scored instead (the overlays included, each blended with itself once) and a warning is logged.

    By default the two images are added and clipped to the bounds, as in the paper: the trigger
    keeps its full strength in every blend. ``alpha`` switches to a weighted blend
    ``alpha * x + (1 - alpha) * clean``, which halves the trigger at ``alpha=0.5`` (on 8x8 digits
    with a 2x2 patch that drops the detection rate from 1.0 to about 0.6 at the same FRR).
    The same overlays serve every input, so an input's entropy does not depend on the batch it
    comes in. Entropies are in bits. Each scored input costs ``n_overlays`` queries.

    Reference:
        Gao, Xu, Wang, Chen, Ranasinghe and Nepal, "STRIP: A Defence Against Trojan Attacks on Deep
        Neural Networks", ACSAC 2019. https://arxiv.org/abs/1902.06531

    Threat model:
        Detects, at run time, inputs that carry a backdoor trigger (MITRE ATLAS AML.T0043.004 on a
        model with an AML.T0018.000 backdoor, OWASP ML10), from the model's scores alone, for
        input-agnostic triggers that dominate the prediction (patches, blended patterns). It does
        not detect source-specific triggers or triggers that do not survive the blend, and an
        adaptive attacker who knows the defence can train a backdoor whose blended predictions stay
        uncertain. On a clean model it only flags about ``false_rejection_rate`` of the inputs.

    Args:
        n_overlays: Clean images blended with each input, >= 2 (the paper uses 100 for
            CIFAR-10; 20-50 already separate well).
        alpha: ``None`` (default) to add the images, or the weight of the input in a weighted
            blend, in ``(0, 1)``.
        false_rejection_rate: Share of clean inputs to flag, in ``(0, 1)``.
        batch_size: Blended rows per call to the target, >= 1.
        seed: Seed of the ``numpy.random.Generator`` that draws the overlays, >= 0.

    Attributes:
        threshold_: Inputs with a mean entropy below it are flagged.
        overlays_: The clean inputs blended with every input ``(n_overlays, *input_shape)``.
        clean_entropies_: Entropies of the clean inputs the threshold was set from.
        target_: The target the detector queries.
        input_shape_: Shape of one input.

    Raises:
        InvalidParameterError: A parameter is out of its domain (at construction).

    Example:
        >>> detector = STRIP(n_overlays=50, false_rejection_rate=0.05)   # doctest: +SKIP
        >>> detector.fit(target, x_clean_heldout).detect(x_incoming)     # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        n_overlays: int = 50,
        alpha: float | None = None,
        false_rejection_rate: float = 0.05,
        batch_size: int = 1024,
        seed: int = 0,
    ) -> None:
        self.n_overlays: int = check_int(n_overlays, "n_overlays", _OWNER, low=2)
        self.alpha: float | None = (
            None
            if alpha is None
            else check_fraction(alpha, "alpha", _OWNER, hint="or None to add the images")
        )
        self.false_rejection_rate: float = check_fraction(
            false_rejection_rate, "false_rejection_rate", _OWNER
        )
        self.batch_size: int = check_int(batch_size, "batch_size", _OWNER)
        self.seed: int = check_seed(seed, _OWNER)
        self._fitted: _Fitted | None = None

    def __repr__(self) -> str:
        return (
            f"STRIP(n_overlays={self.n_overlays}, alpha={self.alpha}, "
            f"false_rejection_rate={self.false_rejection_rate}, batch_size={self.batch_size}, "
            f"seed={self.seed})"
        )

    # -- fitting -------------------------------------------------------------------------------------

    def fit(self, target: Target, x_clean: np.ndarray) -> STRIP:
        """Draw the overlays from clean inputs and set the threshold from the held-out rest.

        Args:
            target: A model adapter with the ``"scores"`` capability.
            x_clean: Clean inputs ``(n, *input_shape)`` within the target's bounds, ``n >
                n_overlays``; better with ``n >= n_overlays + ceil(1 / false_rejection_rate)``.

        Returns:
            The fitted detector.

        Raises:
            UnsupportedModelError: The target gives no class scores.
            InvalidParameterError: ``x_clean`` does not suit the target, or holds too few inputs.
        """
        target = _check_target(target)
        shape = target.input_shape
        xs = _check_x(x_clean, "x_clean", tuple(shape) if shape is not None else None, target.bounds)
        n = xs.shape[0]
        if n <= self.n_overlays:
            raise invalid_parameter(
                "x_clean",
                _OWNER,
                f"more than n_overlays={self.n_overlays} clean inputs (overlays plus inputs to set the "
                "threshold from); pass more data or lower n_overlays",
                describe(f"{n} inputs"),
            )
        order = np.random.default_rng(self.seed).permutation(n)
        overlays = xs[order[: self.n_overlays]].copy()
        held_out = xs[order[self.n_overlays :]]
        needed = math.ceil(1.0 / self.false_rejection_rate)
        if held_out.shape[0] < needed:
            _log.warning(
                "STRIP keeps %d of the %d clean inputs as overlays, leaving %d to set the threshold; a "
                "false-rejection rate of %g needs at least %d. The threshold is set from all %d inputs, "
                "overlays included, which biases it (each overlay is blended once with itself). Pass "
                "more clean data.",
                self.n_overlays,
                n,
                held_out.shape[0],
                self.false_rejection_rate,
                needed,
                n,
            )
            held_out = xs
        entropies = strip_entropy(target, held_out, overlays, alpha=self.alpha, batch_size=self.batch_size)
        self._fitted = _Fitted(
            target=target,
            threshold=float(np.quantile(entropies, self.false_rejection_rate)),
            overlays=overlays,
            input_shape=tuple(xs.shape[1:]),
            entropies=entropies,
        )
        return self

    # -- scoring -------------------------------------------------------------------------------------

    def entropy(self, x: np.ndarray) -> np.ndarray:
        """Mean entropies ``(n,)`` float64 (bits) of the predictions on ``x`` blended with the overlays.

        Raises:
            NotFittedError: Before :meth:`fit` (or :meth:`from_dict`).
            InvalidParameterError: ``x`` is empty, has the wrong shape, is not finite or is out of bounds.
        """
        fitted = self._state("entropy")
        xs = _check_x(x, "x", fitted.input_shape, fitted.target.bounds)
        return self._entropy(fitted, xs)

    def detect(self, x: np.ndarray) -> np.ndarray:
        """Flags ``(n,)`` bool, True for a likely trojaned input: ``entropy(x) < threshold_``."""
        threshold = self.threshold_
        flags: np.ndarray = self.entropy(x) < threshold
        return flags

    def evaluate(self, x_clean: np.ndarray, x_triggered: np.ndarray) -> StripReport:
        """Detection rate on ``x_triggered``, false-rejection rate on ``x_clean`` and the ROC AUC.

        Args:
            x_clean: Clean inputs, other than the ones the detector was fitted on.
            x_triggered: Inputs carrying the trigger.

        Raises:
            NotFittedError: Before :meth:`fit`.
            InvalidParameterError: Bad inputs.
        """
        fitted = self._state("evaluate")
        xc = _check_x(x_clean, "x_clean", fitted.input_shape, fitted.target.bounds)
        xt = _check_x(x_triggered, "x_triggered", fitted.input_shape, fitted.target.bounds)
        clean, triggered = self._entropy(fitted, xc), self._entropy(fitted, xt)
        return StripReport(
            detection_rate=float(np.mean(triggered < fitted.threshold)),
            false_rejection_rate=float(np.mean(clean < fitted.threshold)),
            auc=mann_whitney_auc(-clean, -triggered),
            threshold=fitted.threshold,
            n_clean=int(clean.size),
            n_triggered=int(triggered.size),
        )

    def _entropy(self, fitted: _Fitted, x: np.ndarray) -> np.ndarray:
        return strip_entropy(fitted.target, x, fitted.overlays, alpha=self.alpha, batch_size=self.batch_size)

    # -- fitted state --------------------------------------------------------------------------------

    def _state(self, what: str) -> _Fitted:
        if self._fitted is None:
            raise NotFittedError(
                f"This STRIP detector is not fitted yet: call fit(target, x_clean) (or "
                f"STRIP.from_dict(data, target)) before using {what}."
            )
        return self._fitted

    @property
    def threshold_(self) -> float:
        """Inputs with a mean entropy below it are flagged."""
        return self._state("threshold_").threshold

    @property
    def overlays_(self) -> np.ndarray:
        """The clean inputs blended with every input, ``(n_overlays, *input_shape)``."""
        return self._state("overlays_").overlays.copy()

    @property
    def clean_entropies_(self) -> np.ndarray:
        """Entropies of the clean inputs the threshold was set from (empty after :meth:`from_dict`)."""
        return self._state("clean_entropies_").entropies.copy()

    @property
    def target_(self) -> Target:
        """The target the detector queries."""
        return self._state("target_").target

    @property
    def input_shape_(self) -> tuple[int, ...]:
        """Shape of one input."""
        return self._state("input_shape_").input_shape

    # -- serialisation -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The configuration and, once fitted, the threshold and the overlays, as JSON-ready data.

        The overlays are clean inputs, written as nested lists of floats: keep the dict as private as
        the data it was drawn from. The model is not included: :meth:`from_dict` takes it separately.
        """
        params = {
            "n_overlays": self.n_overlays,
            "alpha": self.alpha,
            "false_rejection_rate": self.false_rejection_rate,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }
        fitted = None
        if self._fitted is not None:
            f = self._fitted
            fitted = {
                "threshold": f.threshold,
                "overlays": f.overlays.astype(np.float64).tolist(),
                "dtype": f.overlays.dtype.name,
                "input_shape": list(f.input_shape),
                "bounds": [float(b) for b in f.target.bounds],
                "num_classes": f.target.num_classes,
            }
        return {"detector": _OWNER, "version": _SCHEMA_VERSION, "params": params, "fitted": fitted}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], target: Target | None = None) -> STRIP:
        """Rebuild a detector from :meth:`to_dict`, querying ``target``.

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
            shape = tuple(int(d) for d in fitted["input_shape"])
            overlays = np.asarray(fitted["overlays"], dtype=np.float64).astype(np.dtype(fitted["dtype"]))
            saved = (tuple(float(b) for b in fitted["bounds"]), int(fitted["num_classes"]))
        except (KeyError, TypeError, ValueError) as e:
            raise _bad_dict("'fitted' as written by to_dict", fitted) from e
        if not math.isfinite(threshold) or threshold < 0:
            raise _bad_dict("a finite threshold >= 0", fitted["threshold"])
        if overlays.dtype.kind != "f" or overlays.shape != (detector.n_overlays, *shape):
            raise _bad_dict(f"n_overlays={detector.n_overlays} float overlays of shape {shape}", fitted)
        check_same_model(target, *saved, shape)
        _check_x(overlays, "overlays", shape, target.bounds)
        detector._fitted = _Fitted(
            target=target,
            threshold=threshold,
            overlays=overlays,
            input_shape=shape,
            entropies=np.zeros(0),
        )
        return detector


def _bad_dict(expected: str, got: object) -> InvalidParameterError:
    return bad_dict(_OWNER, expected, got)


_WHY = "STRIP measures the entropy of probability vectors"


def _check_target(target: object) -> Target:
    return check_scores_target(target, _OWNER, _WHY)


def _check_x(
    x: object, name: str, input_shape: tuple[int, ...] | None, bounds: tuple[float, float]
) -> np.ndarray:
    return check_batch(x, name, _OWNER, input_shape, bounds)
