"""Hardening: make a model resist evasion or membership inference, and measure the gain.

:func:`harden` is the one function behind ``mlarmor harden``. Given a target, training data and
held-out data it runs one method and measures it on the held-out data:

- ``"adversarial-training"`` (PyTorch models): evaluate under an evasion attack, train in place with
  TRADES or PGD-AT at ``eps``, evaluate again.
- ``"feature-squeezing"`` (any model with scores): fit the input detector on the training (clean)
  data, attack held-out samples, and rate what the detector misses.
- ``"dp"`` (PyTorch modules): train with DP-SGD (Opacus) from the model's current weights so that the
  run spends at most ``epsilon`` at ``delta``, measure clean accuracy before and after and re-audit
  membership inference with the threshold attacks.

It returns a frozen :class:`HardeningResult`; :meth:`HardeningResult.to_report` builds the
``kind="harden"`` report. Severity rules: adversarial training reports the hardened model's residual
evasion risk (:func:`~mlarmor.assess.severity_for_loss` of the accuracy still lost at ``eps``); the
detector's finding rates the accuracy points that adversarial examples it misses still cost (same
thresholds); DP training is rated by the ε spent: ``≤ 1`` none, ``≤ 10`` low, above medium, and at
least medium when ``δ ≥ 1/n`` (:func:`mlarmor.risk.severity.dp_training`).

Example:
    >>> from mlarmor import harden
    >>> result = harden(target, train, test, method="adversarial-training", eps=0.2)  # doctest: +SKIP
    >>> result.before.robust_accuracy, result.after.robust_accuracy  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlarmor._progress import Progress, silent, step
from mlarmor._stats import interval_text
from mlarmor._validation import check_choice, check_fraction, check_int, check_positive, check_seed
from mlarmor.assess._files import check_writable, save_json, save_module
from mlarmor.assess._labels import matched
from mlarmor.assess.evasion import (
    EvasionAssessment,
    evaluate_evasion,
    to_hardening_report,
    to_report,
)
from mlarmor.attacks import available
from mlarmor.data import Dataset
from mlarmor.errors import MlarmorWarning, UnsupportedModelError, invalid_parameter
from mlarmor.findings import Family, Finding, Severity
from mlarmor.risk import severity as rules
from mlarmor.risk.catalogue import DP_TRAINING, EVASION_DETECTOR
from mlarmor.schema import Report, TargetInfo
from mlarmor.schema.sections import Accuracies, DetectorRates, HardenSection, PrivacyBudget
from mlarmor.targets import Target

if TYPE_CHECKING:
    import torch

    from mlarmor.defenses import FeatureSqueezing
    from mlarmor.defenses.runtime.squeezing import DetectionReport
    from mlarmor.defenses.training.dp import DPResult

__all__ = ["METHODS", "HardeningResult", "Method", "harden"]

Method = Literal["adversarial-training", "feature-squeezing", "dp"]
METHODS: tuple[Method, ...] = ("adversarial-training", "feature-squeezing", "dp")
_ALGORITHMS = ("trades", "pgd-at")
_OPTIMIZERS = ("adam", "sgd")
_NORMS = ("linf", "l2")
_ACCOUNTANTS = ("prv", "rdp", "gdp")
_OWNER = "harden"


@dataclass(frozen=True, slots=True, eq=False)
class HardeningResult:
    """The outcome of :func:`harden`.

    Attributes:
        method: The method run.
        target_name: The target's name.
        params: The method's parameters as run (what reproduces it with the same data and seed).
        train_samples: Rows the method trained or fitted on.
        test_samples: Held-out rows.
        before: The evasion evaluation before adversarial training (``None`` for other methods).
        after: The evasion evaluation after adversarial training, or the attack the detector was
            scored on (``None`` for DP).
        clean_accuracy_before: Clean held-out accuracy before (DP), else ``before``'s.
        clean_accuracy_after: Clean held-out accuracy after.
        train_seconds: Wall-clock time of the training (or the detector's fit).
        history: Per-epoch records of the training (as dicts; empty for the detector).
        detector: The fitted feature-squeezing detector.
        detection: The detector's rates on the held-out clean and adversarial inputs.
        flagged: Which adversarial examples the detector flagged.
        dp: What DP-SGD did (ε spent, noise multiplier, ...).
        audit: The membership re-audit after DP training.
        model: The hardened PyTorch module (trained in place: the target's own module).
        saved: Where the hardened model or the detector was written, if it was.
        label_mapping: Each label of the data to the model's class index, when the model names its
            classes (``None`` otherwise).
    """

    method: Method
    target_name: str
    params: Mapping[str, object]
    train_samples: int
    test_samples: int
    before: EvasionAssessment | None = None
    after: EvasionAssessment | None = None
    clean_accuracy_before: float | None = None
    clean_accuracy_after: float | None = None
    train_seconds: float = 0.0
    history: tuple[Mapping[str, float], ...] = ()
    detector: FeatureSqueezing | None = None
    detection: DetectionReport | None = None
    flagged: np.ndarray | None = None
    dp: DPResult | None = None
    audit: Mapping[str, Any] = field(default_factory=dict)
    model: torch.nn.Module | None = None
    saved: str | None = None
    label_mapping: Mapping[str, int] | None = None

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The ``kind="harden"`` report (see ``docs/hardening.md`` for its ``defense`` block).

        ``sections.harden`` holds the method, before and after; for adversarial training and the
        detector, ``sections.evasion`` holds the evaluation of the hardened (or guarded) model.
        """
        meta = dict(metadata or {})
        if self.label_mapping is not None:
            meta.setdefault("label_mapping", dict(self.label_mapping))
        report = self._report(meta)
        sections = report.sections.model_copy(update={"harden": self._section()})
        target = report.target or TargetInfo(name=self.target_name)
        return report.model_copy(update={"sections": sections, "target": target})

    def _section(self) -> HardenSection:
        def accuracies(assessment: EvasionAssessment | None, clean: float | None) -> Accuracies:
            if assessment is None:
                return Accuracies(clean_accuracy=clean)
            return Accuracies(
                clean_accuracy=assessment.clean_accuracy, robust_accuracy=assessment.robust_accuracy
            )

        dp = self.dp
        budget = None
        if dp is not None:
            budget = PrivacyBudget(
                target_epsilon=dp.target_epsilon,
                epsilon_spent=dp.epsilon,
                delta=dp.delta,
                noise_multiplier=dp.noise_multiplier,
                max_grad_norm=dp.max_grad_norm,
                epochs=dp.epochs,
                steps=dp.steps,
                sample_rate=dp.sample_rate,
                accountant=dp.accountant,
            )
        detector = None if self.detection is None else DetectorRates.model_validate(self.detection.to_dict())
        guarded = self.method == "feature-squeezing"
        return HardenSection(
            method=self.method,
            params=_plain(self.params),
            train_samples=self.train_samples,
            train_seconds=round(self.train_seconds, 2),
            before=accuracies(None if guarded else self.before, self.clean_accuracy_before),
            after=accuracies(None if guarded else self.after, self.clean_accuracy_after),
            detector=detector,
            dp=budget,
            saved=self.saved,
            label_mapping=None if self.label_mapping is None else dict(self.label_mapping),
        )

    def _report(self, meta: dict[str, Any]) -> Report:
        if self.method == "adversarial-training":
            assert self.before is not None  # set by harden
            assert self.after is not None
            defense = {
                "method": self.method,
                "algorithm": self.params["algorithm"],
                "params": {k: v for k, v in self.params.items() if k != "algorithm"},
                "train_samples": self.train_samples,
                "train_seconds": round(self.train_seconds, 2),
                "history": [dict(r) for r in self.history],
                "saved": self.saved,
            }
            return to_hardening_report(self.before, self.after, defense, metadata=meta)
        if self.method == "feature-squeezing":
            return self._detector_report(meta)
        return self._dp_report(meta)

    def _detector_report(self, meta: dict[str, Any]) -> Report:
        assert self.after is not None  # set by harden
        assert self.detector is not None
        assert self.detection is not None
        report = to_report(self.after, metadata=meta)
        evaluation = self.detection
        defense = {
            "method": self.method,
            "params": self.detector.to_dict(),
            "fit_samples": self.train_samples,
            **evaluation.to_dict(),
            "saved": self.saved,
        }
        finding = _detector_finding(self)
        return report.model_copy(
            update={"kind": "harden", "defense": defense, "findings": [finding, *report.findings]}
        )

    def _dp_report(self, meta: dict[str, Any]) -> Report:
        dp = self.dp
        assert dp is not None  # set by harden
        privacy = {
            "target_epsilon": dp.target_epsilon,
            "epsilon_spent": dp.epsilon,
            "delta": dp.delta,
            "noise_multiplier": dp.noise_multiplier,
            "max_grad_norm": dp.max_grad_norm,
            "epochs": dp.epochs,
            "steps": dp.steps,
            "sample_rate": dp.sample_rate,
            "accountant": dp.accountant,
        }
        defense = {
            "method": "dp",
            **privacy,
            "params": dict(self.params),
            "train_samples": self.train_samples,
            "train_seconds": round(self.train_seconds, 2),
            # Computed on the private training batches: outside the DP guarantee, like any training log.
            "history": [dict(r) for r in self.history],
            "before": {"clean_accuracy": self.clean_accuracy_before},
            "after": {"clean_accuracy": self.clean_accuracy_after},
            "audit": dict(self.audit),
            "saved": self.saved,
        }
        finding = _dp_finding(dp, self.train_samples, {**privacy, "train_samples": self.train_samples})
        return Report(
            kind="harden",
            clean_accuracy=self.clean_accuracy_after,
            findings=[finding],
            metadata={**meta, "test_samples": self.test_samples},
            defense=defense,
        )


def harden(
    target: Target,
    train: Dataset,
    test: Dataset,
    *,
    method: Method,
    eps: float | None = None,
    norm: Literal["linf", "l2"] = "linf",
    algorithm: Literal["trades", "pgd-at"] = "trades",
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 2e-3,
    optimizer: Literal["adam", "sgd"] = "adam",
    steps: int = 10,
    beta: float = 6.0,
    attack: str | None = None,
    params: Mapping[str, object] | None = None,
    n_samples: int = 500,
    epsilon: float | None = None,
    delta: float = 1e-5,
    max_grad_norm: float = 1.0,
    accountant: Literal["prv", "rdp", "gdp"] = "prv",
    false_alarm_rate: float = 0.05,
    bits: int | None = None,
    seed: int = 0,
    reliability: bool = True,
    save: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> HardeningResult:
    """Harden ``target`` with ``method`` on ``train`` and measure it on ``test``.

    Adversarial training and DP training change the target's module in place (work on a copy to
    keep the original).

    Args:
        target: The model. Adversarial and DP training need a PyTorch module
            (:class:`~mlarmor.targets.TorchTarget`; DP: not TorchScript); the detector any model with
            scores.
        train: Training data (for the detector: clean data the model was not trained on).
        test: Held-out data for the before/after measurements.
        method: ``"adversarial-training"``, ``"feature-squeezing"`` or ``"dp"``.
        eps: The evasion budget trained for and evaluated at (input space); required by
            adversarial training and the detector.
        norm: ``"linf"`` or ``"l2"``.
        algorithm: Adversarial training: ``"trades"`` or ``"pgd-at"``.
        epochs: Training epochs (adversarial training follows a cosine learning-rate schedule).
        batch_size: Training batch size.
        lr: Learning rate.
        optimizer: ``"adam"``, or ``"sgd"`` (momentum 0.9, weight decay 5e-4).
        steps: Inner attack steps per adversarial-training batch.
        beta: TRADES robustness weight.
        attack: The evaluation attack (a registry name); ``"auto"`` for targets with gradients,
            ``"square"`` otherwise when ``None``.
        params: Extra parameters of the evaluation attack.
        n_samples: Held-out samples the evaluation attacks (a seeded draw).
        epsilon: DP: the privacy budget ε of the whole training run (required).
        delta: DP: δ of the guarantee; keep it below 1/n (a warning says when it is not).
        max_grad_norm: DP: per-example gradient clipping norm.
        accountant: DP: ``"prv"``, ``"rdp"`` or ``"gdp"``.
        false_alarm_rate: Detector: share of clean inputs it may flag (sets its threshold).
        bits: Detector: the bit depth of its bit-depth squeezer (1-16); chosen on the clean data when
            ``None``.
        seed: Seed of the training, the sample draw and the attacks.
        reliability: Run the evasion reliability checks in the evaluations.
        save: Write the hardened weights (a state dict, TorchScript for a TorchScript model) or the
            fitted detector (JSON) here; checked writable before any training.
        progress: Receives the step names and per-epoch progress (see :mod:`mlarmor._progress`).

    Returns:
        The frozen :class:`HardeningResult`.

    Raises:
        InvalidParameterError: For a bad parameter, or data that does not fit the target.
        UnsupportedModelError: If the method cannot work on this kind of model.
        InputError: If ``save`` cannot be written.
    """
    check_choice(method, "method", _OWNER, METHODS)
    check_choice(algorithm, "algorithm", _OWNER, _ALGORITHMS)
    check_choice(optimizer, "optimizer", _OWNER, _OPTIMIZERS)
    check_choice(norm, "norm", _OWNER, _NORMS)
    check_choice(accountant, "accountant", _OWNER, _ACCOUNTANTS)
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("steps", steps),
        ("n_samples", n_samples),
    ):
        check_int(value, name, _OWNER)
    check_positive(lr, "lr", _OWNER)
    check_seed(seed, _OWNER)
    if attack is not None:
        check_choice(attack, "attack", _OWNER, available(Family.EVASION))
    if method == "dp":
        if epsilon is None:
            raise invalid_parameter(
                "epsilon", _OWNER, "the privacy budget ε of the whole run", epsilon,
                hint="e.g. 1 (a strong guarantee) or 8 (common in practice)",
            )  # fmt: skip
        check_positive(epsilon, "epsilon", _OWNER, hint="e.g. 1")
        check_fraction(delta, "delta", _OWNER, hint="e.g. 1e-5, below 1/n")
        check_positive(max_grad_norm, "max_grad_norm", _OWNER, hint="e.g. 1")
    else:
        if eps is None:
            raise invalid_parameter(
                "eps", _OWNER, f"the evasion budget to train for and evaluate at (method {method!r})", eps,
                hint="e.g. 0.2 for L∞ on inputs in [0, 1]",
            )  # fmt: skip
        check_positive(eps, "eps", _OWNER, hint="e.g. 0.2 for L∞ on inputs in [0, 1]")
    if method == "feature-squeezing":
        check_fraction(false_alarm_rate, "false_alarm_rate", _OWNER, hint="e.g. 0.05")
    out = check_writable(save, "save", _OWNER)
    train, train_mapping = matched(train, target)
    test, test_mapping = matched(test, target)
    mapping = None if train_mapping is None else {**train_mapping, **(test_mapping or {})}
    report = progress or silent
    chosen = attack or "auto"  # evaluate_evasion falls back to a black-box attack without gradients
    evaluation = {
        "attack": chosen,
        "eps": eps,
        "norm": norm,
        "n_samples": n_samples,
        "seed": seed,
        "params": dict(params or {}),
        "reliability": reliability,
    }
    if method == "adversarial-training":
        result = _adversarial_training(
            target, train, test, evaluation, algorithm=algorithm, epochs=epochs, batch_size=batch_size,
            lr=lr, optimizer=optimizer, steps=steps, beta=beta, progress=report,
        )  # fmt: skip
    elif method == "feature-squeezing":
        result = _feature_squeezing(target, train, test, evaluation, false_alarm_rate, bits, report)
    else:
        assert epsilon is not None  # checked above
        result = _dp_training(
            target, train, test, epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm,
            accountant=accountant, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
            seed=seed, progress=report,
        )  # fmt: skip
    if mapping is not None:
        result = _replace(result, label_mapping=mapping)
    if out is None:
        return result
    with step(report, f"saving to {out}"):
        if result.detector is not None:
            saved = save_json(result.detector.to_dict(), out, "the detector")
        else:
            saved = save_module(result.model, out, "the hardened model")
    return _replace(result, saved=str(saved))


def _plain(params: Mapping[str, object]) -> dict[str, Any]:
    """Parameters as JSON values (an attack's parameters nest one level)."""
    return {
        k: _plain(v) if isinstance(v, Mapping) else v
        for k, v in params.items()
        if v is None or isinstance(v, bool | int | float | str | Mapping)
    }


def _replace(result: HardeningResult, **changes: Any) -> HardeningResult:
    import dataclasses

    return dataclasses.replace(result, **changes)


def _arrays(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return np.array(ds.x, dtype=np.float32), np.array(ds.y, dtype=np.int64)


def _evaluate(
    target: Target, test: Dataset, evaluation: Mapping[str, Any], progress: Progress | None = None
) -> EvasionAssessment:
    return evaluate_evasion(
        target,
        test,
        attack=evaluation["attack"],
        eps=[evaluation["eps"]],
        norm=evaluation["norm"],
        n_samples=evaluation["n_samples"],
        seed=evaluation["seed"],
        params=evaluation["params"],
        reliability=evaluation["reliability"],
        eps_unit="absolute",  # adversarial training bounds perturbations in input units too
        progress=progress,
    )


def _torch_module(target: Target, why: str, alternative: str) -> Any:
    from mlarmor.targets import InputSpace, TorchTarget

    if not isinstance(target, TorchTarget):
        raise UnsupportedModelError(
            f"{why} needs a PyTorch model (file.py:factory with weights, or TorchScript); "
            f"{target.name} is a {type(target).__name__}. {alternative}"
        )
    model = InputSpace(target)
    if not any(p.requires_grad for p in model.parameters()):
        raise UnsupportedModelError(
            f"{target.name} has no trainable parameters. Pass a model whose weights require gradients."
        )
    return model


def _adversarial_training(
    target: Target,
    train: Dataset,
    test: Dataset,
    evaluation: Mapping[str, Any],
    *,
    algorithm: Literal["trades", "pgd-at"],
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    steps: int,
    beta: float,
    progress: Progress,
) -> HardeningResult:
    import torch

    from mlarmor.defenses import AdversarialTrainer

    model = _torch_module(
        target,
        "Adversarial training",
        "For scikit-learn, ONNX or HTTP models use the feature-squeezing detector.",
    )
    eps, norm, seed = evaluation["eps"], evaluation["norm"], evaluation["seed"]
    trainer = AdversarialTrainer(algorithm, eps=eps, norm=norm, steps=steps, beta=beta, seed=seed)
    with step(progress, f"evaluating the model before training ({evaluation['attack']}, ε = {eps:g})"):
        before = _evaluate(target, test, evaluation, progress)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(parameters, lr=lr)
    else:
        opt = torch.optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    x_tr, y_tr = _arrays(train)
    name = f"{algorithm} ε={eps:g}"
    progress(name, 0, epochs)

    def on_epoch(r: Any) -> None:
        info = f"loss {r.loss:.3f} clean {r.clean_accuracy:.1%} adv {r.adv_accuracy:.1%}"
        progress(name, r.epoch + 1, epochs, info)

    start = time.perf_counter()
    trainer.fit(
        model, opt, (x_tr, y_tr), epochs=epochs, batch_size=batch_size, bounds=train.bounds,
        device=target.device, scheduler=scheduler, progress=on_epoch,  # type: ignore[attr-defined]
    )  # fmt: skip
    seconds = time.perf_counter() - start
    model.eval()
    with step(progress, f"evaluating the hardened model ({evaluation['attack']}, ε = {eps:g})"):
        after = _evaluate(target, test, evaluation, progress)
    params = {
        "algorithm": algorithm,
        "eps": eps,
        "norm": norm,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "scheduler": "cosine",
        "steps": steps,
        "beta": beta if algorithm == "trades" else None,
        "seed": seed,
    }
    history = tuple(
        {
            "epoch": r.epoch,
            "loss": r.loss,
            "clean_accuracy": r.clean_accuracy,
            "adv_accuracy": r.adv_accuracy,
            "seconds": r.seconds,
        }
        for r in trainer.history_
    )
    return HardeningResult(
        method="adversarial-training",
        target_name=target.name,
        params=params,
        train_samples=train.n,
        test_samples=test.n,
        before=before,
        after=after,
        clean_accuracy_before=before.clean_accuracy,
        clean_accuracy_after=after.clean_accuracy,
        train_seconds=seconds,
        history=history,
        model=model.inner,
    )


def _feature_squeezing(
    target: Target,
    train: Dataset,
    test: Dataset,
    evaluation: Mapping[str, Any],
    false_alarm_rate: float,
    bits: int | None,
    progress: Progress,
) -> HardeningResult:
    from mlarmor.defenses import FeatureSqueezing

    x_fit, y_fit = _arrays(train)
    start = time.perf_counter()
    with step(progress, f"fitting the feature-squeezing detector on {train.n} clean samples"):
        detector = FeatureSqueezing(false_alarm_rate=false_alarm_rate, bits=bits).fit(target, x_fit, y_fit)
    seconds = time.perf_counter() - start
    attacked = min(evaluation["n_samples"], test.n)
    eps = evaluation["eps"]
    with step(progress, f"attacking {attacked} held-out samples with {evaluation['attack']} at ε = {eps:g}"):
        assessment = _evaluate(target, test, evaluation, progress)
    result = assessment.results[0]
    x_clean = np.array(test.subset(assessment.indices).x, dtype=np.float32)
    # Only successful attacks on samples that were classified correctly count as adversarial.
    adversarial = np.asarray(result.success) & (np.asarray(result.y_pred_clean) == np.asarray(result.y))
    with step(progress, "scoring clean and adversarial inputs"):
        detection = detector.evaluate(x_clean, np.asarray(result.x_adv), adversarial=adversarial)
        flagged = np.asarray(detector.detect(np.asarray(result.x_adv)))
    return HardeningResult(
        method="feature-squeezing",
        target_name=target.name,
        params={"false_alarm_rate": false_alarm_rate, **evaluation},
        train_samples=train.n,
        test_samples=test.n,
        after=assessment,
        clean_accuracy_before=assessment.clean_accuracy,
        clean_accuracy_after=assessment.clean_accuracy,
        train_seconds=seconds,
        detector=detector,
        detection=detection,
        flagged=flagged & adversarial,
    )


def _detector_finding(result: HardeningResult) -> Finding:
    assert result.after is not None  # set by harden
    assert result.detection is not None
    assert result.flagged is not None
    evasion = result.after.results[0]
    adversarial = np.asarray(evasion.success) & (np.asarray(evasion.y_pred_clean) == np.asarray(evasion.y))
    evaluation = result.detection
    attack, eps = result.after.attack, result.after.eps[0]
    n = max(1, len(adversarial))
    undetected = float(np.mean(adversarial & ~result.flagged)) * 100.0
    caught = float(np.mean(adversarial & result.flagged)) * 100.0
    return EVASION_DETECTOR.finding(
        title=(
            f"Feature squeezing flags {evaluation.detection_rate:.1%} of successful {attack} examples at "
            f"{evaluation.false_alarm_rate:.1%} false alarms"
        ),
        severity=rules.accuracy_loss(undetected),
        description=(
            f"Fitted on {result.train_samples} clean samples (threshold at a "
            f"{result.params['false_alarm_rate']:.0%} false-alarm rate), the detector was scored on {n} "
            f"held-out samples and their {attack} adversarial examples (ε={eps:g}). It flags "
            f"{evaluation.detection_rate:.1%} of the {evaluation.n_adversarial} successful ones (95% CI "
            f"{interval_text(evaluation.detection_rate_ci)}) and {evaluation.false_alarm_rate:.1%} of the "
            f"{evaluation.n_clean} clean ones (95% CI {interval_text(evaluation.false_alarm_rate_ci)}). "
            f"Adversarial examples it misses cost {undetected:.1f} accuracy points (it catches "
            f"{caught:.1f}). "
            "Severity thresholds on the points missed: ≥ 50 critical, ≥ 25 high, ≥ 10 medium, > 0 low. An "
            "attacker who knows the squeezers can adapt to them: treat the detector as a tripwire, not as "
            "robustness."
        ),
        impact=min(1.0, undetected / 100.0),
        evidence={
            "detection_rate": evaluation.detection_rate,
            "detection_rate_ci": list(evaluation.detection_rate_ci),
            "false_alarm_rate": evaluation.false_alarm_rate,
            "false_alarm_rate_ci": list(evaluation.false_alarm_rate_ci),
            "n_adversarial": evaluation.n_adversarial,
            "n_clean": evaluation.n_clean,
            "auc": evaluation.auc,
            "threshold": evaluation.threshold,
            "points_missed": round(undetected, 2),
        },
    )


def _clean_accuracy(target: Target, test: Dataset) -> float:
    x, y = _arrays(test)
    return float(np.mean(np.asarray(target.predict(x)) == y))


def _dp_training(
    target: Target,
    train: Dataset,
    test: Dataset,
    *,
    epsilon: float,
    delta: float,
    max_grad_norm: float,
    accountant: str,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    seed: int,
    progress: Progress,
) -> HardeningResult:
    import torch

    from mlarmor.defenses import dp_incompatibilities, train_dp

    model = _torch_module(
        target,
        "DP training",
        "For scikit-learn use mlarmor.defenses.DPMLPClassifier.",
    )
    if isinstance(model.inner, torch.jit.ScriptModule):
        raise UnsupportedModelError(
            "DP training needs a PyTorch model built by Python code (file.py:factory), not TorchScript."
        )
    problems = [model.user_layer(p) for p in dp_incompatibilities(model)]
    if problems:
        raise UnsupportedModelError(
            f"The model has layers that DP-SGD cannot train: {'; '.join(problems)}. Build the model with "
            "GroupNorm or LayerNorm instead of BatchNorm in the factory (e.g. nn.GroupNorm(1, C) after a "
            "Linear layer), so that the saved weights load into it."
        )
    if delta >= 1.0 / train.n:
        warnings.warn(
            f"delta {delta:g} is not below 1/n = {1.0 / train.n:.2g} for {train.n} training examples; "
            "use a smaller delta (e.g. 1e-5 or below).",
            MlarmorWarning,
            stacklevel=3,
        )
    with step(progress, f"measuring clean accuracy of the fresh model on {test.n} held-out samples"):
        before = _clean_accuracy(target, test)
    x_tr, y_tr = _arrays(train)
    name = f"DP-SGD ε={epsilon:g}"
    progress(name, 0, epochs)

    def on_epoch(r: Any) -> None:
        progress(name, r.epoch + 1, epochs, f"loss {r.loss:.3f} train acc {r.accuracy:.1%}")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"delta=.* is not below 1/n")  # warned above
        dp = train_dp(
            model, x_tr, y_tr, epsilon=epsilon, delta=delta, epochs=epochs, batch_size=batch_size, lr=lr,
            max_grad_norm=max_grad_norm, optimizer=optimizer, accountant=accountant,  # type: ignore[arg-type]
            seed=seed, device=target.device, progress=on_epoch,  # type: ignore[attr-defined]
        )  # fmt: skip
    with step(progress, f"measuring clean accuracy of the trained model on {test.n} held-out samples"):
        after = _clean_accuracy(target, test)
    with step(progress, "re-auditing: membership inference on the training data against the held-out data"):
        audit = _reaudit(target, train, test, seed)
    return HardeningResult(
        method="dp",
        target_name=target.name,
        params={"batch_size": batch_size, "lr": lr, "optimizer": optimizer, "seed": seed},
        train_samples=train.n,
        test_samples=test.n,
        clean_accuracy_before=before,
        clean_accuracy_after=after,
        train_seconds=dp.seconds,
        history=tuple(
            {"epoch": r.epoch, "loss": r.loss, "accuracy": r.accuracy, "seconds": r.seconds}
            for r in dp.history
        ),
        dp=dp,
        audit=audit,
        model=model.inner,
    )


def _reaudit(target: Target, train: Dataset, test: Dataset, seed: int) -> dict[str, Any]:
    """A quick membership audit of the trained model: threshold attacks, training vs held-out data.

    Reference-model attacks (LiRA, RMIA) need a recipe that trains with DP too: run ``mlarmor
    privacy`` on the saved model for the full audit.
    """
    from mlarmor.assess.privacy import audit_membership

    audit = audit_membership(target, train, test, n_reference=0, seed=seed)
    best = max(audit.outcomes, key=lambda o: o.metrics.auc)
    return {
        "attacks": {
            o.name: {"auc": o.metrics.auc, "tpr_at_fpr": dict(o.metrics.tpr_at_fpr)} for o in audit.outcomes
        },
        "best_attack": best.name,
        "best_auc": best.metrics.auc,
        "reference_models": 0,
        "full_audit": "mlarmor privacy --model <factory> --weights <saved> --recipe <DP train.py> ...",
    }


def _dp_finding(dp: DPResult, n: int, evidence: dict[str, Any]) -> Finding:
    spent, delta = dp.epsilon, dp.delta
    severity = rules.dp_training(spent, delta, n)
    caveat = (
        f" δ = {delta:g} is not below 1/n = {1.0 / n:.2g}: the guarantee then allows a few training records "
        "to be revealed outright."
        if delta >= 1.0 / n
        else ""
    )
    return DP_TRAINING.finding(
        title=f"Trained with differential privacy: ε = {spent:.2f} spent at δ = {delta:g}",
        severity=severity,
        description=(
            f"DP-SGD trained the model from fresh weights on {n} examples with a budget of ε = "
            f"{dp.target_epsilon:g}; the accountant reports ε = {spent:.3f} at δ = {delta:g} for the whole "
            "run. Whatever an attacker does with the model, its odds of telling whether one example was in "
            f"the training data grow by a factor of at most e^ε (plus δ).{caveat} The guarantee covers the "
            "training data through this run only: preprocessing statistics computed from the private data, "
            "or the training-loss history, are not covered. Severity: ε ≤ 1 none, ≤ 10 low, above 10 medium; "
            "δ ≥ 1/n at least medium. Confirm empirically with mlarmor privacy."
        ),
        impact=min(1.0, spent / (2 * rules.DP_WEAK)),
        evidence=evidence,
        mitigations=None if severity > Severity.NONE else [],
    )
