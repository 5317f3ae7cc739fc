"""The attack base classes: a frozen configuration plus a call, with the invariants in one place.

Every registered attack, whatever its family, derives from :class:`AttackConfig`: a frozen dataclass
of parameters that declares its threat ``family`` (a :class:`~mlarmor.findings.Family`), with its
registry :attr:`~AttackConfig.name` and :attr:`~AttackConfig.params`. The call differs per family,
one documented shape each:

* **evasion** (:class:`Attack`, :class:`FixedBudgetAttack`): ``attack(target, x, y, eps=...)`` returns
  an :class:`~mlarmor.attacks.result.EvasionResult` (a tuple of them for several ε).
* **inference** (:class:`~mlarmor.attacks.inference.membership.MembershipAttack`):
  ``attack.score(evidence)`` returns one membership score per audit example ``(N,)`` from a
  :class:`~mlarmor.attacks.inference.membership.MembershipEvidence`, reported under ``attack.label``.
* **poisoning** (:class:`~mlarmor.attacks.poisoning.base.PoisoningAttack`):
  ``attack(x, y, fraction=..., target_class=..., bounds=..., num_classes=..., seed=...)`` returns a
  :class:`~mlarmor.attacks.poisoning.triggers.Poisoned` copy of the training data, and
  ``attack.success_rate(predict, poisoned, x_test, y_test)`` measures a model trained on it.

The evasion base does the most work for its subclasses, which write one method, ``_perturb``, on top
of the functional kernels. Subclasses declare their parameters as dataclass fields, validate them in
``_check_params``, and the base class does the rest:

1. validates the target (it has the capability the attack needs), the inputs and the labels;
2. converts numpy to torch on the target's device, one batch at a time;
3. attacks only the samples that are still classified correctly, smallest ε first, so a sample
   fooled at a small ε is reused as is for the larger ones (several ε in one call share work);
4. projects every result onto the ε-ball of its norm and clips it to the target's bounds, so no
   attack can return a point outside the threat model;
5. measures success with the target's own predictions and returns numpy in an
   :class:`~mlarmor.attacks.result.EvasionResult`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast, overload

import numpy as np
import torch
from numpy.typing import ArrayLike

from mlarmor._validation import check_choice, check_float, check_int
from mlarmor.attacks import _checks
from mlarmor.attacks._constraints import MaskedTarget, constrain, mutable_mask
from mlarmor.attacks._geometry import Norm, clip_bounds, project
from mlarmor.attacks.registry import REGISTRY
from mlarmor.attacks.result import EvasionResult
from mlarmor.errors import invalid_parameter
from mlarmor.findings import Family
from mlarmor.targets.base import Capability, Differentiable, Target

if TYPE_CHECKING:
    from mlarmor.data import Dataset

__all__ = ["Attack", "AttackConfig", "Family", "FixedBudgetAttack", "Norm", "Perturbation"]


class AttackConfig(abc.ABC):
    """Root of every registered attack: a frozen dataclass of parameters with a threat family.

    Subclasses are ``@dataclass(frozen=True)`` classes (registered with
    :func:`~mlarmor.attacks.registry.register`); each family's base adds its call (see the module
    docstring).

    Attributes:
        family: The threat family, :attr:`Family.EVASION`, :attr:`Family.INFERENCE`,
            :attr:`Family.POISONING` (model extraction, to come, is :attr:`Family.SPYING`).
    """

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    family: ClassVar[Family]

    @property
    def name(self) -> str:
        """The attack's registry name (its class name when it is not registered)."""
        cls = type(self)
        return next((key for key, value in REGISTRY.items() if value is cls), cls.__name__)

    @property
    def params(self) -> dict[str, object]:
        """Every parameter of the attack, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Perturbation(NamedTuple):
    """What :meth:`FixedBudgetAttack._perturb` returns.

    Attributes:
        x_adv: Candidate adversarial inputs, same shape as the inputs given to ``_perturb``.
        queries: Model evaluations spent per sample ``(n,)`` int64, or ``None`` when the attack
            cannot attribute them to samples (the result then reports the total).
    """

    x_adv: torch.Tensor
    queries: torch.Tensor | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Attack(AttackConfig):
    """Base of every evasion attack: a frozen, validated configuration.

    Parameters are validated when the attack is built: every class in the hierarchy that defines
    ``_check_params`` has it called, base classes first, so a subclass cannot forget its parents'
    checks. A check may normalise a value (``1`` to ``1.0``) with ``object.__setattr__``.

    Attributes:
        capability: What the attack needs from the target: ``"gradients"`` (white-box),
            ``"scores"`` (score-based black-box) or ``"labels"`` (decision-based black-box).
        family: The threat family, :attr:`Family.EVASION`.
        norms: The norms the attack supports.
        norm: The threat-model norm, ``"linf"`` or ``"l2"``.
        seed: Seed of the attack's own ``torch.Generator`` (the global RNG is never touched).
        batch_size: Samples sent through the model together; bounds the memory an attack uses.
    """

    capability: ClassVar[Capability]
    family: ClassVar[Family] = Family.EVASION
    norms: ClassVar[tuple[Norm, ...]] = ("linf", "l2")

    norm: Norm = "linf"
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        for klass in reversed(type(self).__mro__):
            check = vars(klass).get("_check_params")
            if check is not None:
                check(self)

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_choice(self.norm, "norm", owner, type(self).norms)
        check_int(self.seed, "seed", owner, low=0)
        check_int(self.batch_size, "batch_size", owner)

    def supports(self, target: Target) -> bool:
        """Whether this configuration can run on ``target`` at all (ensembles skip those that cannot)."""
        return True

    def _check_target(self, target: Target) -> None:
        """Raise :class:`~mlarmor.errors.InvalidParameterError` if this configuration cannot attack it.

        Called before any work, so a configuration that cannot run fails the same way whatever the data.
        """


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedBudgetAttack(Attack):
    """An attack that looks for a misclassified input within a budget ``eps`` in ``norm``.

    Call it as ``attack(target, x, y)`` or ``attack(target, x, y, eps=[...])``; subclasses write
    only :meth:`_perturb`.

    Attributes:
        eps: Default perturbation budget (a float in ``[0, inf)``); ``eps`` given to the call
            overrides it.
    """

    eps: float | None = None

    def _check_params(self) -> None:
        if self.eps is not None:
            object.__setattr__(self, "eps", check_float(self.eps, "eps", type(self).__name__, low=0.0))

    @overload
    def __call__(
        self,
        target: Target,
        x: ArrayLike,
        y: ArrayLike,
        *,
        eps: float | None = None,
        constraints: Dataset | None = None,
    ) -> EvasionResult: ...

    @overload
    def __call__(
        self,
        target: Target,
        x: ArrayLike,
        y: ArrayLike,
        *,
        eps: Sequence[float],
        constraints: Dataset | None = None,
    ) -> tuple[EvasionResult, ...]: ...

    def __call__(
        self,
        target: Target,
        x: ArrayLike,
        y: ArrayLike,
        *,
        eps: float | Sequence[float] | None = None,
        constraints: Dataset | None = None,
    ) -> EvasionResult | tuple[EvasionResult, ...]:
        """Attack ``target`` on inputs ``x`` with true labels ``y``.

        Args:
            target: The model adapter; it must offer :attr:`capability`.
            x: Inputs ``(n, *input_shape)``, floating point, within ``target.bounds``.
            y: Integer labels ``(n,)`` in ``[0, target.num_classes)``.
            eps: Budget(s) overriding the constructor's ``eps``: a float gives one result, a
                sequence gives one result per value, in the same order.
            constraints: A :class:`~mlarmor.data.Dataset` whose immutable features, integer
                features and feature ranges every result must respect (usually the dataset ``x``
                comes from). Gradient attacks also search within them (no gradient step or random
                start on immutable features); every attack's result is projected onto them (integer
                features rounded within the budget) before success is measured.

        Returns:
            One :class:`EvasionResult`, or a tuple of them when ``eps`` is a sequence.

        Raises:
            UnsupportedModelError: If the target lacks the capability the attack needs.
            InvalidParameterError: If ``eps``, ``x`` or ``y`` are invalid for the target.
        """
        owner = type(self).__name__
        values, single = _checks.check_eps_values(self.eps if eps is None else eps, owner)
        checked = _checks.check_capability(self, target)
        self._check_target(checked)
        xs, ys = _checks.check_data(owner, checked, x, y)
        if constraints is not None:
            _check_constraints(constraints, xs, owner)
        results = self._sweep(checked, xs, ys, values, constraints)
        return results[0] if single else tuple(results)

    @abc.abstractmethod
    def _perturb(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
    ) -> Perturbation:
        """Look for adversarial inputs for a batch of samples that the target still classifies correctly.

        Args:
            target: The validated target; it offers :attr:`capability` (a ``"gradients"`` attack may
                treat it as :class:`~mlarmor.targets.base.Differentiable`).
            x: Clean inputs ``(m, ...)``, float32 on the target's device, within bounds.
            y: True labels ``(m,)``, int64 on the same device.
            eps: Budget, ``> 0``.
            generator: The call's random generator; the only source of randomness allowed.

        Returns:
            The candidates (the base class projects and clips them) and the per-sample queries.
        """

    def _sweep(
        self,
        target: Target,
        xs: np.ndarray,
        ys: np.ndarray,
        values: tuple[float, ...],
        constraints: Dataset | None = None,
    ) -> list[EvasionResult]:
        """Run every ε on every batch, smallest ε first; build one result per requested ε."""
        differentiable = isinstance(target, Differentiable) and "gradients" in target.capabilities
        device = target.device if isinstance(target, Differentiable) else torch.device("cpu")
        bounds = target.bounds
        levels = sorted(set(values))
        n = xs.shape[0]
        x32 = np.ascontiguousarray(xs, dtype=np.float32)
        if not x32.flags.writeable:  # e.g. a Dataset's read-only arrays; torch wants writable memory
            x32 = x32.copy()
        if not ys.flags.writeable:
            ys = ys.copy()
        generator = torch.Generator(device=device)
        generator.manual_seed(self.seed)
        active = constraints if constraints is not None and constraints.constrained else None
        search: Target = target
        if active is not None and differentiable:
            mask = mutable_mask(active, torch.empty(0, device=device))
            if mask is not None:
                search = MaskedTarget(cast(Differentiable, target), mask)

        pred_clean = np.empty(n, dtype=np.int64)
        adv = {e: np.empty_like(x32) for e in levels}
        pred_adv = {e: np.empty(n, dtype=np.int64) for e in levels}
        queries = {e: np.empty(n, dtype=np.int64) for e in levels}
        totals = dict.fromkeys(levels, 0)
        attributable = True

        for start in range(0, n, self.batch_size):
            rows = slice(start, start + self.batch_size)
            xb = torch.from_numpy(x32[rows]).to(device)
            yb = torch.from_numpy(ys[rows]).to(device)
            before = target.queries
            clean = _predict(target, xb, differentiable)
            spent = torch.ones_like(yb)
            fooled = clean != yb
            best, best_pred = xb.clone(), clean.clone()
            for e in levels:
                todo = (~fooled).nonzero().squeeze(1)
                if e > 0 and todo.numel() > 0:
                    out = self._perturb(search, xb[todo], yb[todo], e, generator)
                    with torch.no_grad():
                        x_try = clip_bounds(
                            project(out.x_adv.detach().to(xb.dtype), xb[todo], e, self.norm), bounds
                        )
                        if active is not None:
                            x_try = constrain(active, x_try, xb[todo], e, self.norm)
                    p_try = _predict(target, x_try, differentiable)
                    spent[todo] += 1
                    if out.queries is None:
                        attributable = False
                    else:
                        spent[todo] += out.queries.to(spent.device)
                    best[todo], best_pred[todo] = x_try, p_try
                    fooled[todo[p_try != yb[todo]]] = True
                adv[e][rows] = best.cpu().numpy()
                pred_adv[e][rows] = best_pred.cpu().numpy()
                queries[e][rows] = spent.cpu().numpy()
                totals[e] += target.queries - before
            pred_clean[rows] = clean.cpu().numpy()

        y_out = _frozen(ys.astype(np.int64, copy=True))
        clean_out = _frozen(pred_clean)
        params = MappingProxyType(self.params)
        results = []
        for e in values:
            # Features the attack left alone keep the caller's exact values (float64 inputs stay exact).
            x_adv = np.where(adv[e] == x32, xs, adv[e].astype(xs.dtype, copy=False))
            delta = (x_adv.astype(np.float64) - xs.astype(np.float64)).reshape(n, -1)
            norms = np.abs(delta).max(axis=1) if self.norm == "linf" else np.linalg.norm(delta, axis=1)
            results.append(
                EvasionResult(
                    attack=self.name,
                    params=params,
                    eps=e,
                    norm=self.norm,
                    seed=self.seed,
                    x_adv=_frozen(x_adv),
                    y=y_out,
                    y_pred_clean=clean_out,
                    y_pred_adv=_frozen(pred_adv[e].copy()),
                    success=_frozen(pred_adv[e] != ys),
                    norms=_frozen(norms),
                    queries=_frozen(queries[e].copy()) if attributable else int(totals[e]),
                )
            )
        return results


def _check_constraints(constraints: object, xs: np.ndarray, owner: str) -> None:
    from mlarmor.data import Dataset

    if not isinstance(constraints, Dataset):
        raise invalid_parameter(
            "constraints", owner, "a mlarmor.data.Dataset (its immutable/integer features)", constraints
        )
    if tuple(xs.shape[1:]) != constraints.input_shape:
        raise invalid_parameter(
            "constraints",
            owner,
            f"a dataset with inputs of shape {tuple(xs.shape[1:])} like x",
            f"a dataset with input shape {constraints.input_shape}",
        )


def _predict(target: Target, x: torch.Tensor, differentiable: bool) -> torch.Tensor:
    """The target's labels for ``x``, as int64 on ``x``'s device (no autograd graph)."""
    if differentiable and isinstance(target, Differentiable):
        with torch.no_grad():
            return target.logits(x).argmax(dim=1)
    labels = np.asarray(target.predict(x.detach().cpu().numpy()), dtype=np.int64)
    return torch.from_numpy(labels).to(x.device)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
