"""Auto-PGD (APGD): PGD with momentum and a step size that adapts itself, with CE and DLR losses."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar, Literal, cast

import torch

from mlarmor._validation import check_choice, check_int
from mlarmor.attacks._geometry import Norm, clip_bounds, lp_norms, per_sample, project
from mlarmor.attacks.base import FixedBudgetAttack, Perturbation
from mlarmor.attacks.evasion._kernels import ce_loss, normalize_l2
from mlarmor.attacks.evasion.pgd import _Best
from mlarmor.attacks.registry import register
from mlarmor.errors import InvalidParameterError, invalid_parameter
from mlarmor.targets.base import Capability, Differentiable, Target

__all__ = ["APGD", "APGDT", "ApgdLoss", "dlr_loss", "dlr_targeted_loss", "step_checkpoints"]

ApgdLoss = Literal["ce", "dlr", "dlr-targeted"]
"""Loss maximised by APGD: cross-entropy, the difference of logits ratio, or its targeted version."""

MOMENTUM = 0.75
"""Weight alpha of the new gradient step against the previous move (Croce and Hein, Sec. 3.2)."""
RHO = 0.75
"""Condition 1 halves the step when fewer than this share of the last window's steps raised the loss."""
_P1, _DECAY, _MIN_PERIOD = 22, 3, 6
"""Checkpoint schedule in hundredths: p_1 = 0.22, periods shrink by 0.03 down to 0.06."""


def step_checkpoints(n_iter: int) -> tuple[int, ...]:
    """The iterations ``w_j = ceil(p_j * n_iter)`` where APGD may halve its step.

    ``p_0 = 0``, ``p_1 = 0.22`` and ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``, for every
    ``p_j < 1``. Computed in integer hundredths, so ``0.41 * 100`` is exactly 41. ``w_0 = 0`` is
    included; repeated values (tiny ``n_iter``) are kept once.
    """
    p = [0, _P1]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - _DECAY, _MIN_PERIOD)
        if nxt >= 100:
            break
        p.append(nxt)
    points: list[int] = []
    for pj in p:
        w = -(-pj * n_iter // 100)
        if not points or w > points[-1]:
            points.append(w)
    return tuple(points)


def _sorted_logits(logits: torch.Tensor) -> torch.Tensor:
    return logits.sort(dim=1).values


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of logits ratio ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)`` per sample ``(n,)``.

    ``z_pi1 >= z_pi2 >= ...`` are the sorted logits. Invariant to shifting and rescaling the logits,
    so it cannot be defeated by a large logit scale; needs at least 3 classes. Positive once fooled.
    """
    zs = _sorted_logits(logits)
    true = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    top_is_true = logits.argmax(dim=1) == y
    best_other = torch.where(top_is_true, zs[:, -2], zs[:, -1])
    return -(true - best_other) / (zs[:, -1] - zs[:, -3] + 1e-12)


def dlr_targeted_loss(logits: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Targeted DLR ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` per sample; needs 4 classes."""
    zs = _sorted_logits(logits)
    true = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    aim = logits.gather(1, t.unsqueeze(1)).squeeze(1)
    return -(true - aim) / (zs[:, -1] - 0.5 * (zs[:, -3] + zs[:, -4]) + 1e-12)


def _sphere_start(
    x: torch.Tensor,
    eps: float,
    norm: Norm,
    generator: torch.Generator,
    bounds: tuple[float, float],
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """APGD's random start: a random point on the boundary of the ε-ball, clipped to bounds.

    L∞: uniform noise in [-1, 1] rescaled so that its largest coordinate is ``eps``; L2: a Gaussian
    direction of length ``eps`` (as in the reference implementation). With ``mask`` (0 on immutable
    features) the noise lives on the mutable features only.
    """
    if norm == "linf":
        t = 2.0 * torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) - 1.0
    else:
        t = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    if mask is not None:
        t = t * mask.to(t.dtype)
    scale = eps / lp_norms(t, norm).clamp_min(1e-12)
    return clip_bounds(x + t * per_sample(scale, t), bounds)


_MIN_CLASSES = {"ce": 2, "dlr": 3, "dlr-targeted": 4}


