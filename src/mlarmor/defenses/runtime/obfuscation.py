"""Output obfuscation: :class:`ObfuscatedTarget` and :func:`obfuscate_scores`.

A model that returns full probability vectors tells a membership-inference or extraction attacker
far more than its decision. Obfuscation returns less: the ``top_k`` largest probabilities only,
probabilities rounded to ``decimals``, or labels only. It never changes a decision: ``predict`` is
the wrapped target's, unchanged.

Top-k renormalises the probabilities it keeps so that they sum to 1. The renormalised vector is a
function of the unrenormalised one, so it never tells an attacker more, and it hides the dropped mass
(``1 - sum of the kept probabilities``). Leaving the kept values as they are would leak much more:
with ``top_k=1`` the attacker would still read the model's confidence in its answer, the very signal
membership inference thresholds (on an overfitted model it keeps the attack's full AUC). It would
also mislead a privacy audit, whose signals renormalise every row they read and would then see
labels only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlarmor._validation import check_optional_int, describe
from mlarmor.errors import InvalidParameterError, UnsupportedModelError, invalid_parameter
from mlarmor.targets._common import TargetProxy
from mlarmor.targets.base import Capability, Target

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["ObfuscatedTarget", "obfuscate_scores"]

_OWNER = "ObfuscatedTarget"
_MAX_DECIMALS = 15  # float64 holds about 15-16 significant digits: more decimals change nothing


def _check_options(
    top_k: object, decimals: object, num_classes: int, owner: str
) -> tuple[int | None, int | None]:
    hint = f"there are {num_classes} classes"
    return (
        check_optional_int(top_k, "top_k", owner, high=num_classes, hint=hint),
        check_optional_int(decimals, "decimals", owner, low=0, high=_MAX_DECIMALS),
    )


def _obfuscate(p: np.ndarray, top_k: int | None, decimals: int | None) -> np.ndarray:
    out = np.array(p, dtype=np.float64)  # a copy: the caller's array is never changed
    if top_k is not None:
        # A stable sort of -p keeps, among equal probabilities, the lowest class index first.
        order = np.argsort(-out, axis=1, kind="stable")
        np.put_along_axis(out, order[:, top_k:], 0.0, axis=1)
        kept = out.sum(axis=1, keepdims=True)
        np.divide(out, kept, out=out, where=kept > 0)
    if decimals is not None:
        np.round(out, decimals, out=out)
    return out


def obfuscate_scores(
    p: npt.ArrayLike, *, top_k: int | None = None, decimals: int | None = None
) -> np.ndarray:
    """Return less of a batch of probability vectors: the ``top_k`` largest, rounded to ``decimals``.

    Top-k keeps the ``top_k`` largest probabilities of each row (among equal ones, the lowest class
    index), zeroes the others and renormalises the kept ones to sum to 1 (the module docstring says
    why). Rounding comes after, so a rounded row sums to 1 only within ``num_classes * 0.5 *
    10**-decimals``, and may tie classes that differed (never reorder them). With neither option the
    result is a float64 copy of ``p``.

    Args:
        p: Probabilities ``(n, num_classes)``: finite and non-negative.
        top_k: How many probabilities to keep per row, in ``[1, num_classes]``.
        decimals: Decimals to round to, in ``[0, 15]``.

    Returns:
        A new float64 array of the same shape.

    Raises:
        InvalidParameterError: ``p`` is not a 2-D array of finite non-negative numbers, or an option
            is out of its domain.

    Example:
        >>> obfuscate_scores([[0.1, 0.6, 0.3]], top_k=2, decimals=2)
        array([[0.  , 0.67, 0.33]])
    """
    owner = "obfuscate_scores"
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidParameterError(
            f"The 'p' parameter of {owner} must be an array of probabilities (n, num_classes): {e}"
        ) from e
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise invalid_parameter(
            "p", owner, "an array of probabilities of shape (n, num_classes)", describe(f"shape {arr.shape}")
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidParameterError(
            f"The 'p' parameter of {owner} must hold finite, non-negative probabilities. Got values "
            "that are negative, NaN or infinite instead (pass probabilities, not logits)."
        )
    return _obfuscate(arr, *_check_options(top_k, decimals, arr.shape[1], owner))


class ObfuscatedTarget(TargetProxy):
    """A target that returns less than the wrapped one: top-k, rounded, or no probabilities at all.

    ``predict`` always returns the wrapped target's labels: obfuscation never changes a decision.
    ``predict_proba`` returns :func:`obfuscate_scores` of the wrapped target's probabilities, or, with
    ``labels_only``, raises :class:`~mlarmor.errors.UnsupportedModelError`. Gradients and logits are
    never exposed, even when the wrapped target has them (this is not a
    :class:`~mlarmor.targets.Differentiable`), so only score-based (or, with ``labels_only``,
    decision-based) attacks run against it. Queries are counted by the wrapped target.

    What it defends against: membership inference and model extraction that read the fine detail of
    the scores. What it does not: decision-based (label-only) attacks, which need nothing it removes.

    Args:
        inner: The target to wrap.
        top_k: Keep the ``top_k`` largest probabilities per input (renormalised to sum to 1), in
            ``[1, inner.num_classes]``.
        decimals: Round probabilities (after top-k) to this many decimals, in ``[0, 15]``.
        labels_only: Return labels only: the capabilities become ``{"labels"}``.
        name: Human-readable identification; defaults to ``"<inner name> (obfuscated)"``.

    Raises:
        InvalidParameterError: No option is set, an option is out of its domain, or ``labels_only``
            is combined with ``top_k``/``decimals`` (which it makes pointless).
        UnsupportedModelError: ``top_k`` or ``decimals`` on a target that returns labels only.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.linear_model import LogisticRegression
        >>> from mlarmor.defenses import ObfuscatedTarget
        >>> from mlarmor.targets import SklearnTarget
        >>> x, y = load_iris(return_X_y=True)
        >>> raw = SklearnTarget(LogisticRegression(max_iter=500).fit(x, y), bounds=(0.0, 8.0))
        >>> guarded = ObfuscatedTarget(raw, top_k=1)
        >>> guarded.predict_proba(x[:2])
        array([[1., 0., 0.],
               [1., 0., 0.]])
        >>> sorted(guarded.capabilities), raw.queries
        (['labels', 'scores'], 2)
    """

    def __init__(
        self,
        inner: Target,
        *,
        top_k: int | None = None,
        decimals: int | None = None,
        labels_only: bool = False,
        name: str | None = None,
    ) -> None:
        if not isinstance(inner, Target):
            raise invalid_parameter(
                "inner",
                _OWNER,
                "a model adapter implementing mlarmor.targets.Target",
                describe(type(inner).__name__),
            )
        if not isinstance(labels_only, bool):
            raise invalid_parameter("labels_only", _OWNER, "a bool", labels_only)
        if name is not None and not isinstance(name, str):
            raise invalid_parameter("name", _OWNER, "a string or None", name)
        self._top_k, self._decimals = _check_options(top_k, decimals, inner.num_classes, _OWNER)
        scores_options = self._top_k is not None or self._decimals is not None
        if not labels_only and not scores_options:
            raise InvalidParameterError(
                f"{_OWNER} needs at least one option: top_k=K, decimals=D or labels_only=True. "
                "Without one it would return exactly what the wrapped target returns."
            )
        if labels_only and scores_options:
            raise InvalidParameterError(
                f"{_OWNER} got labels_only=True together with top_k={top_k!r}, decimals={decimals!r}: "
                "a labels-only target returns no probabilities to keep or round. Pass labels_only=True "
                "alone, or top_k/decimals alone."
            )
        if scores_options and "scores" not in inner.capabilities:
            raise UnsupportedModelError(
                f"Target {inner.name!r} returns labels only, so there are no probabilities for top_k or "
                "decimals to obfuscate. Use labels_only=True, or the target as it is."
            )
        super().__init__(inner)
        self._labels_only = labels_only
        self._name = name or f"{inner.name} (obfuscated)"

    @property
    def top_k(self) -> int | None:
        """How many probabilities are kept per input (``None``: all)."""
        return self._top_k

    @property
    def decimals(self) -> int | None:
        """Decimals probabilities are rounded to (``None``: no rounding)."""
        return self._decimals

    @property
    def labels_only(self) -> bool:
        """Whether only labels are returned."""
        return self._labels_only

    @property
    def name(self) -> str:
        """Human-readable identification."""
        return self._name

    @property
    def capabilities(self) -> frozenset[Capability]:
        """``{"scores", "labels"}``, or ``{"labels"}`` with ``labels_only``; never gradients."""
        return frozenset(("labels",)) if self._labels_only else frozenset(("scores", "labels"))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The wrapped target's probabilities, top-k and rounded; refused with ``labels_only``."""
        if self._labels_only:
            raise UnsupportedModelError(
                f"Target {self._name!r} returns labels only (output obfuscation with labels_only=True), "
                "so it has no 'scores' capability: predict_proba is unavailable. Use predict, or an "
                "attack that needs only labels (decision-based)."
            )
        return _obfuscate(self._inner.predict_proba(x), self._top_k, self._decimals)

    def __repr__(self) -> str:
        return (
            f"ObfuscatedTarget(inner={self._inner.name!r}, top_k={self._top_k}, "
            f"decimals={self._decimals}, labels_only={self._labels_only})"
        )
