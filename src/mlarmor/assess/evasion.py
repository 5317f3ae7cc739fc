"""Evasion assessment: robust accuracy of a target on a dataset, per ε, and the finding it implies.

:func:`evaluate_evasion` draws the samples (a seeded shuffle, then the first ``n_samples``), checks
that the dataset fits the target, runs one registered attack over every ε in one call (the attacks
share work between ε and stop per sample once it is fooled) and returns a frozen
:class:`EvasionAssessment`. :func:`to_report` turns it into the versioned report; ``mlarmor evasion``
is these two calls plus loading and output.

Severity comes from the accuracy an attacker takes away within the threat budget the user declares
(``budget_eps``, by default the largest ε evaluated), in percentage points of accuracy:

=============================  ==========
accuracy lost (points)         severity
=============================  ==========
≥ 50                           critical
≥ 25                           high
≥ 10                           medium
> 0                            low
0                              none
=============================  ==========

**Units of ε.** ``eps_unit="absolute"`` measures ε in input units; ``"range"`` as a fraction of each
feature's range and ``"std"`` in each feature's standard deviations (see :mod:`mlarmor.assess._units`).
The default, ``"auto"``, is ``"range"`` for flat features (tables) and ``"absolute"`` for images.

Every accuracy comes with its 95% Clopper-Pearson interval (``clean_accuracy_ci``,
``robust_accuracy_ci``, and ``accuracy_lost_ci`` for the points lost, a paired count). The severity
reads the **point estimate** of the points lost, not an interval end: each point lost is an
adversarial example the attack found and the model misclassified, so the loss is demonstrated on the
evaluated samples, never noise, and rating it down because the sample is small would hide a real
weakness. What a small sample cannot do is say how far the figure carries to the population: below
100 samples :func:`evaluate_evasion` warns (:class:`~mlarmor.errors.MlarmorWarning`) and the
finding's description gives the intervals.

Example:
    >>> from mlarmor.assess import evaluate_evasion, to_report
    >>> assessment = evaluate_evasion(target, dataset, eps=[0.05, 0.1])  # doctest: +SKIP
    >>> to_report(assessment).robust_accuracy  # doctest: +SKIP
    {'0.05': 0.41, '0.1': 0.02}
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlarmor._progress import Progress, step
from mlarmor._stats import SMALL_SAMPLE, clopper_pearson
from mlarmor._validation import check_choice
from mlarmor.assess._evasion_report import eps_key, robust_ci, rounded, to_hardening_report, to_report
from mlarmor.assess._labels import matched
from mlarmor.assess._units import EpsUnit, FeatureBudget, in_units, resolve_unit
from mlarmor.assess.reliability import check_reliability
from mlarmor.attacks import EvasionResult, FixedBudgetAttack, Norm, available, create
from mlarmor.data import Dataset
from mlarmor.errors import InputError, InvalidParameterError, MlarmorWarning, invalid_parameter
from mlarmor.findings import Family, Finding
from mlarmor.risk.severity import accuracy_loss as severity_for_loss
from mlarmor.schema import Report
from mlarmor.targets import Target

if TYPE_CHECKING:
    import torch

__all__ = [
    "EvasionAssessment",
    "eps_key",
    "evaluate_evasion",
    "robust_accuracy",
    "save_adversarial",
    "severity_for_loss",
    "to_hardening_report",
    "to_report",
]

_OWNER = "evaluate_evasion"
_NORMS: tuple[Norm, ...] = ("linf", "l2")


@dataclass(frozen=True, slots=True, eq=False)
class EvasionAssessment:
    """The outcome of one evasion evaluation.

    Attributes:
        attack: Registry name of the attack.
        params: The attack's full configuration (what reproduces the run with ``seed``).
        capability: What the attack needed from the target (``gradients``, ``scores``, ``labels``).
        norm: Threat-model norm.
        eps: The budgets evaluated, ascending.
        budget_eps: The declared threat budget that sets the severity (one of ``eps``).
        results: One :class:`~mlarmor.attacks.EvasionResult` per ε, in the order of ``eps``.
        indices: Indices into the dataset of the samples attacked, in attack order.
        seed: Seed of the sample draw and of the attack.
        seconds: Wall-clock time of the attack call.
        target_name: The target's name (file name, URL).
        dataset_name: The dataset's name.
        reliability: Findings of :func:`~mlarmor.assess.check_reliability` on the attacked samples
            (empty when the checks were turned off or found nothing).
        requested: The attack asked for; differs from ``attack`` when ``"auto"`` fell back to a
            black-box attack on a target without gradients.
        label_mapping: Each label of the data to the model's class index, when the model names its
            classes (the data was renumbered to match; see :func:`mlarmor.data.labels.align_labels`).
        budget: What one unit of ε meant on each feature (``eps_unit``), and each feature's limits.
            With a relative unit the results' ``x_adv`` and norms are in the rescaled space:
            :meth:`FeatureBudget.to_data` maps inputs back (:func:`save_adversarial` does).
    """

    attack: str
    params: Mapping[str, object]
    capability: str
    norm: Norm
    eps: tuple[float, ...]
    budget_eps: float
    results: tuple[EvasionResult, ...]
    indices: np.ndarray
    seed: int
    seconds: float
    target_name: str
    dataset_name: str
    reliability: tuple[Finding, ...] = ()
    requested: str = ""
    label_mapping: Mapping[str, int] | None = None
    budget: FeatureBudget | None = None

    @property
    def eps_unit(self) -> str:
        """The unit of ``eps``: ``"absolute"``, ``"range"`` or ``"std"``."""
        return self.budget.unit if self.budget is not None else "absolute"

    @property
    def fell_back(self) -> bool:
        """Whether ``"auto"`` ran a black-box attack because the target has no gradients."""
        return bool(self.requested) and self.requested != self.attack

    @property
    def n_samples(self) -> int:
        """Number of samples attacked."""
        return int(self.indices.shape[0])

    @property
    def clean_accuracy(self) -> float:
        """Accuracy on the clean samples."""
        return rounded(self.results[0].clean_accuracy)

    @property
    def robust_accuracy(self) -> dict[str, float]:
        """Accuracy under attack, keyed by :func:`eps_key`."""
        return {eps_key(r.eps): rounded(r.robust_accuracy) for r in self.results}

    @property
    def clean_accuracy_ci(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of :attr:`clean_accuracy`."""
        r = self.results[0]
        return clopper_pearson(int(np.count_nonzero(r.y_pred_clean == r.y)), r.n_samples)

    @property
    def robust_accuracy_ci(self) -> dict[str, tuple[float, float]]:
        """95% Clopper-Pearson interval of each robust accuracy, keyed by :func:`eps_key`."""
        return {eps_key(r.eps): robust_ci(r) for r in self.results}

    @property
    def accuracy_lost_ci(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of :attr:`accuracy_lost`, in percentage points.

        The loss is a paired count: the samples classified correctly that the attack fooled.
        """
        r = self.result_at(self.budget_eps)
        lost = int(np.count_nonzero((r.y_pred_clean == r.y) & r.success))
        low, high = clopper_pearson(lost, r.n_samples)
        return round(100.0 * low, 6), round(100.0 * high, 6)

    def result_at(self, eps: float) -> EvasionResult:
        """The result for budget ``eps``.

        Raises:
            InvalidParameterError: If ``eps`` was not evaluated.
        """
        for r in self.results:
            if math.isclose(r.eps, eps, rel_tol=1e-9, abs_tol=1e-12):
                return r
        raise invalid_parameter("eps", "EvasionAssessment.result_at", f"one of {list(self.eps)}", eps)

    @property
    def accuracy_lost(self) -> float:
        """Accuracy lost at ``budget_eps``, in percentage points (never negative)."""
        robust = self.result_at(self.budget_eps).robust_accuracy
        return max(0.0, round(100.0 * (self.clean_accuracy - robust), 8))

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The ``kind="evasion"`` report (see :func:`to_report`)."""
        return to_report(self, metadata=metadata)


def _check_eps(eps: Sequence[float], budget_eps: float | None) -> tuple[tuple[float, ...], float]:
    if isinstance(eps, str | bytes) or not isinstance(eps, Sequence) or not eps:
        raise invalid_parameter("eps", _OWNER, "a non-empty sequence of floats in [0, inf)", eps)
    values: list[float] = []
    for e in [*eps, *([] if budget_eps is None else [budget_eps])]:
        if isinstance(e, bool) or not isinstance(e, int | float | np.floating | np.integer):
            raise invalid_parameter("eps", _OWNER, "a sequence of floats in [0, inf)", e)
        if not math.isfinite(float(e)) or float(e) < 0:
            name = "budget_eps" if budget_eps is not None and e is budget_eps else "eps"
            raise invalid_parameter(name, _OWNER, "a float in [0, inf)", e)
        values.append(float(e))
    levels = tuple(sorted(set(values)))
    return levels, float(budget_eps) if budget_eps is not None else levels[-1]


def _fallback(attack: str, target: Target) -> str:
    """``"auto"`` on a target without gradients: Square where it gives scores, HopSkipJump on labels."""
    offered = set(getattr(target, "capabilities", ()))
    if attack != "auto" or "gradients" in offered:
        return attack
    return "square" if "scores" in offered else "hopskipjump"


def _choose(n: int, n_samples: int | None, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    return order if n_samples is None else order[: min(n_samples, n)]


def evaluate_evasion(
    target: Target,
    dataset: Dataset,
    *,
    attack: str = "auto",
    eps: Sequence[float],
    norm: Norm = "linf",
    budget_eps: float | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    params: Mapping[str, object] | None = None,
    reliability: bool = True,
    eps_unit: EpsUnit = "auto",
    progress: Progress | None = None,
) -> EvasionAssessment:
    """Measure the target's clean and robust accuracy on ``dataset`` at every ε of ``eps``.

    Args:
        target: The model adapter (see :func:`mlarmor.targets.load_target`).
        dataset: Inputs and labels; checked against the target's input shape, classes and bounds.
        attack: Registry name of the attack (``mlarmor.attacks.available(Family.EVASION)``). ``"auto"``
            is the white-box ensemble on targets with gradients and, on targets without them (scikit-learn,
            ONNX, HTTP), the black-box ``"square"`` where the target returns scores and
            ``"hopskipjump"`` where it returns labels only (the report says so).
        eps: Perturbation budgets in ``norm``, in ``eps_unit``.
        norm: ``"linf"`` or ``"l2"``.
        budget_eps: The threat budget that sets the finding's severity; the largest ε when ``None``.
            Evaluated too when it is not in ``eps``.
        n_samples: Attack the first ``n_samples`` after a shuffle seeded with ``seed``; all when ``None``.
        seed: Seed of the sample draw and of the attack.
        batch_size: Samples per model call.
        params: Extra attack parameters, e.g. ``{"n_queries": 1000}`` for Square; they override
            ``norm``, ``seed`` and ``batch_size`` when they name them.
        reliability: Run :func:`~mlarmor.assess.check_reliability` on the attacked samples (a few
            model calls, a 20-step PGD and, after a white-box attack, a 1000-query Square on at most
            100 samples) and keep its findings in :attr:`EvasionAssessment.reliability`.
        eps_unit: ``"absolute"`` (input units), ``"range"`` (a fraction of each feature's range,
            ``dataset.feature_limits``), ``"std"`` (each feature's standard deviations over
            ``dataset``) or ``"auto"``: range for flat features, absolute otherwise. A budget wider
            than a feature's range is warned about (:class:`~mlarmor.errors.MlarmorWarning`).
        progress: Receives the attack as one step and each reliability check (see
            :mod:`mlarmor._progress`).

    Returns:
        The frozen :class:`EvasionAssessment`.

    Raises:
        InvalidParameterError: For a bad option, or data that does not fit the target.
        UnsupportedModelError: If the target lacks the capability the attack needs (the message
            names the black-box attacks that work).
    """
    levels, budget = _check_eps(eps, budget_eps)
    check_choice(norm, "norm", _OWNER, _NORMS)
    unit = resolve_unit(eps_unit, dataset, _OWNER)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise invalid_parameter("seed", _OWNER, "an int in [0, inf)", seed)
    if n_samples is not None and (
        isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1
    ):
        raise invalid_parameter("n_samples", _OWNER, "a positive int or None", n_samples)
    check_choice(attack, "attack", _OWNER, available(Family.EVASION))
    requested = attack
    attack = _fallback(attack, target)
    dataset, label_mapping = matched(dataset, target)
    dataset.check_against(target.input_shape, target.num_classes, bounds=target.bounds)
    config: dict[str, object] = {"norm": norm, "seed": seed, "batch_size": batch_size}
    config.update(params or {})
    built = create(attack, **config)
    if not isinstance(built, FixedBudgetAttack):
        raise InvalidParameterError(
            f"The attack {attack!r} is not a fixed-budget evasion attack; choose one of "
            f"{', '.join(available(Family.EVASION))}."
        )
    space = in_units(target, dataset, unit)
    space.budget.warn_exceeding(budget)
    target, dataset = space.target, space.dataset
    indices = _choose(dataset.n, n_samples, seed)
    x, y = dataset.x[indices], dataset.y[indices]
    start = time.perf_counter()
    # The dataset's immutable and integer features and feature ranges bind the attack too.
    with step(progress, f"attacking {len(y)} samples with {attack} at ε = {list(levels)}"):
        results = built(target, x, y, eps=list(levels), constraints=dataset if dataset.constrained else None)
    seconds = time.perf_counter() - start
    if len(indices) < SMALL_SAMPLE:
        low, high = clopper_pearson(int(np.count_nonzero(results[0].y_pred_clean == y)), len(indices))
        warnings.warn(
            f"Only {len(indices)} samples were attacked: their accuracies are uncertain by several points "
            f"(the clean accuracy's 95% interval is [{low:.1%}, {high:.1%}]). Attack at least {SMALL_SAMPLE} "
            "samples (--n-samples, and data with that many rows) for figures that carry to new data.",
            MlarmorWarning,
            stacklevel=2,
        )
    assessment = EvasionAssessment(
        attack=attack,
        params=dict(built.params),
        capability=built.capability,
        norm=built.norm,
        eps=levels,
        budget_eps=budget,
        results=tuple(results),
        indices=indices,
        seed=seed,
        seconds=seconds,
        target_name=target.name,
        dataset_name=dataset.name,
        requested=requested,
        label_mapping=label_mapping,
        budget=space.budget,
    )
    if not reliability:
        return assessment
    checks = check_reliability(
        target, x, y, assessment=assessment, seed=seed, batch_size=batch_size, progress=progress
    )
    return dataclasses.replace(assessment, reliability=tuple(checks))


def robust_accuracy(
    model: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    attack: str | FixedBudgetAttack = "auto",
    norm: str = "linf",
    bounds: tuple[float, float] | Sequence[float] = (0.0, 1.0),
    device: str = "cpu",
    **attack_params: Any,
) -> EvasionResult:
    """Attack ``model`` on ``(x, y)`` at ``eps`` with a registered attack; the model ends in eval mode.

    Args:
        model: A PyTorch classifier taking inputs in ``bounds``.
        x: Held-out inputs ``(n, *input_shape)``.
        y: Their labels ``(n,)``.
        eps: The budget.
        attack: A registry name (``"auto"``, ``"pgd"``, ...) or a configured attack.
        norm: ``"linf"`` or ``"l2"``.
        bounds: Valid input range.
        device: Where the model runs.
        **attack_params: Passed to :func:`mlarmor.attacks.create` (e.g. ``n_iter=100``, ``steps=20``).
    """
    from mlarmor.targets import TorchTarget

    x = np.ascontiguousarray(x, dtype=np.float32)
    target = TorchTarget(model, bounds=tuple(bounds), input_shape=tuple(x.shape[1:]), device=device)
    built = (
        attack
        if isinstance(attack, FixedBudgetAttack)
        else create(attack, eps=eps, norm=norm, **attack_params)
    )
    if not isinstance(built, FixedBudgetAttack):
        raise invalid_parameter(
            "attack", "robust_accuracy", "a fixed-budget attack (e.g. 'auto', 'pgd')", attack
        )
    return built(target, x, np.asarray(y))


def save_adversarial(assessment: EvasionAssessment, path: str | os.PathLike[str]) -> Path:
    """Write the adversarial examples to a compressed ``.npz``.

    Arrays: ``indices`` (into the dataset), ``y``, ``eps`` and, for each ε with key ``k`` (see
    :func:`eps_key`), ``x_adv_k`` (in the data's units), ``success_k`` and ``norms_k`` (in
    ``eps_unit``).

    Raises:
        InputError: If the file cannot be written.
    """
    out = Path(path)
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")  # np.savez would append it silently anyway
    arrays: dict[str, Any] = {
        "indices": assessment.indices,
        "y": assessment.results[0].y,
        "eps": np.asarray(assessment.eps, dtype=np.float64),
    }
    for r in assessment.results:
        key = eps_key(r.eps)
        arrays[f"x_adv_{key}"] = r.x_adv if assessment.budget is None else assessment.budget.to_data(r.x_adv)
        arrays[f"success_{key}"] = r.success
        arrays[f"norms_{key}"] = r.norms
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, **arrays)
    except OSError as e:
        raise InputError(f"Cannot write {out}: {e.strerror or e}. Choose a writable path.") from e
    return out