@register("apgd")
@dataclass(frozen=True, kw_only=True, slots=True)
class APGD(FixedBudgetAttack):
    """Auto-PGD: PGD with momentum whose step size halves itself when progress stalls.

    From a random point on the ε-sphere, the first step is ``2 * eps`` along the gradient's sign (L∞)
    or the unit gradient (L2); later iterates mix the new step with the previous move (momentum
    ``alpha = 0.75``). At the checkpoints ``w_j`` of :func:`step_checkpoints` the step is halved and the
    iterate restarts from the best point so far when (1) fewer than ``rho = 0.75`` of the window's steps
    raised the loss, or (2) the step was not halved at the previous checkpoint and the best loss has
    not improved since. ``n_iter + 1`` forward passes and ``n_iter`` backward passes per run; a
    sample leaves as soon as the model misclassifies it (per-sample early stopping), a sample never
    fooled keeps its highest-loss iterate.

    With ``loss="dlr-targeted"`` (the :class:`APGDT` default) each run aims in turn at the 2nd, 3rd, …
    most likely class of the clean input, ``n_target_classes`` of them (AutoAttack's APGD-T), each
    with ``restarts`` runs; success is still any misclassification.

    Reference:
        Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
        parameter-free attacks", ICML 2020. https://arxiv.org/abs/2003.01690

    Threat model:
        White-box evasion at test time (MITRE ATLAS AML.T0043.000, OWASP ML01): the attacker knows
        the model's gradients and changes each input by at most ``eps`` in ``norm``, within the
        input bounds, to make it misclassified.

    Attributes:
        n_iter: Iterations per run (100 in AutoAttack).
        restarts: Runs from independent random starts (per target class for ``"dlr-targeted"``);
            later runs attack only the samples earlier ones did not fool.
        random_start: Start on the ε-sphere at random instead of at the input.
        loss: ``"ce"`` (cross-entropy), ``"dlr"`` (difference of logits ratio, needs 3 classes) or
            ``"dlr-targeted"`` (needs 4 classes).
        n_target_classes: Target classes tried by ``"dlr-targeted"`` (at most ``num_classes - 1``
            are used).
    """

    capability: ClassVar[Capability] = "gradients"

    n_iter: int = 100
    restarts: int = 1
    random_start: bool = True
    loss: ApgdLoss = "ce"
    n_target_classes: int = 9

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_int(self.n_iter, "n_iter", owner)
        check_int(self.restarts, "restarts", owner)
        if not isinstance(self.random_start, bool):
            raise invalid_parameter("random_start", owner, "a bool", self.random_start)
        if self.restarts > 1 and not self.random_start:
            raise invalid_parameter(
                "restarts",
                owner,
                "1 when random_start is False (every restart would repeat the first)",
                self.restarts,
            )
        check_choice(self.loss, "loss", owner, ("ce", "dlr", "dlr-targeted"))
        check_int(self.n_target_classes, "n_target_classes", owner)

    def supports(self, target: Target) -> bool:
        """DLR needs at least 3 classes, targeted DLR at least 4."""
        return target.num_classes >= _MIN_CLASSES[self.loss]

    def _check_target(self, target: Target) -> None:
        needed = _MIN_CLASSES[self.loss]
        if target.num_classes < needed:
            raise InvalidParameterError(
                f"{type(self).__name__} with loss={self.loss!r} needs a model with at least {needed} "
                f"classes; {target.name!r} has {target.num_classes}. Use loss='ce'."
            )

    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        model = cast(Differentiable, target)
        best = _Best.initial(x)
        targets: list[int | None] = [None]
        ranking: torch.Tensor | None = None
        if self.loss == "dlr-targeted":
            with torch.no_grad():
                ranking = model.logits(x).argsort(dim=1, descending=True)
            best.queries += 1
            targets = list(range(1, min(self.n_target_classes, model.num_classes - 1) + 1))
        for rank in targets:
            for _ in range(self.restarts):
                pos = (~best.fooled).nonzero().squeeze(1)
                if pos.numel() == 0:
                    return Perturbation(best.x, best.queries)
                x0 = x[pos]
                aim = None if ranking is None or rank is None else ranking[pos, rank]
                start = (
                    _sphere_start(
                        x0, eps, self.norm, generator, model.bounds, getattr(model, "mutable_mask", None)
                    )
                    if self.random_start
                    else x0
                )
                self._run(model, x0, y[pos], aim, pos, start, eps, best)
        return Perturbation(best.x, best.queries)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, aim: torch.Tensor | None) -> torch.Tensor:
        if aim is not None:
            return dlr_targeted_loss(logits, y, aim)
        return dlr_loss(logits, y) if self.loss == "dlr" else ce_loss(logits, y)

    def _evaluate(
        self,
        model: Differentiable,
        x: torch.Tensor,
        y: torch.Tensor,
        aim: torch.Tensor | None,
        *,
        need_grad: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss (float64), its gradient (zeros without ``need_grad``) and misclassification at ``x``."""
        xe = x.detach().requires_grad_(need_grad)
        with torch.set_grad_enabled(need_grad):
            logits = model.logits(xe)
            values = self._loss(logits, y, aim)
        grad = torch.autograd.grad(values.sum(), xe)[0] if need_grad else torch.zeros_like(xe)
        return values.detach().to(torch.float64), grad.detach(), logits.detach().argmax(dim=1) != y

    def _run(
        self,
        model: Differentiable,
        x0: torch.Tensor,
        y0: torch.Tensor,
        aim: torch.Tensor | None,
        pos: torch.Tensor,
        start: torch.Tensor,
        eps: float,
        best: _Best,
    ) -> None:
        """One APGD run (Algorithm 1 of the paper) from ``start`` over the rows ``pos`` of ``best``.

        All per-sample state lives in dense tensors aligned with the rows still running; a row the
        model misclassifies is written to ``best`` and dropped from every tensor at once.
        """
        norm, bounds, n_iter = self.norm, model.bounds, self.n_iter
        windows = dict(zip(step_checkpoints(n_iter)[1:], _periods(step_checkpoints(n_iter)), strict=True))

        f_cur, g_cur, adv = self._evaluate(model, start, y0, aim, need_grad=n_iter > 0)
        state: dict[str, torch.Tensor] = {
            "x0": x0, "y": y0, "pos": pos, "x": start.detach(), "g": g_cur, "f": f_cur,
            "prev": start.detach(),
            "eta": torch.full((f_cur.shape[0],), 2.0 * eps, dtype=start.dtype, device=start.device),
            "xmax": start.detach(), "gmax": g_cur, "fmax": f_cur,
            "fmax_last": f_cur, "reduced_last": torch.zeros_like(adv),
            "ups": torch.zeros_like(f_cur),
        }  # fmt: skip
        if aim is not None:
            state["aim"] = aim
        s = _drop_fooled(state, adv, best, evaluations=1)
        for k in range(n_iter):
            if s is None:
                return
            with torch.no_grad():
                x_k, x0k = s["x"], s["x0"]
                direction = s["g"].sign() if norm == "linf" else normalize_l2(s["g"])
                moved = x_k + per_sample(s["eta"], x_k) * direction
                z = clip_bounds(project(moved, x0k, eps, norm), bounds)
                if k > 0:
                    z = x_k + MOMENTUM * (z - x_k) + (1.0 - MOMENTUM) * (x_k - s["prev"])
                    z = clip_bounds(project(z, x0k, eps, norm), bounds)
            f_new, g_new, adv = self._evaluate(model, z, s["y"], s.get("aim"), need_grad=k + 1 < n_iter)
            s["new_x"], s["new_g"], s["new_f"] = z, g_new, f_new
            s = _drop_fooled(s, adv, best, evaluations=k + 2)
            if s is None:
                return
            with torch.no_grad():
                z, g_new, f_new = s.pop("new_x"), s.pop("new_g"), s.pop("new_f")
                better = f_new > s["fmax"]
                s["xmax"] = torch.where(per_sample(better, z), z, s["xmax"])
                s["gmax"] = torch.where(per_sample(better, z), g_new, s["gmax"])
                s["fmax"] = torch.where(better, f_new, s["fmax"])
                if k in windows:
                    few_ups = s["ups"] < RHO * windows[k]
                    stalled = ~s["reduced_last"] & (s["fmax"] <= s["fmax_last"])
                    halve = few_ups | stalled
                    s["eta"] = torch.where(halve, s["eta"] / 2.0, s["eta"])
                    z = torch.where(per_sample(halve, z), s["xmax"], z)
                    g_new = torch.where(per_sample(halve, z), s["gmax"], g_new)
                    f_new = torch.where(halve, s["fmax"], f_new)
                    s["reduced_last"], s["fmax_last"] = halve, s["fmax"]
                    s["ups"] = torch.zeros_like(s["ups"])
                s["ups"] = s["ups"] + (f_new > s["f"]).to(s["ups"].dtype)
                s["prev"], s["x"], s["g"], s["f"] = s["x"], z, g_new, f_new
        if s is not None:
            best.merge(s["pos"], s["xmax"], s["fmax"], evaluations=n_iter + 1)


@register("apgd-t")
@dataclass(frozen=True, kw_only=True, slots=True)
class APGDT(APGD):
    """APGD-T: :class:`APGD` with the targeted DLR loss over the ``n_target_classes`` most likely classes.

    AutoAttack's second component; see :class:`APGD` for the algorithm and parameters.

    Reference:
        Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
        parameter-free attacks", ICML 2020. https://arxiv.org/abs/2003.01690

    Threat model:
        White-box evasion at test time (MITRE ATLAS AML.T0043.000, OWASP ML01), untargeted success:
        the target classes only steer the search.
    """

    loss: ApgdLoss = "dlr-targeted"


def _periods(points: tuple[int, ...]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(points)]


def _drop_fooled(
    s: dict[str, torch.Tensor], adv: torch.Tensor, best: _Best, *, evaluations: int
) -> dict[str, torch.Tensor] | None:
    """Freeze the rows ``adv`` (at their newest iterate) into ``best``; keep the others' state."""
    if not adv.any():
        return s
    x_new = s.get("new_x", s["x"])
    best.freeze(s["pos"][adv], x_new[adv].detach(), evaluations=evaluations)
    keep = ~adv
    if not keep.any():
        return None
    return {key: value[keep] for key, value in s.items()}
