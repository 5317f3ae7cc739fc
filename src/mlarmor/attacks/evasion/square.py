"""The Square attack: score-based random search over localized square updates, L∞ and L2."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from mlarmor._validation import check_float, check_int
from mlarmor.attacks._geometry import clip_bounds, lp_norms, per_sample
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation
from mlarmor.attacks.evasion import _square_kernels as sk
from mlarmor.attacks.registry import register
from mlarmor.targets.base import Capability, Target

__all__ = ["Square"]

_DEFAULT_P_INIT = {"linf": 0.8, "l2": 0.1}


@register("square")
@dataclass(frozen=True, kw_only=True, slots=True)
class Square(FixedBudgetAttack):
    """Random search that changes one small window of the input at a time, using only class scores.

    It starts at a corner of the ε-ball (L∞: vertical stripes of ``±eps``; L2: a grid of
    pseudo-Gaussian bumps of random signs, rescaled to norm ``eps``) and then, at every iteration,
    proposes a change of one random window per sample (L∞: the window set to ``±eps`` per channel;
    L2: mass moved from a second window into a pseudo-Gaussian pattern in the first, keeping the
    total norm at ``eps``). A proposal is kept when it lowers the margin
    ``log p_y - max_{k != y} log p_k`` (the logit margin for softmax models). The window covers a
    fraction ``p`` of the input that starts at ``p_init`` and is halved on the published schedule,
    rescaled to ``n_queries``. Each iteration is one batched query for the samples not yet fooled;
    a sample stops as soon as its margin is negative.

    Inputs of shape ``(c, h, w)`` are searched as images. A flat feature vector ``(d,)`` is seen as
    ``(1, 1, d)`` and its "square" is a contiguous window of features covering the same fraction
    ``p`` (see :mod:`mlarmor.attacks.evasion._square_kernels`).

    Queries: ``n_queries`` is the per-sample budget of one ε, counting the base class's clean
    prediction and final check, so ``result.queries <= n_queries`` for a single ε (several ε in one
    call add up for the samples that survive the smaller ones).

    Reference:
        Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient black-box
        adversarial attack via random search", ECCV 2020. https://arxiv.org/abs/1912.00049

    Threat model:
        Score-based black-box evasion (MITRE ATLAS AML.T0043.001, OWASP ML01): the attacker sees
        the class probabilities of any input it submits, has ``n_queries`` queries per input, and
        changes each input by at most ``eps`` in ``norm`` within the bounds (untargeted).

    Attributes:
        n_queries: Query budget per sample and ε (at least 3: clean prediction, one proposal,
            final check).
        p_init: Initial fraction of the input changed per step; ``None`` means 0.8 for L∞
            (AutoAttack's setting) and 0.1 for L2 (the paper's L2 setting).
    """

    capability: ClassVar[Capability] = "scores"

    n_queries: int = 5000
    p_init: float | None = None

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_int(self.n_queries, "n_queries", owner, low=3)
        if self.p_init is not None:
            object.__setattr__(
                self, "p_init", check_float(self.p_init, "p_init", owner, low=0.0, low_open=True, high=1.0)
            )

    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        p_init = self.p_init if self.p_init is not None else _DEFAULT_P_INIT[self.norm]
        n = x.shape[0]
        shape = tuple(x.shape[1:])
        c, h, w = sk.as_planes(shape)
        x4 = x.reshape(n, c, h, w)
        bounds = target.bounds
        budget = self.n_queries - 2  # the base class spends one query before and one after
        init = _linf_init if self.norm == "linf" else _l2_init
        best = clip_bounds(x4 + init(x4, eps, generator), bounds)
        margin = _margins(target, best, y, shape)
        queries = torch.ones(n, dtype=torch.int64, device=x.device)
        step = _linf_step if self.norm == "linf" else _l2_step
        for it in range(1, budget):
            todo = (margin >= 0).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            p = sk.p_schedule(p_init, it, self.n_queries)
            x0, cur = x4[todo], best[todo]
            cand = step(x0, cur, eps, p, bounds, generator)
            new = _margins(target, cand, y[todo], shape)
            queries[todo] += 1
            better = new < margin[todo]
            keep = todo[better]
            best[keep] = cand[better]
            margin[keep] = new[better]
        return Perturbation(best.reshape(x.shape), queries)


def _margins(target: Target, x: torch.Tensor, y: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``log p_y - max_{k != y} log p_k`` per sample (float64): negative once misclassified.

    ``x`` is seen as planes ``(n, c, h, w)``; ``shape`` is one input's shape for the target.
    """
    scores = np.asarray(target.predict_proba(x.reshape((x.shape[0], *shape)).cpu().numpy()))
    logp = torch.from_numpy(scores.astype(np.float64, copy=False)).to(x.device).clamp_min(1e-300).log()
    true = logp.gather(1, y.unsqueeze(1)).squeeze(1)
    others = logp.scatter(1, y.unsqueeze(1), float("-inf")).amax(dim=1)
    return true - others


