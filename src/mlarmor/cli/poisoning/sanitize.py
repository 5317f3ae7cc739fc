"""``mlarmor poisoning sanitize``: drop the flagged training rows, retrain, compare before and after.

The work is :func:`mlarmor.sanitize`; this module parses the options, loads the model, data and
recipe, calls it and renders the report.
"""

from __future__ import annotations

from pathlib import Path

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
    fail,
    handles_errors,
    load_model,
    parse_params,
    parse_severity,
    parse_shape,
    progress_reporter,
    shown,
)
from mlarmor.cli.poisoning._shared import (
    EXPECTED,
    LAYER,
    METHOD,
    MODEL,
    MODEL_INSPECTION,
    RECIPE,
    STEPS,
    load_data,
    print_data,
)

__all__ = ["sanitize"]


@handles_errors
def sanitize(
    model: str = MODEL,
    data: str = typer.Option(
        ..., "--data", "-d", help="The training data the model was trained on, with its labels."
    ),
    recipe: str | None = RECIPE,
    test: str = typer.Option(
        ..., "--test", help="Clean held-out data to measure accuracy and attack success on."
    ),
    trigger: str | None = typer.Option(
        None,
        "--trigger",
        help="A known trigger to measure: badnets, blend or warp. Default: the recovered one.",
    ),
    target_class: int | None = typer.Option(None, "--target-class", help="With --trigger: its target class."),
    param: list[str] | None = typer.Option(
        None, "--param", help="With --trigger: its keyword KEY=VALUE (repeatable)."
    ),
    layer: str | None = LAYER,
    method: list[str] | None = METHOD,
    expected_fraction: float | None = EXPECTED,
    model_inspection: bool = MODEL_INSPECTION,
    steps: int = STEPS,
    save_clean: Path | None = typer.Option(
        None, "--save-clean", help="Write the kept rows as .npz (x, y, index)."
    ),
    save: Path | None = typer.Option(
        None, "--save", help="Write the retrained model's weights (state dict)."
    ),
    drop: str = typer.Option(
        "auto",
        "--drop",
        help="Rows to drop: flagged (all), backdoor (flagged in the backdoor's target class, and trigger "
        "carriers), auto (backdoor when model inspection found one, else flagged).",
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
    seed: int = typer.Option(0, "--seed", help="Seed of the inspection and the retraining."),
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
    fail_on: str = FAIL_ON,
) -> None:
    """Drop the training samples inspect-data flags, retrain with the recipe, compare before and after.

    Runs the same inspection as inspect-data, retrains on the unflagged rows with --recipe, and
    measures both models on --test: clean accuracy, and attack success of the backdoor (the known
    --trigger, or else the trigger model inspection recovered).

    Example: `mlarmor poisoning sanitize --model net.py:build --weights net.pt --data train.npz
    --test test.npz --recipe train.py:train --trigger badnets --target-class 0 --save clean-net.pt`

    Exit codes: 0 finding below --fail-on, 1 at or above it, 2 usage or runtime error.
    """
    from mlarmor.assess.inspection import sanitize as run
    from mlarmor.targets.recipe import load_recipe

    check_format(output_format)
    check_output(output, "--output")
    fail_level = parse_severity(fail_on)
    if recipe is None:
        raise fail(
            "sanitize retrains the model: give its --recipe.", "--recipe train.py:train, or demo:digits-cnn"
        )
    shape = parse_shape(input_shape)
    train = load_data(data, label_column=label_column, bounds=bounds, shape=shape)
    test_data = load_data(test, label_column=label_column, bounds=bounds, shape=shape)
    target = load_model(
        model, bounds=train.bounds, input_shape=train.input_shape, weights=weights, classes=classes,
        trust=trust, python_path=python_path, mean=mean, std=std,
    )  # fmt: skip
    built = load_recipe(recipe, num_classes=target.num_classes)
    with progress_reporter() as progress:
        result = run(
            target, train, test_data, built, trigger=trigger, target_class=target_class,
            trigger_params=parse_params(param), drop=drop, layer=layer, methods=method,  # type: ignore[arg-type]
            expected_fraction=expected_fraction, model_inspection=model_inspection, steps=steps, seed=seed,
            save_clean=save_clean, save=save, progress=progress,
        )  # fmt: skip
    for path, what in ((result.saved_clean, "kept rows"), (result.saved, "retrained model")):
        if path is not None:
            err_console.print(f"{what} written to {path}", highlight=False)
    report = result.to_report(
        metadata={
            "fail_on": fail_level.label,
            "model": shown(model),
            "data": data,
            "test": test,
            "recipe": recipe,
        }
    )
    emit_report(
        report, output_format, output, lambda out: print_data(report, result.inspection, out, "sanitize")
    )
    raise exit_for(report, fail_level)
