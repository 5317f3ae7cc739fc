"""Kernels of the Square attack: the p-schedule, window sizes and masks, and the L2 patterns (private).

Inputs are viewed as ``(n, c, h, w)``: images ``(c, h, w)`` as they are, ``(h, w)`` as one channel,
and a flat feature vector ``(d,)`` as ``(1, 1, d)``. On a flat vector a "square" is a contiguous
window of features whose length is the same fraction ``p`` of the input as the square's area is
of an image (the attack's locality prior is meaningless on tabular columns, but a contiguous
window keeps the search identical in both cases and costs one query per step all the same).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "as_planes",
    "meta_pattern",
    "p_schedule",
    "place",
    "pseudo_gaussian",
    "window_mask",
    "window_shape",
]


def as_planes(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(c, h, w)`` view of one input's shape: images as is, flat vectors as ``(1, 1, d)``."""
    if len(shape) == 1:
        return 1, 1, shape[0]
    return math.prod(shape[:-2]), shape[-2], shape[-1]


def p_schedule(p_init: float, it: int, n_queries: int) -> float:
    """Fraction of the input changed at iteration ``it``: ``p_init`` halved at fixed points.

    The breakpoints (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10 000) are those of
    Andriushchenko et al., rescaled to a budget of ``n_queries``.
    """
    i = int(it / n_queries * 10000)
    for k, point in enumerate((10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)):
        if i <= point:
            return p_init / float(2**k)
    return p_init / 512


def window_shape(
    p: float, c: int, h: int, w: int, *, min_side: int = 1, odd: bool = False
) -> tuple[int, int]:
    """Window ``(sh, sw)`` covering about a fraction ``p`` of each channel, strictly smaller than it."""
    if h == 1:
        s = round(p * w)
        upper = max(w - 1, 1)
    else:
        s = round(math.sqrt(p * h * w))
        upper = max(min(h, w) - 1, 1)
    s = max(s, min_side)
    if odd and s % 2 == 0:
        s += 1
    s = min(s, upper)
    return (1, s) if h == 1 else (s, s)


def window_mask(
    n: int, h: int, w: int, size: tuple[int, int], generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A window of ``size`` at a uniformly random place per sample: ``(mask (n,1,h,w), top, left)``."""
    sh, sw = size
    top = torch.randint(0, h - sh + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, w - sw + 1, (n,), generator=generator, device=device)
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + sh)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + sw)
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    return mask[:, None], top, left


def place(pattern: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``pattern (sh, sw)`` written at ``(top, left)`` of each sample's ``(h, w)`` plane, zero elsewhere."""
    sh, sw = pattern.shape
    rows = torch.arange(h, device=top.device)[None] - top[:, None]
    cols = torch.arange(w, device=left.device)[None] - left[:, None]
    inside = ((rows >= 0) & (rows < sh))[:, :, None] & ((cols >= 0) & (cols < sw))[:, None, :]
    values = pattern[rows.clamp(0, sh - 1)[:, :, None], cols.clamp(0, sw - 1)[:, None, :]]
    return torch.where(inside, values, torch.zeros((), dtype=pattern.dtype, device=pattern.device))[:, None]


def pseudo_gaussian(a: int, b: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Unit-norm ``(a, b)`` bump: nested rectangles around the centre weighted ``1 / (k + 1)^2``."""
    delta = torch.zeros((a, b), dtype=dtype, device=device)
    ca, cb = a // 2, b // 2
    for k in range(max(ca, cb) + 1):
        delta[max(ca - k, 0) : min(ca - k + 2 * k + 1, a), max(cb - k, 0) : min(cb - k + 2 * k + 1, b)] += (
            1.0 / (k + 1) ** 2
        )
    unit: torch.Tensor = delta / delta.norm()
    return unit


def meta_pattern(
    a: int, b: int, generator: torch.Generator, *, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The L2 update of Square: two opposite bumps side by side, unit norm, shape ``(a, b)``.

    The window is split along its longer side (along a random side when it is a square).
    """
    transpose = bool(torch.rand((), generator=generator, device=device) > 0.5) if a == b else a < b
    if transpose:
        return _split_rows(b, a, dtype=dtype, device=device).T.contiguous()
    return _split_rows(a, b, dtype=dtype, device=device)


def _split_rows(a: int, b: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if a < 2:
        return torch.ones((a, b), dtype=dtype, device=device) / math.sqrt(a * b)
    half = a // 2
    top = pseudo_gaussian(half, b, dtype=dtype, device=device)
    bottom = -pseudo_gaussian(a - half, b, dtype=dtype, device=device)
    delta = torch.cat([top, bottom], dim=0)
    unit: torch.Tensor = delta / delta.norm()
    return unit
