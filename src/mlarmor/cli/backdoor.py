"""``mlarmor poisoning inspect-model | inspect-data | sanitize``: find backdoors and poisoned samples.

The work is :mod:`mlarmor.assess.inspection`; these commands parse the options, load the model and
data, call it and render the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

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
    check_format,
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
    write_output,
)
from mlarmor.cli.poisoning import RECIPE, _load, _print_findings
from mlarmor.schema import Report

__all__ = ["inspect_data", "inspect_model", "sanitize"]

_MITIGATIONS = ("unlearning", "fine-pruning")
_TRIGGERS = ("badnets", "blend", "warp")
MODEL = typer.Option(
    ..., "--model", "-m", help="PyTorch model: file.py:factory with --weights, or TorchScript .pt."
)
STEPS = typer.Option(600, "--steps", help="Neural Cleanse optimisation steps (mini-batches) for all classes.")


def _trigger_svg(inspection: Any, bounds: tuple[float, float]) -> str:
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
    _print_findings(report, out)


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
    classes: int | None = CLASSES,
    mean: list[float] | None = MEAN,
    std: list[float] | None = STD,
    input_shape: str | None = INPUT_SHAPE,
    trust: bool = TRUST,
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
    fail_level = parse_severity(fail_on)
    if save is not None and mitigate is None:
        raise fail("--save writes the repaired model: it needs --mitigate.", "add --mitigate unlearning")
    clean = _load(data, label_column=label_column, bounds=bounds, shape=parse_shape(input_shape))
    target = load_model(
        model, bounds=clean.bounds, input_shape=clean.input_shape, weights=weights, classes=classes,
        trust=trust, mean=mean, std=std,
    )  # fmt: skip
    with progress_reporter() as progress:
        result = run(
            target, clean, steps=steps, queries=queries, threshold=threshold, mitigate=mitigate,  # type: ignore[arg-type]
            eval_fraction=eval_fraction, seed=seed, save=save, progress=progress,
        )  # fmt: skip
    if result.saved is not None:
        err_console.print(f"repaired model written to {result.saved}", highlight=False)
    if trigger_image is not None:
        write_output(_trigger_svg(result.inspection, target.bounds), trigger_image, option="--trigger-image")
        err_console.print(f"recovered triggers written to {trigger_image}", highlight=False)
    report = result.to_report(
        metadata={"fail_on": fail_level.label, "model": model, "data": data, "steps": steps}
    )
    emit_report(
        report, output_format, output, lambda out: _print_model(report, result.inspection, out, target.name)
    )
    raise exit_for(report, fail_level)


def _print_data(report: Report, inspection: Any, out: Console, title: str) -> None:
    n = len(inspection.scores)
    out.print(
        f"[bold]mlarmor poisoning {title}[/] — {inspection.n_flagged} of {n} samples flagged "
        f"({inspection.n_flagged / max(n, 1):.1%})",
        highlight=False,
    )
    if report.infected is not None:
        verdict = f"infected, target class {report.target_class}" if report.infected else "no backdoor found"
        out.print(
            f"  model inspection: {verdict} (anomaly index {report.anomaly_index:.2f})", highlight=False
        )
    table = Table(show_edge=False, title="per class")
    methods = list(inspection.per_method)
    for column in ("class", "samples", "flagged", *methods):
        table.add_column(column, justify="right")
    for c, info in sorted(inspection.per_class.items()):
        by = info.get("by_method", {})
        table.add_row(str(c), str(info["n"]), str(info["flagged"]), *(str(by.get(m, 0)) for m in methods))
    out.print(table)
    for name, why in inspection.muted.items():
        out.print(f"  {name} muted: {why}", highlight=False)
    shown = inspection.suspicious_indices()[:15]
    if len(shown):
        items = ", ".join(f"#{int(i)} ({'+'.join(inspection.reasons[int(i)])})" for i in shown)
        more = f" … and {inspection.n_flagged - len(shown)} more" if inspection.n_flagged > len(shown) else ""
        out.print(f"  most suspicious: {items}{more}", highlight=False)
    if report.defense is not None:
        d = report.defense
        acc, asr = d["clean_accuracy"], d.get("attack_success")
        line = f"  retrained without them: clean accuracy {acc['before']:.1%} → {acc['after']:.1%}"
        if asr:
            line += f", attack success {asr['before']:.1%} → {asr['after']:.1%}"
        out.print(line, highlight=False)
    _print_findings(report, out)


def _histogram_svg(inspection: Any) -> str:
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


LAYER = typer.Option(
    None,
    "--layer",
    help="Layer whose activations the clustering detectors read (module name). Default: penultimate.",
)
METHOD = typer.Option(
    None,
    "--method",
    help="Detector (repeatable): label_consistency, model_loss, activation_clustering, spectral_signatures, "
    "learning_speed, trigger_carriers. Default: the ensemble's defaults.",
)
EXPECTED = typer.Option(
    None, "--expected-fraction", help="Upper estimate of the poisoned share, in (0, 0.5)."
)
MODEL_INSPECTION = typer.Option(
    True,
    "--inspect-model/--no-inspect-model",
    help="Run Neural Cleanse first and flag carriers of its trigger.",
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
    classes: int | None = CLASSES,
    mean: list[float] | None = MEAN,
    std: list[float] | None = STD,
    input_shape: str | None = INPUT_SHAPE,
    trust: bool = TRUST,
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
    fail_level = parse_severity(fail_on)
    train = _load(data, label_column=label_column, bounds=bounds, shape=parse_shape(input_shape))
    target = load_model(
        model, bounds=train.bounds, input_shape=train.input_shape, weights=weights, classes=classes,
        trust=trust, mean=mean, std=std,
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
        write_output(_histogram_svg(result.inspection), histogram, option="--histogram")
        err_console.print(f"score histograms written to {histogram}", highlight=False)
    report = result.to_report(metadata={"fail_on": fail_level.label, "model": model, "data": data})
    emit_report(
        report, output_format, output, lambda out: _print_data(report, result.inspection, out, "inspect-data")
    )
    raise exit_for(report, fail_level)


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
    classes: int | None = CLASSES,
    mean: list[float] | None = MEAN,
    std: list[float] | None = STD,
    input_shape: str | None = INPUT_SHAPE,
    trust: bool = TRUST,
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
    fail_level = parse_severity(fail_on)
    if recipe is None:
        raise fail(
            "sanitize retrains the model: give its --recipe.", "--recipe train.py:train, or demo:digits-cnn"
        )
    shape = parse_shape(input_shape)
    train = _load(data, label_column=label_column, bounds=bounds, shape=shape)
    test_data = _load(test, label_column=label_column, bounds=bounds, shape=shape)
    target = load_model(
        model, bounds=train.bounds, input_shape=train.input_shape, weights=weights, classes=classes,
        trust=trust, mean=mean, std=std,
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
        metadata={"fail_on": fail_level.label, "model": model, "data": data, "test": test, "recipe": recipe}
    )
    emit_report(
        report, output_format, output, lambda out: _print_data(report, result.inspection, out, "sanitize")
    )
    raise exit_for(report, fail_level)
