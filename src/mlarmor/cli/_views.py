"""Terminal views of the evasion, harden and privacy reports (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from mlarmor._stats import interval_text
from mlarmor.cli._output import print_finding
from mlarmor.findings import Severity

if TYPE_CHECKING:
    from mlarmor.assess.evasion import EvasionAssessment
    from mlarmor.assess.privacy import PrivacyAudit
    from mlarmor.attacks.inference.attribute import AttributeResult
    from mlarmor.attacks.inference.metrics import MembershipMetrics
    from mlarmor.schema import Report

__all__ = ["print_evasion", "print_harden", "print_label_mapping", "print_privacy"]


def print_label_mapping(report: Report, out: Console) -> None:
    """One line: how the data's labels were matched to the model's classes, when they were."""
    mapping = report.metadata.get("label_mapping")
    if mapping:
        pairs = ", ".join(
            f"{label} → {index}" for label, index in sorted(mapping.items(), key=lambda kv: kv[1])
        )
        out.print(f"  labels matched to the model's classes: {pairs}", highlight=False)


def _ci(interval: Sequence[float], spec: str = ".1%") -> str:
    """A 95% interval, compactly: ``95% CI [12.3%, 45.6%]``."""
    return f"95% CI {interval_text((interval[0], interval[1]), spec)}"


def print_harden(report: Report, out: Console) -> None:
    """The ``mlarmor harden`` table: the method's figures before and after, then the findings."""
    defense = report.defense or {}
    eps_key = next(iter(report.robust_accuracy or {"?": 0.0}))
    out.print(
        f"[bold]mlarmor harden[/] — {defense.get('method')} on {report.metadata.get('model')}",
        highlight=False,
    )
    print_label_mapping(report, out)
    if defense.get("method") == "adversarial-training":
        before, after = defense["before"], defense["after"]
        out.print(
            f"  {defense['algorithm']} for {defense['params']['epochs']} epochs on "
            f"{defense['train_samples']} samples in {defense['train_seconds']:.1f} s",
            highlight=False,
        )
        out.print(
            f"  clean accuracy   {before['clean_accuracy']:.1%} → {after['clean_accuracy']:.1%}",
            highlight=False,
        )
        out.print(
            f"  robust accuracy  {before['robust_accuracy'][eps_key]:.1%} → "
            f"{after['robust_accuracy'][eps_key]:.1%}  (ε = {eps_key}, {report.metadata.get('attack')})",
            highlight=False,
        )
    elif defense.get("method") == "dp":
        out.print(
            f"  DP-SGD for {defense['epochs']} epochs on {defense['train_samples']} samples in "
            f"{defense['train_seconds']:.1f} s ({defense['accountant']} accountant)",
            highlight=False,
        )
        out.print(
            f"  privacy          ε = {defense['epsilon_spent']:.3f} spent (target "
            f"{defense['target_epsilon']:g}) at δ = {defense['delta']:g}; noise multiplier "
            f"{defense['noise_multiplier']:.3f}, clipping norm {defense['max_grad_norm']:g}",
            highlight=False,
        )
        out.print(
            f"  clean accuracy   {defense['before']['clean_accuracy']:.1%} → "
            f"{defense['after']['clean_accuracy']:.1%}",
            highlight=False,
        )
        audit = defense.get("audit") or {}
        if audit:
            out.print(
                f"  re-audit         membership AUC {audit['best_auc']:.3f} ({audit['best_attack']}, "
                "threshold attacks; run mlarmor privacy for LiRA and RMIA)",
                highlight=False,
            )
    else:
        out.print(
            f"  detection rate {defense['detection_rate']:.1%} ({_ci(defense['detection_rate_ci'])}) on "
            f"{defense['n_adversarial']} successful adversarial examples, false alarms "
            f"{defense['false_alarm_rate']:.1%} ({_ci(defense['false_alarm_rate_ci'])}) on "
            f"{defense['n_clean']} clean samples, AUC {defense['auc']:.3f}",
            highlight=False,
        )
    if defense.get("saved"):
        out.print(f"  saved to {defense['saved']}", highlight=False)
    for finding in report.findings:
        out.print(f"[bold]{finding.severity.label.upper()}[/] {finding.title}", highlight=False)


def _print_attributes(attributes: Sequence[AttributeResult], out: Console) -> None:
    table = Table(show_edge=False, title="attribute inference (with the model vs imputation without it)")
    for column in ("feature", "kind", "metric", "attack", "baseline", "lift", "95% CI of lift"):
        table.add_column(column, justify="right")
    for r in attributes:
        table.add_row(
            r.feature,
            r.kind,
            "bal. acc." if r.metric == "balanced_accuracy" else "R²",
            f"{r.attack_score:.3f}",
            f"{r.baseline_score:.3f}",
            f"{r.lift:+.3f}",
            f"{r.lift_interval[0]:+.3f}, {r.lift_interval[1]:+.3f}",
        )
    out.print(table)


def _tpr(metrics: MembershipMetrics, key: str) -> str:
    """A TPR with its interval, or ``n/a (needs N non-members)`` where the sample cannot measure it."""
    if key not in metrics.tpr_at_fpr:
        return f"n/a (< {metrics.unmeasured_fprs.get(key, '?')})"
    return f"{metrics.tpr_at_fpr[key]:.2%} {interval_text(metrics.tpr_at_fpr_ci[key], '.1%')}"


