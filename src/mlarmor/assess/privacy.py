"""Privacy audit: how well membership-inference attacks tell the target's training data from other data.

:func:`audit_membership` takes the target, its members (training data) and non-members (held-out
data from the same population), trains reference models with the target's recipe on random halves of
the pooled data (each example in exactly half of them, in parallel, cached), computes every model's
outputs on the pool once, runs the attacks on those outputs and measures each with AUC, balanced
accuracy, TPR at 0.1% and 1% FPR and the empirical ε lower bound. :func:`to_privacy_report` turns the
result into a report with one finding whose severity comes from the strongest attack, read on the
**lower ends** of the 95% intervals (Clopper-Pearson for a TPR, Hanley-McNeil for the AUC), so that
a rating is one the sample demonstrates:

* **critical**: TPR ≥ 10% at 0.1% FPR (a tenth of the members identified with almost no false alarm);
* **high**: TPR ≥ 2% at 0.1% FPR, or AUC ≥ 0.75;
* **medium**: TPR ≥ 5% at 1% FPR, or AUC ≥ 0.6;
* **low**: AUC ≥ 0.55;
* **none** otherwise (no attack does clearly better than guessing).

A TPR at FPR ``f`` is measured only with at least ``ceil(1 / f)`` non-members (1000 for 0.1%, 100
for 1%); with fewer it is not reported and sets nothing, and :func:`audit_membership` warns
(:class:`~mlarmor.errors.MlarmorWarning`) that the severity cannot reach the levels it needs.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mlarmor._stats import clopper_pearson, fpr_measurable, interval_text, min_negatives
from mlarmor.attacks.inference.attribute import AttributeResult
from mlarmor.attacks.inference.membership import MembershipAttack, MembershipEvidence, default_attacks
from mlarmor.attacks.inference.metrics import MembershipMetrics, membership_metrics, most_exposed
from mlarmor.attacks.inference.signals import probabilities
from mlarmor.data import Dataset
from mlarmor.defenses.runtime.obfuscation import ObfuscatedTarget, obfuscate_scores
from mlarmor.errors import InvalidParameterError, MlarmorWarning, invalid_parameter
from mlarmor.findings import Finding, Location, Severity
from mlarmor.risk import severity as rules
from mlarmor.risk.catalogue import ATTRIBUTE_INFERENCE, MEMBERSHIP_INFERENCE, MODEL_INVERSION
from mlarmor.schema import Report
from mlarmor.targets import Target
from mlarmor.targets.recipe import Recipe

__all__ = [
    "AttackOutcome",
    "PrivacyAudit",
    "attribute_finding",
    "attribute_severity",
    "audit_membership",
    "inversion_finding",
    "inversion_severity",
    "privacy_severity",
    "sample_note",
    "to_privacy_report",
]

Access = Literal["scores", "labels"]
_OWNER = "audit_membership"
# The FPR levels the severity rules read (rules.membership): TPR at 0.1% and at 1% FPR.
_RULE_FPRS = ("0.001", "0.01")


@dataclass(frozen=True)
class AttackOutcome:
    """One attack's scores on the audit pool and what they achieve.

    Attributes:
        name: The attack's label (e.g. ``"lira-online"``).
        scores: One score per pooled example (members first), higher = member.
        metrics: AUC, balanced accuracy, TPR at low FPR, ε lower bound.
        seconds: Time spent scoring.
    """

    name: str
    scores: np.ndarray
    metrics: MembershipMetrics
    seconds: float


@dataclass(frozen=True)
class PrivacyAudit:
    """The result of :func:`audit_membership`.

    Attributes:
        outcomes: Per attack, in the order run.
        is_member: ``(N,)``: the first ``n_members`` pooled examples are the target's members.
        n_members: Number of members audited.
        n_nonmembers: Number of non-members audited.
        n_reference: Reference models used.
        cached_reference: How many of them came from the cache.
        access: ``"scores"`` or ``"labels"``.
        target_name: The target's name.
        seconds: Total wall-clock time.
        reference_seconds: Time spent training (or loading) the reference models.
        exposed: Indices into the members of the most exposed records under the best attack, with
            their scores, highest first.
        target_accuracy: The target's accuracy on members and on non-members.
    """

    outcomes: tuple[AttackOutcome, ...]
    is_member: np.ndarray
    n_members: int
    n_nonmembers: int
    n_reference: int
    cached_reference: int
    access: str
    target_name: str
    seconds: float
    reference_seconds: float
    exposed: tuple[tuple[int, float], ...]
    target_accuracy: tuple[float, float]

    @property
    def target_accuracy_ci(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """95% Clopper-Pearson intervals of the target's accuracy on members and on non-members."""
        return (
            clopper_pearson(round(self.target_accuracy[0] * self.n_members), self.n_members),
            clopper_pearson(round(self.target_accuracy[1] * self.n_nonmembers), self.n_nonmembers),
        )

    @property
    def best(self) -> AttackOutcome:
        """The attack with the highest TPR at 1% FPR (ties: higher AUC)."""
        return max(self.outcomes, key=lambda o: (o.metrics.tpr_at_fpr.get("0.01", 0.0), o.metrics.auc))

    def outcome(self, name: str) -> AttackOutcome:
        """The outcome of the attack reported as ``name``."""
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(f"no attack named {name!r} in this audit (ran: {[o.name for o in self.outcomes]})")


