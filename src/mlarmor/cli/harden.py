"""``mlarmor harden``: adversarial or DP training, or an input detector, measured on held-out data."""

from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console
from rich.progress import Progress

from mlarmor.assess import evaluate_evasion, severity_for_loss, to_hardening_report, to_report
from mlarmor.assess.evasion import EvasionAssessment
from mlarmor.attacks import REGISTRY, available
from mlarmor.cli._common import (
    BOUNDS,
    CLASSES,
    FAIL_ON,
    FORMAT,
    INPUT_SHAPE,
    LABEL_COLUMN,
    MEAN,
    OUTPUT,
    STD,
    TRUST,
    WEIGHTS,
    emit_report,
    err_console,
    exit_for,
    fail,
    handles_errors,
    load_model,
    parse_params,
    parse_severity,
    parse_shape,
    progress_bar,
    status,
)
from mlarmor.data import Dataset, load_dataset
from mlarmor.errors import InputError
from mlarmor.findings import Family, Finding, Severity
from mlarmor.schema import Report
from mlarmor.targets import InputSpace, Target, TorchTarget

__all__ = ["harden"]

_METHODS = ("adversarial-training", "feature-squeezing", "dp")
_ALGORITHMS = ("trades", "pgd-at")
_OPTIMIZERS = ("adam", "sgd")
_FORMATS = ("table", "json", "sarif")
_NORMS = ("linf", "l2")
_ACCOUNTANTS = ("prv", "rdp", "gdp")
_FACTORY_SPEC = re.compile(r"^.+\.py:[A-Za-z_][A-Za-z0-9_]*$", re.IGNORECASE)
# Severity of a DP run from the ε it spent: ≤ 1 is a strong guarantee, ≤ 10 the usual range, beyond
# that the formal bound says little.
_DP_STRONG, _DP_WEAK = 1.0, 10.0


def _split(
    dataset: Dataset, test: str | None, test_fraction: float, seed: int, **load: Any
) -> tuple[Dataset, Dataset]:
    if test is not None:
        return dataset, load_dataset(test, **load)
    if not 0.0 < test_fraction < 1.0:
        raise fail(f"--test-fraction must be in (0, 1), got {test_fraction}.", "e.g. --test-fraction 0.3")
    return dataset.split(test_fraction, seed=seed)


