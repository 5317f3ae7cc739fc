"""Membership inference: mlarmor's privacy audit against ART's membership attacks, in one run.

Target: a scikit-learn ``MLPClassifier`` trained on a seeded half of scikit-learn digits (the
members); the other half are the non-members. Nothing is downloaded.

* **mlarmor**: ``audit_membership`` with the automatic recipe (``sklearn.base.clone``) and
  ``--reference 16`` reference models trained on a local process pool (no cache: timed from scratch),
  every default attack. It never sees which examples are members.
* **ART** (adversarial-robustness-toolbox, benchmark-only): its black-box attacks, given what they
  need. ``MembershipInferenceBlackBox`` (random forest, gradient boosting, neural network) is
  *supervised*: it is trained on the target's outputs for a known half of the members and of the
  non-members (a stronger attacker than mlarmor's, who knows no memberships), and one is trained on
  four ART ``ShadowModels`` instead; ``MembershipInferenceBlackBoxRuleBased`` needs no training.

Every attack is measured on the same evaluation half (the members and non-members ART did not
train on), with the same metric code: TPR at 1% FPR, AUC. Targets (issue 4): the best mlarmor attack
reaches at least 4x the TPR at 1% FPR of ART's best; the full audit with 16 reference models takes
under 2 minutes; RMIA with 2 reference models reaches at least 80% of LiRA's TPR at 1% FPR with 16.

Usage::

    python benchmarks/bench_privacy.py [--reference 16] [--workers 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from importlib import metadata

import numpy as np
from sklearn.neural_network import MLPClassifier

from mlarmor.assess.privacy import audit_membership
from mlarmor.attacks.inference import RMIA, LiRA
from mlarmor.attacks.inference.metrics import auc, tpr_at_fpr
from mlarmor.data import Dataset, load_dataset
from mlarmor.targets import SklearnTarget
from mlarmor.targets.recipe import recipe_for

SEED = 0


def target_model() -> MLPClassifier:
    return MLPClassifier((128,), max_iter=300, random_state=SEED)


def _member_scores(inferred: object) -> np.ndarray:
    """ART returns (n, 1) member probabilities, or (n, 2) [non-member, member] for the rule-based attack."""
    arr = np.asarray(inferred, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 2:
        arr = arr[:, 1]
    return arr.reshape(-1)


def _row(name: str, scores: np.ndarray, member: np.ndarray, seconds: float) -> dict[str, object]:
    return {
        "attack": name,
        "tpr_at_1pct_fpr": tpr_at_fpr(scores, member, 0.01),
        "tpr_at_0.1pct_fpr": tpr_at_fpr(scores, member, 0.001),
        "auc": auc(scores, member),
        "seconds": seconds,
    }


def art_attacks(
    clf: MLPClassifier,
    x: np.ndarray,
    y: np.ndarray,
    known: np.ndarray,
    member: np.ndarray,
    evaluate: np.ndarray,
) -> list[dict[str, object]]:
    from art.attacks.inference.membership_inference import (
        MembershipInferenceBlackBox,
        MembershipInferenceBlackBoxRuleBased,
        ShadowModels,
    )
    from art.estimators.classification import SklearnClassifier

    art_target = SklearnClassifier(model=clf, clip_values=(0.0, 1.0))
    x_in, y_in = x[known & member], y[known & member]
    x_out, y_out = x[known & ~member], y[known & ~member]
    x_ev, y_ev, m_ev = x[evaluate], y[evaluate], member[evaluate]
    rows = []
    for kind in ("rf", "gb", "nn"):
        t0 = time.perf_counter()
        attack = MembershipInferenceBlackBox(art_target, attack_model_type=kind)
        attack.fit(x=x_in, y=y_in, test_x=x_out, test_y=y_out)
        scores = _member_scores(attack.infer(x_ev, y_ev, probabilities=True))
        rows.append(_row(f"ART black-box ({kind}, supervised)", scores, m_ev, time.perf_counter() - t0))
    t0 = time.perf_counter()
    # ART's shadow template must know its class count: a copy of the recipe fitted once (refit per shadow).
    template = SklearnClassifier(model=target_model().fit(x[known], y[known]), clip_values=(0.0, 1.0))
    shadow = ShadowModels(template, num_shadow_models=4, random_state=SEED)
    (s_in_x, s_in_y, s_in_p), (s_out_x, s_out_y, s_out_p) = shadow.generate_shadow_dataset(
        x[known], np.eye(10)[y[known]]
    )
    attack = MembershipInferenceBlackBox(art_target, attack_model_type="gb")
    attack.fit(x=s_in_x, y=s_in_y, pred=s_in_p, test_x=s_out_x, test_y=s_out_y, test_pred=s_out_p)
    scores = _member_scores(attack.infer(x_ev, y_ev, probabilities=True))
    rows.append(_row("ART black-box (gb, 4 shadow models)", scores, m_ev, time.perf_counter() - t0))
    t0 = time.perf_counter()
    rule = MembershipInferenceBlackBoxRuleBased(art_target)
    scores = _member_scores(rule.infer(x_ev, y_ev, probabilities=True))
    rows.append(_row("ART rule-based (gap)", scores, m_ev, time.perf_counter() - t0))
    return rows


def dp_audit(members: Dataset, nonmembers: Dataset, args: argparse.Namespace) -> dict[str, float]:
    """A DP-SGD MLP on the same members, audited the same way (its reference models are DP too)."""
    from mlarmor.defenses import DPMLPClassifier

    t0 = time.perf_counter()
    clf = DPMLPClassifier(
        (128,),
        epsilon=args.dp_epsilon,
        delta=1e-5,
        input_range=(0.0, 1.0),
        classes=range(10),
        random_state=SEED,
    ).fit(members.x, members.y)
    train_seconds = time.perf_counter() - t0
    target = SklearnTarget(clf, bounds=(0.0, 1.0), num_classes=10)
    t0 = time.perf_counter()
    audit = audit_membership(
        target,
        members,
        nonmembers,
        recipe=recipe_for(target, num_classes=10),
        n_reference=args.reference,
        workers=args.workers,
    )
    seconds = time.perf_counter() - t0
    best = max(audit.outcomes, key=lambda o: o.metrics.auc)
    print(
        f"\n  DP-SGD MLP (epsilon target {args.dp_epsilon:g}, delta 1e-5): epsilon spent {clf.epsilon_:.3f}, "
        f"accuracy {clf.score(members.x, members.y):.1%} members / "
        f"{clf.score(nonmembers.x, nonmembers.y):.1%} "
        f"non-members, trained in {train_seconds:.1f} s; audit with {args.reference} DP reference models "
        f"{seconds:.1f} s"
    )
    for o in audit.outcomes:
        tpr = o.metrics.tpr_at_fpr.get("0.01", float("nan"))  # absent below 100 non-members
        print(f"    {o.name:<20} AUC {o.metrics.auc:.3f}  TPR@1%FPR {tpr:.1%}")
    return {
        "epsilon_spent": float(clf.epsilon_),
        "best_auc": float(best.metrics.auc),
        "best_attack": best.name,  # type: ignore[dict-item]
        "audit_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", type=int, default=16, help="reference models of the full audit")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes training them")
    ap.add_argument("--json", help="also write the results as JSON")
    ap.add_argument(
        "--dp-epsilon",
        type=float,
        default=1.0,
        help="also audit a DP-SGD MLP (mlarmor DPMLPClassifier) trained at this epsilon (0: skip)",
    )
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    digits = load_dataset("demo:digits")
    x = digits.x.reshape(len(digits.x), -1).astype(np.float32)
    y = digits.y
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(x))
    member = np.zeros(len(x), bool)
    member[order[: len(x) // 2]] = True
    # The attacker-known half for ART's supervised training; everyone is measured on the rest.
    known = np.zeros(len(x), bool)
    known[rng.permutation(len(x))[: len(x) // 2]] = True
    evaluate = ~known

    clf = target_model().fit(x[member], y[member])
    print("Membership inference on digits: mlarmor audit vs ART membership attacks")
    print(
        f"  machine: {os.cpu_count()} CPUs; mlarmor {metadata.version('mlarmor')}, "
        f"ART {metadata.version('adversarial-robustness-toolbox')}, "
        f"scikit-learn {metadata.version('scikit-learn')}"
    )
    print(
        f"  target: MLPClassifier(128) on {member.sum()} members; accuracy "
        f"{clf.score(x[member], y[member]):.1%} members, {clf.score(x[~member], y[~member]):.1%} "
        "non-members; evaluation half: "
        f"{(evaluate & member).sum()} members, {(evaluate & ~member).sum()} non-members"
    )
    # mlarmor's pool: members first, then non-members (audit order).
    pool = np.r_[np.flatnonzero(member), np.flatnonzero(~member)]
    on_eval = evaluate[pool]
    members = Dataset(x=x[member], y=y[member], bounds=(0.0, 1.0), name="members")
    nonmembers = Dataset(x=x[~member], y=y[~member], bounds=(0.0, 1.0), name="nonmembers")
    target = SklearnTarget(clf, bounds=(0.0, 1.0), num_classes=10)
    recipe = recipe_for(target, num_classes=10)

    t0 = time.perf_counter()
    audit = audit_membership(
        target, members, nonmembers, recipe=recipe, n_reference=args.reference, workers=args.workers
    )
    full_seconds = time.perf_counter() - t0
    is_member = audit.is_member
    rows = [
        _row(f"mlarmor {o.name}", o.scores[on_eval], is_member[on_eval], o.seconds) for o in audit.outcomes
    ]
    t0 = time.perf_counter()
    small = audit_membership(
        target,
        members,
        nonmembers,
        recipe=recipe,
        n_reference=2,
        workers=args.workers,
        attacks=[RMIA(online=True), RMIA(online=False), LiRA(online=True)],
    )
    small_seconds = time.perf_counter() - t0
    rows += [
        _row(f"mlarmor {o.name} (2 reference models)", o.scores[on_eval], is_member[on_eval], o.seconds)
        for o in small.outcomes
    ]
    art_rows = art_attacks(clf, x, y, known, member, evaluate)

    print(f"\n  {'attack':<44} {'TPR@1%FPR':>10} {'TPR@0.1%FPR':>12} {'AUC':>7} {'seconds':>8}")
    for r in [*rows, *art_rows]:
        print(
            f"  {r['attack']:<44} {r['tpr_at_1pct_fpr']:>10.1%} {r['tpr_at_0.1pct_fpr']:>12.1%} "
            f"{r['auc']:>7.3f} {r['seconds']:>8.2f}"
        )
    best_ml = max(
        (r for r in rows if "(2 reference" not in str(r["attack"])), key=lambda r: r["tpr_at_1pct_fpr"]
    )
    best_art = max(art_rows, key=lambda r: r["tpr_at_1pct_fpr"])
    lira16 = next(r for r in rows if r["attack"] == "mlarmor lira-online")
    rmia2 = max(
        (r for r in rows if "rmia" in str(r["attack"]) and "(2 reference" in str(r["attack"])),
        key=lambda r: r["tpr_at_1pct_fpr"],
    )
    ratio = float(best_ml["tpr_at_1pct_fpr"]) / max(float(best_art["tpr_at_1pct_fpr"]), 1e-12)
    rmia_share = float(rmia2["tpr_at_1pct_fpr"]) / max(float(lira16["tpr_at_1pct_fpr"]), 1e-12)
    print(
        f"\n  full audit ({args.reference} reference models, {args.workers} workers): {full_seconds:.1f} s "
        f"(reference models {audit.reference_seconds:.1f} s); 2-model audit {small_seconds:.1f} s"
    )
    print(
        f"  best mlarmor: {best_ml['attack']} {best_ml['tpr_at_1pct_fpr']:.1%}; "
        f"best ART: {best_art['attack']} {best_art['tpr_at_1pct_fpr']:.1%}"
    )
    checks = [
        ("TPR@1%FPR best mlarmor / best ART", f"{ratio:.2f}x", ">= 4x", ratio >= 4.0),
        (
            f"full audit time ({args.reference} reference models)",
            f"{full_seconds:.1f} s",
            "< 120 s",
            full_seconds < 120,
        ),
        ("RMIA (2 models) / LiRA online (16) at 1% FPR", f"{rmia_share:.0%}", ">= 80%", rmia_share >= 0.8),
    ]
    dp = dp_audit(members, nonmembers, args) if args.dp_epsilon > 0 else None
    if dp is not None:
        checks.append(
            (
                f"DP model (ε={args.dp_epsilon:g}): best attack AUC",
                f"{dp['best_auc']:.3f}",
                "<= 0.55",
                dp["best_auc"] <= 0.55,
            )
        )
    print()
    for name, value, target_text, met in checks:
        print(f"  {name:<48} {value:>8}  (target {target_text}) {'met' if met else 'MISSED'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "dp": dp,
                    "rows": rows,
                    "art": art_rows,
                    "full_seconds": full_seconds,
                    "ratio": ratio,
                    "rmia_share": rmia_share,
                },
                fh,
                indent=2,
                default=float,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
