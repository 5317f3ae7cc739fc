"""``mlarmor poisoning inspect-model``: reverse-engineer each class's trigger (Neural Cleanse), repair.

The work is :func:`mlarmor.inspect_model`; this module parses the options, loads the model and
data, calls it and renders the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

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
    parse_severity,
    parse_shape,
    progress_reporter,
    shown,
    write_side_file,
)
from mlarmor.cli.poisoning._shared import STEPS, load_data, print_findings

if TYPE_CHECKING:
    from mlarmor.schema import Report

__all__ = ["inspect_model"]


def _trigger_svg(inspection: Any, bounds: tuple[float, float]) -> str:
    import numpy as np

    from mlarmor.report import image_grid_svg

    low, high = bounds
    tiles, labels = [], []
    for c in inspection.candidates:
        stamp = c.mask[None] * (np.asarray(c.pattern) - low) / (high - low)
        tiles.append(np.clip(stamp, 0.0, 1.0))
        flag = " (suspect)" if c.target_class == inspection.target_class else ""
        labels.append(
            f"class {c.target_class}: L1 {c.l1:.1f}, "
            f"idx {inspection.anomaly_indices[c.target_class]:.1f}{flag}"
        )
    channels = {t.shape[0] for t in tiles}
    pictures = np.asarray(tiles if channels <= {1, 3} else [t[:1] for t in tiles], dtype=np.float64)
    return image_grid_svg(pictures, labels=labels, title="Recovered triggers (mask times pattern) per class")


def _print_model(report: Report, inspection: Any, out: Console, name: str) -> None:
    verdict = "[bold red]INFECTED[/]" if inspection.infected else "[bold green]clean[/]"
    out.print(
        f"[bold]mlarmor poisoning inspect-model[/] — {name}: {verdict}, anomaly index "
        f"{inspection.anomaly_index:.2f} (threshold {inspection.threshold:g}), {inspection.seconds:.1f}s",
        highlight=False,
    )
    table = Table(show_edge=False)
    for column in ("class", "trigger L1", "success", "anomaly index"):
        table.add_column(column, justify="right")
    for c in inspection.candidates:
        mark = " *" if c.target_class == inspection.target_class else ""
        table.add_row(
            f"{c.target_class}{mark}",
            f"{c.l1:.2f}",
            f"{c.success:.1%}",
            f"{inspection.anomaly_indices[c.target_class]:.2f}",
        )
    out.print(table)
    if report.defense is not None:
        d = report.defense
        acc, asr = d["clean_accuracy"], d.get("attack_success")
        line = f"  {d['method']}: clean accuracy {acc['before']:.1%} → {acc['after']:.1%}"
        if asr:
            line += f", attack success (recovered trigger) {asr['before']:.1%} → {asr['after']:.1%}"
        out.print(line, highlight=False)
    print_findings(report, out)


@handles_errors
def inspect_model(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="file.py:factory with --weights, TorchScript .pt (white-box); or .onnx, .joblib/.pkl, URL "
        "(score-only).",
    ),
    data: str = typer.Option(
        ...,
        "--data",
        "-d",
        help="Clean sample of inputs with labels (a few hundred): .npz, CSV, demo:digits.",
    ),
    steps: int = STEPS,
    queries: int | None = typer.Option(
        None,
        "--queries",
        help="Score-only inspection (any model that returns probabilities: ONNX, scikit-learn, HTTP) with "
        "this query budget; the default for non-PyTorch models, with 1,000,000 queries.",
    ),
    threshold: float = typer.Option(
        2.0, "--threshold", help="Anomaly index above which the model is infected."
    ),
    trigger_image: Path | None = typer.Option(
        None, "--trigger-image", help="Write every class's recovered trigger as an SVG image grid."
    ),
    mitigate: str | None = typer.Option(
        None,
        "--mitigate",
        help="Repair an infected model: unlearning (of the recovered trigger) or fine-pruning.",
    ),
    save: Path | None = typer.Option(
        None, "--save", help="With --mitigate: write the repaired model's weights."
    ),
    eval_fraction: float = typer.Option(
        0.3, "--eval-fraction", help="With --mitigate: share of --data held out to measure the repair."
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
    trust: bool = TRUST,
    python_path: list[Path] | None = PYTHON_PATH,
    seed: int = typer.Option(0, "--seed", help="Seed of the optimisation and the mitigation."),
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
    fail_on: str = FAIL_ON,
) -> None:
    """Inspect a trained image model for a backdoor (Neural Cleanse).

    For every class, finds the smallest mask and pattern that send clean inputs to it: with the
    model's gradients for PyTorch models, from its scores alone (a query budget, --queries) for
    ONNX, scikit-learn or HTTP models. A class
    reached by a much smaller trigger than the others (MAD anomaly index above --threshold) is the
    likely target of a backdoor: the model is reported infected, with that target class and the
    recovered trigger. --mitigate repairs it: unlearning fine-tunes on clean data stamped with the
    recovered trigger and correct labels; fine-pruning removes the neurons dormant on clean data,
    then fine-tunes. JSON output has `infected`, `target_class` and `anomaly_index`.

    Example: `mlarmor poisoning inspect-model --model net.py:build --weights net.pt --data clean.npz
    --trigger-image trigger.svg`

    Example: `mlarmor poisoning inspect-model --model model.pt --data clean.npz --mitigate unlearning
    --save repaired.pt -f json -o inspect.json`

    Exit codes: 0 finding below --fail-on, 1 at or above it, 2 usage or runtime error.
    """
    from mlarmor.assess.inspection import inspect_model as run

    check_format(output_format)
    check_output(trigger_image, "--trigger-image", (".svg",))
    check_output(output, "--output")
    fail_level = parse_severity(fail_on)
    if save is not None and mitigate is None:
        raise fail("--save writes the repaired model: it needs --mitigate.", "add --mitigate unlearning")
    clean = load_data(data, label_column=label_column, bounds=bounds, shape=parse_shape(input_shape))
    target = load_model(
        model, bounds=clean.bounds, input_shape=clean.input_shape, weights=weights, classes=classes,
        trust=trust, python_path=python_path, mean=mean, std=std,
        header_env=header_env,
        http_output=http_output,
        request_key=request_key,
        response_key=response_key,
    )  # fmt: skip
    with progress_reporter() as progress:
        result = run(
            target, clean, steps=steps, queries=queries, threshold=threshold, mitigate=mitigate,  # type: ignore[arg-type]
            eval_fraction=eval_fraction, seed=seed, save=save, progress=progress,
        )  # fmt: skip
    if result.saved is not None:
        err_console.print(f"repaired model written to {result.saved}", highlight=False)
    if trigger_image is not None:
        write_side_file(
            _trigger_svg(result.inspection, target.bounds),
            trigger_image,
            "--trigger-image",
            "recovered triggers",
        )
    report = result.to_report(
        metadata={"fail_on": fail_level.label, "model": shown(model), "data": data, "steps": steps}
    )
    emit_report(
        report, output_format, output, lambda out: _print_model(report, result.inspection, out, target.name)
    )
    raise exit_for(report, fail_level)
