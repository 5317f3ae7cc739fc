"""Truthful results on user-shaped data (issue 11): what mlarmor reports next to the naive reading.

Each case builds data the way a user brings it (string labels, a test file lacking a class, features
on very different scales, a few dozen rows), runs mlarmor's function on it and, in the same run,
computes the figure the naive reading gives (the pre-fix behaviour, recomputed here from its rule):

1. labels: accuracy of a scikit-learn model on a test CSV that lacks one class, with the labels
   numbered from the file's own values (naive) or matched to the model's ``classes_`` (mlarmor);
2. budgets: on a table with an age of 11-15 and an income in the tens of thousands, the default
   L∞ ε as a share of each feature's range — one global ε from ``0 .. max`` (naive) or 10% of each
   feature's range (mlarmor) — and the robust accuracy mlarmor measures at that budget;
3. small samples: a membership audit with 72 members and 72 non-members — the naive TPR at 0.1%
   FPR and the rating it implied, next to the levels mlarmor reports, the AUC interval and the rating;
4. poisoning on a table: the default attack and its success at the default fractions.

Run: ``.venv/bin/python benchmarks/bench_userdata.py [--json .bench/userdata.json]`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlarmor import audit_privacy, evaluate_evasion, simulate_poisoning
from mlarmor.attacks.inference.metrics import tpr_at_fpr
from mlarmor.data import load_dataset
from mlarmor.findings import Severity
from mlarmor.risk import severity as rules
from mlarmor.targets import SklearnTarget
from mlarmor.targets.recipe import recipe_for
from mlarmor.testing import tables


def _labels(tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    centres = {"cat": (0.2, 0.2), "dog": (0.8, 0.2), "fox": (0.5, 0.8)}
    rows = [(*np.asarray(c) + rng.normal(0, 0.07, 2), name) for name, c in centres.items() for _ in range(60)]
    frame = pd.DataFrame(rows, columns=["weight", "height", "species"])
    model = LogisticRegression(max_iter=1000).fit(frame[["weight", "height"]].to_numpy(), frame["species"])
    test = frame[frame["species"] != "cat"]
    test.to_csv(tmp / "pets.csv", index=False)
    dataset = load_dataset(tmp / "pets.csv", label_column="species")
    target = SklearnTarget(model, bounds=dataset.bounds, input_shape=(2,))
    naive_y = dataset.y  # the file's own numbering: dog 0, fox 1
    naive = float(np.mean(target.predict(dataset.x) == naive_y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assessment = evaluate_evasion(target, dataset, eps=[0.01], reliability=False)
    true = float(model.score(test[["weight", "height"]].to_numpy(), test["species"]))
    return {"naive_accuracy": naive, "mlarmor_accuracy": assessment.clean_accuracy, "true_accuracy": true}


def _loans(tmp: Path) -> tuple[Path, Path]:
    frame = tables.loans(300, seed=0)
    frame.iloc[:200].to_csv(tmp / "train.csv", index=False)
    frame.iloc[200:].to_csv(tmp / "test.csv", index=False)
    return tmp / "train.csv", tmp / "test.csv"


def _budgets(tmp: Path) -> dict[str, Any]:
    train_path, test_path = _loans(tmp)
    train = load_dataset(train_path, label_column="decision")
    test = load_dataset(test_path, label_column="decision", feature_bounds=train_path, integer=["age"])
    model = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=2000, random_state=0))
    model.fit(train.x, np.asarray(train.class_names)[train.y])
    target = SklearnTarget(model, bounds=test.bounds, input_shape=(3,))
    low, high = (a.astype(np.float64) for a in test.feature_limits)
    naive_eps = 0.1 * (float(test.x.max()) - 0.0)  # the old default: 0.1 times 0 .. the file's maximum
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assessment = evaluate_evasion(target, test, eps=[0.03, 0.1], seed=0, reliability=False)
    names = test.feature_names or ()
    return {
        "naive_eps": naive_eps,
        "naive_share_of_range": {n: naive_eps / (h - lo) for n, lo, h in zip(names, low, high, strict=True)},
        "mlarmor_budget": {n: 0.1 * (h - lo) for n, lo, h in zip(names, low, high, strict=True)},
        "eps_unit": assessment.eps_unit,
        "clean_accuracy": assessment.clean_accuracy,
        "robust_accuracy": assessment.robust_accuracy,
        "attack": assessment.attack,
        "n_samples": assessment.n_samples,
    }


def _small_sample(tmp: Path) -> dict[str, Any]:
    frame = tables.customers(144, seed=0)
    x, status = frame.drop(columns="status").to_numpy(), frame["status"].to_numpy()
    scales = tables.CUSTOMER_SCALES
    frame[:72].to_csv(tmp / "members.csv", index=False)
    frame[72:].to_csv(tmp / "heldout.csv", index=False)
    members = load_dataset(tmp / "members.csv", label_column="status")
    heldout = load_dataset(tmp / "heldout.csv", label_column="status")
    mlp = make_pipeline(StandardScaler(), MLPClassifier((64,), alpha=0.0, max_iter=3000, random_state=0))
    mlp.fit(x[:72], status[:72])
    bounds = (min(members.bounds[0], heldout.bounds[0]), max(members.bounds[1], heldout.bounds[1]))
    target = SklearnTarget(mlp, bounds=bounds, input_shape=(scales.size,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit_privacy(target, members, heldout, reference_models=4, seed=0)
    best = result.membership.best
    scores = np.asarray(best.scores)
    is_member = np.r_[np.ones(72, bool), np.zeros(72, bool)]
    naive_tpr = tpr_at_fpr(scores, is_member, 0.001)
    naive_severity = rules.membership(best.metrics.auc, naive_tpr, tpr_at_fpr(scores, is_member, 0.01))
    report = result.to_report()
    return {
        "attack": best.name,
        "naive_tpr_at_0.1%_fpr": naive_tpr,
        "naive_severity": naive_severity.label,
        "reported_tpr_at_fpr": dict(best.metrics.tpr_at_fpr),
        "unmeasured_fprs": dict(best.metrics.unmeasured_fprs),
        "auc": best.metrics.auc,
        "auc_ci": list(best.metrics.auc_ci),
        "mlarmor_severity": Severity(max(f.severity for f in report.findings)).label,
    }


def _poisoning(tmp: Path) -> dict[str, Any]:
    train_path, test_path = _loans(tmp)
    train = load_dataset(train_path, label_column="decision")
    test = load_dataset(test_path, label_column="decision")
    recipe = recipe_for(DecisionTreeClassifier(random_state=0), num_classes=train.num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        simulation = simulate_poisoning(recipe, train, test, target_class="deny", seed=0)
    report = simulation.to_report()
    return {"attacks": report.attacks, "severity": Severity(max(f.severity for f in report.findings)).label}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}",
    }
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for name, case in (
            ("labels", _labels),
            ("budgets", _budgets),
            ("small_sample", _small_sample),
            ("poisoning", _poisoning),
        ):
            start = time.perf_counter()
            out[name] = case(tmp)
            out[name]["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out, indent=2, default=float))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