def print_privacy(
    report: Report, audit: PrivacyAudit, out: Console, attributes: Sequence[AttributeResult] = ()
) -> None:
    """The ``mlarmor privacy`` table: every attack's metrics, attribute inference, the findings."""
    out.print(
        f"[bold]mlarmor privacy[/] — {audit.target_name}: {audit.n_members} members, {audit.n_nonmembers} "
        f"non-members, {audit.n_reference} reference models ({audit.cached_reference} cached), "
        f"{audit.access}, {audit.seconds:.1f}s",
        highlight=False,
    )
    print_label_mapping(report, out)
    on_members, on_nonmembers = audit.target_accuracy_ci
    out.print(
        f"  target accuracy: {audit.target_accuracy[0]:.1%} ({_ci(on_members)}) on members, "
        f"{audit.target_accuracy[1]:.1%} ({_ci(on_nonmembers)}) on non-members",
        highlight=False,
    )
    caption = "AUC and TPR with 95% intervals; n/a (< N): fewer non-members than that FPR needs"
    table = Table(show_edge=False, caption=caption)
    for column in ("attack", "AUC", "bal. acc.", "TPR@0.1%FPR", "TPR@1%FPR", "ε ≥", "seconds"):
        table.add_column(column, justify="right")
    best = audit.best.name
    for o in audit.outcomes:
        m = o.metrics
        table.add_row(
            f"{o.name}{' *' if o.name == best else ''}",
            f"{m.auc:.3f} {interval_text(m.auc_ci, '.2f')}",
            f"{m.balanced_accuracy:.1%}",
            *(_tpr(m, key) for key in ("0.001", "0.01")),
            f"{m.epsilon.epsilon:.2f}",
            f"{o.seconds:.2f}",
        )
    out.print(table)
    if audit.exposed:
        shown = ", ".join(f"#{i}" for i, _ in audit.exposed[:10])
        out.print(f"  most exposed members (by {best}): {shown}", highlight=False)
    if attributes:
        _print_attributes(attributes, out)
    for finding in report.findings:
        note = "  (* = strongest)" if finding.id == "privacy.membership-inference" else ""
        print_finding(finding, out, note=note)


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


_UNIT_LINES = {
    "range": "ε is a fraction of each feature's range",
    "std": "ε is in each feature's standard deviations",
}


def _print_units(report: Report, assessment: EvasionAssessment, out: Console) -> None:
    """For a relative ε, what it meant on the features (the report lists them all)."""
    line = _UNIT_LINES.get(assessment.eps_unit)
    features = report.sections.evasion.features if report.sections.evasion is not None else None
    if line is None and not features:
        return
    budget = assessment.budget_eps
    if features:
        shown = ", ".join(f"{f.name} ±{f.budget:.4g}" for f in features[:6])
        more = f" … ({len(features)} features; see the JSON report)" if len(features) > 6 else ""
        source = report.metadata.get("feature_bounds")
        origin = f"; ranges from {source}" if source else ""
        what = line or "ε in input units"
        out.print(f"  {what}{origin}: at ε = {budget:g}, {shown}{more}", highlight=False)
    elif line is not None:
        out.print(f"  {line}", highlight=False)


def print_evasion(report: Report, assessment: EvasionAssessment, out: Console) -> None:
    """The ``mlarmor evasion`` table: accuracy per ε, the budget's unit, then the findings."""
    from mlarmor.risk.severity import accuracy_loss

    details = next(iter((report.attacks or {}).values()))
    norm = "L∞" if assessment.norm == "linf" else "L2"
    out.print(
        f"[bold]mlarmor evasion[/] — {assessment.target_name} on {assessment.dataset_name}: "
        f"{assessment.attack} ({assessment.capability}), {norm}, {assessment.n_samples} samples, "
        f"seed {assessment.seed}, {assessment.seconds:.1f}s",
        highlight=False,
    )
    print_label_mapping(report, out)
    _print_units(report, assessment, out)
    table = Table(show_edge=False, caption="accuracies with 95% Clopper-Pearson intervals")
    for column in ("ε", "clean acc.", "robust acc.", "acc. lost", "success rate", "median norm", "queries"):
        table.add_column(column, justify="right")
    clean, (low, high) = assessment.clean_accuracy, assessment.clean_accuracy_ci
    for key, row in details["eps"].items():
        lost = 100.0 * (clean - row["robust_accuracy"])
        marker, (r_low, r_high) = (
            " *" if float(key) == assessment.budget_eps else "",
            row["robust_accuracy_ci"],
        )
        table.add_row(
            key + marker,
            f"{clean:.1%} [{low:.0%}, {high:.0%}]",
            f"{row['robust_accuracy']:.1%} [{r_low:.0%}, {r_high:.0%}]",
            f"{lost:.1f} pts [{accuracy_loss(lost).label}]",
            _fmt(row["success_rate"], ".1%"),
            _fmt(row["median_norm"], ".4g"),
            _fmt(row["mean_queries"], ".1f")
            if row["mean_queries"] is not None
            else str(row["total_queries"]),
        )
    out.print(table)
    for finding in report.findings:
        print_finding(
            finding, out, note="  (* = threat budget)", mitigations=finding.severity > Severity.NONE
        )