def _fingerprint_rows(x: np.ndarray) -> set[bytes]:
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat}


def _check_sets(members: Dataset, nonmembers: Dataset) -> None:
    if members.input_shape != nonmembers.input_shape:
        raise InvalidParameterError(
            f"Members and non-members must have the same input shape; got {members.input_shape} and "
            f"{nonmembers.input_shape}. Pass held-out data from the same population as the training data."
        )
    for name, ds in (("members", members), ("nonmembers", nonmembers)):
        if ds.n < 2:
            raise invalid_parameter(name, _OWNER, "at least 2 examples", ds.n)
    overlap = _fingerprint_rows(members.x) & _fingerprint_rows(nonmembers.x)
    if overlap:
        raise InvalidParameterError(
            f"{len(overlap)} example(s) appear both in the members and in the non-members. An example "
            "cannot be both: remove the duplicates from the held-out data."
        )


def audit_membership(
    target: Target,
    members: Dataset,
    nonmembers: Dataset,
    *,
    recipe: Recipe | None = None,
    n_reference: int = 16,
    access: Access = "scores",
    attacks: Sequence[MembershipAttack] | None = None,
    seed: int = 0,
    workers: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    label_only_samples: int = 200,
    delta: float = 0.0,
    n_exposed: int = 10,
    augmentations: int = 0,
) -> PrivacyAudit:
    """Audit the target's membership leakage on ``members`` (its training data) and ``nonmembers``.

    Args:
        target: The model adapter; ``access="scores"`` needs class scores, ``"labels"`` only labels.
        members: Examples the target was trained on.
        nonmembers: Held-out examples from the same population (never seen by the target).
        recipe: How to train a model like the target (see :mod:`mlarmor.targets.recipe`); needed
            for ``n_reference > 0``.
        n_reference: Reference models, even (each example is in exactly half of them); 0 runs only
            the attacks that need none.
        access: What the attacker sees: ``"scores"`` or ``"labels"``.
        attacks: The attacks to run; the default depends on ``access`` and ``n_reference``.
        seed: Seed of the reference splits, their training and the attacks.
        workers: Processes training reference models (default: one per CPU).
        cache_dir: Where reference models' outputs are cached (re-runs reuse them).
        progress: Called with ``(done, total)`` as reference models finish.
        label_only_samples: The label-only attack (query-hungry) runs on at most this many members
            and as many non-members.
        delta: δ of the ε lower bound.
        n_exposed: How many most-exposed members to report.
        augmentations: LiRA's query augmentation: also query every model with this many shifted
            copies of each image (one pixel in each direction, edges repeated; at most 8) and
            average LiRA's per-query tests. Images only (two or more axes per example).

    Raises:
        InvalidParameterError: Members and non-members of different shapes, overlapping sets, too
            few reference models for an attack, or a missing recipe.
    """
    start = time.perf_counter()
    if access not in ("scores", "labels"):
        raise invalid_parameter("access", _OWNER, "'scores' or 'labels'", access)
    if isinstance(n_reference, bool) or not isinstance(n_reference, int) or n_reference < 0:
        raise invalid_parameter("n_reference", _OWNER, "an even int >= 0", n_reference)
    if n_reference % 2:
        raise InvalidParameterError(
            f"Each example must be in exactly half of the reference models, so their number must be even; "
            f"got {n_reference}. Use e.g. --reference-models 16."
        )
    if n_reference > 0 and recipe is None and access == "scores":
        raise InvalidParameterError(
            "Reference models need a recipe to train models like the target: scikit-learn models get one "
            "automatically (clone); for PyTorch pass --recipe file.py:train, or --reference-models 0."
        )
    _check_sets(members, nonmembers)
    for ds in (members, nonmembers):
        ds.check_against(target.input_shape, target.num_classes, bounds=target.bounds)
    x = np.concatenate([members.x, nonmembers.x]).astype(np.float32, copy=False)
    y = np.concatenate([members.y, nonmembers.y]).astype(np.int64, copy=False)
    is_member = np.r_[np.ones(members.n, bool), np.zeros(nonmembers.n, bool)]
    chosen = tuple(attacks) if attacks is not None else tuple(default_attacks(access, n_reference))
    views = _shifted_views(x, augmentations)

    predicted = np.asarray(target.predict(x))
    target_accuracy = (
        float(np.mean(predicted[is_member] == y[is_member])),
        float(np.mean(predicted[~is_member] == y[~is_member])),
    )
    outcomes: list[AttackOutcome] = []
    reference_seconds, cached = 0.0, 0
    score_based = [a for a in chosen if a.capability == "scores"]
    if score_based:
        if "scores" not in target.capabilities:
            raise InvalidParameterError(
                f"{target.name!r} returns labels only, so score-based attacks cannot run: "
                "use access='labels'."
            )
        outputs, logits = _target_outputs(target, x)
        reference = np.zeros((0, len(y), outputs.shape[1]), np.float32)
        keep = np.zeros((0, len(y)), bool)
        target_views = reference_views = None
        ref_logits = logits
        if n_reference > 0 and recipe is not None:
            from mlarmor.assess.reference import train_reference_models

            refs = train_reference_models(
                recipe,
                x,
                y,
                n_models=n_reference,
                seed=seed,
                workers=workers,
                cache_dir=cache_dir,
                progress=progress,
                queries=None if views is None else views.reshape(-1, *x.shape[1:]),
            )
            reference, keep, cached, reference_seconds = refs.outputs, refs.keep, refs.cached, refs.seconds
            ref_logits = refs.logits
            if views is not None:
                reference_views = reference[:, len(y) :].reshape(n_reference, len(views), len(y), -1)
                reference = reference[:, : len(y)]
                target_views = np.stack([_target_outputs(target, v)[0] for v in views])
        if ref_logits != logits:  # mixed kinds (e.g. a PyTorch target, a scikit-learn recipe)
            outputs = _to_probabilities(outputs, logits)
            reference = _to_probabilities(reference, ref_logits)
            if target_views is not None and reference_views is not None:
                target_views = _to_probabilities(target_views, logits)
                reference_views = _to_probabilities(reference_views, ref_logits)
            logits = ref_logits = False
        if isinstance(target, ObfuscatedTarget) and len(reference):
            # The attacker knows what the endpoint returns and puts its reference models' outputs
            # through the same obfuscation, so that both sides are compared like for like.
            def mimic(a: np.ndarray) -> np.ndarray:
                flat = _to_probabilities(a, ref_logits).reshape(-1, a.shape[-1])
                return obfuscate_scores(flat, top_k=target.top_k, decimals=target.decimals).reshape(a.shape)

            reference = mimic(reference)
            if reference_views is not None:
                reference_views = mimic(reference_views)
            if target_views is not None:
                target_views = _to_probabilities(target_views, logits)
            ref_logits = logits = False
        evidence = MembershipEvidence(
            y=y,
            target=outputs,
            logits=logits,
            reference=reference,
            keep=keep,
            population=np.flatnonzero(~is_member),
            target_views=target_views,
            reference_views=reference_views,
        )
        for attack in score_based:
            t0 = time.perf_counter()
            scores = attack.score(evidence)
            outcomes.append(_outcome(attack.label, scores, is_member, time.perf_counter() - t0, delta, seed))
    for label_only in (a for a in chosen if a.capability == "labels"):
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        pick_m = rng.permutation(members.n)[:label_only_samples]
        pick_n = members.n + rng.permutation(nonmembers.n)[:label_only_samples]
        rows = np.r_[np.sort(pick_m), np.sort(pick_n)]
        scores = label_only.score(MembershipEvidence.from_queries(target, x[rows], y[rows]))
        full = np.full(len(y), np.nan)
        full[rows] = scores
        metrics = membership_metrics(scores, is_member[rows], delta=delta, seed=seed)
        outcomes.append(AttackOutcome(label_only.label, full, metrics, time.perf_counter() - t0))
    if not outcomes:
        raise InvalidParameterError("No attack could run: pass at least one attack.")
    note = sample_note(nonmembers.n)
    if note:
        warnings.warn(note, MlarmorWarning, stacklevel=2)
    best = max(outcomes, key=lambda o: (o.metrics.tpr_at_fpr.get("0.01", 0.0), o.metrics.auc))
    finite = np.where(np.isnan(best.scores), -np.inf, best.scores)
    top = most_exposed(finite, is_member, k=min(n_exposed, members.n))
    return PrivacyAudit(
        outcomes=tuple(outcomes),
        is_member=is_member,
        n_members=members.n,
        n_nonmembers=nonmembers.n,
        n_reference=n_reference if score_based else 0,
        cached_reference=cached,
        access=access,
        target_name=target.name,
        seconds=time.perf_counter() - start,
        reference_seconds=reference_seconds,
        exposed=tuple((int(i), float(best.scores[i])) for i in top),
        target_accuracy=target_accuracy,
    )


