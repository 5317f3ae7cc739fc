"""What the ``mlarmor poisoning`` sub-commands share: options, data loading, the data-inspection view."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from mlarmor.cli._common import (
    fail,
    print_finding,
)

if TYPE_CHECKING:
    from mlarmor.data import Dataset
    from mlarmor.schema import Report

__all__ = [
    "EXPECTED",
    "LAYER",
    "METHOD",
    "MODEL",
    "MODEL_INSPECTION",
    "RECIPE",
    "STEPS",
    "load_data",
    "print_data",
    "print_findings",
]

MODEL = typer.Option(
    ..., "--model", "-m", help="PyTorch model: file.py:factory with --weights, or TorchScript .pt."
)
STEPS = typer.Option(600, "--steps", help="Neural Cleanse optimisation steps (mini-batches) for all classes.")

RECIPE = typer.Option(
    None,
    "--recipe",
    help="How the model is trained: file.py:train (train(x, y, seed) -> torch module), or a built-in "
    "demo:digits-cnn / demo:digits-mlp.",
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


def load_data(
    source: str,
    *,
    label_column: str | None,
    bounds: tuple[float, float] | None,
    shape: tuple[int, ...] | None,
) -> Dataset:
    """Load a dataset, reshaped to ``--input-shape`` when one is given (flat rows to images)."""
    import numpy as np

    from mlarmor.data import load_dataset

    data = load_dataset(source, label_column=label_column, bounds=bounds)
    if shape is None or shape == data.input_shape:
        return data
    if int(np.prod(shape)) != int(np.prod(data.input_shape)):
        raise fail(
            f"--input-shape {','.join(map(str, shape))} does not fit the {data.input_shape} rows "
            f"of {source}.",
            "give a shape with the same number of values as one row",
        )
    return replace(data, x=data.x.reshape(len(data.x), *shape), feature_low=None, feature_high=None)


def print_findings(report: Report, out: Console) -> None:
    for finding in report.findings:
        print_finding(finding, out)


def print_data(report: Report, inspection: Any, out: Console, title: str) -> None:
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
    print_findings(report, out)
