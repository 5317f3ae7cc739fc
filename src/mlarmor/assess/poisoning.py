"""How much a poisoned share of the training data can hurt: retrain with the recipe, measure the damage.

:func:`simulate_poisoning` poisons the user's training set at several fractions with each chosen
attack, trains a model on every poisoned copy with the user's recipe (the same way the real model is
trained), and measures on held-out data the clean accuracy and the attack success rate (ASR): the
share of triggered test inputs not of the target class that the poisoned model sends to it. A model
trained on the clean data gives the baseline of both (its "ASR" is how often the trigger alone
already leads to the target). :func:`to_poisoning_report` turns the curve into a ``kind="poisoning"``
report with one finding per attack (MITRE ATLAS AML.T0020 Poison Training Data; OWASP ML02 Data
Poisoning, and ML10 Model Poisoning for the backdoors).

Attacks are the registered poisoning attacks (``available(Family.POISONING)``, see
:mod:`mlarmor.attacks.poisoning`), each built as ``create(name, **trigger_params[name])``, called on
the training data and measured with its own ``success_rate``: ``badnets`` (corner patch), ``blend``
(noise key blended in), ``warp`` (WaNet-style smooth warp), each a dirty-label backdoor that
relabels its rows to the target class; ``label-flip`` (targeted flips from ``source_class`` to the
target when a source is given, its ASR is then the share of source-class test inputs predicted as
the target; random flips otherwise, measured by the accuracy they cost); ``clean-label`` (gradient
matching, Witches' Brew: rows of the target class keep their correct labels, their pixels are
perturbed within ``eps`` so that training on them pushes ``victims`` chosen test inputs, 8 by
default, into the target class; its ASR is the share of those victims that end up there; PyTorch
recipes only, as it differentiates a surrogate trained with the recipe, under another seed than the
simulated victim).

Severity of an attack's finding, from the ASR gained over the clean model's at the smallest fraction
that reaches it: ≥ 90% gained with ≤ 1% of the data poisoned is critical; ≥ 50% with ≤ 5% high;
≥ 50% at any simulated fraction, or ≥ 5 points of clean accuracy lost, medium; ≥ 20% gained low.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mlarmor.attacks import REGISTRY, available, create
from mlarmor.attacks.poisoning import Poisoned, PoisoningAttack
from mlarmor.data import Dataset
from mlarmor.data.labels import class_index, same_classes
from mlarmor.errors import InvalidParameterError, invalid_parameter
from mlarmor.findings import Family, Finding, Severity
from mlarmor.risk import severity as rules
from mlarmor.risk.catalogue import ML02, ML10, POISONING_SIMULATION, SCREEN_TRIGGERS
from mlarmor.schema import Report, Sections, TargetInfo
from mlarmor.schema.sections import CurvePoint, PoisoningSection
from mlarmor.targets.recipe import Recipe

__all__ = [
    "POISONING_ATTACKS",
    "PoisoningSimulation",
    "SimulationPoint",
    "default_attack",
    "poisoning_severity",
    "simulate_poisoning",
    "to_poisoning_report",
]

POISONING_ATTACKS: tuple[str, ...] = available(Family.POISONING)
"""The registered poisoning attacks (``available(Family.POISONING)``), the names ``attacks`` takes."""


@dataclass(frozen=True)
class SimulationPoint:
    """One model trained on one poisoned copy (``fraction`` 0: the clean baseline).

    Attributes:
        attack: The attack's name.
        fraction: Share of the eligible training rows poisoned.
        n_poisoned: Rows changed.
        clean_accuracy: Accuracy of the trained model on the clean test set.
        attack_success: ASR on the test set, ``None`` for random label flips.
        seconds: Poisoning, training and evaluation time.
    """

    attack: str
    fraction: float
    n_poisoned: int
    clean_accuracy: float
    attack_success: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "fraction": self.fraction,
            "n_poisoned": self.n_poisoned,
            "clean_accuracy": round(self.clean_accuracy, 6),
            "attack_success": None if self.attack_success is None else round(self.attack_success, 6),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, eq=False)
class PoisoningSimulation:
    """The result of :func:`simulate_poisoning`.

    Attributes:
        points: Every trained model's figures, per attack in the order given, fractions ascending;
            each attack's curve starts with its clean baseline (fraction 0).
        target_class: The class the backdoors and targeted flips lead to.
        recipe: Name of the training recipe.
        n_train: Training rows; ``n_test``: test rows.
        examples: Per attack, the poisoned dataset at the largest fraction (to save or inspect).
        seconds: Wall time of the whole simulation.
        configured: Per attack, the configuration that ran.
        attack_choice: Why the attacks were chosen: the default for the data's shape and the reason
            (``None`` when the caller named the attacks).
        class_names: The data's class names, in index order (``target_class`` indexes them).
    """

    points: tuple[SimulationPoint, ...]
    target_class: int
    recipe: str
    n_train: int
    n_test: int
    examples: Mapping[str, Poisoned] = field(default_factory=dict)
    seconds: float = 0.0
    configured: Mapping[str, PoisoningAttack] = field(default_factory=dict)
    attack_choice: str | None = None
    class_names: tuple[str, ...] | None = None

    @property
    def target_name(self) -> str:
        """The target class as the data names it (its index when the data has no names)."""
        names = self.class_names or ()
        return names[self.target_class] if self.target_class < len(names) else str(self.target_class)

    @property
    def attacks(self) -> list[str]:
        """The attacks simulated, in order."""
        return list(dict.fromkeys(p.attack for p in self.points))

    def curve(self, attack: str) -> list[SimulationPoint]:
        """One attack's points, baseline first."""
        return [p for p in self.points if p.attack == attack]

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The ``kind="poisoning"`` report (see :func:`to_poisoning_report`)."""
        return to_poisoning_report(self, metadata=metadata)


def _check_fractions(fractions: object, owner: str) -> tuple[float, ...]:
    expected = "a non-empty sequence of floats in (0, 1)"
    if isinstance(fractions, str) or not isinstance(fractions, Sequence) or not fractions:
        raise invalid_parameter("fractions", owner, expected, fractions)
    out = []
    for f in fractions:
        if not isinstance(f, int | float | np.floating) or isinstance(f, bool) or not 0.0 < float(f) < 1.0:
            raise invalid_parameter("fractions", owner, expected, f"{list(fractions)} (with {f!r})")
        out.append(float(f))
    return tuple(sorted(set(out)))


def default_attack(data: Dataset) -> tuple[str, str]:
    """The attack a simulation runs when none is named, for ``data``'s shape, and why.

    Images ``(C, H, W)`` or ``(H, W)`` get ``badnets`` (a corner patch); flat rows of features get
    ``feature-trigger`` (a patch means nothing for a table); rows whose every feature is immutable,
    where no trigger can be planted, get ``label-flip``.
    """
    shape = data.input_shape
    if len(shape) in (2, 3):
        return "badnets", f"the inputs are images {shape}, so the default is a corner-patch trigger (badnets)"
    n_features = int(np.prod(shape))
    mutable = n_features - len(set(data.immutable))
    if mutable >= 1:
        return "feature-trigger", (
            f"the inputs are table rows of {n_features} features, so the default is a feature-pattern "
            f"trigger (feature-trigger: {min(3, mutable)} mutable features set to a rare high value)"
        )
    return "label-flip", (
        f"every one of the {n_features} features is immutable, so no trigger can be planted and the "
        "default is label flips (label-flip)"
    )


def _configure(
    name: str, params: Mapping[str, Any], source_class: int | None, data: Dataset
) -> PoisoningAttack:
    """The registered attack ``name`` with the user's parameters, plus what it takes from the data.

    ``source_class`` where the attack takes one; the dataset's ``immutable`` and ``integer`` features
    where it respects them (``feature-trigger``).
    """
    options = dict(params)
    names = {f.name for f in fields(REGISTRY[name])}
    if source_class is not None and "source_class" in names:
        options.setdefault("source_class", source_class)
    for constraint in ("immutable", "integer"):
        if constraint in names and getattr(data, constraint):
            options[constraint] = tuple(sorted({*options.get(constraint, ()), *getattr(data, constraint)}))
    attack = create(name, **options)
    if not isinstance(attack, PoisoningAttack):  # pragma: no cover - names come from the poisoning family
        raise invalid_parameter("attacks", "simulate_poisoning", "poisoning attacks", name)
    return attack


def simulate_poisoning(
    recipe: Recipe,
    train: Dataset,
    test: Dataset,
    *,
    attacks: Sequence[str] | None = None,
    fractions: Sequence[float] = (0.01, 0.05, 0.1),
    target_class: int | str = 0,
    source_class: int | str | None = None,
    num_classes: int | None = None,
    trigger_params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
) -> PoisoningSimulation:
    """Poison ``train`` at each fraction with each attack, retrain with ``recipe``, measure on ``test``.

    One clean model (the baseline) plus one model per attack and fraction are trained, all with the
    same ``seed`` so that the poison is the only difference between them.

    Args:
        recipe: How the user trains the model (:func:`~mlarmor.targets.recipe.load_recipe`,
            :func:`~mlarmor.targets.recipe.recipe_for`); its ``outputs`` give the predictions.
        train: The clean training data.
        test: Held-out clean data, never poisoned.
        attacks: Names of registered poisoning attacks (:data:`POISONING_ATTACKS`); ``None`` runs
            the default for the data's shape (:func:`default_attack`): ``badnets`` on images,
            ``feature-trigger`` on tables, ``label-flip`` when every feature is immutable.
        fractions: Shares of the eligible rows to poison, each in ``(0, 1)``; each must poison at
            least one row (``round(fraction * eligible) >= 1``), or it is refused with the fraction
            that poisons one row.
        target_class: The class the backdoor (or targeted flip) leads to: an index, or a class
            name of ``train`` (``"spam"``).
        source_class: For ``label-flip``: flip only this class's rows to ``target_class`` (a
            targeted flip, with an ASR); ``None`` flips random rows to random classes. An index or
            a class name.
        num_classes: Number of classes; defaults to the recipe's.
        trigger_params: Per attack, its parameters (e.g. ``{"badnets": {"size": 3}}``): each attack is
            built as ``create(name, **trigger_params[name])``.
        seed: Seed of the poisoned rows, the triggers and the training.
        progress: Called as ``progress(done, total, what)`` after each trained model.

    Returns:
        A :class:`PoisoningSimulation`.

    Raises:
        InvalidParameterError: For an unknown attack, a fraction outside ``(0, 1)`` or too small to
            poison a row, a class out of range or a class name the data lacks, train and test sets of
            different input shapes or classes, or an image trigger on tabular data.
    """
    owner = "simulate_poisoning"
    known = available(Family.POISONING)  # read now: an attack registered since import counts too
    choice = None
    if attacks is None:
        default, choice = default_attack(train)
        attacks = (default,)
    if isinstance(attacks, str) or not attacks:
        raise invalid_parameter("attacks", owner, f"a non-empty list of {list(known)}", attacks)
    for name in attacks:
        if name not in known:
            raise invalid_parameter("attacks", owner, f"names from {list(known)}", name)
    chosen = list(dict.fromkeys(attacks))
    fracs = _check_fractions(fractions, owner)
    if train.input_shape != test.input_shape:
        raise InvalidParameterError(
            f"The training and test data of {owner} must have the same input shape. Got "
            f"{train.input_shape} and {test.input_shape}; give a test set from the same source."
        )
    test = same_classes(test, train)
    n_cls = int(num_classes if num_classes is not None else getattr(recipe, "num_classes", 0))
    largest = int(max(train.y.max(), test.y.max()))
    if n_cls < 2 or largest >= n_cls:
        raise InvalidParameterError(
            f"The data of {owner} has labels up to {largest}, but the recipe trains {n_cls} classes. "
            "Check --classes and that the data matches the recipe."
        )
    target = class_index(target_class, train.class_names, n_cls, "target_class", owner)
    source = (
        None
        if source_class is None
        else class_index(source_class, train.class_names, n_cls, "source_class", owner)
    )
    if source is not None and source == target:
        raise invalid_parameter("source_class", owner, "a class other than target_class", source_class)
    params = {k: dict(v) for k, v in (trigger_params or {}).items()}
    # Built first, so that a bad parameter fails before any training.
    built = {name: _configure(name, params.get(name, {}), source, train) for name in chosen}

    start = time.perf_counter()
    total = 1 + len(chosen) * len(fracs)
    done = 0

    def fit(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        model = recipe.train(x, y, seed)
        return lambda inputs: np.asarray(recipe.outputs(model, inputs)).argmax(axis=1)

    def tick(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, what)

    def run(name: str, fraction: float) -> Poisoned:
        return built[name](
            train.x,
            train.y,
            fraction=fraction,
            target_class=target,
            bounds=train.bounds,
            num_classes=n_cls,
            seed=seed,
            recipe=recipe,
            x_test=test.x,
            y_test=test.y,
        )

    # Poison first, so that a bad parameter fails before any training; attacks that train surrogates
    # with the recipe come after the cheap checks of the others.
    order = [n for n in chosen if not built[n].needs_recipe] + [n for n in chosen if built[n].needs_recipe]
    plans = [(name, f, run(name, f)) for name in order for f in fracs]

    t0 = time.perf_counter()
    clean_predict = fit(train.x, train.y)
    clean_acc = float(np.mean(clean_predict(test.x) == test.y))
    clean_seconds = time.perf_counter() - t0
    tick("clean model")
    points: list[SimulationPoint] = []
    examples: dict[str, Poisoned] = {}
    for name in chosen:
        # Every fraction of one attack shares the trigger parameters (the seed fixes the pattern).
        first = next(p for n, _, p in plans if n == name)
        base_asr = built[name].success_rate(clean_predict, first, test.x, test.y)
        points.append(SimulationPoint(name, 0.0, 0, clean_acc, base_asr, clean_seconds))
        for attack, f, poisoned in plans:
            if attack != name:
                continue
            t0 = time.perf_counter()
            predict = fit(poisoned.x, poisoned.y)
            acc = float(np.mean(predict(test.x) == test.y))
            asr = built[name].success_rate(predict, poisoned, test.x, test.y)
            points.append(SimulationPoint(name, f, poisoned.n_poisoned, acc, asr, time.perf_counter() - t0))
            examples[name] = poisoned
            tick(f"{name} at {f:g}")
    return PoisoningSimulation(
        points=tuple(points),
        target_class=target,
        recipe=str(getattr(recipe, "name", type(recipe).__name__)),
        n_train=len(train.y),
        n_test=len(test.y),
        examples=examples,
        seconds=time.perf_counter() - start,
        configured=built,
        attack_choice=choice,
        class_names=train.class_names,
    )


def poisoning_severity(curve: Sequence[SimulationPoint]) -> tuple[Severity, SimulationPoint | None]:
    """Severity of one attack's curve and the point that sets it."""
    severity, index = rules.poisoning_curve([(p.fraction, p.clean_accuracy, p.attack_success) for p in curve])
    return severity, None if index is None else curve[index]


