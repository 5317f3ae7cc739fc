"""``mlarmor poisoning inspect-model | inspect-data | sanitize``: find backdoors and poisoned samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
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
    write_output,
)
from mlarmor.cli.poisoning import RECIPE, _check_format, _load, _print_findings
from mlarmor.data import Dataset
from mlarmor.errors import InputError
from mlarmor.schema import Report
from mlarmor.targets import InputSpace, Target, TorchTarget

__all__ = ["inspect_data", "inspect_model", "sanitize"]

_MITIGATIONS = ("unlearning", "fine-pruning")
_TRIGGERS = ("badnets", "blend", "warp")
MODEL = typer.Option(
    ..., "--model", "-m", help="PyTorch model: file.py:factory with --weights, or TorchScript .pt."
)
STEPS = typer.Option(600, "--steps", help="Neural Cleanse optimisation steps (mini-batches) for all classes.")


def _target(
    model: str,
    data: Dataset,
    *,
    weights: Path | None,
    classes: int | None,
    trust: bool,
    mean: list[float] | None,
    std: list[float] | None,
) -> Target:
    """Load --model for inspection and check that --data fits its classes."""
    target = load_model(
        model,
        bounds=data.bounds,
        input_shape=data.input_shape,
        weights=weights,
        classes=classes,
        trust=trust,
        mean=mean,
        std=std,
    )
    largest = int(data.y.max())
    if largest >= target.num_classes:
        raise fail(
            f"the data has labels up to {largest}, but the model has {target.num_classes} classes.",
            "check that --data belongs to this model (or --label-column)",
        )
    return target


def _torch_target(
    model: str,
    data: Dataset,
    *,
    weights: Path | None,
    classes: int | None,
    trust: bool,
    mean: list[float] | None,
    std: list[float] | None,
    why: str = "backdoor inspection of the training data",
) -> TorchTarget:
    """Like :func:`_target`, for the commands that need the PyTorch module itself."""
    target = _target(model, data, weights=weights, classes=classes, trust=trust, mean=mean, std=std)
    if not isinstance(target, TorchTarget):
        raise fail(
            f"{why} needs a PyTorch model; {model} loaded as {type(target).__name__}.",
            "give file.py:factory with --weights, or a TorchScript .pt file",
        )
    return target


def _check_writable(path: Path | None, option: str) -> None:
    if path is not None and path.is_dir():
        raise fail(f"{option} {path} is a folder.", f"give a file name, e.g. {option} out.pt")


def _save_module(module: torch.nn.Module, path: Path) -> None:
    inner = module.inner if isinstance(module, InputSpace) else module
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(inner, torch.jit.ScriptModule):
            torch.jit.save(inner, str(tmp))
        else:
            torch.save({k: v.detach().cpu() for k, v in inner.state_dict().items()}, tmp)
        tmp.replace(path)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}. Choose a writable --save path.") from e
    err_console.print(f"repaired model written to {path}", highlight=False)


def _neural_cleanse(
    target: Target, data: Dataset, *, steps: int, threshold: float, seed: int, queries: int | None = None
) -> Any:
    """White-box Neural Cleanse on a PyTorch target; the score-only variant otherwise or with queries."""
    from mlarmor.defenses.inspect.model import neural_cleanse

    if queries is not None or not isinstance(target, TorchTarget):
        from mlarmor.defenses.inspect.blackbox import neural_cleanse_blackbox

        budget = 1_000_000 if queries is None else queries
        with progress_bar() as bar:
            task = bar.add_task("reverse-engineering triggers (score-only)", total=None)
            return neural_cleanse_blackbox(
                target,
                data.x,
                data.y,
                queries=budget,
                threshold=threshold,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    with progress_bar() as bar:
        task = bar.add_task("reverse-engineering triggers", total=steps)
        return neural_cleanse(
            target,
            data.x,
            data.y,
            steps=steps,
            threshold=threshold,
            seed=seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


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
    _check_format(output_format)
    fail_level = parse_severity(fail_on)
    if mitigate is not None and mitigate not in _MITIGATIONS:
        raise fail(f"unknown --mitigate {mitigate!r}.", f"use one of: {', '.join(_MITIGATIONS)}")
    if save is not None and mitigate is None:
        raise fail("--save writes the repaired model: it needs --mitigate.", "add --mitigate unlearning")
    if not 0.0 < eval_fraction < 1.0:
        raise fail(f"--eval-fraction must be in (0, 1), got {eval_fraction}.", "e.g. --eval-fraction 0.3")
    if steps < 1:
        raise fail(f"--steps must be at least 1, got {steps}.")
    _check_writable(save, "--save")
    clean = _load(data, label_column=label_column, bounds=bounds, shape=parse_shape(input_shape))
    if queries is not None and queries < 1:
        raise fail(f"--queries must be at least 1, got {queries}.", "e.g. --queries 1000000")
    target = _target(model, clean, weights=weights, classes=classes, trust=trust, mean=mean, std=std)
    if mitigate is not None and not isinstance(target, TorchTarget):
        raise fail(
            f"--mitigate retrains the model: it needs a PyTorch model; {model} loaded as "
            f"{type(target).__name__}.",
            "inspect without --mitigate (score-only), or give file.py:factory with --weights",
        )
    fit_part, eval_part = clean.split(eval_fraction, seed=seed) if mitigate else (clean, clean)
    inspection = _neural_cleanse(
        target, fit_part, steps=steps, threshold=threshold, seed=seed, queries=queries
    )
    if trigger_image is not None:
        write_output(_trigger_svg(inspection, target.bounds), trigger_image, option="--trigger-image")
        err_console.print(f"recovered triggers written to {trigger_image}", highlight=False)
    mitigation = None
    if mitigate is not None:
        mitigation = _mitigate(mitigate, target, inspection, fit_part, eval_part, seed)  # type: ignore[arg-type]
        if save is not None:
            _save_module(mitigation.model, save)
    from mlarmor.assess.backdoor import to_model_inspection_report

    report = to_model_inspection_report(
        inspection,
        target_name=target.name,
        mitigation=mitigation,
        metadata={"fail_on": fail_level.label, "model": model, "data": data, "steps": steps},
    )
    emit_report(report, output_format, output, lambda out: _print_model(report, inspection, out, target.name))
    raise exit_for(report, fail_level)


def _mitigate(
    method: str, target: TorchTarget, inspection: Any, fit: Dataset, held: Dataset, seed: int
) -> Any:
    from mlarmor.defenses.training.backdoor import fine_prune, unlearn

    trigger = inspection.trigger or min(inspection.candidates, key=lambda c: c.l1)
    model = InputSpace(target)
    with status(f"{method}: repairing the model"):
        if method == "unlearning":
            return unlearn(
                model,
                fit.x,
                fit.y,
                trigger,
                seed=seed,
                x_eval=held.x,
                y_eval=held.y,
                target_class=trigger.target_class,
            )
        return fine_prune(
            model,
            fit.x,
            fit.y,
            seed=seed,
            x_eval=held.x,
            y_eval=held.y,
            trigger=trigger.apply,
            target_class=trigger.target_class,
        )


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


def _inspect(
    target: TorchTarget,
    train: Dataset,
    *,
    layer: str | None,
    method: list[str] | None,
    expected_fraction: float | None,
    model_inspection: bool,
    steps: int,
    seed: int,
) -> tuple[Any, Any]:
    from mlarmor.defenses.inspect.ensemble import inspect_data as run_inspection

    found = None
    if model_inspection:
        rows = np.random.default_rng(seed).permutation(len(train.y))[:500]
        found = _neural_cleanse(target, train.subset(rows), steps=steps, threshold=2.0, seed=seed)
    trigger = None
    if found is not None and found.infected and found.trigger is not None:
        trigger = (found.trigger.mask, found.trigger.pattern)
    model = InputSpace(target)
    prefixed = None if layer in (None, "input") else f"inner.{layer}"
    with status("inspecting the training data"):
        inspection = run_inspection(
            model,
            train.x,
            train.y,
            layer=prefixed,
            methods=method or None,
            expected_fraction=expected_fraction,
            trigger=trigger,
            seed=seed,
        )
    return inspection, found


def _save_kept(train: Dataset, kept: np.ndarray, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez(fh, x=train.x[kept], y=train.y[kept], index=np.flatnonzero(kept))
    except OSError as e:
        raise fail(f"cannot write {path}: {e.strerror or e}", "choose a writable --save-clean path") from None
    err_console.print(f"{int(kept.sum())} kept rows written to {path}", highlight=False)


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
    _check_format(output_format)
    fail_level = parse_severity(fail_on)
    _check_writable(save_clean, "--save-clean")
    train = _load(data, label_column=label_column, bounds=bounds, shape=parse_shape(input_shape))
    target = _torch_target(model, train, weights=weights, classes=classes, trust=trust, mean=mean, std=std)
    inspection, found = _inspect(
        target, train, layer=layer, method=method, expected_fraction=expected_fraction,
        model_inspection=model_inspection, steps=steps, seed=seed,
    )  # fmt: skip
    if histogram is not None:
        write_output(_histogram_svg(inspection), histogram, option="--histogram")
        err_console.print(f"score histograms written to {histogram}", highlight=False)
    if save_clean is not None:
        _save_kept(train, ~inspection.flagged, save_clean)
    from mlarmor.assess.backdoor import to_data_inspection_report

    report = to_data_inspection_report(
        inspection,
        model_inspection=found,
        metadata={"fail_on": fail_level.label, "model": model, "data": data},
    )
    emit_report(
        report, output_format, output, lambda out: _print_data(report, inspection, out, "inspect-data")
    )
    raise exit_for(report, fail_level)


def _known_trigger(trigger: str | None, target_class: int | None, params: list[str] | None) -> Any:
    if trigger is None:
        if target_class is not None or params:
            raise fail(
                "--target-class and --param describe a known trigger: add --trigger.",
                "e.g. --trigger badnets",
            )
        return None
    if trigger not in _TRIGGERS:
        raise fail(f"unknown --trigger {trigger!r}.", f"use one of: {', '.join(_TRIGGERS)}")
    if target_class is None:
        raise fail(
            "--trigger needs the backdoor's --target-class.", "e.g. --trigger badnets --target-class 0"
        )
    return trigger, target_class, parse_params(params)


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
    _check_format(output_format)
    fail_level = parse_severity(fail_on)
    if recipe is None:
        raise fail(
            "sanitize retrains the model: give its --recipe.", "--recipe train.py:train, or demo:digits-cnn"
        )
    if drop not in ("auto", "flagged", "backdoor"):
        raise fail(f"unknown --drop {drop!r}.", "use auto, flagged or backdoor")
    if drop == "backdoor" and not model_inspection:
        raise fail(
            "--drop backdoor needs model inspection.", "remove --no-inspect-model, or use --drop flagged"
        )
    known = _known_trigger(trigger, target_class, param)
    _check_writable(save_clean, "--save-clean")
    _check_writable(save, "--save")
    shape = parse_shape(input_shape)
    train = _load(data, label_column=label_column, bounds=bounds, shape=shape)
    test_data = _load(test, label_column=label_column, bounds=bounds, shape=shape)
    target = _torch_target(model, train, weights=weights, classes=classes, trust=trust, mean=mean, std=std)
    from mlarmor.targets.recipe import load_recipe

    built = load_recipe(recipe, num_classes=target.num_classes)
    inspection, found = _inspect(
        target, train, layer=layer, method=method, expected_fraction=expected_fraction,
        model_inspection=model_inspection, steps=steps, seed=seed,
    )  # fmt: skip
    asr = _asr_function(known, found, test_data)
    from mlarmor.assess.backdoor import rows_to_drop

    dropped, policy = rows_to_drop(inspection, train.y, model_inspection=found, policy=drop)  # type: ignore[arg-type]
    from mlarmor.assess.backdoor import sanitize as run_sanitize
    from mlarmor.assess.backdoor import to_sanitize_report

    with status(f"retraining on {int((~dropped).sum())} kept rows"):
        result = run_sanitize(
            built,
            train,
            dropped,
            test_data,
            before=target.predict,
            attack_success=asr,
            seed=seed,
            policy=policy,
        )
    if save_clean is not None:
        _save_kept(train, result.kept, save_clean)
    if save is not None and isinstance(result.model, torch.nn.Module):
        _save_module(result.model, save)
    report = to_sanitize_report(
        result,
        inspection=inspection,
        metadata={"fail_on": fail_level.label, "model": model, "data": data, "test": test, "recipe": recipe},
    )
    emit_report(report, output_format, output, lambda out: _print_data(report, inspection, out, "sanitize"))
    raise exit_for(report, fail_level)


def _asr_function(known: Any, found: Any, test: Dataset) -> Any:
    from mlarmor.attacks.poisoning import attack_success_rate

    if known is not None:
        name, target_class, params = known
        params = {"bounds": test.bounds, **params}

        def measured(predict: Any) -> float:
            return attack_success_rate(
                predict, test.x, test.y, trigger=name, target_class=target_class, **params
            )

        return measured
    if found is not None and found.infected and found.trigger is not None:
        stamp, target_class = found.trigger.apply, found.trigger.target_class
        rows = test.y != target_class
        return lambda predict: float(np.mean(predict(stamp(test.x[rows])) == target_class))
    return None