def _target_outputs(target: Target, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """The target's logits where it has them (PyTorch, scikit-learn MLPs and linear models).

    Other targets give their probabilities.
    """
    from mlarmor.targets.sklearn import SklearnTarget, sklearn_logits

    if isinstance(target, SklearnTarget):
        z = sklearn_logits(target.estimator, x.reshape(len(x), -1))
        if z is not None and z.shape[1] == target.num_classes:
            return z, True
    logits_fn = getattr(target, "logits", None)
    if (
        callable(logits_fn)
        and "gradients" in target.capabilities
        and not getattr(target, "outputs_probabilities", False)
    ):
        import torch

        parts = []
        with torch.no_grad():
            for start in range(0, len(x), 1024):
                chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + 1024]))
                parts.append(logits_fn(chunk.to(target.device)).detach().cpu().numpy())  # type: ignore[attr-defined]
        return np.concatenate(parts).astype(np.float64), True
    return np.asarray(target.predict_proba(x), dtype=np.float64), False


_SHIFTS = ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1))


def _shifted_views(x: np.ndarray, count: int) -> np.ndarray | None:
    """``count`` copies of the images ``x`` shifted by one pixel (edges repeated), ``(count, N, ...)``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= len(_SHIFTS):
        raise invalid_parameter("augmentations", _OWNER, f"an int in [0, {len(_SHIFTS)}]", count)
    if count == 0:
        return None
    if x.ndim < 3:
        raise InvalidParameterError(
            f"Query augmentation shifts images, but the examples have shape {x.shape[1:]} (flat features). "
            "Use augmentations=0 (--augment 0) for tabular data."
        )
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(x, pad, mode="edge")
    h, w = x.shape[-2:]
    return np.stack([padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _SHIFTS[:count]])


def _to_probabilities(outputs: np.ndarray, logits: bool) -> np.ndarray:
    """Outputs (any leading axes, classes last) as probabilities."""
    if not logits:
        return outputs
    flat = outputs.reshape(-1, outputs.shape[-1])
    return probabilities(flat, logits=True).reshape(outputs.shape)


def _outcome(
    name: str, scores: np.ndarray, is_member: np.ndarray, seconds: float, delta: float, seed: int
) -> AttackOutcome:
    return AttackOutcome(name, scores, membership_metrics(scores, is_member, delta=delta, seed=seed), seconds)


def sample_note(n_nonmembers: int) -> str:
    """What ``n_nonmembers`` non-members cannot measure of the severity rules' FPR levels ("" if nothing)."""
    missing = [k for k in _RULE_FPRS if not fpr_measurable(float(k), n_nonmembers)]
    if not missing:
        return ""
    levels = " or ".join(f"{100 * float(k):g}% FPR (needs {min_negatives(float(k))})" for k in missing)
    rest = "the other FPR level and the AUC" if len(missing) < len(_RULE_FPRS) else "the AUC alone"
    return (
        f"Only {n_nonmembers} non-members: too few to measure a TPR at {levels}, so it is not reported "
        f"and the membership severity rests on {rest}. Audit with at least "
        f"{min_negatives(float(missing[0]))} held-out examples (--nonmembers) for the full severity scale."
    )