def _arrays(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return np.array(ds.x, dtype=np.float32), np.array(ds.y, dtype=np.int64)


def _epoch_bar() -> Progress:
    """A transient per-epoch progress bar on stderr (silent when stderr is not a terminal)."""
    return progress_bar(info=True)


def _check_writable(path: Path) -> None:
    """Fail before any training when ``--save`` cannot be written (its folder cannot be made)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(
            f"cannot write --save {path}: {e.strerror or e}.", "choose a writable --save path"
        ) from None
    if path.is_dir():
        raise fail(f"--save {path} is a folder.", "give a file name, e.g. --save hardened.pt")


def _save_weights(target: TorchTarget, path: Path) -> Path:
    module = target.module
    tmp = path.with_name(path.name + ".tmp")
    try:
        if isinstance(module, torch.jit.ScriptModule):
            torch.jit.save(module, str(tmp))
        else:
            torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, tmp)
        tmp.replace(path)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}. Choose a writable --save path.") from e
    return path


def _check_dp_options(
    model: str, weights: Path | None, epsilon: float | None, delta: float, max_grad_norm: float
) -> float:
    """Check the options of --method dp; return the privacy budget ε."""
    if epsilon is None:
        raise fail(
            "--method dp needs --epsilon, the privacy budget ε of the whole training run.",
            "e.g. --epsilon 1 (a strong guarantee) or --epsilon 8 (common in practice)",
        )
    if not epsilon > 0:
        raise fail(f"--epsilon must be positive, got {epsilon}.", "e.g. --epsilon 1")
    if not 0.0 < delta < 1.0:
        raise fail(f"--delta must be in (0, 1), got {delta}.", "e.g. --delta 1e-5, below 1/n")
    if not max_grad_norm > 0:
        raise fail(f"--max-grad-norm must be positive, got {max_grad_norm}.", "e.g. --max-grad-norm 1")
    if weights is not None:
        raise fail(
            "--method dp trains the model from the factory's fresh weights and does not take --weights: "
            "differential privacy only covers what the DP-SGD run saw, and weights trained before it "
            "(possibly on the same private data) would void the guarantee.",
            "drop --weights (to start from a public pre-training, call mlarmor.defenses.train_dp in Python)",
        )
    if not _FACTORY_SPEC.match(model):
        raise fail(
            f"--method dp needs --model file.py:factory (a model built by code, with fresh weights); got "
            f"{model}.",
            "e.g. --model net.py:build",
        )
    return epsilon


def _evaluate(
    target: Target,
    test: Dataset,
    attack: str,
    eps: float,
    norm: str,
    n_samples: int,
    seed: int,
    params: dict[str, object],
    reliability: bool,
) -> EvasionAssessment:
    return evaluate_evasion(
        target,
        test,
        attack=attack,
        eps=[eps],
        norm=norm,  # type: ignore[arg-type]  # checked against _NORMS
        n_samples=n_samples,
        seed=seed,
        params=params,
        reliability=reliability,
    )


def _adversarial_training(
    target: Target,
    train: Dataset,
    test: Dataset,
    *,
    algorithm: str,
    eps: float,
    norm: str,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    steps: int,
    beta: float,
    attack: str,
    params: dict[str, object],
    n_samples: int,
    seed: int,
    save: Path | None,
    metadata: dict[str, Any],
    reliability: bool,
) -> Report:
    from mlarmor.defenses import AdversarialTrainer

    if not isinstance(target, TorchTarget):
        raise fail(
            "adversarial training needs a PyTorch model (file.py:factory with --weights, or TorchScript).",
            "for scikit-learn, ONNX or HTTP models use --method feature-squeezing",
        )
    trainer = AdversarialTrainer(
        algorithm,  # type: ignore[arg-type]  # checked against _ALGORITHMS
        eps=eps,
        norm=norm,  # type: ignore[arg-type]
        steps=steps,
        beta=beta,
        seed=seed,
    )
    with status(f"evaluating the model before training ({attack}, ε = {eps:g})"):
        before = _evaluate(target, test, attack, eps, norm, n_samples, seed, params, reliability)
    model = InputSpace(target)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise fail("the model has no trainable parameters.", "pass a model whose weights require gradients")
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(parameters, lr=lr)
    else:
        opt = torch.optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    x_tr, y_tr = _arrays(train)
    start = time.perf_counter()
    with _epoch_bar() as progress:
        task = progress.add_task(f"{algorithm} ε={eps:g}", total=epochs, info="")

        def on_epoch(record: Any) -> None:
            progress.update(
                task,
                advance=1,
                info=(
                    f"loss {record.loss:.3f} clean {record.clean_accuracy:.1%} adv {record.adv_accuracy:.1%}"
                ),
            )

        trainer.fit(
            model,
            opt,
            (x_tr, y_tr),
            epochs=epochs,
            batch_size=batch_size,
            bounds=train.bounds,
            device=target.device,
            scheduler=scheduler,
            progress=on_epoch,
        )
    seconds = time.perf_counter() - start
    model.eval()
    with status(f"evaluating the hardened model ({attack}, ε = {eps:g})"):
        after = _evaluate(target, test, attack, eps, norm, n_samples, seed, params, reliability)
    saved = None if save is None else str(_save_weights(target, save))
    defense = {
        "method": "adversarial-training",
        "algorithm": algorithm,
        "params": {
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
        },
        "train_samples": train.n,
        "train_seconds": round(seconds, 2),
        "history": [
            {
                "epoch": r.epoch,
                "loss": r.loss,
                "clean_accuracy": r.clean_accuracy,
                "adv_accuracy": r.adv_accuracy,
                "seconds": r.seconds,
            }
            for r in trainer.history_
        ],
        "saved": saved,
    }
    return to_hardening_report(before, after, defense, metadata=metadata)


def _feature_squeezing(
    target: Target,
    train: Dataset,
    test: Dataset,
    *,
    attack: str,
    eps: float,
    norm: str,
    params: dict[str, object],
    n_samples: int,
    seed: int,
    false_alarm_rate: float,
    save: Path | None,
    metadata: dict[str, Any],
    reliability: bool,
) -> Report:
    from mlarmor.defenses import FeatureSqueezing

    x_fit, y_fit = _arrays(train)
    with status(f"fitting the feature-squeezing detector on {train.n} clean samples"):
        detector = FeatureSqueezing(false_alarm_rate=false_alarm_rate).fit(target, x_fit, y_fit)
    with status(f"attacking {min(n_samples, test.n)} held-out samples with {attack} at ε = {eps:g}"):
        assessment = _evaluate(target, test, attack, eps, norm, n_samples, seed, params, reliability)
    result = assessment.results[0]
    clean = test.subset(assessment.indices)
    x_clean = np.array(clean.x, dtype=np.float32)
    # Only successful attacks on samples that were classified correctly count as adversarial.
    adversarial = np.asarray(result.success) & (np.asarray(result.y_pred_clean) == np.asarray(result.y))
    with status("scoring clean and adversarial inputs"):
        evaluation = detector.evaluate(x_clean, np.asarray(result.x_adv), adversarial=adversarial)
        flagged = detector.detect(np.asarray(result.x_adv))
    saved = None
    if save is not None:
        tmp = save.with_name(save.name + ".tmp")
        try:
            tmp.write_text(json.dumps(detector.to_dict(), indent=2) + "\n", encoding="utf-8")
            tmp.replace(save)
        except OSError as e:
            raise InputError(f"cannot write {save}: {e.strerror or e}. Choose a writable --save path.") from e
        saved = str(save)
    report = to_report(assessment, metadata=metadata)
    n = max(1, len(adversarial))
    undetected = float(np.mean(adversarial & ~flagged)) * 100.0
    caught = float(np.mean(adversarial & flagged)) * 100.0
    severity = severity_for_loss(undetected)
    finding = Finding(
        id="evasion.detector",
        family=Family.EVASION,
        title=(
            f"Feature squeezing flags {evaluation.detection_rate:.1%} of successful {attack} examples at "
            f"{evaluation.false_alarm_rate:.1%} false alarms"
        ),
        severity=severity,
        description=(
            f"Fitted on {train.n} clean samples (threshold at a {false_alarm_rate:.0%} false-alarm "
            f"rate), the detector was scored on {n} held-out samples and their {attack} adversarial "
            f"examples (ε={eps:g}). Adversarial examples it misses cost {undetected:.1f} accuracy "
            f"points (it catches {caught:.1f}). "
            "Severity thresholds on the points missed: ≥ 50 critical, ≥ 25 high, ≥ 10 medium, > 0 low. An "
            "attacker who knows the squeezers can adapt to them: treat the detector as a tripwire, not as "
            "robustness."
        ),
        impact=min(1.0, undetected / 100.0),
        evidence={
            "detection_rate": evaluation.detection_rate,
            "false_alarm_rate": evaluation.false_alarm_rate,
            "auc": evaluation.auc,
            "threshold": evaluation.threshold,
            "points_missed": round(undetected, 2),
        },
        atlas=["AML.T0043"],
        owasp=["ML01"],
        mitigations=[
            "Combine the detector with adversarial training (mlarmor harden --method adversarial-training).",
            "Log and rate-limit flagged inputs at the serving gateway.",
        ],
    )
    defense = {
        "method": "feature-squeezing",
        "params": detector.to_dict(),
        "fit_samples": train.n,
        "detection_rate": evaluation.detection_rate,
        "false_alarm_rate": evaluation.false_alarm_rate,
        "auc": evaluation.auc,
        "threshold": evaluation.threshold,
        "n_clean": evaluation.n_clean,
        "n_adversarial": evaluation.n_adversarial,
        "saved": saved,
    }
    return report.model_copy(
        update={"kind": "harden", "defense": defense, "findings": [finding, *report.findings]}
    )


def _clean_accuracy(target: Target, test: Dataset) -> float:
    x, y = _arrays(test)
    return float(np.mean(np.asarray(target.predict(x)) == y))


def _dp_finding(
    spent: float, target_epsilon: float, delta: float, n: int, evidence: dict[str, Any]
) -> Finding:
    weak_delta = delta >= 1.0 / n
    if spent > _DP_WEAK:
        severity = Severity.MEDIUM
    elif spent > _DP_STRONG or weak_delta:
        severity = Severity.LOW
    else:
        severity = Severity.NONE
    if weak_delta:
        severity = max(severity, Severity.MEDIUM)
    caveat = (
        f" δ = {delta:g} is not below 1/n = {1.0 / n:.2g}: the guarantee then allows a few training records "
        "to be revealed outright."
        if weak_delta
        else ""
    )
    mitigations = []
    if severity > Severity.NONE:
        mitigations = [
            "Train again with a smaller --epsilon (1 or below is strong) and a --delta below 1/n.",
            "Measure the leakage that remains: mlarmor privacy with a recipe that trains with DP too.",
        ]
    return Finding(
        id="privacy.dp-training",
        family=Family.INFERENCE,
        title=f"Trained with differential privacy: ε = {spent:.2f} spent at δ = {delta:g}",
        severity=severity,
        description=(
            f"DP-SGD trained the model from fresh weights on {n} examples with a budget of ε = "
            f"{target_epsilon:g}; the accountant reports ε = {spent:.3f} at δ = {delta:g} for the whole run. "
            "Whatever an attacker does with the model, its odds of telling whether one example was in the "
            f"training data grow by a factor of at most e^ε (plus δ).{caveat} The guarantee covers the "
            "training data through this run only: preprocessing statistics computed from the private data, "
            "or the training-loss history, are not covered. Severity: ε ≤ 1 none, ≤ 10 low, above 10 medium; "
            "δ ≥ 1/n at least medium. Confirm empirically with mlarmor privacy."
        ),
        impact=min(1.0, spent / (2 * _DP_WEAK)),
        evidence=evidence,
        atlas=["AML.T0024.000", "AML.T0024.001"],
        owasp=["ML03", "ML04"],
        mitigations=mitigations,
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
    save: Path | None,
    metadata: dict[str, Any],
) -> Report:
    from mlarmor.defenses import dp_incompatibilities, train_dp

    if not isinstance(target, TorchTarget) or isinstance(target.module, torch.jit.ScriptModule):
        raise fail(
            "DP training needs a PyTorch model built by Python code: --model file.py:factory.",
            "for scikit-learn use mlarmor.defenses.DPMLPClassifier in Python",
        )
    model = InputSpace(target)
    problems = [p.removeprefix("inner.") for p in dp_incompatibilities(model)]
    if problems:
        raise fail(
            f"the model has layers that DP-SGD cannot train: {'; '.join(problems)}.",
            "build the model with GroupNorm or LayerNorm instead of BatchNorm in the factory (e.g. "
            "nn.GroupNorm(1, C) after a Linear layer), so that the saved weights load into it",
        )
    if not any(p.requires_grad for p in model.parameters()):
        raise fail("the model has no trainable parameters.", "pass a model whose weights require gradients")
    if delta >= 1.0 / train.n:
        err_console.print(
            f"[yellow]warning:[/] --delta {delta:g} is not below 1/n = {1.0 / train.n:.2g} for {train.n} "
            "training examples; use a smaller --delta (e.g. 1e-5 or below).",
            highlight=False,
        )
    with status(f"measuring clean accuracy of the fresh model on {test.n} held-out samples"):
        before = _clean_accuracy(target, test)
    x_tr, y_tr = _arrays(train)
    with _epoch_bar() as progress:
        task = progress.add_task(f"DP-SGD ε={epsilon:g}", total=epochs, info="")

        def on_epoch(record: Any) -> None:
            progress.update(task, advance=1, info=f"loss {record.loss:.3f} train acc {record.accuracy:.1%}")

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"delta=.* is not below 1/n")  # reported above
            result = train_dp(
                model,
                x_tr,
                y_tr,
                epsilon=epsilon,
                delta=delta,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                max_grad_norm=max_grad_norm,
                optimizer=optimizer,  # type: ignore[arg-type]  # checked against _OPTIMIZERS
                accountant=accountant,  # type: ignore[arg-type]  # checked against _ACCOUNTANTS
                seed=seed,
                device=target.device,
                progress=on_epoch,
            )
    with status(f"measuring clean accuracy of the trained model on {test.n} held-out samples"):
        after = _clean_accuracy(target, test)
    with status("re-auditing: membership inference on the training data against the held-out data"):
        audit = _reaudit(target, train, test, seed)
    saved = None if save is None else str(_save_weights(target, save))
    privacy = {
        "target_epsilon": epsilon,
        "epsilon_spent": result.epsilon,
        "delta": delta,
        "noise_multiplier": result.noise_multiplier,
        "max_grad_norm": max_grad_norm,
        "epochs": epochs,
        "steps": result.steps,
        "sample_rate": result.sample_rate,
        "accountant": accountant,
    }
    defense = {
        "method": "dp",
        **privacy,
        "params": {"batch_size": batch_size, "lr": lr, "optimizer": optimizer, "seed": seed},
        "train_samples": train.n,
        "train_seconds": round(result.seconds, 2),
        # Computed on the private training batches: outside the DP guarantee, like any training log.
        "history": [
            {"epoch": r.epoch, "loss": r.loss, "accuracy": r.accuracy, "seconds": r.seconds}
            for r in result.history
        ],
        "before": {"clean_accuracy": before},
        "after": {"clean_accuracy": after},
        "audit": audit,
        "saved": saved,
    }
    finding = _dp_finding(result.epsilon, epsilon, delta, train.n, {**privacy, "train_samples": train.n})
    return Report(
        kind="harden",
        clean_accuracy=after,
        findings=[finding],
        metadata={**metadata, "test_samples": test.n},
        defense=defense,
    )


def _print_table(report: Report, out: Console) -> None:
    defense = report.defense or {}
    eps_key = next(iter(report.robust_accuracy or {"?": 0.0}))
    out.print(
        f"[bold]mlarmor harden[/] — {defense.get('method')} on {report.metadata.get('model')}",
        highlight=False,
    )
    if defense.get("method") == "adversarial-training":
        before, after = defense["before"], defense["after"]
        out.print(
            f"  {defense['algorithm']} for {defense['params']['epochs']} epochs on "
            f"{defense['train_samples']} samples in {defense['train_seconds']:.1f} s",
            highlight=False,
        )
        out.print(
            f"  clean accuracy   {before['clean_accuracy']:.1%} → {after['clean_accuracy']:.1%}",
            highlight=False,
        )
        out.print(
            f"  robust accuracy  {before['robust_accuracy'][eps_key]:.1%} → "
            f"{after['robust_accuracy'][eps_key]:.1%}  (ε = {eps_key}, {report.metadata.get('attack')})",
            highlight=False,
        )
    elif defense.get("method") == "dp":
        out.print(
            f"  DP-SGD for {defense['epochs']} epochs on {defense['train_samples']} samples in "
            f"{defense['train_seconds']:.1f} s ({defense['accountant']} accountant)",
            highlight=False,
        )
        out.print(
            f"  privacy          ε = {defense['epsilon_spent']:.3f} spent (target "
            f"{defense['target_epsilon']:g}) at δ = {defense['delta']:g}; noise multiplier "
            f"{defense['noise_multiplier']:.3f}, clipping norm {defense['max_grad_norm']:g}",
            highlight=False,
        )
        out.print(
            f"  clean accuracy   {defense['before']['clean_accuracy']:.1%} → "
            f"{defense['after']['clean_accuracy']:.1%}",
            highlight=False,
        )
        audit = defense.get("audit") or {}
        if audit:
            out.print(
                f"  re-audit         membership AUC {audit['best_auc']:.3f} ({audit['best_attack']}, "
                "threshold attacks; run mlarmor privacy for LiRA and RMIA)",
                highlight=False,
            )
    else:
        out.print(
            f"  detection rate {defense['detection_rate']:.1%} on {defense['n_adversarial']} successful "
            f"adversarial examples, false alarms {defense['false_alarm_rate']:.1%} on {defense['n_clean']} "
            f"clean samples, AUC {defense['auc']:.3f}",
            highlight=False,
        )
    if defense.get("saved"):
        out.print(f"  saved to {defense['saved']}", highlight=False)
    for finding in report.findings:
        out.print(f"[bold]{finding.severity.label.upper()}[/] {finding.title}", highlight=False)


@handles_errors
def harden(
    method: str = typer.Option(
        ...,
        "--method",
        help="adversarial-training (PGD-AT or TRADES; PyTorch models), feature-squeezing (an input "
        "detector; any model with scores) or dp (differentially private training of a file.py:factory "
        "model from fresh weights).",
    ),
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="file.py:factory (with --weights; without for dp) or TorchScript .pt; any model for a detector.",
    ),
    data: str = typer.Option(
        ...,
        "--data",
        "-d",
        help="Training data (for a detector: clean data the model was not trained on): x/y .npz, "
        "'x.npy,y.npy', CSV/Parquet, demo:digits, demo:breast-cancer.",
    ),
    test: str | None = typer.Option(
        None, "--test", help="Held-out data (same formats). Default: a stratified --test-fraction of --data."
    ),
    test_fraction: float = typer.Option(
        0.3, "--test-fraction", help="Share of --data held out when no --test."
    ),
    weights: Path | None = WEIGHTS,
    label_column: str | None = LABEL_COLUMN,
    bounds: tuple[float, float] | None = BOUNDS,
    classes: int | None = CLASSES,
    mean: list[float] | None = MEAN,
    std: list[float] | None = STD,
    input_shape: str | None = INPUT_SHAPE,
    eps: float | None = typer.Option(
        None,
        "--eps",
        help="Evasion budget ε to train for and to evaluate at (input space); required for "
        "adversarial-training and feature-squeezing.",
    ),
    norm: str = typer.Option("linf", "--norm", help="Threat-model norm: linf or l2."),
    algorithm: str = typer.Option("trades", "--algorithm", help="Adversarial training: trades or pgd-at."),
    epochs: int = typer.Option(
        100, "--epochs", help="Training epochs (adversarial training: cosine learning-rate schedule)."
    ),
    batch_size: int = typer.Option(64, "--batch-size", help="Training batch size."),
    lr: float = typer.Option(2e-3, "--lr", help="Learning rate."),
    optimizer: str = typer.Option(
        "adam", "--optimizer", help="adam, or sgd (momentum 0.9, weight decay 5e-4)."
    ),
    steps: int = typer.Option(10, "--steps", help="Inner attack steps per training batch."),
    beta: float = typer.Option(
        6.0, "--beta", help="TRADES robustness weight (higher: more robust, less accurate)."
    ),
    attack: str | None = typer.Option(
        None,
        "--attack",
        "-a",
        help="Evaluation attack. Default: auto (white-box ensemble) for PyTorch models, square otherwise.",
    ),
    param: list[str] | None = typer.Option(
        None, "--param", help="Evaluation attack parameter KEY=VALUE (repeatable), e.g. n_iter=100."
    ),
    n_samples: int = typer.Option(500, "--n-samples", help="Held-out samples to evaluate (seeded draw)."),
    epsilon: float | None = typer.Option(
        None,
        "--epsilon",
        help="dp: privacy budget ε of the whole training run (1 is strong, 8 common, above 10 weak).",
    ),
    delta: float = typer.Option(1e-5, "--delta", help="dp: δ of the guarantee; keep it below 1/n."),
    max_grad_norm: float = typer.Option(
        1.0, "--max-grad-norm", help="dp: per-example gradient clipping norm C."
    ),
    accountant: str = typer.Option("prv", "--accountant", help="dp: privacy accountant: prv, rdp or gdp."),
    false_alarm_rate: float = typer.Option(
        0.05, "--false-alarm-rate", help="Detector: share of clean inputs it may flag (sets its threshold)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the training and the evaluation."),
    reliability_checks: bool = typer.Option(
        True,
        "--reliability-checks/--no-reliability-checks",
        help="Add findings that flag a weak evaluation (see mlarmor evasion --help).",
    ),
    trust: bool = TRUST,
    save: Path | None = typer.Option(
        None,
        "--save",
        help="Write the hardened or DP-trained weights (.pt state dict) or the fitted detector (.json).",
    ),
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
    fail_on: str = FAIL_ON,
) -> None:
    """Harden a model against evasion or membership inference; measure the effect on held-out data.

    **adversarial-training** trains a PyTorch model in place on adversarial examples (TRADES by
    default, or PGD-AT) at --eps, then reports clean and robust accuracy before and after under
    --attack (the auto ensemble by default) and writes the weights with --save.

    **feature-squeezing** fits an input detector on clean data (its threshold flags
    --false-alarm-rate of them), attacks held-out samples, and reports the share of successful
    adversarial examples it catches and its false alarms; --save writes it as JSON.

    **dp** trains a file.py:factory model from its fresh weights with DP-SGD (Opacus), calibrating
    the noise so that the whole run spends at most --epsilon at --delta, and reports the ε spent,
    the noise multiplier and the clean accuracy before and after; --save writes the weights. DP must
    cover all of the training, so --weights is refused. Check the effect with `mlarmor privacy`.

    The model file is scanned before it is loaded (refused when unsafe, unless --trust).

    Example: `mlarmor harden --method adversarial-training --model net.py:build --data demo:digits
    --eps 0.2 --save hardened.pt`

    Example: `mlarmor harden --method feature-squeezing --model clf.joblib --data demo:breast-cancer
    --eps 0.05`

    Example: `mlarmor harden --method dp --model net.py:build --data demo:digits --epsilon 1
    --epochs 10 --lr 0.01 --save private.pt`

    Exit codes: 0 findings below --fail-on, 1 at or above it, 2 usage or runtime error.
    """
    if method not in _METHODS:
        raise fail(f"unknown --method {method!r}.", f"use one of: {', '.join(_METHODS)}")
    if algorithm not in _ALGORITHMS:
        raise fail(f"unknown --algorithm {algorithm!r}.", f"use one of: {', '.join(_ALGORITHMS)}")
    if optimizer not in _OPTIMIZERS:
        raise fail(f"unknown --optimizer {optimizer!r}.", f"use one of: {', '.join(_OPTIMIZERS)}")
    if output_format not in _FORMATS:
        raise fail(f"unknown --format {output_format!r}.", f"use one of: {', '.join(_FORMATS)}")
    if norm not in _NORMS:
        raise fail(f"unknown --norm {norm!r}.", "use linf or l2")
    if attack is not None and attack not in REGISTRY:
        raise fail(f"unknown --attack {attack!r}.", f"use one of: {', '.join(available())}")
    if accountant not in _ACCOUNTANTS:
        raise fail(f"unknown --accountant {accountant!r}.", f"use one of: {', '.join(_ACCOUNTANTS)}")
    for name, value in (
        ("--epochs", epochs),
        ("--batch-size", batch_size),
        ("--steps", steps),
        ("--n-samples", n_samples),
    ):
        if value < 1:
            raise fail(f"{name} must be at least 1, got {value}.")
    # --epsilon is the privacy budget of dp; --eps the evasion budget of the other methods.
    dp_epsilon = _check_dp_options(model, weights, epsilon, delta, max_grad_norm) if method == "dp" else 0.0
    if method != "dp" and eps is None:
        raise fail(
            f"--method {method} needs --eps, the evasion budget to train for and evaluate at.",
            "e.g. --eps 0.2 for L∞ on inputs in [0, 1]",
        )
    evasion_eps = 0.0 if eps is None else eps
    if eps is not None and not eps > 0:
        raise fail(f"--eps must be positive, got {eps}.", "e.g. --eps 0.2 for L∞ on inputs in [0, 1]")
    if not lr > 0:
        raise fail(f"--lr must be positive, got {lr}.")
    threshold = parse_severity(fail_on)
    shape = parse_shape(input_shape)
    params = parse_params(param)
    if save is not None:
        _check_writable(save)

    dataset = load_dataset(data, label_column=label_column, bounds=bounds)
    train, held_out = _split(dataset, test, test_fraction, seed, label_column=label_column, bounds=bounds)
    target = load_model(
        model,
        bounds=dataset.bounds,
        input_shape=shape or dataset.input_shape,
        weights=weights,
        classes=classes,
        trust=trust,
        mean=mean,
        std=std,
    )
    chosen = attack or ("auto" if "gradients" in target.capabilities else "square")
    metadata = {
        "fail_on": threshold.label,
        "model": model,
        "data": data,
        "test": test if test is not None else f"{test_fraction:g} of --data",
        "attack": chosen,
        "bounds": list(dataset.bounds),
    }
    if method == "dp":
        del metadata["attack"]
        report = _dp_training(
            target,
            train,
            held_out,
            epsilon=dp_epsilon,
            delta=delta,
            max_grad_norm=max_grad_norm,
            accountant=accountant,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            seed=seed,
            save=save,
            metadata=metadata,
        )
    elif method == "adversarial-training":
        report = _adversarial_training(
            target,
            train,
            held_out,
            algorithm=algorithm,
            eps=evasion_eps,
            norm=norm,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            steps=steps,
            beta=beta,
            attack=chosen,
            params=params,
            n_samples=n_samples,
            seed=seed,
            save=save,
            metadata=metadata,
            reliability=reliability_checks,
        )
    else:
        report = _feature_squeezing(
            target,
            train,
            held_out,
            attack=chosen,
            eps=evasion_eps,
            norm=norm,
            params=params,
            n_samples=n_samples,
            seed=seed,
            false_alarm_rate=false_alarm_rate,
            save=save,
            metadata=metadata,
            reliability=reliability_checks,
        )
    emit_report(report, output_format, output, lambda out: _print_table(report, out))
    raise exit_for(report, threshold)
