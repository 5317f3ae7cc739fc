"""``mlarmor poisoning simulate``: retrain the recipe on poisoned data and measure the damage.

The work is :func:`mlarmor.simulate_poisoning`; this module parses the options, loads the data,
calls it and renders the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mlarmor.cli._common import (
    BOUNDS,
    CLASSES,
    FAIL_ON,
    FORMAT,
    INPUT_SHAPE,
    LABEL_COLUMN,
    OUTPUT,
    PYTHON_PATH,
    check_format,
    check_output,
    emit_report,
    exit_for,
    fail,
    handles_errors,
    load_model,
    parse_classes,
    parse_params,
    parse_severity,
    parse_shape,
    progress_bar,
    write_side_file,
)
from mlarmor.cli._names import POISONING_ATTACKS
from mlarmor.cli.poisoning._shared import RECIPE, load_data
from mlarmor.cli.poisoning._simulate_views import (
    IMAGE_TRIGGERS,
    curve_plot,
    print_simulation,
    trigger_grid,
    write_poisoned,
)

if TYPE_CHECKING:
    from mlarmor.data import Dataset

__all__ = ["simulate"]

_ATTACK_HELP = (
    f"Attack (repeatable): {', '.join(POISONING_ATTACKS)}. Default: by the data's shape, badnets on images, "
    "feature-trigger on tables (label-flip when every feature is immutable)."
)


def _num_classes(classes: int | None, *datasets: Dataset) -> int:
    largest = max(int(d.y.max()) for d in datasets)
    if classes is None:
        return largest + 1
    if classes < 2 or largest >= classes:
        raise fail(
            f"--classes {classes} does not fit the data, whose labels go up to {largest}.",
            f"use --classes {largest + 1} or more, or leave it out",
        )
    return classes


def _trigger_params(items: list[str] | None) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for key, value in parse_params(items, "--param").items():
        attack, dot, name = key.partition(".")
        if not dot or attack not in POISONING_ATTACKS or not name:
            raise fail(
                f"--param {key}={value} must be ATTACK.KEY=VALUE with ATTACK one of "
                f"{', '.join(POISONING_ATTACKS)}.",
                "e.g. --param badnets.size=3 --param blend.alpha=0.1",
            )
        out.setdefault(attack, {})[name] = value
    return out


@handles_errors
def simulate(
    data: str = typer.Option(
        ..., "--data", "-d", help="Clean training data: .npz, 'x.npy,y.npy', CSV/Parquet, or demo:digits."
    ),
    recipe: str | None = RECIPE,
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Instead of --recipe: a scikit-learn .joblib/.pkl model to clone and retrain.",
    ),
    test: str | None = typer.Option(
        None, "--test", help="Held-out clean data to measure on. Default: a stratified 25% of --data."
    ),
    attack: list[str] | None = typer.Option(None, "--attack", "-a", help=_ATTACK_HELP),
    fraction: list[float] | None = typer.Option(
        None, "--fraction", help="Poisoned share of the eligible rows (repeatable). Default: 0.01 0.05 0.1."
    ),
    target_class: str | None = typer.Option(
        None,
        "--target-class",
        help="The class the backdoor leads to: its name in the data (e.g. spam) or its index. "
        "Default: the first class.",
    ),
    source_class: str | None = typer.Option(
        None,
        "--source-class",
        help="label-flip: flip only this class (name or index) to --target-class (else random flips).",
    ),
    param: list[str] | None = typer.Option(
        None,
        "--param",
        help="Trigger keyword ATTACK.KEY=VALUE (repeatable), e.g. badnets.size=3, blend.alpha=0.1.",
    ),
    save_poisoned: Path | None = typer.Option(
        None,
        "--save-poisoned",
        help="Write the poisoned dataset at the largest fraction (.npz: x, y, poisoned).",
    ),
    trigger_image: Path | None = typer.Option(
        None, "--trigger-image", help="Write clean test inputs next to their triggered copies as an SVG grid."
    ),
    plot: Path | None = typer.Option(None, "--plot", help="Write the curves as an SVG chart."),
    label_column: str | None = LABEL_COLUMN,
    bounds: tuple[float, float] | None = BOUNDS,
    classes: str | None = CLASSES,
    input_shape: str | None = INPUT_SHAPE,
    trust: bool = typer.Option(False, "--trust", help="Load --model even if the scan finds it unsafe."),
    python_path: list[Path] | None = PYTHON_PATH,
    seed: int = typer.Option(0, "--seed", help="Seed of the poisoned rows, the triggers and the training."),
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
    fail_on: str = FAIL_ON,
) -> None:
    """Measure how much a poisoned share of the training data can hurt the model.

    Poisons the training data at each --fraction with each --attack (BadNets patch, blended or
    warping trigger on images, a feature-pattern trigger on tables, each relabelled to --target-class;
    or label flips), retrains with the recipe (yours, so
    the simulation trains the way you do) and measures on clean held-out data the clean accuracy and
    the attack success rate: the share of triggered test inputs sent to the target class. A model
    trained on the clean data is the baseline. One finding per attack (ATLAS AML.T0020; OWASP ML02,
    ML10 for backdoors).

    Example: `mlarmor poisoning simulate --data demo:digits --recipe demo:digits-cnn --attack badnets
    --attack blend --fraction 0.01 --fraction 0.05 --plot curve.svg`

    Example: `mlarmor poisoning simulate --data emails.csv --label-column label --model clf.joblib
    --target-class spam -f json`

    Example: `mlarmor poisoning simulate --data train.npz --test test.npz --recipe train.py:train
    --save-poisoned poisoned.npz -f json -o simulate.json`

    Exit codes: 0 finding below --fail-on, 1 at or above it, 2 usage or runtime error.
    """
    from mlarmor.assess.poisoning import simulate_poisoning

    check_format(output_format)
    check_output(plot, "--plot", (".svg",))
    check_output(trigger_image, "--trigger-image", (".svg",))
    check_output(save_poisoned, "--save-poisoned")
    check_output(output, "--output")
    threshold = parse_severity(fail_on)
    for name in attack or []:
        if name not in POISONING_ATTACKS:
            raise fail(f"unknown --attack {name!r}.", f"use one of: {', '.join(POISONING_ATTACKS)}")
    fractions = fraction or [0.01, 0.05, 0.1]
    for f in fractions:
        if not 0.0 < f < 1.0:
            raise fail(f"--fraction {f} is outside (0, 1).", "give the poisoned share as e.g. 0.05 for 5%")
    if (recipe is None) == (model is None):
        raise fail(
            "give exactly one of --recipe and --model.",
            "--recipe file.py:train for PyTorch (or demo:digits-cnn); --model clf.joblib to clone a "
            "scikit-learn model",
        )
    params = _trigger_params(param)
    if trigger_image is not None and attack and not set(attack) & set(IMAGE_TRIGGERS):
        raise fail("--trigger-image needs an image backdoor attack.", "add --attack badnets, blend or warp")
    shape = parse_shape(input_shape)
    train_data = load_data(data, label_column=label_column, bounds=bounds, shape=shape)
    if test is None:
        train_data, test_data = train_data.split(0.25, seed=seed)
    else:
        test_data = load_data(test, label_column=label_column, bounds=bounds, shape=shape)
    if trigger_image is not None and not attack and len(train_data.input_shape) not in (2, 3):
        raise fail(
            "--trigger-image draws image triggers, and this data is table rows.", "leave --trigger-image out"
        )
    count, names = parse_classes(classes)
    if names is not None:  # the model's outputs, named: the data is numbered in that order
        from mlarmor.data.labels import align_labels

        train_data, test_data = (align_labels(d, names).dataset for d in (train_data, test_data))
        count = len(names)
    n_cls = _num_classes(count, train_data, test_data)
    from mlarmor.targets.recipe import load_recipe, recipe_for

    if recipe is not None:
        built = load_recipe(recipe, num_classes=n_cls)
    else:
        assert model is not None  # exactly one of the two, checked above
        built = recipe_for(load_model(model, bounds=train_data.bounds, input_shape=train_data.input_shape,
            classes=",".join(names) if names else n_cls, trust=trust, python_path=python_path),
            num_classes=n_cls)  # fmt: skip
    with progress_bar() as bar:
        task = bar.add_task("training models", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=f"trained: {what}")

        sim = simulate_poisoning(
            built,
            train_data,
            test_data,
            attacks=attack or None,
            fractions=fractions,
            target_class=0 if target_class is None else target_class,
            source_class=source_class,
            num_classes=n_cls,
            trigger_params=params,
            seed=seed,
            progress=on_progress,
        )
    if save_poisoned is not None:
        write_poisoned(sim, save_poisoned)
    if trigger_image is not None:
        write_side_file(trigger_grid(sim, test_data), trigger_image, "--trigger-image", "trigger examples")
    if plot is not None:
        write_side_file(curve_plot(sim), plot, "--plot", "curves")
    report = sim.to_report(
        metadata={"fail_on": threshold.label, "data": data, "test": test, "recipe": recipe or model}
    )
    emit_report(report, output_format, output, lambda out: print_simulation(report, sim, out))
    raise exit_for(report, threshold)