def _linf_init(x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """Vertical stripes: one random sign per sample, channel and column."""
    n, c, _, w = x.shape
    signs = torch.randint(0, 2, (n, c, 1, w), generator=generator, device=x.device).to(x.dtype) * 2 - 1
    return eps * signs.expand_as(x)


def _linf_step(
    x: torch.Tensor,
    best: torch.Tensor,
    eps: float,
    p: float,
    bounds: tuple[float, float],
    generator: torch.Generator,
) -> torch.Tensor:
    """Set one random window per sample to ``±eps`` per channel; redraw if it would change nothing."""
    n, c, h, w = x.shape
    size = sk.window_shape(p, c, h, w)
    mask, _, _ = sk.window_mask(n, h, w, size, generator, x.device)
    delta = best - x
    cand = best
    redo = torch.ones(n, dtype=torch.bool, device=x.device)
    for _ in range(8):  # a window equal to the current one wastes a query; a few redraws avoid it
        signs = torch.randint(0, 2, (n, c, 1, 1), generator=generator, device=x.device).to(x.dtype) * 2 - 1
        proposal = clip_bounds(x + torch.where(mask, eps * signs, delta), bounds)
        cand = torch.where(per_sample(redo, cand), proposal, cand)
        redo = ((cand - best).abs() < 1e-7).flatten(1).all(dim=1)
        if not redo.any():
            break
    return cand


def _l2_init(x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """A grid of pseudo-Gaussian bumps (about 5x5 per image) with random signs, rescaled to norm ``eps``."""
    n, c, h, w = x.shape
    bh, bw = (1, max(w // 25, 1)) if h == 1 else (max(h // 5, 1), max(w // 5, 1))
    gh, gw = math.ceil(h / bh), math.ceil(w / bw)
    pattern = sk.meta_pattern(bh, bw, generator, dtype=x.dtype, device=x.device)
    tiled = pattern.repeat(gh, gw)[:h, :w]
    signs = torch.randint(0, 2, (n, c, gh, gw), generator=generator, device=x.device).to(x.dtype) * 2 - 1
    signs = signs.repeat_interleave(bh, dim=2).repeat_interleave(bw, dim=3)[:, :, :h, :w]
    delta = tiled * signs
    return delta * per_sample(eps / lp_norms(delta, "l2").clamp_min(1e-12), delta)


def _l2_step(
    x: torch.Tensor,
    best: torch.Tensor,
    eps: float,
    p: float,
    bounds: tuple[float, float],
    generator: torch.Generator,
) -> torch.Tensor:
    """Move the perturbation's mass of a second window into a new pattern in a first one; norm ``eps``."""
    n, c, h, w = x.shape
    size = sk.window_shape(p, c, h, w, min_side=3, odd=True)
    mask1, top, left = sk.window_mask(n, h, w, size, generator, x.device)
    mask2, _, _ = sk.window_mask(n, h, w, size, generator, x.device)
    delta = best - x
    zero = torch.zeros((), dtype=x.dtype, device=x.device)

    def plane_norms(t: torch.Tensor) -> torch.Tensor:
        return t.pow(2).sum(dim=(2, 3), keepdim=True).sqrt()

    in_window = torch.where(mask1, delta, zero)
    norm_window = plane_norms(in_window)
    norm_total = per_sample(lp_norms(delta, "l2"), delta)
    norm_both = plane_norms(torch.where(mask1 | mask2, delta, zero))
    pattern = sk.meta_pattern(*size, generator, dtype=x.dtype, device=x.device)
    signs = torch.randint(0, 2, (n, c, 1, 1), generator=generator, device=x.device).to(x.dtype) * 2 - 1
    new = sk.place(pattern, top, left, h, w) * signs + in_window / (1e-10 + norm_window)
    room = ((eps**2 - norm_total**2).clamp_min(0.0) / c + norm_both**2).sqrt()
    new = new / plane_norms(new).clamp_min(1e-12) * room
    delta = torch.where(mask1, new, torch.where(mask2, zero, delta))
    delta = delta * per_sample(eps / lp_norms(delta, "l2").clamp_min(1e-12), delta)
    return clip_bounds(x + delta, bounds)