def privacy_severity(metrics: MembershipMetrics) -> Severity:
    """Severity of the strongest attack's metrics (:func:`mlarmor.risk.severity.membership`).

    The rule reads the lower ends of the intervals (:attr:`MembershipMetrics.auc_ci`,
    :attr:`MembershipMetrics.tpr_at_fpr_ci`) and only the FPR levels the non-members can measure.
    """
    lows = {
        key: interval[0]
        for key, interval in metrics.tpr_at_fpr_ci.items()
        if fpr_measurable(float(key), metrics.n_nonmembers)
    }
    return rules.membership(metrics.auc_ci[0], lows.get("0.001"), lows.get("0.01"))


def _rate(metrics: MembershipMetrics, key: str) -> str:
    """``"12.00% (95% CI [9.10%, 15.40%])"``, or why the level is not reported."""
    if key not in metrics.tpr_at_fpr:
        return f"not measurable with {metrics.n_nonmembers} non-members"
    low, high = metrics.tpr_at_fpr_ci[key]
    return f"{metrics.tpr_at_fpr[key]:.2%} (95% CI {interval_text((low, high), '.2%')})"


def to_privacy_report(audit: PrivacyAudit, *, metadata: Mapping[str, Any] | None = None) -> Report:
    """Build the ``kind="privacy"`` report: per-attack metrics under ``attacks`` and one finding."""
    best = audit.best
    severity = privacy_severity(best.metrics)
    attacks = {o.name: {**o.metrics.to_dict(), "seconds": round(o.seconds, 4)} for o in audit.outcomes}
    m = best.metrics
    auc_text = interval_text(m.auc_ci, ".3f")
    if "0.01" in m.tpr_at_fpr:
        headline = (
            f"identifies {m.tpr_at_fpr['0.01']:.1%} of members at 1% false positives (AUC {m.auc:.3f}, "
            f"95% CI {auc_text})"
        )
    else:
        headline = (
            f"reaches AUC {m.auc:.3f} (95% CI {auc_text}); too few non-members to measure a TPR at 1% "
            "false positives"
        )
    note = sample_note(m.n_nonmembers)
    target_ci = audit.target_accuracy_ci
    finding = MEMBERSHIP_INFERENCE.finding(
        title=f"Membership inference: {best.name} {headline}",
        severity=severity,
        description=(
            f"{len(audit.outcomes)} attacks tried to tell the {audit.n_members} training examples from "
            f"{audit.n_nonmembers} held-out ones using the target's {audit.access} and {audit.n_reference} "
            f"reference models. The strongest, {best.name}, reaches AUC {m.auc:.3f} (95% CI "
            f"{auc_text}), TPR {_rate(m, '0.001')} at 0.1% FPR and {_rate(m, '0.01')} at "
            "1% FPR; "
            f"the audit implies ε ≥ {m.epsilon.epsilon:.2f} for any differential-privacy guarantee of the "
            "training (at the stated confidence). Severity, on the lower ends of the 95% intervals and at "
            "measurable FPRs only: TPR ≥ 10% at 0.1% FPR critical; ≥ 2% or AUC ≥ 0.75 high; ≥ 5% at 1% FPR "
            "or AUC ≥ 0.6 medium; AUC ≥ 0.55 low." + (f" {note}" if note else "")
        ),
        impact=min(1.0, max(0.0, 2.0 * (m.auc - 0.5))),
        evidence={
            "best_attack": best.name,
            "auc": m.auc,
            "auc_ci": list(m.auc_ci),
            "tpr_at_fpr": dict(m.tpr_at_fpr),
            "tpr_at_fpr_ci": {k: list(v) for k, v in m.tpr_at_fpr_ci.items()},
            "unmeasured_fprs": dict(m.unmeasured_fprs),
            "epsilon_lower_bound": m.epsilon.epsilon,
            "n_members": audit.n_members,
            "n_nonmembers": audit.n_nonmembers,
            "n_reference": audit.n_reference,
            "target_accuracy": {"members": audit.target_accuracy[0], "nonmembers": audit.target_accuracy[1]},
            "target_accuracy_ci": {"members": list(target_ci[0]), "nonmembers": list(target_ci[1])},
            **({"sample_note": note} if note else {}),
        },
        location=Location(path=audit.target_name, samples=[i for i, _ in audit.exposed]),
        mitigations=None if severity > Severity.NONE else [],
    )
    meta: dict[str, Any] = {
        "model": audit.target_name,
        "access": audit.access,
        "n_members": audit.n_members,
        "n_nonmembers": audit.n_nonmembers,
        "n_reference": audit.n_reference,
        "cached_reference": audit.cached_reference,
        "seconds": round(audit.seconds, 2),
        "reference_seconds": round(audit.reference_seconds, 2),
        "best_attack": best.name,
        "most_exposed": [{"member": i, "score": s} for i, s in audit.exposed],
        "target_accuracy": {"members": audit.target_accuracy[0], "nonmembers": audit.target_accuracy[1]},
        "target_accuracy_ci": {"members": list(target_ci[0]), "nonmembers": list(target_ci[1])},
    }
    meta.update(metadata or {})
    return Report(kind="privacy", attacks=attacks, findings=[finding], metadata=meta)


