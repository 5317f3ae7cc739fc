"""``mlarmor poisoning simulate``'s views: the terminal table, the SVG plots, the saved data (private)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from mlarmor.cli._common import err_console, fail
from mlarmor.cli.poisoning._shared import print_findings

if TYPE_CHECKING:
    from mlarmor.assess.poisoning import PoisoningSimulation
    from mlarmor.data import Dataset
    from mlarmor.schema import Report

__all__ = ["IMAGE_TRIGGERS", "curve_plot", "print_simulation", "trigger_grid", "write_poisoned"]

IMAGE_TRIGGERS = ("badnets", "blend", "warp")


def print_simulation(report: Report, sim: PoisoningSimulation, out: Console) -> None:
    out.print(
        f"[bold]mlarmor poisoning simulate[/] — recipe {sim.recipe}: {sim.n_train} training rows, "
        f"{sim.n_test} test rows, target class {sim.target_name}, {sim.seconds:.1f}s",
        highlight=False,
    )
    if sim.attack_choice is not None:
        out.print(f"  attack: {sim.attack_choice}", highlight=False)
    for name in sim.attacks:
        table = Table(show_edge=False, title=name)
        for column in ("poisoned", "rows", "clean accuracy", "attack success", "seconds"):
            table.add_column(column, justify="right")
        for p in sim.curve(name):
            table.add_row(
                "clean model" if p.fraction == 0 else f"{p.fraction:.1%}",
                str(p.n_poisoned),
                f"{p.clean_accuracy:.1%}",
                "n/a (random flips)" if p.attack_success is None else f"{p.attack_success:.1%}",
                f"{p.seconds:.1f}",
            )
        out.print(table)
    print_findings(report, out)


def _suffixed(path: Path, name: str, many: bool) -> Path:
    return path.with_name(f"{path.stem}-{name}{path.suffix or '.npz'}") if many else path


def write_poisoned(sim: PoisoningSimulation, path: Path) -> None:
    import numpy as np

    many = len(sim.examples) > 1
    for name, poisoned in sim.examples.items():
        target = _suffixed(path, name, many)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fh:
                np.savez(fh, x=poisoned.x, y=poisoned.y, poisoned=poisoned.poisoned)
        except OSError as e:
            raise fail(
                f"cannot write {target}: {e.strerror or e}", "choose a writable --save-poisoned path"
            ) from None
        err_console.print(
            f"{name}: poisoned dataset ({poisoned.n_poisoned} rows changed) written to {target}",
            highlight=False,
        )


def trigger_grid(sim: PoisoningSimulation, test: Dataset) -> str:
    import numpy as np

    from mlarmor.attacks.poisoning import apply_trigger
    from mlarmor.report import image_grid_svg

    low, high = test.bounds
    rows = np.flatnonzero(test.y != sim.target_class)[:4]
    images, labels = [], []
    for name, poisoned in sim.examples.items():
        if name not in IMAGE_TRIGGERS:
            continue
        triggered = apply_trigger(test.x[rows], poisoned.trigger, **poisoned.params)  # type: ignore[arg-type]
        for i, row in enumerate(rows):
            images += [test.x[row], triggered[i]]
            labels += [f"class {int(test.y[row])}", f"+ {name} trigger"]
    pictures = (np.asarray(images, dtype=np.float64) - low) / (high - low)
    return image_grid_svg(pictures, labels=labels, title="Clean test inputs and their triggered copies")


def curve_plot(sim: PoisoningSimulation) -> str:
    from mlarmor.report import Series, line_chart_svg

    series = []
    for name in sim.attacks:
        curve = sim.curve(name)
        if curve[-1].attack_success is not None:
            series.append(
                Series(f"{name}: attack success", [(p.fraction, p.attack_success or 0.0) for p in curve])
            )
        series.append(Series(f"{name}: clean accuracy", [(p.fraction, p.clean_accuracy) for p in curve]))
    return line_chart_svg(
        series,
        title="Poisoning: clean accuracy and attack success vs poisoned fraction",
        x_label="poisoned fraction of the eligible training rows",
        y_label="share of test inputs",
        y_range=(0.0, 1.0),
        y_percent=True,
    )
