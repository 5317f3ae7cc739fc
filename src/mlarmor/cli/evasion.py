"""``mlarmor evasion``: robust accuracy of a model under evasion attacks, per ε, with a finding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from mlarmor._validation import check_choice, check_int
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
    REQUEST_KEY,
    RESPONSE_KEY,
    STD,
    TRUST,
    WEIGHTS,
    check_format,
    check_output,
    emit_report,
    err_console,
    exit_for,
    fail,
    handles_errors,
    load_model,
    parse_params,
    parse_severity,
    parse_shape,
    print_finding,
    shown,
    status,
    write_side_file,
)
from mlarmor.cli._names import EVASION_ATTACKS
from mlarmor.findings import Severity

if TYPE_CHECKING:
    from mlarmor.assess.evasion import EvasionAssessment
    from mlarmor.schema import Report

__all__ = ["evasion"]

_NORMS = ("linf", "l2")
# Default budgets as fractions of the input range (high - low): 8/255 ≈ 0.03 and 0.1 for L∞ on
# images in [0, 1]; 0.5 and 1.0 for L2.
_DEFAULT_EPS = {"linf": (0.03, 0.1), "l2": (0.5, 1.0)}


def _features(items: list[str] | None) -> list[int | str]:
    """``--immutable`` / ``--integer`` values: flat indices as ints, anything else as a column name."""
    return [int(item) if item.strip().lstrip("-").isdigit() else item for item in items or []]


def _default_eps(norm: str, bounds: tuple[float, float]) -> list[float]:
    width = bounds[1] - bounds[0]
    return [round(f * width, 10) for f in _DEFAULT_EPS[norm]]


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _print_table(report: Report, assessment: EvasionAssessment, out: Console) -> None:
    from mlarmor.risk.severity import accuracy_loss

    details = next(iter((report.attacks or {}).values()))
    norm = "L∞" if assessment.norm == "linf" else "L2"
    out.print(
        f"[bold]mlarmor evasion[/] — {assessment.target_name} on {assessment.dataset_name}: "
        f"{assessment.attack} ({assessment.capability}), {norm}, {assessment.n_samples} samples, "
        f"seed {assessment.seed}, {assessment.seconds:.1f}s",
        highlight=False,
    )
    table = Table(show_edge=False, caption="accuracies with 95% Clopper-Pearson intervals")
    for column in ("ε", "clean acc.", "robust acc.", "acc. lost", "success rate", "median norm", "queries"):
        table.add_column(column, justify="right")
    clean, (low, high) = assessment.clean_accuracy, assessment.clean_accuracy_ci
    for key, row in details["eps"].items():
        lost = 100.0 * (clean - row["robust_accuracy"])
        marker, (r_low, r_high) = (
            " *" if float(key) == assessment.budget_eps else "",
            row["robust_accuracy_ci"],
        )
        table.add_row(
            key + marker,
            f"{clean:.1%} [{low:.0%}, {high:.0%}]",
            f"{row['robust_accuracy']:.1%} [{r_low:.0%}, {r_high:.0%}]",
            f"{lost:.1f} pts [{accuracy_loss(lost).label}]",
            _fmt(row["success_rate"], ".1%"),
            _fmt(row["median_norm"], ".4g"),
            _fmt(row["mean_queries"], ".1f")
            if row["mean_queries"] is not None
            else str(row["total_queries"]),
        )
    out.print(table)
    for finding in report.findings:
        print_finding(
            finding, out, note="  (* = threat budget)", mitigations=finding.severity > Severity.NONE
        )


@handles_errors
def evasion(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="TorchScript .pt, .onnx, .joblib/.pkl, file.py:factory (with --weights), or an http(s):// URL.",
    ),
    data: str = typer.Option(
        ..., "--data", "-d", help="x/y .npz, 'x.npy,y.npy', CSV/Parquet, demo:digits or demo:breast-cancer."
    ),
    weights: Path | None = WEIGHTS,
    label_column: str | None = LABEL_COLUMN,
    immutable: list[str] | None = typer.Option(
        None,
        "--immutable",
        help="A feature the attacker cannot change (flat index or column name; repeatable).",
    ),
    integer: list[str] | None = typer.Option(
        None, "--integer", help="A feature that must stay a whole number (index or column name; repeatable)."
    ),
    bounds: tuple[float, float] | None = BOUNDS,
    classes: int | None = CLASSES,
    mean: list[float] | None = MEAN,
    std: list[float] | None = STD,
    input_shape: str | None = INPUT_SHAPE,
    header_env: list[str] | None = HEADER_ENV,
    http_output: str = HTTP_OUTPUT,
    request_key: str = REQUEST_KEY,
    response_key: str | None = RESPONSE_KEY,
    surrogate: str | None = typer.Option(
        None,
        "--surrogate",
        help="The attacker's own PyTorch model for --attack transfer (file.py:factory or TorchScript).",
    ),
    surrogate_weights: Path | None = typer.Option(
        None, "--surrogate-weights", help="State dict for a file.py:factory surrogate."
    ),
    attack: str = typer.Option(
        "auto",
        "--attack",
        "-a",
        help=f"Attack: {', '.join(EVASION_ATTACKS)}. auto = the white-box ensemble, or square / hopskipjump "
        "on models without gradients.",
    ),
    eps: list[float] | None = typer.Option(
        None,
        "--eps",
        help="Budget (repeatable). Default: 0.03 and 0.1 (linf) or 0.5 and 1.0 (l2) times the input range.",
        show_default=False,
    ),
    norm: str = typer.Option("linf", "--norm", help="Threat-model norm: linf or l2."),
    budget_eps: float | None = typer.Option(
        None, "--budget-eps", help="Threat budget that sets the severity. Default: the largest --eps."
    ),
    n_samples: int = typer.Option(
        500, "--n-samples", help="Attack the first N samples after a seeded shuffle."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample draw and the attack."),
    batch_size: int = typer.Option(256, "--batch-size", help="Samples per model call."),
    param: list[str] | None = typer.Option(
        None, "--param", help="Extra attack parameter KEY=VALUE (repeatable), e.g. n_queries=1000."
    ),
    reliability_checks: bool = typer.Option(
        True,
        "--reliability-checks/--no-reliability-checks",
        help="Add findings that flag a weak evaluation: probability outputs, randomness, masked gradients, "
        "no accuracy drop at a large ε, black-box beating white-box.",
    ),
    trust: bool = TRUST,
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the robustness curve (accuracy against ε) as an SVG file."
    ),
    save_adv: Path | None = typer.Option(
        None, "--save-adv", help="Write adversarial examples (.npz: x_adv_<eps>, success_<eps>, y, indices)."
    ),
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
    fail_on: str = FAIL_ON,
) -> None:
    """Measure how small an input change flips the model: clean and robust accuracy per ε.

    The model file is scanned before it is loaded (refused when unsafe, unless --trust). The
    default attack, auto, is the white-box ensemble (APGD-CE, APGD-T, FMN) on PyTorch models; on
    scikit-learn, ONNX or HTTP models (no gradients) it runs the black-box square (scores) or
    hopskipjump (labels only) and the report says so, since a black-box result is a looser bound.
    Severity comes from the accuracy lost at --budget-eps: ≥ 50 points critical, ≥ 25 high,
    ≥ 10 medium, > 0 low.

    Example: `mlarmor evasion --model model.pt --data demo:digits --eps 0.1 --eps 0.2`

    Example: `mlarmor evasion --model clf.joblib --data demo:breast-cancer --attack square`

    Example: `mlarmor evasion --model net.py:build --weights net.pt --data test.npz --norm l2 -f json`

    Exit codes: 0 finding below --fail-on, 1 at or above it, 2 usage or runtime error.
    """
    from mlarmor.assess.evasion import evaluate_evasion, save_adversarial
    from mlarmor.attacks import available
    from mlarmor.data import load_dataset
    from mlarmor.findings import Family

    # The library's own checks, before the model is scanned and loaded (worded with the options).
    check_format(output_format)
    check_output(plot, "--plot", (".svg",))
    check_output(save_adv, "--save-adv")
    check_output(output, "--output")
    check_choice(norm, "norm", "evasion", _NORMS)
    check_choice(attack, "attack", "evasion", available(Family.EVASION))
    check_int(n_samples, "n_samples", "evasion")
    if attack == "transfer" and surrogate is None:
        raise fail(
            "the transfer attack needs the attacker's own model: --surrogate.",
            "e.g. --attack transfer --surrogate mine.py:build --surrogate-weights mine.pt",
        )
    if surrogate is not None and attack != "transfer":
        raise fail(
            "--surrogate only applies to --attack transfer.", "add --attack transfer, or drop --surrogate"
        )
    threshold = parse_severity(fail_on)
    shape = parse_shape(input_shape)
    extra = parse_params(param)

    dataset = load_dataset(
        data,
        label_column=label_column,
        bounds=bounds,
        immutable=_features(immutable),
        integer=_features(integer),
    )
    shape = shape or dataset.input_shape
    target = load_model(
        model, bounds=dataset.bounds, input_shape=shape, weights=weights, classes=classes, trust=trust,
        mean=mean, std=std,
        header_env=header_env,
        http_output=http_output,
        request_key=request_key,
        response_key=response_key,
    )  # fmt: skip
    if surrogate is not None:
        extra["surrogate"] = load_model(
            surrogate, bounds=dataset.bounds, input_shape=shape, weights=surrogate_weights,
            classes=target.num_classes, trust=trust, mean=mean, std=std,
        )  # fmt: skip
    budgets = list(eps) if eps else _default_eps(norm, dataset.bounds)
    with status(f"attacking {min(n_samples, dataset.n)} samples with {attack} at ε = {budgets}"):
        assessment = evaluate_evasion(
            target,
            dataset,
            attack=attack,
            eps=budgets,
            norm=norm,  # type: ignore[arg-type]  # checked against _NORMS above
            budget_eps=budget_eps,
            n_samples=n_samples,
            seed=seed,
            batch_size=batch_size,
            params=extra,
            reliability=reliability_checks,
        )
    if save_adv is not None:
        written = save_adversarial(assessment, save_adv)
        err_console.print(f"adversarial examples written to {written}", highlight=False)
    if plot is not None:
        from mlarmor.report import robustness_curve_svg

        svg = robustness_curve_svg(
            [r.eps for r in assessment.results],
            {attack: [r.robust_accuracy for r in assessment.results]},
            clean_accuracy=assessment.clean_accuracy,
            norm=norm,
            title=f"Robustness of {assessment.target_name} on {assessment.dataset_name}",
            budget_eps=assessment.budget_eps,
        )
        write_side_file(svg, plot, "--plot", "robustness curve")
    report = assessment.to_report(
        metadata={
            "fail_on": threshold.label,
            "model": shown(model),
            "data": data,
            "bounds": list(dataset.bounds),
        },
    )
    emit_report(report, output_format, output, lambda out: _print_table(report, assessment, out))
    raise exit_for(report, threshold)