inversion_severity = rules.inversion


def inversion_finding(result: Any, *, target_name: str) -> Finding:
    """The ``privacy.model-inversion`` finding of an ``invert_classes`` result."""
    gain, rate = float(result.similarity_gain), float(result.identifiable_rate)
    severity = inversion_severity(gain, rate)
    return MODEL_INVERSION.finding(
        title=(
            f"Model inversion reconstructs {rate:.0%} of the classes recognisably (similarity "
            f"{result.mean_similarity:.2f} to the class means, {result.baseline_similarity:.2f} for a "
            "neutral image)"
        ),
        severity=severity,
        description=(
            f"Gradient ascent on the inputs of {target_name} produced one representative per class. "
            "Each is compared (cosine, after removing the overall mean) with the mean of the real members "
            f"of its class; {rate:.0%} are closer to their own class mean than to any other. Severity: "
            "≥ 80% recognisable with a similarity gain ≥ 0.3 over a neutral image high; ≥ 50% and ≥ 0.2 "
            "medium; gain > 0.1 low."
        ),
        impact=min(1.0, max(0.0, gain)),
        evidence={
            "mean_similarity": float(result.mean_similarity),
            "baseline_similarity": float(result.baseline_similarity),
            "identifiable_rate": rate,
            "classes": [int(c) for c in result.classes],
        },
        location=Location(path=target_name),
        mitigations=None if severity > Severity.NONE else [],
    )


