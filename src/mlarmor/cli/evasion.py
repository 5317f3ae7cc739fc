"""``mlarmor evasion``: robust accuracy of a model under evasion attacks, per ε, with a finding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

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
    PYTHON_PATH,
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
    progress_reporter,
    shown,
    write_side_file,
)
from mlarmor.cli._names import EVASION_ATTACKS
from mlarmor.cli._views import print_evasion

if TYPE_CHECKING:
    from mlarmor.data import Dataset

__all__ = ["evasion"]

_NORMS = ("linf", "l2")
_EPS_UNITS = ("auto", "absolute", "range", "std")


def _features(items: list[str] | None) -> list[int | str]:
    """``--immutable`` / ``--integer`` values: flat indices as ints, anything else as a column name."""
    return [int(item) if item.strip().lstrip("-").isdigit() else item for item in items or []]


def _ranges_source(dataset: Dataset, feature_bounds: Path | None) -> dict[str, str]:
    """Where the per-feature ranges of a table came from, for the report."""
    if dataset.feature_low is None:
        return {}
    own = f"the data ({dataset.n} rows)"
    return {"feature_bounds": f"{feature_bounds} and {own}" if feature_bounds is not None else own}


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
    classes: str | None = CLASSES,
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
        help="Budget (repeatable), in --eps-unit. Default: 0.03 and 0.1 (linf) or 0.5 and 1.0 (l2) of the "
        "range, or 0.1 and 0.3 (linf) or 1 and 2 (l2) standard deviations.",
        show_default=False,
    ),
    norm: str = typer.Option("linf", "--norm", help="Threat-model norm: linf or l2."),
    eps_unit: str = typer.Option(
        "auto",
        "--eps-unit",
        help="Unit of --eps: absolute (input units), range (a fraction of each feature's range) or std "
        "(each feature's standard deviations). auto = range for tables, absolute for images.",
    ),
    feature_bounds: Path | None = typer.Option(
        None,
        "--feature-bounds",
        help="For tables: a CSV/Parquet (e.g. the training data) whose per-column min and max bound each "
        "feature, with the data's own. Default: the data's columns.",
    ),
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
    python_path: list[Path] | None = PYTHON_PATH,
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
    from mlarmor.assess._units import default_eps, resolve_unit
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
    check_choice(eps_unit, "eps_unit", "evasion", _EPS_UNITS)
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
        feature_bounds=feature_bounds,
    )
    shape = shape or dataset.input_shape
    target = load_model(
        model, bounds=dataset.bounds, input_shape=shape, weights=weights, classes=classes, trust=trust,
        python_path=python_path, mean=mean, std=std,
        header_env=header_env,
        http_output=http_output,
        request_key=request_key,
        response_key=response_key,
    )  # fmt: skip
    if surrogate is not None:
        extra["surrogate"] = load_model(
            surrogate, bounds=dataset.bounds, input_shape=shape, weights=surrogate_weights,
            classes=target.num_classes, trust=trust, python_path=python_path, mean=mean, std=std,
        )  # fmt: skip
    unit = resolve_unit(eps_unit, dataset, "evasion")
    budgets = list(eps) if eps else default_eps(norm, unit, dataset.bounds)
    with progress_reporter() as progress:  # the attack, then each reliability check
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
            eps_unit=unit,  # type: ignore[arg-type]  # checked against _EPS_UNITS above
            progress=progress,
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
            **_ranges_source(dataset, feature_bounds),
        },
    )
    emit_report(report, output_format, output, lambda out: print_evasion(report, assessment, out))
    raise exit_for(report, threshold)
