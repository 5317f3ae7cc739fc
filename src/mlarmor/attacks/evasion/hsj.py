"""HopSkipJump: a decision-based attack that walks along the decision boundary, L2 and L∞."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike

from mlarmor._validation import check_int, check_positive
from mlarmor.attacks import _checks
from mlarmor.attacks._geometry import Norm, clip_bounds, lp_norms, per_sample
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation
from mlarmor.attacks.registry import register
from mlarmor.targets.base import Capability, Differentiable, Target

__all__ = ["BoundaryResult", "HopSkipJump"]


class BoundaryResult(NamedTuple):
    """Minimum-norm adversarial examples found by :meth:`HopSkipJump.minimize`, without a budget.

    Attributes:
        x_adv: The closest adversarial input found per sample (the input itself where none was
            found or the sample was misclassified from the start).
        found: Whether ``x_adv`` is misclassified (``False`` where no adversarial input was found).
        norms: ``||x_adv - x||`` in the attack's norm (``inf`` where none was found, 0 where the
            sample was misclassified from the start), float64.
        queries: Model evaluations per sample, the clean prediction included.
    """

    x_adv: np.ndarray
    found: np.ndarray
    norms: np.ndarray
    queries: np.ndarray


@register("hopskipjump")
@dataclass(frozen=True, kw_only=True, slots=True)
class HopSkipJump(FixedBudgetAttack):
    """Decision-based attack: boundary search, gradient-direction estimate from labels, geometric steps.

    Per sample: a uniformly random input that is misclassified is blended towards the clean one
    until the boundary (binary search); then each of ``n_iter`` iterations estimates the direction
    of the boundary's normal from the labels of ``init_evals * sqrt(t)`` random points around the
    current boundary point (at most ``max_evals``), steps along it (its sign for L∞) with a size
    ``dist / sqrt(t)`` halved until the step stays adversarial, and binary-searches back to the
    boundary towards the clean input, which shrinks the distance. Everything is batched over the
    samples; a sample stops when it runs out of queries, or, with a budget ε, as soon as its
    boundary point is within ε (the base class then keeps it as it is). A sample whose closest
    point is farther than ε comes back projected onto the ε-ball, which usually is not adversarial:
    success is counted only within ε. :meth:`minimize` returns the distances themselves.

    Queries: ``max_queries`` is the per-sample budget of one ε, counting the base class's clean
    prediction and final check.

    Reference:
        Chen, Jordan and Wainwright, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack",
        IEEE S&P 2020. https://arxiv.org/abs/1904.02144

    Threat model:
        Decision-based black-box evasion (MITRE ATLAS AML.T0043.001, OWASP ML01): the attacker
        sees only the predicted label of inputs it submits, has ``max_queries`` queries per input,
        and changes each input by at most ``eps`` in ``norm`` within the bounds (untargeted).

    Attributes:
        max_queries: Query budget per sample and ε (at least 3).
        n_iter: Gradient-estimate iterations.
        init_evals: Label queries of the first gradient estimate (``init_evals * sqrt(t)`` at
            iteration ``t``).
        max_evals: Cap on the label queries of one gradient estimate.
        gamma: Sets the binary search's tolerance ``theta = gamma / d^1.5`` (L2) or
            ``gamma / d^2`` (L∞) for ``d`` features.
        init_tries: Random inputs drawn per sample to find a first misclassified one.
    """

    capability: ClassVar[Capability] = "labels"

    max_queries: int = 5000
    n_iter: int = 40
    init_evals: int = 100
    max_evals: int = 10000
    gamma: float = 1.0
    init_tries: int = 100

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_int(self.max_queries, "max_queries", owner, low=3)
        check_int(self.n_iter, "n_iter", owner, low=0)
        check_int(self.init_evals, "init_evals", owner)
        check_int(self.max_evals, "max_evals", owner)
        object.__setattr__(self, "gamma", check_positive(self.gamma, "gamma", owner))
        check_int(self.init_tries, "init_tries", owner)

    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        x_adv, _, queries = _Search(self, target, x, y, generator, self.max_queries - 2).run(eps)
        return Perturbation(x_adv, queries)

    def minimize(self, target: Target, x: ArrayLike, y: ArrayLike) -> BoundaryResult:
        """Search the closest adversarial input of every sample within ``max_queries``, with no ε.

        Samples the target already misclassifies are returned unchanged at distance 0.

        Raises:
            UnsupportedModelError: If the target does not offer labels.
            InvalidParameterError: If ``x`` or ``y`` are invalid for the target.
        """
        owner = type(self).__name__
        checked = _checks.check_capability(self, target)
        xs, ys = _checks.check_data(owner, checked, x, y)
        device = checked.device if isinstance(checked, Differentiable) else torch.device("cpu")
        generator = torch.Generator(device=device)
        generator.manual_seed(self.seed)
        n = xs.shape[0]
        out_x = xs.astype(np.float32, copy=True)
        found = np.zeros(n, dtype=bool)
        queries = np.zeros(n, dtype=np.int64)
        for start in range(0, n, self.batch_size):
            rows = slice(start, start + self.batch_size)
            xb = torch.from_numpy(out_x[rows].copy()).to(device)
            yb = torch.from_numpy(ys[rows]).to(device)
            clean = _labels(checked, xb)
            queries[rows] = 1
            wrong = (clean != yb).cpu().numpy()
            found[rows] = wrong
            todo = (clean == yb).nonzero().squeeze(1)
            if todo.numel() == 0:
                continue
            search = _Search(self, checked, xb[todo], yb[todo], generator, self.max_queries - 1)
            adv, ok, spent = search.run(None)
            idx = todo.cpu().numpy() + start
            out_x[idx] = adv.cpu().numpy()
            found[idx] = ok.cpu().numpy()
            queries[idx] += spent.cpu().numpy()
        delta = (out_x.astype(np.float64) - xs.astype(np.float64)).reshape(n, -1)
        norms = np.abs(delta).max(axis=1) if self.norm == "linf" else np.linalg.norm(delta, axis=1)
        norms = np.where(found, norms, np.inf)
        return BoundaryResult(out_x.astype(xs.dtype, copy=False), found, norms, queries)


def _labels(target: Target, x: torch.Tensor) -> torch.Tensor:
    labels = np.asarray(target.predict(x.detach().cpu().numpy()), dtype=np.int64)
    return torch.from_numpy(labels).to(x.device)


class _Search:
    """The state of one HopSkipJump run over a batch of correctly classified samples."""

    def __init__(
        self,
        attack: HopSkipJump,
        target: Target,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        budget: int,
    ) -> None:
        self.attack, self.target, self.x, self.y, self.gen = attack, target, x, y, generator
        self.norm: Norm = attack.norm
        self.bounds = target.bounds
        self.budget = budget
        self.queries = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        d = math.prod(x.shape[1:])
        self.d = d
        self.theta = attack.gamma / (d * math.sqrt(d)) if self.norm == "l2" else attack.gamma / d**2

    def left(self, rows: torch.Tensor) -> torch.Tensor:
        return self.budget - self.queries[rows]

    def is_adv(self, rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Labels of one candidate per row (one query each): ``True`` where misclassified."""
        self.queries[rows] += 1
        return _labels(self.target, x) != self.y[rows]

    def dist(self, rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return lp_norms(x - self.x[rows], self.norm)

    def run(self, eps: float | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_adv, found, queries)``; with ``eps`` a sample stops once its boundary point is within it."""
        n = self.x.shape[0]
        adv, found = self.initialize()
        rows = found.nonzero().squeeze(1)
        if rows.numel() > 0:
            adv[rows] = self.binary_search(rows, adv[rows])
        dist = torch.full((n,), math.inf, dtype=self.x.dtype, device=self.x.device)
        dist[rows] = self.dist(rows, adv[rows])
        scale = self.bounds[1] - self.bounds[0]
        for t in range(1, self.attack.n_iter + 1):
            active = found & (self.queries < self.budget)
            if eps is not None:
                active &= dist > eps
            rows = active.nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            delta = (
                torch.full((rows.numel(),), 0.1 * scale, dtype=self.x.dtype, device=self.x.device)
                if t == 1
                else self.attack.gamma / self.d * dist[rows]  # sqrt(d)·theta·dist (L2), d·theta·dist (L∞)
            )
            evals = min(int(self.attack.init_evals * math.sqrt(t)), self.attack.max_evals)
            grad = self.estimate_gradient(rows, adv[rows], delta, evals)
            rows_ok = (grad.flatten(1).abs().sum(dim=1) > 0) & (self.left(rows) > 0)
            rows, grad = rows[rows_ok], grad[rows_ok]
            if rows.numel() == 0:
                continue
            update = grad.sign() if self.norm == "linf" else grad
            moved, stepped = self.geometric_step(rows, adv[rows], update, dist[rows] / math.sqrt(t))
            rows, moved = rows[stepped], moved[stepped]
            if rows.numel() == 0:
                continue
            adv[rows] = self.binary_search(rows, moved)
            dist[rows] = self.dist(rows, adv[rows])
        return adv, found, self.queries

    def initialize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A misclassified uniform-noise input per sample, blended towards the clean one (tolerance 1e-3)."""
        n = self.x.shape[0]
        low, high = self.bounds
        adv = self.x.clone()
        found = torch.zeros(n, dtype=torch.bool, device=self.x.device)
        for _ in range(self.attack.init_tries):
            rows = (~found & (self.queries < self.budget)).nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            noise = low + (high - low) * torch.rand(
                (rows.numel(), *self.x.shape[1:]),
                generator=self.gen,
                dtype=self.x.dtype,
                device=self.x.device,
            )
            ok = self.is_adv(rows, noise)
            adv[rows[ok]] = noise[ok]
            found[rows[ok]] = True
        rows = found.nonzero().squeeze(1)
        lo = torch.zeros(rows.numel(), dtype=self.x.dtype, device=self.x.device)
        hi = torch.ones_like(lo)
        noise = adv[rows]
        while True:
            busy = ((hi - lo) > 1e-3) & (self.left(rows) > 0)
            if not busy.any():
                break
            r = rows[busy]
            mid = (hi[busy] + lo[busy]) / 2
            blended = self._blend(self.x[r], noise[busy], mid)
            ok = self.is_adv(r, blended)
            hi[busy] = torch.where(ok, mid, hi[busy])
            lo[busy] = torch.where(ok, lo[busy], mid)
        adv[rows] = self._blend(self.x[rows], noise, hi)
        return adv, found

    def _blend(self, x: torch.Tensor, other: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        a = per_sample(alpha, x)
        return (1 - a) * x + a * other

    def _towards(self, x: torch.Tensor, adv: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """The point at ``alpha`` between ``x`` and ``adv``: a blend (L2) or a box clip (L∞)."""
        if self.norm == "l2":
            return self._blend(x, adv, alpha)
        a = per_sample(alpha, x)
        return torch.minimum(torch.maximum(adv, x - a), x + a)

    def binary_search(self, rows: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
        """Move each adversarial ``adv`` to the boundary towards its clean input (tolerance ``theta``)."""
        x = self.x[rows]
        if self.norm == "linf":
            hi = lp_norms(adv - x, "linf")
            tol = torch.clamp(hi * self.theta, max=self.theta)
        else:
            hi = torch.ones(rows.numel(), dtype=x.dtype, device=x.device)
            tol = torch.full_like(hi, self.theta)
        lo = torch.zeros_like(hi)
        while True:
            busy = ((hi - lo) > tol) & (self.left(rows) > 0)
            if not busy.any():
                break
            mid = (hi[busy] + lo[busy]) / 2
            ok = self.is_adv(rows[busy], self._towards(x[busy], adv[busy], mid))
            hi[busy] = torch.where(ok, mid, hi[busy])
            lo[busy] = torch.where(ok, lo[busy], mid)
        return self._towards(x, adv, hi)

    def estimate_gradient(
        self, rows: torch.Tensor, adv: torch.Tensor, delta: torch.Tensor, evals: int
    ) -> torch.Tensor:
        """Monte-Carlo estimate of the boundary normal at ``adv`` from ``evals`` labels per sample.

        A sample with fewer queries left uses fewer points; the baseline (mean label) is
        subtracted, as in the paper, unless all labels agree.
        """
        m = rows.numel()
        k = torch.clamp(self.left(rows), max=evals)
        shape = (m, evals, *adv.shape[1:])
        if self.norm == "l2":
            rv = torch.randn(shape, generator=self.gen, dtype=adv.dtype, device=adv.device)
        else:
            rv = torch.rand(shape, generator=self.gen, dtype=adv.dtype, device=adv.device) * 2 - 1
        flat = rv.flatten(2)
        rv = (flat / flat.norm(dim=2, keepdim=True).clamp_min(1e-12)).reshape(shape)
        dl = delta.reshape((m, 1) + (1,) * (adv.dim() - 1))
        probes = clip_bounds(adv.unsqueeze(1) + dl * rv, self.bounds)
        rv = (probes - adv.unsqueeze(1)) / dl
        valid = torch.arange(evals, device=adv.device)[None] < k[:, None]
        owner = rows.unsqueeze(1).expand(m, evals)[valid]
        labels = _labels(self.target, probes[valid])
        self.queries += torch.bincount(owner, minlength=self.queries.numel())
        f = torch.zeros((m, evals), dtype=adv.dtype, device=adv.device)
        f[valid] = (labels != self.y[owner]).to(adv.dtype) * 2 - 1
        count = k.clamp_min(1).to(adv.dtype)
        mean_f = f.sum(dim=1) / count
        agree = mean_f.abs() == 1
        weights = torch.where(agree[:, None], mean_f[:, None], f - mean_f[:, None]) * valid
        grad = (weights.reshape(m, evals, *(1,) * (adv.dim() - 1)) * rv).sum(dim=1)
        grad = grad / per_sample(count, grad)
        norms = lp_norms(grad, "l2")
        return grad / per_sample(norms.clamp_min(1e-12), grad)

    def geometric_step(
        self, rows: torch.Tensor, adv: torch.Tensor, update: torch.Tensor, size: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step ``size`` along ``update``, halved until the step stays adversarial (at most 25 halvings)."""
        done = torch.zeros(rows.numel(), dtype=torch.bool, device=adv.device)
        size = size.clone()
        moved = adv.clone()
        for _ in range(25):
            busy = ~done & (self.left(rows) > 0)
            if not busy.any():
                break
            cand = clip_bounds(adv[busy] + per_sample(size[busy], adv[busy]) * update[busy], self.bounds)
            ok = self.is_adv(rows[busy], cand)
            idx = busy.nonzero().squeeze(1)
            moved[idx[ok]] = cand[ok]
            done[idx[ok]] = True
            size[idx[~ok]] /= 2
        return moved, done
