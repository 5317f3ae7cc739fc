"""``mlarmor harden``: adversarial or DP training, or an input detector, measured on held-out data.

The work is :func:`mlarmor.assess.harden.harden`; this module parses the options, loads the model
and data, calls it and renders the report.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mlarmor.cli._common import (
    BOUNDS,
    CLASSES,
    FAIL_ON,
    FORMAT,
    HEADER_ENV,
    HTTP_OUTPUT,
    INPUT_SHAPE,
    LABEL_COLUMN,
    MEAN,
    OUTPUT,
    PYTHON_PATH,
    REQUEST_KEY,
    RESPONSE_KEY,
    STD,
    TRUST,
    WEIGHTS,
    check_format,
    check_output,
    emit_report,
    exit_for,
    fail,
    handles_errors,
    load_model,
    parse_params,
    parse_severity,
    parse_shape,
    progress_reporter,
    shown,
)
from mlarmor.cli._views import print_harden

if TYPE_CHECKING:
    from mlarmor.data import Dataset

__all__ = ["harden"]

_FACTORY_SPEC = re.compile(r"^.+\.py:[A-Za-z_][A-Za-z0-9_]*$", re.IGNORECASE)


def _split(
    dataset: Dataset, test: str | None, test_fraction: float, seed: int, **load: object
) -> tuple[Dataset, Dataset]:
    from mlarmor.data import load_dataset

    if test is not None:
        return dataset, load_dataset(test, **load)  # type: ignore[arg-type]
    if not 0.0 < test_fraction < 1.0:
        raise fail(f"--test-fraction must be in (0, 1), got {test_fraction}.", "e.g. --test-fraction 0.3")
    return dataset.split(test_fraction, seed=seed)


def _check_dp_model(model: str, weights: Path | None) -> None:
    """DP covers only what its run saw: refuse --weights and models that are not built by code."""
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
    classes: str | None = CLASSES,
    mean: list[float] | None = MEAN,
    std: list[float] | None = STD,
    input_shape: str | None = INPUT_SHAPE,
    header_env: list[str] | None = HEADER_ENV,
    http_output: str = HTTP_OUTPUT,
    request_key: str = REQUEST_KEY,
    response_key: str | None = RESPONSE_KEY,
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
    bits: int | None = typer.Option(
        None,
        "--bits",
        help="Detector: bit depth of the bit-depth squeezer (1-16). Default: chosen on --data.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the training and the evaluation."),
    reliability_checks: bool = typer.Option(
        True,
        "--reliability-checks/--no-reliability-checks",
        help="Add findings that flag a weak evaluation (see mlarmor evasion --help).",
    ),
    trust: bool = TRUST,
    python_path: list[Path] | None = PYTHON_PATH,
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
    from mlarmor.assess.harden import harden as run
    from mlarmor.data import load_dataset

    check_format(output_format)
    check_output(output, "--output")
    threshold = parse_severity(fail_on)
    shape = parse_shape(input_shape)
    params = parse_params(param)
    if method == "dp":
        _check_dp_model(model, weights)
    dataset = load_dataset(data, label_column=label_column, bounds=bounds)
    train, held_out = _split(dataset, test, test_fraction, seed, label_column=label_column, bounds=bounds)
    target = load_model(
        model,
        bounds=dataset.bounds,
        input_shape=shape or dataset.input_shape,
        weights=weights,
        classes=classes,
        trust=trust,
        python_path=python_path,
        mean=mean,
        std=std,
        header_env=header_env,
        http_output=http_output,
        request_key=request_key,
        response_key=response_key,
    )
    with progress_reporter() as progress:
        result = run(
            target, train, held_out, method=method, eps=eps, norm=norm, algorithm=algorithm,  # type: ignore[arg-type]
            epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, steps=steps, beta=beta,  # type: ignore[arg-type]
            attack=attack, params=params, n_samples=n_samples, epsilon=epsilon, delta=delta,
            max_grad_norm=max_grad_norm, accountant=accountant, false_alarm_rate=false_alarm_rate,  # type: ignore[arg-type]
            bits=bits,
            seed=seed, reliability=reliability_checks, save=save, progress=progress,
        )  # fmt: skip
    metadata: dict[str, object] = {
        "fail_on": threshold.label,
        "model": shown(model),
        "data": data,
        "test": test if test is not None else f"{test_fraction:g} of --data",
    }
    if result.after is not None:
        metadata["attack"] = result.after.attack
    metadata["bounds"] = list(dataset.bounds)
    report = result.to_report(metadata=metadata)
    emit_report(report, output_format, output, lambda out: print_harden(report, out))
    raise exit_for(report, threshold)