def _finding(sim: PoisoningSimulation, attack: str) -> Finding:
    curve = sim.curve(attack)
    severity, point = poisoning_severity(curve)
    base = curve[0]
    last = curve[-1]
    configured = sim.configured.get(attack)
    backdoor = configured is not None and configured.backdoor
    rows = "; ".join(
        f"{p.fraction:.1%} poisoned: accuracy {p.clean_accuracy:.1%}"
        + ("" if p.attack_success is None else f", ASR {p.attack_success:.1%}")
        for p in curve
    )
    if point is None:
        title = f"Poisoning ({attack}): no fraction up to {last.fraction:.0%} changed the model materially"
    elif point.attack_success is not None and backdoor:
        title = (
            f"Poisoning ({attack}): {point.fraction:.1%} of the training data makes the trigger send "
            f"{point.attack_success:.0%} of inputs to class {sim.target_name}"
        )
    else:
        title = (
            f"Poisoning ({attack}): {point.fraction:.1%} of the training data costs "
            f"{base.clean_accuracy - point.clean_accuracy:.1%} of accuracy"
        )
    mitigations = [*POISONING_SIMULATION.mitigations, *([SCREEN_TRIGGERS] if backdoor else [])]
    return POISONING_SIMULATION.finding(
        variant=attack,
        family=Family.BACKDOOR if backdoor else Family.POISONING,
        title=title,
        severity=severity,
        description=(
            f"The training data ({sim.n_train} rows) was poisoned with {attack} at "
            f"{', '.join(f'{p.fraction:g}' for p in curve[1:])} of the eligible rows and the model retrained "
            f"with {sim.recipe}; measured on {sim.n_test} clean test rows. {rows}. Severity: ASR gain ≥ 90% "
            "at ≤ 1% poisoned critical; ≥ 50% at ≤ 5% high; ≥ 50%, or ≥ 5 points of accuracy lost, medium; "
            "≥ 20% low."
        ),
        impact=None if point is None or point.attack_success is None else point.attack_success,
        evidence={
            "attack": attack,
            "target_class": sim.target_class,
            "target_name": sim.target_name,
            "curve": [p.to_dict() for p in curve],
        },
        owasp=[ML02, ML10] if backdoor else [ML02],
        mitigations=mitigations,
    )


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters worth reporting: scalars and short tuples of them.

    Not the bounds, the fraction or arrays such as victims.
    """

    def scalar(v: object) -> bool:
        return isinstance(v, int | float | str | bool | np.generic)

    out: dict[str, Any] = {}
    for k, v in params.items():
        if k in ("bounds", "fraction"):
            continue
        if scalar(v):
            out[k] = v.item() if isinstance(v, np.generic) else v
        elif isinstance(v, tuple) and len(v) <= 64 and all(scalar(i) for i in v):
            out[k] = [i.item() if isinstance(i, np.generic) else i for i in v]
    return out


def to_poisoning_report(sim: PoisoningSimulation, *, metadata: Mapping[str, Any] | None = None) -> Report:
    """The ``kind="poisoning"`` report: per-attack curves under ``attacks`` and one finding each."""
    attacks = {
        name: {
            "curve": [p.to_dict() for p in sim.curve(name)],
            "target_class": sim.target_class,
            "target_name": sim.target_name,
            "params": _plain(sim.examples[name].params),
        }
        for name in sim.attacks
    }
    curves = {
        name: [
            CurvePoint(**{k: v for k, v in p.to_dict().items() if k in CurvePoint.model_fields})
            for p in sim.curve(name)
        ]
        for name in sim.attacks
    }
    return Report(
        kind="poisoning",
        target=TargetInfo(name=sim.recipe),
        sections=Sections(poisoning=PoisoningSection(mode="simulate", curves=curves)),
        clean_accuracy=sim.points[0].clean_accuracy,
        attacks=attacks,
        findings=[_finding(sim, name) for name in sim.attacks],
        inspection={
            "mode": "simulate",
            "recipe": sim.recipe,
            "n_train": sim.n_train,
            "n_test": sim.n_test,
            "seconds": round(sim.seconds, 3),
            "attack_choice": sim.attack_choice,
            "class_names": None if sim.class_names is None else list(sim.class_names),
        },
        metadata=dict(metadata or {}),
    )
