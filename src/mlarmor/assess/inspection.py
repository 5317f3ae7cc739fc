"""The backdoor and poisoned-data verbs: inspect a model, inspect its training data, sanitise it.

Each is one function behind one ``mlarmor poisoning`` sub-command, returning a frozen result whose
``to_report()`` is the command's ``kind="poisoning"`` report:

- :func:`inspect_model` (``inspect-model``): Neural Cleanse, white-box for PyTorch targets and
  score-only (NES gradient estimates under a query budget) for any target with scores; optionally
  repairs an infected model (unlearning of the recovered trigger, or fine-pruning).
- :func:`inspect_data` (``inspect-data``): the poisoned-sample ensemble on the model's
  representations and losses, with the carriers of the trigger that model inspection recovers.
- :func:`sanitize` (``sanitize``): the same inspection, then drop the rows and retrain with the
  recipe, measuring clean accuracy and attack success before and after.

Severity rules (see :mod:`mlarmor.assess.backdoor`): a backdoor found is high; flagged samples are
high when they carry the recovered trigger or a backdoor was found, medium from 5 rows and 1% of the
data, low below; a sanitised model whose attack success stays at 20% or more is medium.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlarmor._progress import Progress, silent, step
from mlarmor._validation import check_choice, check_fraction, check_int, check_seed
from mlarmor.assess._files import check_writable, save_module, save_rows
from mlarmor.assess.backdoor import (
    DropPolicy,
    Sanitized,
    retrain_without,
    rows_to_drop,
    to_data_inspection_report,
    to_model_inspection_report,
    to_sanitize_report,
)
from mlarmor.data import Dataset
from mlarmor.errors import InvalidParameterError, UnsupportedModelError, invalid_parameter
from mlarmor.schema import Report
from mlarmor.targets import Target

if TYPE_CHECKING:
    from mlarmor.defenses.inspect.ensemble import DataInspection
    from mlarmor.defenses.inspect.model import BackdoorInspection
    from mlarmor.defenses.training.backdoor import Mitigation
    from mlarmor.targets import TorchTarget
    from mlarmor.targets.recipe import Recipe

__all__ = [
    "MITIGATIONS",
    "TRIGGERS",
    "DataInspectionResult",
    "ModelInspectionResult",
    "SanitizeResult",
    "inspect_data",
    "inspect_model",
    "sanitize",
]

Mitigate = Literal["unlearning", "fine-pruning"]
MITIGATIONS: tuple[Mitigate, ...] = ("unlearning", "fine-pruning")
TRIGGERS: tuple[str, ...] = ("badnets", "blend", "warp")
_DROP = ("auto", "flagged", "backdoor")
_SCORE_ONLY_QUERIES = 1_000_000
_INSPECTED_ROWS = 500  # rows of the training data that model inspection reverse-engineers triggers on
Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True, eq=False)
class ModelInspectionResult:
    """The outcome of :func:`inspect_model`.

    Attributes:
        inspection: Neural Cleanse's per-class triggers, anomaly indices and verdict.
        target_name: The target's name.
        mitigation: The repair's figures (and repaired model), when one was asked for.
        saved: Where the repaired model was written, if it was.
    """

    inspection: BackdoorInspection
    target_name: str
    mitigation: Mitigation | None = None
    saved: str | None = None

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The ``kind="poisoning"`` report: ``infected``, ``target_class``, ``anomaly_index``."""
        return to_model_inspection_report(
            self.inspection, target_name=self.target_name, mitigation=self.mitigation, metadata=metadata
        )


@dataclass(frozen=True, slots=True, eq=False)
class DataInspectionResult:
    """The outcome of :func:`inspect_data`.

    Attributes:
        inspection: Per-sample scores, flags and reasons, per-class summaries, histograms.
        model_inspection: The Neural Cleanse run whose trigger marked carriers (``None`` when off).
        saved_clean: Where the unflagged rows were written, if they were.
    """

    inspection: DataInspection
    model_inspection: BackdoorInspection | None = None
    saved_clean: str | None = None

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The ``kind="poisoning"`` report: ``suspicious_indices`` (most suspicious first), ``scores``."""
        return to_data_inspection_report(
            self.inspection, model_inspection=self.model_inspection, metadata=metadata
        )


@dataclass(frozen=True, slots=True, eq=False)
class SanitizeResult:
    """The outcome of :func:`sanitize`.

    Attributes:
        inspection: The data inspection that chose the rows.
        model_inspection: The Neural Cleanse run, when model inspection was on.
        sanitized: Rows kept, the retrained model, accuracy and attack success before and after.
        saved_clean: Where the kept rows were written, if they were.
        saved: Where the retrained model was written, if it was.
    """

    inspection: DataInspection
    model_inspection: BackdoorInspection | None
    sanitized: Sanitized
    saved_clean: str | None = None
    saved: str | None = None

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The data inspection's report plus the retraining's figures under ``defense``."""
        return to_sanitize_report(self.sanitized, inspection=self.inspection, metadata=metadata)


