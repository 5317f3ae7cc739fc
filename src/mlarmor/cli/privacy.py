"""``mlarmor privacy``: membership (and, per sensitive feature, attribute) inference on a model's data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

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
    exit_for,
    handles_errors,
    load_model,
    parse_severity,
    parse_shape,
    progress_reporter,
    shown,
    write_side_file,
)
from mlarmor.cli._names import MEMBERSHIP_LABELS
from mlarmor.cli._views import print_privacy

if TYPE_CHECKING:
    from mlarmor.assess.privacy import PrivacyAudit

__all__ = ["privacy"]

_ATTACK_HELP = f"Attack to run (repeatable): {', '.join(MEMBERSHIP_LABELS)}. Default: all that apply."


def _feature(item: str) -> int | str:
    """A ``--sensitive`` value: a flat index as an int, anything else as a column name."""
    return int(item) if item.strip().lstrip("-").isdigit() else item


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlarmor" / "reference"


@handles_errors
def privacy(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="TorchScript .pt, .onnx, .joblib/.pkl, file.py:factory (with --weights), or URL.",
    ),
    members: str = typer.Option(
        ..., "--members", help="The model's training data: .npz, 'x.npy,y.npy', CSV/Parquet, or a demo set."
    ),
    nonmembers: str = typer.Option(
        ..., "--nonmembers", help="Held-out data from the same population, never seen in training."
    ),
    recipe: str | None = typer.Option(
        None,
        "--recipe",
        help="How to train a model like the target, for PyTorch: file.py:train "
        "(train(x, y, seed) -> module). scikit-learn models are cloned automatically.",
    ),
    reference_models: int = typer.Option(
        16, "--reference-models", help="Reference models (even: each example is in exactly half of them)."
    ),
    access: str = typer.Option("scores", "--access", help="What the attacker sees: scores or labels."),
    attack: list[str] | None = typer.Option(
        None,
        "--attack",
        "-a",
        help=_ATTACK_HELP,
    ),
    top_k: int | None = typer.Option(
        None, "--top-k", help="Audit the model behind output obfuscation: only the K largest scores."
    ),
    decimals: int | None = typer.Option(
        None, "--decimals", help="Audit the model behind output obfuscation: scores rounded to D decimals."
    ),
    augment: int = typer.Option(
        0, "--augment", help="LiRA query augmentation: shifted copies of each image queried too (0-8)."
    ),
    invert: bool = typer.Option(
        False, "--invert", help="Model inversion (PyTorch models): reconstruct one representative per class."
    ),
    invert_images: Path | None = typer.Option(
        None, "--invert-images", help="With --invert: write the reconstructions as an SVG image grid."
    ),
    sensitive: list[str] | None = typer.Option(
        None,
        "--sensitive",
        help="Sensitive feature (repeatable): a flat index or a column name. Runs attribute inference on "
        "the members, learning from the non-members, with and without the model; reports the lift.",
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
    workers: int | None = typer.Option(
        None, "--workers", help="Processes training reference models (default: CPUs)."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache of reference-model outputs (default ~/.cache/mlarmor/reference)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Train every reference model again."),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the reference splits, their training and the attacks."
    ),
    delta: float = typer.Option(0.0, "--delta", help="δ of the empirical ε lower bound."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the attacks' log-log ROC curves as an SVG file."
    ),
    trust: bool = TRUST,
    python_path: list[Path] | None = PYTHON_PATH,
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
    fail_on: str = FAIL_ON,
) -> None:
    """Audit how much a model reveals about who was in its training data (membership inference).

    Reference models are trained with the target's recipe on random halves of members and
    non-members together (each example in exactly half of them), in parallel and cached, so a
    re-run reuses them. Every attack scores from the outputs computed once: loss, confidence,
    entropy and modified-entropy thresholds, per-class thresholds, the shadow-model attack, LiRA
    and RMIA (online and offline), and with --access labels the label-only boundary-distance attack.
    The finding's severity comes from the strongest attack's TPR at low FPR and AUC.

    With --sensitive FEATURE, an attacker who knows the members' other features and labels infers
    FEATURE with the model's outputs (its output on the record and its confidence in the label under
    each candidate value) and without them (imputation), both learned from the non-members; the lift
    of the one over the other is what the model leaks, with one finding per feature.

    Example: `mlarmor privacy --model clf.joblib --members train.npz --nonmembers heldout.npz`

    Example: `mlarmor privacy --model net.py:build --weights net.pt --recipe train.py:train
    --members train.npz --nonmembers test.npz --reference-models 16 --plot roc.svg -f json -o audit.json`

    Example: `mlarmor privacy --model clf.joblib --members train.csv --nonmembers heldout.csv
    --label-column approved --sensitive age --sensitive 3`

    Exit codes: 0 finding below --fail-on, 1 at or above it, 2 usage or runtime error.
    """
    from mlarmor.assess.privacy_audit import audit_privacy
    from mlarmor.data import load_dataset

    check_format(output_format)
    check_output(plot, "--plot", (".svg",))
    check_output(invert_images, "--invert-images", (".svg",))
    check_output(output, "--output")
    threshold = parse_severity(fail_on)
    shape = parse_shape(input_shape)
    member_data = load_dataset(members, label_column=label_column, bounds=bounds)
    nonmember_data = load_dataset(nonmembers, label_column=label_column, bounds=bounds)
    low = min(member_data.bounds[0], nonmember_data.bounds[0])
    high = max(member_data.bounds[1], nonmember_data.bounds[1])
    target = load_model(
        model, bounds=(low, high), input_shape=shape or member_data.input_shape, weights=weights,
        classes=classes, trust=trust, python_path=python_path, mean=mean, std=std,
        header_env=header_env,
        http_output=http_output,
        request_key=request_key,
        response_key=response_key,
    )  # fmt: skip
    built_recipe = None
    if recipe is not None and reference_models > 0 and access == "scores":
        from mlarmor.targets.recipe import load_recipe

        built_recipe = load_recipe(recipe, num_classes=target.num_classes)
    with progress_reporter() as progress:
        result = audit_privacy(
            target, member_data, nonmember_data, recipe=built_recipe, reference_models=reference_models,
            access=access, attacks=attack, top_k=top_k, decimals=decimals, augment=augment,  # type: ignore[arg-type]
            sensitive=[_feature(item) for item in sensitive or []],
            invert=invert or invert_images is not None,
            seed=seed, workers=workers, cache_dir=None if no_cache else (cache_dir or _default_cache()),
            delta=delta, progress=progress,
        )  # fmt: skip
    if invert_images is not None and result.inversion is not None:
        write_side_file(
            _inversion_svg(result.inversion, target), invert_images, "--invert-images", "reconstructions"
        )
    if plot is not None:
        write_side_file(_roc_svg(result.membership), plot, "--plot", "ROC curves")
    report = result.to_report(
        metadata={
            "fail_on": threshold.label,
            "model": shown(model),
            "members": members,
            "nonmembers": nonmembers,
        }
    )
    emit_report(
        report, output_format, output,
        lambda out: print_privacy(report, result.membership, out, result.attributes),
    )  # fmt: skip
    raise exit_for(report, threshold)


def _inversion_svg(inversion: Any, target: Any) -> str:
    import numpy as np

    from mlarmor.report import image_grid_svg

    low, high = target.bounds
    pictures = (np.asarray(inversion.images, dtype=np.float64) - low) / (high - low)
    labels = [f"class {c}: sim {s:.2f}" for c, s in zip(inversion.classes, inversion.similarity, strict=True)]
    return image_grid_svg(pictures, labels=labels, title=f"Model inversion of {target.name}")


def _roc_svg(audit: PrivacyAudit) -> str:
    from mlarmor.attacks.inference.metrics import roc_curve
    from mlarmor.report import roc_curve_svg

    curves = {}
    for o in audit.outcomes:
        rows = ~(o.scores != o.scores)  # label-only scores only part of the pool
        fpr, tpr, _ = roc_curve(o.scores[rows], audit.is_member[rows])
        curves[o.name] = (fpr, tpr)
    return roc_curve_svg(curves)
