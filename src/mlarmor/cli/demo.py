"""``mlarmor demo``: the built-in demonstration on generated model files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from mlarmor.cli._common import EXIT_FINDINGS, EXIT_OK, console, handles_errors
from mlarmor.findings import Severity

if TYPE_CHECKING:
    from mlarmor.defenses import BackdoorInspection
    from mlarmor.schema import FileResult

__all__ = ["demo"]


def _verdict(s: Severity) -> Text:
    from mlarmor.report.terminal import SEVERITY_STYLE

    return Text("clean" if s == Severity.NONE else s.label, style=SEVERITY_STYLE[s])


def _top(result: FileResult) -> str:
    if not result.findings:
        return ""
    f = result.findings[0]
    return f.title if len(f.title) < 90 else f.title[:87] + "..."


def _evasion_demo(seed: int = 0) -> list[tuple[float, float, float]]:
    """Train a small MLP on the digits demo set (seconds) and measure its robust accuracy."""
    from mlarmor.assess import evaluate_evasion
    from mlarmor.data import load_dataset
    from mlarmor.models import digits_mlp, fit_classifier
    from mlarmor.targets import TorchTarget

    digits = load_dataset("demo:digits")
    train, test = digits.split(test_fraction=0.25, seed=seed)
    model = fit_classifier(
        digits_mlp(hidden=128, seed=seed), train.x, train.y, epochs=150, batch_size=None, lr=1e-2
    )
    target = TorchTarget(model, bounds=digits.bounds, input_shape=digits.input_shape)
    assessment = evaluate_evasion(target, test, attack="auto", eps=(0.03, 0.1), n_samples=200, seed=seed)
    return [
        (eps, r.clean_accuracy, r.robust_accuracy)
        for eps, r in zip(assessment.eps, assessment.results, strict=True)
    ]


def _privacy_demo(seed: int = 0) -> list[tuple[str, float, float]]:
    """Train a scikit-learn MLP on half of digits and audit it with 4 reference models (seconds)."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from mlarmor.assess.privacy import audit_membership
    from mlarmor.data import Dataset, load_dataset
    from mlarmor.errors import MlarmorWarning
    from mlarmor.targets import SklearnTarget
    from mlarmor.targets.recipe import recipe_for

    digits = load_dataset("demo:digits")
    x = digits.x.reshape(digits.n, -1)
    order = np.random.default_rng(seed).permutation(digits.n)
    inside, outside = order[: digits.n // 2], order[digits.n // 2 :]
    members = Dataset(x=x[inside], y=digits.y[inside], bounds=digits.bounds, name="members")
    nonmembers = Dataset(x=x[outside], y=digits.y[outside], bounds=digits.bounds, name="nonmembers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # 898 non-members cannot measure 0.1% FPR; the demo shows the AUC and 1% FPR only.
        warnings.simplefilter("ignore", MlarmorWarning)
        clf = MLPClassifier((128,), max_iter=300, random_state=seed).fit(members.x, members.y)
        target = SklearnTarget(clf, bounds=digits.bounds, num_classes=10)
        audit = audit_membership(
            target, members, nonmembers, recipe=recipe_for(target, num_classes=10), n_reference=4, seed=seed
        )
    return [(o.name, o.metrics.auc, o.metrics.tpr_at_fpr["0.01"]) for o in audit.outcomes]


def _backdoor_demo(seed: int = 0) -> tuple[float, float, BackdoorInspection]:
    """Train a digits CNN on 10% BadNets-poisoned data, then inspect it with Neural Cleanse (seconds)."""
    import numpy as np

    from mlarmor.attacks.poisoning import attack_success_rate, poison
    from mlarmor.data import load_dataset
    from mlarmor.defenses import neural_cleanse
    from mlarmor.models.recipes import train_digits_cnn
    from mlarmor.targets import TorchTarget

    train, test = load_dataset("demo:digits").split(0.3, seed=seed)
    poisoned = poison(train.x, train.y, trigger="badnets", fraction=0.1, target_class=0, seed=seed)
    target = TorchTarget(
        train_digits_cnn(poisoned.x, poisoned.y, seed), bounds=(0.0, 1.0), input_shape=(1, 8, 8)
    )
    accuracy = float(np.mean(target.predict(test.x) == test.y))
    asr = attack_success_rate(
        target.predict, test.x, test.y, trigger="badnets", target_class=0, **poisoned.params
    )
    return accuracy, asr, neural_cleanse(target, test.x[:300], test.y[:300], steps=300, seed=seed)


@handles_errors
def demo(
    out: Path = typer.Option(Path("mlarmor-demo"), "--out", help="Folder for the generated demo files."),
    keep: bool = typer.Option(True, "--keep/--clean", help="Keep the generated files for further scans."),
) -> None:
    """Scan benign and trojaned model files; then evasion, privacy and backdoor runs on small models.

    Benign files are written by the real libraries (PyTorch, scikit-learn, joblib, NumPy, and Keras,
    ONNX, safetensors, GGUF when installed). Malicious files carry harmless payloads that would create
    a file in a canary folder if anything ever ran them; the demo checks that folder stays empty.

    Example:
        mlarmor demo --out /tmp/mlarmor-demo
    """
    from mlarmor.testing.corpus import write_benign, write_malicious

    if out.exists():
        shutil.rmtree(out)
    benign_dir, bad_dir, canary = out / "benign", out / "malicious", out / "canary"
    for d in (benign_dir, bad_dir, canary):
        d.mkdir(parents=True, exist_ok=True)
    with console.status("Writing benign artifacts with the real libraries..."):
        benign = write_benign(benign_dir)
    with console.status("Generating trojaned files (harmless payloads)..."):
        skipped: dict[str, str] = {}
        malicious = write_malicious(bad_dir, canary, skipped=skipped)
    from mlarmor.scan import Scanner

    scanner = Scanner()
    with console.status(f"Scanning {len(benign) + len(malicious)} files without loading them..."):
        good_results = scanner.scan_paths(benign)
        bad_results = scanner.scan_paths(malicious)

    from mlarmor.testing.corpus import SAMPLES

    good = Table(title="Benign files, written by the real libraries", header_style="bold")
    for col in ("File", "Format", "Verdict"):
        good.add_column(col, overflow="fold")
    for r in good_results:
        good.add_row(Path(r.path).name, r.format, _verdict(r.severity))
    console.print(good)

    families: dict[str, list[FileResult]] = {}
    for r in bad_results:
        sample = SAMPLES.get(Path(r.path).name.split("__", 1)[0])
        families.setdefault(sample.family if sample else "other", []).append(r)
    bad = Table(title="Trojaned files by technique (harmless payloads)", header_style="bold")
    bad.add_column("Technique family")
    bad.add_column("Files", justify="right")
    bad.add_column("Flagged", justify="right")
    bad.add_column("Example finding", overflow="fold")
    for family, results in sorted(families.items()):
        flagged = sum(r.severity >= Severity.HIGH for r in results)
        style = "green" if flagged == len(results) else "bold red"
        bad.add_row(family, str(len(results)), Text(str(flagged), style=style), _top(results[0]))
    console.print(bad)

    caught = sum(r.severity >= Severity.HIGH for r in bad_results)
    false_alarms = [r for r in good_results if r.severity >= Severity.HIGH]
    ran = sorted(p.name for p in canary.iterdir())
    console.print(f"\nmalicious files flagged high or critical: [bold]{caught}/{len(bad_results)}[/]")
    console.print(
        f"benign files flagged high or critical:    [bold]{len(false_alarms)}/{len(good_results)}[/]"
    )
    console.print(
        "canary folder: "
        + ("[green]empty — no payload ran[/]" if not ran else f"[red]{len(ran)} payload(s) ran: {ran}[/]")
    )
    if skipped:
        missing = ", ".join(sorted(set(skipped.values())))
        console.print(
            f"[dim]{len(skipped)} trojaned sample(s) not written: their writer libraries ({missing}) are not "
            "installed (they come with the dev extras: pip install -e '.\\[dev]').[/]"
        )
    console.print(f"\nFiles are in {out}/. Try: [bold]mlarmor scan {bad_dir} --format sarif -o scan.sarif[/]")
    with console.status("Evasion: training a small digits model and attacking it with the auto ensemble..."):
        evasion_rows = _evasion_demo()
    table = Table(
        title="Evasion: a digits MLP (trained here) under the auto ensemble, L∞", header_style="bold"
    )
    for col in ("ε", "Clean accuracy", "Robust accuracy"):
        table.add_column(col, justify="right")
    for eps, clean, robust in evasion_rows:
        table.add_row(f"{eps:g}", f"{clean:.1%}", f"{robust:.1%}")
    console.print(table)
    console.print("Try: [bold]mlarmor evasion --model MODEL --data demo:digits --eps 0.05 --eps 0.1[/]")
    with console.status(
        "Privacy: training a digits MLP on half the data and auditing it (4 reference models)..."
    ):
        privacy_rows = _privacy_demo()
    audit_table = Table(
        title="Privacy: membership inference on a digits MLP (members: half the data)", header_style="bold"
    )
    for col in ("Attack", "AUC", "TPR at 1% FPR"):
        audit_table.add_column(col, justify="right")
    for name, auc, tpr in privacy_rows:
        audit_table.add_row(name, f"{auc:.3f}", f"{tpr:.1%}")
    console.print(audit_table)
    console.print(
        "Try: [bold]mlarmor privacy --model MODEL --members train.npz --nonmembers heldout.npz[/] "
        "(16 reference models by default)"
    )
    with console.status(
        "Backdoor: training a digits CNN on 10% BadNets-poisoned data, then inspecting it..."
    ):
        accuracy, asr, found = _backdoor_demo()
    console.print(
        f"[bold]Backdoor:[/] a digits CNN trained on 10% poisoned data: clean accuracy {accuracy:.1%}, "
        f"the trigger sends {asr:.1%} of inputs to class 0. Neural Cleanse: "
        + (
            f"[bold red]infected[/], target class {found.target_class}"
            if found.infected
            else "[green]no backdoor found[/]"
        )
        + f" (anomaly index {found.anomaly_index:.2f} > 2 means infected)",
        highlight=False,
    )
    console.print(
        "Try: [bold]mlarmor poisoning simulate --data demo:digits --recipe demo:digits-cnn[/], "
        "[bold]mlarmor poisoning inspect-model --model MODEL --data clean.npz[/]"
    )
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    ok = caught == len(bad_results) and not false_alarms and not ran
    raise typer.Exit(EXIT_OK if ok else EXIT_FINDINGS)