def _check_labels(target: Target, data: Dataset, owner: str) -> None:
    largest = int(data.y.max())
    if largest >= target.num_classes:
        raise InvalidParameterError(
            f"{owner}: the data has labels up to {largest}, but the model has {target.num_classes} classes. "
            "Check that the data belongs to this model (or the label column)."
        )


def _torch(target: Target, why: str, alternative: str) -> TorchTarget:
    from mlarmor.targets import TorchTarget

    if not isinstance(target, TorchTarget):
        raise UnsupportedModelError(
            f"{why} needs a PyTorch model; {target.name} loaded as {type(target).__name__}. {alternative}"
        )
    return target


def _neural_cleanse(
    target: Target,
    data: Dataset,
    *,
    steps: int,
    threshold: float,
    seed: int,
    queries: int | None,
    progress: Progress,
) -> BackdoorInspection:
    """White-box Neural Cleanse on a PyTorch target; the score-only variant otherwise or with queries."""
    from mlarmor.targets import TorchTarget

    if queries is not None or not isinstance(target, TorchTarget):
        from mlarmor.defenses.inspect.blackbox import neural_cleanse_blackbox

        name = "reverse-engineering triggers (score-only)"
        return neural_cleanse_blackbox(
            target, data.x, data.y, queries=_SCORE_ONLY_QUERIES if queries is None else queries,
            threshold=threshold, seed=seed, progress=lambda done, total: progress(name, done, total),
        )  # fmt: skip
    from mlarmor.defenses.inspect.model import neural_cleanse

    name = "reverse-engineering triggers"
    return neural_cleanse(
        target, data.x, data.y, steps=steps, threshold=threshold, seed=seed,
        progress=lambda done, total: progress(name, done, total),
    )  # fmt: skip


