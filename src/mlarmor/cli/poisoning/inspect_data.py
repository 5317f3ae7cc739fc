"""``mlarmor poisoning inspect-data``: find the poisoned samples of a training set.

The work is :func:`mlarmor.inspect_data`; this module parses the options, loads the model and
data, calls it and renders the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mlarmor.cli._common import (
    BOUNDS,
    CLASSES,
    FAIL_ON,
    FORMAT,
    INPUT_SHAPE,
    LABEL_COLUMN,
    MEAN,
    OUTPUT,
    PYTHON_PATH,
    STD,
    TRUST,
    WEIGHTS,
    check_format,
    check_output,
    emit_report,
    err_console,
    exit_for,
    handles_errors,
    load_model,
    parse_severity,
    parse_shape,
    progress_reporter,
    shown,
    write_side_file,
)
from mlarmor.cli.poisoning._shared import (
    EXPECTED,
    LAYER,
    METHOD,
    MODEL,
    MODEL_INSPECTION,
    STEPS,
    load_data,
    print_data,
)

__all__ = ["inspect_data"]


def _histogram_svg(inspection: Any) -> str:
    import numpy as np

    from mlarmor.report import Series, line_chart_svg

    series = []
    for name, h in inspection.histograms.items():
        edges, counts = np.asarray(h["edges"], dtype=float), np.asarray(h["counts"], dtype=float)
        centres = (edges[:-1] + edges[1:]) / 2
        series.append(Series(name, list(zip(centres.tolist(), (counts + 1).tolist(), strict=True))))
    return line_chart_svg(
        series,
        title="Suspicion score histograms per method",
        x_label="score",
        y_label="samples + 1",
        y_log=True,
    )


@handles_errors
def inspect_data(
    model: str = MODEL,
    data: str = typer.Option(
        ..., "--data", "-d", help="The training data the model was trained on, with its labels."
    ),
    layer: str | None = LAYER,
    method: list[str] | None = METHOD,
    expected_fraction: float | None = EXPECTED,
    model_inspection: bool = MODEL_INSPECTION,
    steps: int = STEPS,
    histogram: Path | None = typer.Option(
        None, "--histogram", help="Write the score histograms as an SVG chart."
    ),
    save_clean: Path | None = typer.Option(
        None, "--save-clean", help="Write the unflagged rows as .npz (x, y, index)."
    ),
    weights: Path | None = WEIGHTS,
    label_column: str | None = LABEL_COLUMN,
    bounds: tuple[float, float] | None = BOUNDS,
    classes: str | None = CLASSES,
    mean: list[float] | None = MEAN,
    std: list[float] | None = STD,
    input_shape: str | None = INPUT_SHAPE,
    trust: bool = TRUST,
    python_path: list[Path] | None = PYTHON_PATH,
    seed: int = typer.Option(0, "--seed", help="Seed of the clustering and the trigger search."),
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
    fail_on: str = FAIL_ON,
) -> None:
    """Find the poisoned samples of a training set, using the model trained on it.

    Detectors on the model's representations (label consistency, activation clustering, spectral
    signatures), per-sample loss signals and, when model inspection (on by default) finds a
    backdoor, the samples carrying its recovered trigger; combined into one score per sample with
    the reason each flagged sample was flagged. JSON output has `suspicious_indices` (most
    suspicious first) and `scores` (every row's).

    Example: `mlarmor poisoning inspect-data --model net.py:build --weights net.pt --data train.npz
    --histogram scores.svg -f json -o suspects.json`

    Exit codes: 0 finding below --fail-on, 1 at or above it, 2 usage or runtime error.
    """
    from mlarmor.assess.inspection import inspect_data as run

    check_format(output_format)
    check_output(histogram, "--histogram", (".svg",))
    check_output(output, "--output")
    fail_level = parse_severity(fail_on)
    train = load_data(data, label_column=label_column, bounds=bounds, shape=parse_shape(input_shape))
    target = load_model(
        model, bounds=train.bounds, input_shape=train.input_shape, weights=weights, classes=classes,
        trust=trust, python_path=python_path, mean=mean, std=std,
    )  # fmt: skip
    with progress_reporter() as progress:
        result = run(
            target, train, layer=layer, methods=method, expected_fraction=expected_fraction,
            model_inspection=model_inspection, steps=steps, seed=seed, save_clean=save_clean,
            progress=progress,
        )  # fmt: skip
    if result.saved_clean is not None:
        kept = int((~result.inspection.flagged).sum())
        err_console.print(f"{kept} kept rows written to {result.saved_clean}", highlight=False)
    if histogram is not None:
        write_side_file(_histogram_svg(result.inspection), histogram, "--histogram", "score histograms")
    report = result.to_report(metadata={"fail_on": fail_level.label, "model": shown(model), "data": data})
    emit_report(
        report, output_format, output, lambda out: print_data(report, result.inspection, out, "inspect-data")
    )
    raise exit_for(report, fail_level)