def attribute_severity(result: AttributeResult) -> Severity:
    """Severity of an attribute-inference result, from its lift.

    **none** when the lift is under 0.02 or its 95% interval reaches 0 (no leak distinguishable
    from imputation); otherwise **critical** at a lift of 0.4 or more, **high** at 0.2, **medium**
    at 0.1, **low** below. The lift is in balanced-accuracy or R² points: 0.2 means the model
    lets the attacker get 20 points more than imputation does.
    """
    return rules.attribute_lift(result.lift, result.lift_interval[0])


def attribute_finding(result: AttributeResult, *, target_name: str) -> Finding:
    """The ``privacy.attribute-inference`` finding of one sensitive feature."""
    severity = attribute_severity(result)
    metric = "balanced accuracy" if result.kind == "categorical" else "R²"
    low, high = result.lift_interval
    return ATTRIBUTE_INFERENCE.finding(
        title=(
            f"Attribute inference of {result.feature!r}: {metric} {result.attack_score:.3f} with the model "
            f"vs {result.baseline_score:.3f} without it (lift {result.lift:+.3f})"
        ),
        severity=severity,
        description=(
            f"An attacker who knows a record's other features and label guessed the sensitive feature "
            f"{result.feature!r} ({result.kind}) of {result.n_test} records after learning from "
            f"{result.n_train} reference records. Without the model (imputation) the guess reaches {metric} "
            f"{result.baseline_score:.3f}; with the target's {result.access} "
            f"({'its output on the record and ' if result.observed_output else ''}its confidence in the "
            f"label under {len(result.candidates)} candidate values) it reaches {result.attack_score:.3f}: "
            f"the model reveals {result.lift:+.3f} (95% interval {low:+.3f} to {high:+.3f}) beyond what the "
            "other features tell. Severity by lift: ≥ 0.4 critical, ≥ 0.2 high, ≥ 0.1 medium, ≥ 0.02 low, "
            "none when the interval reaches 0."
        ),
        impact=min(1.0, max(0.0, result.lift)),
        evidence=result.to_dict(),
        location=Location(path=target_name, samples=list(result.exposed()) or None),
        mitigations=None if severity > Severity.NONE else [],
    )