def inspect_model(
    target: Target,
    data: Dataset,
    *,
    steps: int = 600,
    queries: int | None = None,
    threshold: float = 2.0,
    mitigate: Mitigate | None = None,
    eval_fraction: float = 0.3,
    seed: int = 0,
    save: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> ModelInspectionResult:
    """Inspect ``target`` for a backdoor with Neural Cleanse; optionally repair it.

    Args:
        target: The model. PyTorch targets get the white-box search; any other target that returns
            scores (ONNX, scikit-learn, HTTP) the score-only one.
        data: A clean sample of inputs with labels (a few hundred), ``(n, C, H, W)`` images.
        steps: White-box optimisation steps (mini-batches) for all classes together.
        queries: Run the score-only search with this query budget (the default for targets without
            gradients, with 1,000,000 queries).
        threshold: The MAD anomaly index above which the model is infected.
        mitigate: ``"unlearning"`` (fine-tune on clean data stamped with the recovered trigger and
            the right labels) or ``"fine-pruning"``; PyTorch targets only. The repair works on a copy.
        eval_fraction: With ``mitigate``, the share of ``data`` held out to measure the repair.
        seed: Seed of the search and the repair.
        save: With ``mitigate``, write the repaired model here (checked writable first).
        progress: Receives the search's and the repair's progress.

    Raises:
        InvalidParameterError: For a bad parameter, or data whose labels the model does not have.
        UnsupportedModelError: For a repair asked of a model that is not PyTorch.
    """
    owner = "inspect_model"
    check_int(steps, "steps", owner)
    if queries is not None:
        check_int(queries, "queries", owner, hint="e.g. 1000000")
    if mitigate is not None:
        check_choice(mitigate, "mitigate", owner, MITIGATIONS)
    check_fraction(eval_fraction, "eval_fraction", owner, hint="e.g. 0.3")
    check_seed(seed, owner)
    if save is not None and mitigate is None:
        raise invalid_parameter(
            "save", owner, "given only with 'mitigate' (it writes the repaired model)", str(save),
            hint="add mitigate='unlearning' (--mitigate unlearning)",
        )  # fmt: skip
    out = check_writable(save, "save", owner)
    _check_labels(target, data, owner)
    if mitigate is not None:
        _torch(
            target, f"Repairing with {mitigate} retrains the model: it",
            "Inspect without a repair (score-only), or give file.py:factory with weights.",
        )  # fmt: skip
    report = progress or silent
    fit_part, eval_part = data.split(eval_fraction, seed=seed) if mitigate else (data, data)
    found = _neural_cleanse(
        target, fit_part, steps=steps, threshold=threshold, seed=seed, queries=queries, progress=report
    )
    if mitigate is None:
        return ModelInspectionResult(found, target.name)
    with step(report, f"{mitigate}: repairing the model"):
        mitigation = _mitigate(mitigate, _torch(target, "", ""), found, fit_part, eval_part, seed)
    saved = None
    if out is not None:
        saved = str(save_module(mitigation.model, out, "the repaired model"))
    return ModelInspectionResult(found, target.name, mitigation, saved)


def _mitigate(
    method: Mitigate, target: TorchTarget, found: BackdoorInspection, fit: Dataset, held: Dataset, seed: int
) -> Mitigation:
    from mlarmor.defenses.training.backdoor import fine_prune, unlearn
    from mlarmor.targets import InputSpace

    trigger = found.trigger or min(found.candidates, key=lambda c: c.l1)
    model = InputSpace(target)
    if method == "unlearning":
        return unlearn(
            model, fit.x, fit.y, trigger, seed=seed, x_eval=held.x, y_eval=held.y,
            target_class=trigger.target_class,
        )  # fmt: skip
    return fine_prune(
        model, fit.x, fit.y, seed=seed, x_eval=held.x, y_eval=held.y, trigger=trigger.apply,
        target_class=trigger.target_class,
    )  # fmt: skip


def _inspect(
    target: TorchTarget,
    train: Dataset,
    *,
    layer: str | None,
    methods: Sequence[str] | None,
    expected_fraction: float | None,
    model_inspection: bool,
    steps: int,
    seed: int,
    progress: Progress,
) -> tuple[DataInspection, BackdoorInspection | None]:
    from mlarmor.defenses.inspect.ensemble import inspect_data as run_ensemble
    from mlarmor.targets import InputSpace

    found = None
    if model_inspection:
        rows = np.random.default_rng(seed).permutation(len(train.y))[:_INSPECTED_ROWS]
        found = _neural_cleanse(
            target, train.subset(rows), steps=steps, threshold=2.0, seed=seed, queries=None, progress=progress
        )
    trigger = None
    if found is not None and found.infected and found.trigger is not None:
        trigger = (found.trigger.mask, found.trigger.pattern)
    with step(progress, "inspecting the training data"):
        inspection = run_ensemble(
            InputSpace(target),
            train.x,
            train.y,
            layer=None if layer in (None, "input") else InputSpace.layer(layer),
            methods=list(methods) if methods else None,
            expected_fraction=expected_fraction,
            trigger=trigger,
            seed=seed,
        )
    return inspection, found


def inspect_data(
    target: Target,
    train: Dataset,
    *,
    layer: str | None = None,
    methods: Sequence[str] | None = None,
    expected_fraction: float | None = None,
    model_inspection: bool = True,
    steps: int = 600,
    seed: int = 0,
    save_clean: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> DataInspectionResult:
    """Find the poisoned samples of ``train``, using the PyTorch model trained on it.

    Args:
        target: The model trained on ``train`` (a PyTorch target).
        train: The training data, with its labels.
        layer: The layer (the user's module name) whose activations the clustering detectors read;
            the penultimate one when ``None``.
        methods: Detectors to run (:data:`mlarmor.defenses.inspect.DETECTORS` names); the
            ensemble's defaults when ``None``.
        expected_fraction: An upper estimate of the poisoned share, in (0, 0.5).
        model_inspection: Run Neural Cleanse first (on up to 500 rows) and flag carriers of the
            trigger it recovers.
        steps: Neural Cleanse's optimisation steps.
        seed: Seed of the clustering and the trigger search.
        save_clean: Write the unflagged rows here as ``.npz`` (``x``, ``y``, ``index``).
        progress: Receives the steps' progress.
    """
    owner = "inspect_data"
    check_int(steps, "steps", owner)
    check_seed(seed, owner)
    out = check_writable(save_clean, "save_clean", owner)
    torch_target = _torch(
        target,
        "Backdoor inspection of the training data",
        "Give file.py:factory with weights, or TorchScript.",
    )
    _check_labels(target, train, owner)
    inspection, found = _inspect(
        torch_target, train, layer=layer, methods=methods, expected_fraction=expected_fraction,
        model_inspection=model_inspection, steps=steps, seed=seed, progress=progress or silent,
    )  # fmt: skip
    saved = None
    if out is not None:
        saved = str(save_rows(train.x, train.y, ~inspection.flagged, out, "the unflagged rows"))
    return DataInspectionResult(inspection, found, saved)


def _known_success(trigger: str, target_class: int, params: Mapping[str, object], test: Dataset) -> Any:
    from mlarmor.attacks.poisoning import attack_success_rate

    options = {"bounds": test.bounds, **params}

    def measured(predict: Predict) -> float:
        return attack_success_rate(
            predict,
            test.x,
            test.y,
            trigger=trigger,  # type: ignore[arg-type]  # checked against TRIGGERS
            target_class=target_class,
            **options,
        )

    return measured


def _recovered_success(found: BackdoorInspection | None, test: Dataset) -> Any:
    if found is None or not found.infected or found.trigger is None:
        return None
    stamp, target_class = found.trigger.apply, found.trigger.target_class
    rows = test.y != target_class
    return lambda predict: float(np.mean(predict(stamp(test.x[rows])) == target_class))


def sanitize(
    target: Target,
    train: Dataset,
    test: Dataset,
    recipe: Recipe,
    *,
    trigger: str | None = None,
    target_class: int | None = None,
    trigger_params: Mapping[str, object] | None = None,
    drop: DropPolicy = "auto",
    layer: str | None = None,
    methods: Sequence[str] | None = None,
    expected_fraction: float | None = None,
    model_inspection: bool = True,
    steps: int = 600,
    seed: int = 0,
    save_clean: str | os.PathLike[str] | None = None,
    save: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> SanitizeResult:
    """Drop the training rows :func:`inspect_data` flags, retrain with ``recipe``, compare.

    Both models are measured on ``test``: clean accuracy, and the attack success of the backdoor —
    the known ``trigger`` (``"badnets"``, ``"blend"`` or ``"warp"`` with its ``target_class`` and
    ``trigger_params``), or else the trigger model inspection recovered.

    Args:
        target: The (suspect) PyTorch model trained on ``train``.
        train: Its training data.
        test: Clean held-out data.
        recipe: How the model is trained (:func:`mlarmor.targets.recipe.load_recipe`).
        trigger: A known trigger to measure.
        target_class: With ``trigger``: the backdoor's target class.
        trigger_params: With ``trigger``: its keyword arguments.
        drop: ``"flagged"`` (every flagged row), ``"backdoor"`` (the rows flagged in the backdoor's
            target class, and the trigger's carriers) or ``"auto"`` (``"backdoor"`` when model
            inspection found one, else ``"flagged"``); see
            :func:`~mlarmor.assess.backdoor.rows_to_drop`.
        layer: As for :func:`inspect_data`.
        methods: As for :func:`inspect_data`.
        expected_fraction: As for :func:`inspect_data`.
        model_inspection: As for :func:`inspect_data`; ``drop="backdoor"`` needs it.
        steps: As for :func:`inspect_data`.
        seed: Seed of the inspection and the retraining.
        save_clean: Write the kept rows here as ``.npz``.
        save: Write the retrained model's weights here (a PyTorch recipe's model).
        progress: Receives the steps' progress.
    """
    owner = "sanitize"
    check_choice(drop, "drop", owner, _DROP)
    check_int(steps, "steps", owner)
    check_seed(seed, owner)
    if drop == "backdoor" and not model_inspection:
        raise invalid_parameter(
            "drop", owner, "'flagged' or 'auto' without model inspection", drop,
            hint="turn model inspection on, or drop 'flagged' rows",
        )  # fmt: skip
    if trigger is None and (target_class is not None or trigger_params):
        raise invalid_parameter(
            "trigger", owner, "given with target_class and trigger_params (they describe it)", None,
            hint="e.g. trigger='badnets' (--trigger badnets)",
        )  # fmt: skip
    if trigger is not None:
        check_choice(trigger, "trigger", owner, TRIGGERS)
        if target_class is None:
            raise invalid_parameter(
                "target_class", owner, "the known trigger's target class", None, hint="e.g. 0"
            )
    out_clean = check_writable(save_clean, "save_clean", owner)
    out = check_writable(save, "save", owner)
    torch_target = _torch(
        target,
        "Backdoor inspection of the training data",
        "Give file.py:factory with weights, or TorchScript.",
    )
    _check_labels(target, train, owner)
    report = progress or silent
    inspection, found = _inspect(
        torch_target, train, layer=layer, methods=methods, expected_fraction=expected_fraction,
        model_inspection=model_inspection, steps=steps, seed=seed, progress=report,
    )  # fmt: skip
    if trigger is not None:
        assert target_class is not None  # checked above
        success = _known_success(trigger, target_class, trigger_params or {}, test)
    else:
        success = _recovered_success(found, test)
    dropped, policy = rows_to_drop(inspection, train.y, model_inspection=found, policy=drop)
    with step(report, f"retraining on {int((~dropped).sum())} kept rows"):
        result = retrain_without(
            recipe,
            train,
            dropped,
            test,
            before=target.predict,
            attack_success=success,
            seed=seed,
            policy=policy,
        )
    saved_clean = (
        None
        if out_clean is None
        else str(save_rows(train.x, train.y, result.kept, out_clean, "the kept rows"))
    )
    saved = None
    import torch

    if out is not None and isinstance(result.model, torch.nn.Module):
        saved = str(save_module(result.model, out, "the retrained model"))
    return SanitizeResult(inspection, found, result, saved_clean, saved)
