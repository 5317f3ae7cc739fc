"""Membership signals: per-example numbers computed from a model's outputs on labelled inputs.

Every membership attack scores from these, computed once from the outputs of the target and of the
reference models (logits or probabilities ``(n, C)`` and labels ``(n,)``). All functions are
vectorised, work in float64 and never produce infinities: probabilities are clipped to
``[1e-30, 1]`` before a log, as in Song and Mittal's reference code.

Conventions: for :func:`confidence` and :func:`logit_confidence` a **higher** value means "more
likely a member"; :func:`loss`, :func:`entropy` and :func:`modified_entropy` are **lower** for
members (attacks negate them).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Signal",
    "confidence",
    "entropy",
    "logit_confidence",
    "loss",
    "member_score",
    "modified_entropy",
    "probabilities",
]

Signal = Literal["loss", "confidence", "entropy", "modified-entropy", "logit"]
"""Names of the signals a threshold attack can use."""

_TINY = 1e-30
_HIGHER_IS_MEMBER: dict[Signal, bool] = {
    "loss": False,
    "confidence": True,
    "entropy": False,
    "modified-entropy": False,
    "logit": True,
}


def probabilities(outputs: npt.ArrayLike, *, logits: bool) -> np.ndarray:
    """Class probabilities ``(n, C)`` float64: a stable softmax of ``outputs`` when they are logits."""
    z = np.asarray(outputs, dtype=np.float64)
    if not logits:
        p = np.clip(z, 0.0, None)
        normalised: np.ndarray = p / np.clip(p.sum(axis=1, keepdims=True), _TINY, None)
        return normalised
    e = np.exp(z - z.max(axis=1, keepdims=True))
    soft: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return soft


def _true(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    out: np.ndarray = p[np.arange(len(y)), y]
    return out


def confidence(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The probability of the true class, ``p_y``."""
    return _true(p, y)


def loss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy ``-log p_y`` (Yeom et al. 2018)."""
    out: np.ndarray = -np.log(np.clip(_true(p, y), _TINY, 1.0))
    return out


def entropy(p: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Prediction entropy ``-sum_i p_i log p_i`` (the label is not used)."""
    out: np.ndarray = -(p * np.log(np.clip(p, _TINY, 1.0))).sum(axis=1)
    return out


def modified_entropy(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Song and Mittal's modified entropy ``-(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)``.

    Zero for a confident correct prediction, large for a confident wrong one: it combines the
    entropy and the correctness of the prediction (Song and Mittal, USENIX Security 2021).
    """
    n = len(y)
    py = _true(p, y)
    own = -(1.0 - py) * np.log(np.clip(py, _TINY, 1.0))
    others = -p * np.log(np.clip(1.0 - p, _TINY, 1.0))
    others[np.arange(n), y] = 0.0
    out: np.ndarray = own + others.sum(axis=1)
    return out


def logit_confidence(outputs: npt.ArrayLike, y: np.ndarray, *, logits: bool) -> np.ndarray:
    """LiRA's logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` (Carlini et al. 2022).

    From logits it is computed exactly as ``z_y - logsumexp_{j != y} z_j``, with no clipping, so it
    stays finite and informative for very confident predictions; from probabilities as
    ``log(p_y) - log(sum_{j != y} p_j)`` with both terms clipped at 1e-30.
    """
    z = np.asarray(outputs, dtype=np.float64)
    n = len(y)
    rows = np.arange(n)
    if logits:
        others = z.copy()
        others[rows, y] = -np.inf
        top = others.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(others - top).sum(axis=1))
        out: np.ndarray = z[rows, y] - lse
        return out
    p = probabilities(z, logits=False)
    py = p[rows, y]
    rest = p.sum(axis=1) - py
    phi: np.ndarray = np.log(np.clip(py, _TINY, None)) - np.log(np.clip(rest, _TINY, None))
    return phi


def member_score(signal: Signal, outputs: npt.ArrayLike, y: np.ndarray, *, logits: bool) -> np.ndarray:
    """The signal oriented so that a **higher** score means "more likely a member"."""
    if signal == "logit":
        return logit_confidence(outputs, y, logits=logits)
    p = probabilities(outputs, logits=logits)
    value = {
        "loss": loss,
        "confidence": confidence,
        "entropy": entropy,
        "modified-entropy": modified_entropy,
    }[signal](p, y)
    return value if _HIGHER_IS_MEMBER[signal] else -value
