"""Small-sample statistics shared by the audits (private): exact intervals and measurable rates.

Every rate mlarmor reports (an accuracy, a TPR, a detection rate) is ``k`` events in ``n`` trials, so
it comes with an exact Clopper-Pearson interval, and a rate is only reported at levels the sample
can resolve: a false-positive rate ``f`` needs at least ``ceil(1 / f)`` negatives, the count at
which a single false positive is a rate of ``f`` or less. Below it the only reachable rate under
``f`` is 0, so a "TPR at ``f``" would really be a TPR at zero observed false positives, whose true
false-positive rate the sample cannot bound anywhere near ``f``.

Example:
    >>> tuple(round(end, 4) for end in clopper_pearson(5, 10))
    (0.1871, 0.8129)
    >>> min_negatives(0.001), fpr_measurable(0.001, 72)
    (1000, False)
"""

from __future__ import annotations

import math

from mlarmor._validation import check_fraction, check_int
from mlarmor.errors import invalid_parameter

__all__ = [
    "SMALL_SAMPLE",
    "auc_interval",
    "clopper_pearson",
    "fpr_measurable",
    "interval_text",
    "min_negatives",
]

SMALL_SAMPLE = 100
"""Below this many evaluated examples an accuracy's 95% interval is wider than about ±10 points."""


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a rate of ``k`` events in ``n`` trials.

    The ends are beta quantiles, ``alpha / 2`` in each tail (``alpha = 1 - confidence``); the lower
    end is 0 when ``k == 0`` and the upper end is 1 when ``k == n``. The interval covers the true
    rate with at least the stated confidence for every rate and ``n`` (it is conservative).

    Reference:
        Clopper and Pearson, "The use of confidence or fiducial limits illustrated in the case of
        the binomial", Biometrika 26(4), 1934, https://doi.org/10.1093/biomet/26.4.404.

    Args:
        k: Events, an int in ``[0, n]``.
        n: Trials, an int ``>= 1``.
        confidence: Two-sided confidence, in ``(0, 1)``.

    Returns:
        ``(low, high)`` with ``0 <= low <= k / n <= high <= 1``.

    Raises:
        InvalidParameterError: If ``n < 1``, ``k`` is outside ``[0, n]`` or ``confidence`` is not in
            ``(0, 1)``.
    """
    from scipy import stats  # here, not at import: the CLI's tables import this module

    owner = "clopper_pearson"
    trials = check_int(n, "n", owner, low=1)
    events = check_int(k, "k", owner, low=0)
    if events > trials:
        raise invalid_parameter("k", owner, f"an int in [0, n] = [0, {trials}]", k)
    alpha = 1.0 - check_fraction(confidence, "confidence", owner)
    low = 0.0 if events == 0 else float(stats.beta.ppf(alpha / 2, events, trials - events + 1))
    high = 1.0 if events == trials else float(stats.beta.ppf(1 - alpha / 2, events + 1, trials - events))
    return low, high


def auc_interval(
    auc: float, n_positive: int, n_negative: int, confidence: float = 0.95
) -> tuple[float, float]:
    """A normal-approximation interval of an AUC from its Hanley-McNeil standard error.

    ``SE² = (A(1-A) + (n₊-1)(Q₁-A²) + (n₋-1)(Q₂-A²)) / (n₊ n₋)`` with ``Q₁ = A / (2 - A)`` and
    ``Q₂ = 2A² / (1 + A)``; the interval is ``A ± z SE``, clipped to ``[0, 1]``. It assumes the
    scores of each class are exponential-like; it is the usual closed form, deterministic (no
    bootstrap), and adequate for the severity's coarse AUC thresholds.

    Reference:
        Hanley and McNeil, "The meaning and use of the area under a receiver operating
        characteristic (ROC) curve", Radiology 143(1), 1982, https://doi.org/10.1148/radiology.143.1.7063747.

    Args:
        auc: The AUC, in ``[0, 1]``.
        n_positive: Positives (members), an int ``>= 1``.
        n_negative: Negatives (non-members), an int ``>= 1``.
        confidence: Two-sided confidence, in ``(0, 1)``.

    Returns:
        ``(low, high)`` around ``auc``.
    """
    from scipy import stats

    owner = "auc_interval"
    n1 = check_int(n_positive, "n_positive", owner, low=1)
    n2 = check_int(n_negative, "n_negative", owner, low=1)
    alpha = 1.0 - check_fraction(confidence, "confidence", owner)
    a = min(1.0, max(0.0, float(auc)))
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    variance = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)
    half = float(stats.norm.ppf(1 - alpha / 2)) * math.sqrt(max(variance, 0.0))
    return max(0.0, a - half), min(1.0, a + half)


def min_negatives(fpr: float) -> int:
    """The fewest negatives that can measure a false-positive rate of ``fpr``: ``ceil(1 / fpr)``.

    With fewer, one false positive already exceeds ``fpr``. ``fpr`` must be in ``(0, 1]``.
    """
    rate = float(fpr)
    if not 0.0 < rate <= 1.0:
        raise invalid_parameter("fpr", "min_negatives", "a float in (0, 1]", fpr)
    # 1 / 0.001 is 1000.0000000000001 in floating point; the rounding keeps it at 1000.
    return math.ceil(round(1.0 / rate, 9))


def fpr_measurable(fpr: float, n_negative: int) -> bool:
    """Whether ``n_negative`` negatives can measure a false-positive rate ``fpr`` (:func:`min_negatives`)."""
    return float(fpr) > 0.0 and n_negative >= min_negatives(fpr)


def interval_text(interval: tuple[float, float] | list[float], spec: str = ".1%") -> str:
    """An interval as ``"[12.3%, 45.6%]"`` (or in another format ``spec``)."""
    low, high = interval
    return f"[{format(low, spec)}, {format(high, spec)}]"
