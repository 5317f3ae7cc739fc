"""Backdoor poisoning: mlarmor's data inspection, Neural Cleanse and STRIP against ART's detectors.

Setting: the 8x8 digits CNN (``mlarmor.models.digits_cnn``, 30 epochs with
``mlarmor.models.recipes.train_digits_cnn``) trained on 75% of scikit-learn's bundled digits
(``split(0.25, seed=0)``), poisoned with a BadNets corner patch relabelled to class 0 at each
``--fractions`` share (of the rows not already of class 0), plus a blended key at 10% and a clean
model of the same recipe for model inspection. Nothing is downloaded.

Measured per poisoned model, side by side in one run:

1. **Data inspection** -- share of the poisoned rows flagged (detection), share of the clean rows
   flagged (false flags) and seconds: mlarmor's ``inspect_data`` ensemble without a trigger and with
   the trigger Neural Cleanse recovered from 300 clean test inputs; mlarmor's spectral signatures and
   activation clustering alone (penultimate layer); ART's ``ActivationDefence`` (2 clusters, PCA to 10
   dimensions) and ``SpectralSignatureDefense`` (told the poisoning fraction as
   ``expected_pp_poison``, ``eps_multiplier`` 1.5) on a ``PyTorchClassifier`` wrapping the same trained
   model: on its last layer, the logits (ART's default), and on the penultimate layer (the same
   model cut before its last ``Linear``, as ART's detectors intend "the last hidden layer").
   Target: >= 95% of the poison found at <= 5% of the
   clean rows flagged.
2. **Model inspection** -- Neural Cleanse (default parameters, all 10 classes) on every backdoored
   model and the clean one; then its score-only variant (1,000,000 queries, scores only), reported
   but not part of the target. Target: backdoored models flagged with target class 0, the clean one not,
   under 180 s each.
3. **STRIP** -- fitted on 200 clean test inputs (50 overlays, 5% false rejections), evaluated on the
   rest of the test set, clean and triggered (non-target classes). Target: >= 90% detection at 5% FRR.
4. **Sanitise and retrain** -- drop the rows flagged by mlarmor's ensemble (with trigger), retrain the
   same recipe, compare clean test accuracy and attack success rate (ASR) before and after; the same
   with the flags of ART's best detector (highest detection minus false flags). Target: ASR < 5% with
   at most 2 points of accuracy lost.

Usage::

    python benchmarks/bench_poisoning.py [--fractions 0.05 0.10] [--seed 0] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlarmor.assess.backdoor import rows_to_drop
from mlarmor.attacks.poisoning import Poisoned, apply_trigger, attack_success_rate, poison
from mlarmor.data import load_dataset
from mlarmor.defenses.inspect.blackbox import neural_cleanse_blackbox
from mlarmor.defenses.inspect.data import activation_clustering, activations, spectral_signatures
from mlarmor.defenses.inspect.ensemble import inspect_data
from mlarmor.defenses.inspect.model import BackdoorInspection, neural_cleanse
from mlarmor.defenses.runtime import STRIP
from mlarmor.models.recipes import train_digits_cnn
from mlarmor.targets import TorchTarget

SEED = 0
TARGET_CLASS = 0
INPUT_SHAPE = (1, 8, 8)
NC_INPUTS = 300
BLACKBOX_QUERIES = 1_000_000
STRIP_FIT = 200


def _train(x: np.ndarray, y: np.ndarray) -> tuple[nn.Module, float]:
    t0 = time.perf_counter()
    model = train_digits_cnn(x, y, SEED)
    model.eval()
    return model, time.perf_counter() - t0


def _predict(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def predict(x: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            logits = model(torch.as_tensor(np.asarray(x, dtype=np.float32)))
        out: np.ndarray = logits.argmax(1).numpy()
        return out

    return predict


def _accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(_predict(model)(x) == y))


def _asr(model: nn.Module, p: Poisoned, x: np.ndarray, y: np.ndarray) -> float:
    return float(
        attack_success_rate(_predict(model), x, y, trigger=p.trigger, target_class=TARGET_CLASS, **p.params)  # type: ignore[arg-type]
    )


def _target(model: nn.Module) -> TorchTarget:
    return TorchTarget(model, bounds=(0.0, 1.0), input_shape=INPUT_SHAPE)


def _rates(flagged: np.ndarray, poisoned: np.ndarray) -> tuple[float, float]:
    flagged = np.asarray(flagged, dtype=bool)
    return float(flagged[poisoned].mean()), float(flagged[~poisoned].mean())


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _data_row(
    tool: str, method: str, flagged: np.ndarray | None, p: Poisoned, seconds: float, note: str = ""
) -> dict[str, Any]:
    row: dict[str, Any] = {"tool": tool, "method": method, "seconds": seconds, "note": note}
    if flagged is None:
        row.update(detection=None, false_flags=None, n_flagged=None, flagged=None)
    else:
        det, fal = _rates(flagged, p.poisoned)
        row.update(detection=det, false_flags=fal, n_flagged=int(np.sum(flagged)), flagged=flagged)
    return row


def _art_detectors(model: nn.Module, p: Poisoned, fraction: float) -> list[dict[str, Any]]:
    """ART's detectors on the logits (its default, the last layer) and on the penultimate layer."""
    penultimate = nn.Sequential(
        *list(model.children())[:-1]
    )  # digits_cnn is a Sequential: up to the last ReLU
    return [*_art_view(model, p, fraction, "logits"), *_art_view(penultimate, p, fraction, "penultimate")]


def _art_view(model: nn.Module, p: Poisoned, fraction: float, view: str) -> list[dict[str, Any]]:
    """ART's two poison detectors on one view of the trained model; a failure is reported, never replaced."""
    rows: list[dict[str, Any]] = []
    try:
        from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
        from art.estimators.classification import PyTorchClassifier
    except Exception as e:
        for method in (f"activation defence ({view})", f"spectral signature ({view})"):
            rows.append(_data_row("ART", method, None, p, 0.0, f"import failed: {type(e).__name__}: {e}"))
        return rows
    x = p.x.astype(np.float32)
    y_onehot = np.eye(10, dtype=np.float32)[p.y]
    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        input_shape=INPUT_SHAPE,
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    layer = classifier.layer_names[-1] if classifier.layer_names else "?"
    t0 = time.perf_counter()
    try:
        _, is_clean = ActivationDefence(classifier, x, y_onehot).detect_poison(
            nb_clusters=2, nb_dims=10, reduce="PCA"
        )
        flagged = np.asarray(is_clean) == 0
        rows.append(
            _data_row(
                "ART", f"activation defence ({view})", flagged, p, time.perf_counter() - t0, f"layer {layer}"
            )
        )
    except Exception as e:
        rows.append(
            _data_row(
                "ART",
                f"activation defence ({view})",
                None,
                p,
                time.perf_counter() - t0,
                f"{type(e).__name__}: {e}",
            )
        )
    t0 = time.perf_counter()
    try:
        _, is_clean = SpectralSignatureDefense(
            classifier, x, y_onehot, expected_pp_poison=fraction, batch_size=128, eps_multiplier=1.5
        ).detect_poison()
        flagged = np.asarray(is_clean) == 0
        rows.append(
            _data_row(
                "ART",
                f"spectral signature ({view})",
                flagged,
                p,
                time.perf_counter() - t0,
                f"layer {layer}, expected_pp_poison={fraction:g}",
            )
        )
    except Exception as e:
        rows.append(
            _data_row(
                "ART",
                f"spectral signature ({view})",
                None,
                p,
                time.perf_counter() - t0,
                f"{type(e).__name__}: {e}",
            )
        )
    model.eval()
    return rows


def _nc(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[BackdoorInspection, float]:
    t0 = time.perf_counter()
    insp = neural_cleanse(_target(model), x, y)
    return insp, time.perf_counter() - t0


def _fmt(v: float | None, spec: str = ".1%") -> str:
    return "n/a" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=[0.05, 0.10],
        help="BadNets poisoning fractions (of the rows not of class 0)",
    )
    ap.add_argument(
        "--seed", type=int, default=0, help="seed of the split, the poisoned rows, training and STRIP (0)"
    )
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)
    global SEED
    SEED = args.seed
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    print("Backdoor poisoning on digits: mlarmor inspection, Neural Cleanse, STRIP vs ART poison detectors")
    print(
        f"  torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"mlarmor {version('mlarmor')}, ART {version('adversarial-robustness-toolbox')}, "
        f"scikit-learn {version('scikit-learn')}"
    )
    t_start = time.perf_counter()
    train, test = load_dataset("demo:digits").split(0.25, seed=SEED)
    x_nc, y_nc = test.x[:NC_INPUTS], test.y[:NC_INPUTS]
    print(
        f"  data: {len(train.y)} training / {len(test.y)} test images {INPUT_SHAPE}; target class "
        f"{TARGET_CLASS}; Neural Cleanse on {NC_INPUTS} clean test inputs"
    )

    # ---- models -----------------------------------------------------------------------------------
    clean_model, secs = _train(train.x, train.y)
    clean_acc = _accuracy(clean_model, test.x, test.y)
    print(f"\nModels (train_digits_cnn, 30 epochs, seed {SEED})")
    print(f"  {'model':<14} {'poisoned rows':>14} {'test acc':>9} {'ASR':>7} {'train s':>8}")
    print(f"  {'clean':<14} {0:>14} {clean_acc:>9.1%} {'-':>7} {secs:>8.1f}")
    setups: list[tuple[str, str, float]] = [(f"badnets {f:.0%}", "badnets", f) for f in args.fractions]
    setups.append(("blend 10%", "blend", 0.10))
    models: dict[str, dict[str, Any]] = {}
    for name, trigger, fraction in setups:
        p = poison(train.x, train.y, trigger=trigger, fraction=fraction, target_class=TARGET_CLASS, seed=SEED)  # type: ignore[arg-type]
        model, secs = _train(p.x, p.y)
        acc, asr = _accuracy(model, test.x, test.y), _asr(model, p, test.x, test.y)
        models[name] = {"p": p, "model": model, "fraction": fraction, "acc": acc, "asr": asr}
        print(f"  {name:<14} {p.n_poisoned:>14} {acc:>9.1%} {asr:>7.1%} {secs:>8.1f}")
    badnets = [name for name, trigger, _ in setups if trigger == "badnets"]

    # ---- 2. model inspection (run first: data inspection reuses its trigger) ----------------------
    nc: dict[str, tuple[BackdoorInspection, float]] = {}
    for name in [*models, "clean"]:
        model = clean_model if name == "clean" else models[name]["model"]
        nc[name] = _nc(model, x_nc, y_nc)

    # ---- 1. data inspection -----------------------------------------------------------------------
    data_rows: dict[str, list[dict[str, Any]]] = {}
    for name in badnets:
        m = models[name]
        p, model, fraction = m["p"], m["model"], m["fraction"]
        rows: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        r = inspect_data(model, p.x, p.y)
        rows.append(
            _data_row(
                "mlarmor", "ensemble, no trigger", r.flagged, p, time.perf_counter() - t0, _muted(r.muted)
            )
        )
        insp, nc_secs = nc[name]
        if insp.infected and insp.trigger is not None:
            t0 = time.perf_counter()
            r = inspect_data(model, p.x, p.y, trigger=(insp.trigger.mask, insp.trigger.pattern))
            note = f"+ NC {nc_secs:.1f} s (class {insp.target_class}); {_muted(r.muted)}".rstrip("; ")
            rows.append(
                _data_row("mlarmor", "ensemble + NC trigger", r.flagged, p, time.perf_counter() - t0, note)
            )
            # What `mlarmor poisoning sanitize` drops by default: the backdoor's rows.
            rows[-1]["drop"] = rows_to_drop(r, p.y, model_inspection=insp)[0]
        else:
            rows.append(
                _data_row(
                    "mlarmor",
                    "ensemble + NC trigger",
                    r.flagged,
                    p,
                    0.0,
                    "NC found no backdoor: same as no trigger",
                )
            )
        t0 = time.perf_counter()
        feats = activations(model, p.x)
        t_feats = time.perf_counter() - t0
        t0 = time.perf_counter()
        s = spectral_signatures(feats, p.y, expected_fraction=fraction)
        rows.append(
            _data_row(
                "mlarmor",
                "spectral signatures",
                s.flagged,
                p,
                time.perf_counter() - t0 + t_feats,
                f"expected_fraction={fraction:g}",
            )
        )
        t0 = time.perf_counter()
        a = activation_clustering(feats, p.y)
        rows.append(
            _data_row("mlarmor", "activation clustering", a.flagged, p, time.perf_counter() - t0 + t_feats)
        )
        rows.extend(_art_detectors(model, p, fraction))
        data_rows[name] = rows

    print(
        "\n1. Data inspection: share of poisoned rows flagged (detection), "
        "of clean rows flagged (false flags)"
    )
    print("   target: data inspection: >= 95% of poisoned found at <= 5% clean flagged")
    data_targets: dict[str, dict[str, bool]] = {}
    for name in badnets:
        p = models[name]["p"]
        print(f"\n  {name} ({p.n_poisoned} of {len(p.y)} rows poisoned)")
        print(
            f"  {'tool':<8} {'method':<34} {'detection':>9} {'false flags':>12} {'seconds':>8}  target / note"
        )
        data_targets[name] = {}
        for row in data_rows[name]:
            verdict = ""
            if row["detection"] is not None:
                ok = row["detection"] >= 0.95 and row["false_flags"] <= 0.05
                if row["tool"] == "mlarmor" and row["method"].startswith("ensemble"):
                    data_targets[name][row["method"]] = ok
                verdict = _met(ok)
            note = f"{verdict}  {row['note']}".strip()
            print(
                f"  {row['tool']:<8} {row['method']:<34} {_fmt(row['detection']):>9} "
                f"{_fmt(row['false_flags']):>12} {row['seconds']:>8.1f}  {note}"
            )
        arts = [r for r in data_rows[name] if r["tool"] == "ART" and r["detection"] is not None]
        ours = next(r for r in data_rows[name] if r["method"] == "ensemble + NC trigger")
        for art in arts:
            ratio = ours["detection"] / art["detection"] if art["detection"] > 0 else float("inf")
            print(
                f"  ratio mlarmor ensemble + NC ({ours['detection']:.1%} at "
                f"{ours['false_flags']:.1%} false flags) "
                f"/ ART {art['method']} ({art['detection']:.1%} at {art['false_flags']:.1%}): {ratio:.2f}x"
            )
        if not arts:
            print("  ratio vs ART: n/a (no ART detector produced flags, see the notes above)")

    print("\n2. Model inspection: Neural Cleanse, default parameters, all 10 classes")
    print("   target: backdoored models flagged with target class 0, clean model not flagged, < 180 s each")
    print(f"  {'model':<14} {'infected':>8} {'target':>7} {'anomaly index':>14} {'seconds':>8}  target")
    model_rows = []
    for name, (insp, secs) in nc.items():
        backdoored = name != "clean"
        ok = (
            (insp.infected and insp.target_class == TARGET_CLASS) if backdoored else not insp.infected
        ) and secs < 180
        model_rows.append(
            {
                "model": name,
                "infected": bool(insp.infected),
                "target_class": insp.target_class,
                "anomaly_index": float(insp.anomaly_index),
                "seconds": secs,
                "target_met": ok,
            }
        )
        print(
            f"  {name:<14} {'yes' if insp.infected else 'no':>8} {insp.target_class!s:>7} "
            f"{insp.anomaly_index:>14.2f} {secs:>8.1f}  {_met(ok)}"
        )
    print(f"\n   score-only variant (neural_cleanse_blackbox: scores only, {BLACKBOX_QUERIES:,} queries)")
    for name in nc:
        model = clean_model if name == "clean" else models[name]["model"]
        t0 = time.perf_counter()
        box = neural_cleanse_blackbox(_target(model), x_nc, y_nc, queries=BLACKBOX_QUERIES)
        secs = time.perf_counter() - t0
        backdoored = name != "clean"
        ok = (box.infected and box.target_class == TARGET_CLASS) if backdoored else not box.infected
        model_rows.append(
            {
                "model": name,
                "variant": "score-only",
                "infected": bool(box.infected),
                "target_class": box.target_class,
                "anomaly_index": float(box.anomaly_index),
                "queries": box.queries,
                "seconds": secs,
                "target_met": ok,
            }
        )
        print(
            f"  {name:<14} {'yes' if box.infected else 'no':>8} {box.target_class!s:>7} "
            f"{box.anomaly_index:>14.2f} {secs:>8.1f}  {'right' if ok else 'WRONG'} ({box.queries:,} queries)"
        )

    print(f"\n3. STRIP: fitted on {STRIP_FIT} clean test inputs (50 overlays, 5% FRR), evaluated on the rest")
    print("   target: >= 90% detection at 5% FRR; detection/FRR: at the threshold fitted on the 200 inputs;")
    print("   det@5% FRR: at the evaluation inputs' own 5% FRR threshold (the ROC point the target names)")
    print(
        f"  {'model':<14} {'detection':>9} {'FRR':>6} {'det@5% FRR':>12} {'AUC':>6} {'clean':>6} "
        f"{'triggered':>9} {'seconds':>8}  target"
    )
    strip_rows = []
    x_rest, y_rest = test.x[STRIP_FIT:], test.y[STRIP_FIT:]
    for name in badnets:
        m = models[name]
        p = m["p"]
        t0 = time.perf_counter()
        strip = STRIP(n_overlays=50, seed=SEED).fit(_target(m["model"]), test.x[:STRIP_FIT])
        triggered = apply_trigger(x_rest[y_rest != TARGET_CLASS], p.trigger, **p.params)
        rep = strip.evaluate(x_rest, triggered)
        secs = time.perf_counter() - t0
        # Detection at exactly 5% false rejection on the evaluation inputs (the ROC point); the
        # operating point's FRR differs from 5% by the sampling error of a threshold set on 200 inputs.
        cut = float(np.quantile(strip.entropy(x_rest), 0.05))
        at_5 = float(np.mean(strip.entropy(triggered) < cut))
        ok = at_5 >= 0.90
        strip_rows.append(
            {"model": name, **rep.to_dict(), "detection_at_5pct_frr": at_5, "seconds": secs, "target_met": ok}
        )
        print(
            f"  {name:<14} {rep.detection_rate:>9.1%} {rep.false_rejection_rate:>6.1%} {at_5:>12.1%} "
            f"{rep.auc:>6.3f} {rep.n_clean:>6} {rep.n_triggered:>9} {secs:>8.1f}  {_met(ok)}"
        )

    print("\n4. Sanitise and retrain: drop flagged rows, retrain the same recipe (mlarmor: the rows of the")
    print("   backdoor found by model inspection, as `mlarmor poisoning sanitize` does by default)")
    print("   target: ASR < 5% with <= 2 points accuracy loss (vs the poisoned model)")
    print(f"   clean model (no poisoning) for reference: test accuracy {clean_acc:.1%}")
    print(
        f"  {'model':<14} {'flags from':<44} {'dropped':>7} {'poison left':>11} {'acc before':>10} "
        f"{'acc after':>9} {'ASR before':>10} {'ASR after':>9}  target"
    )
    sanitise_rows = []
    for name in badnets:
        m = models[name]
        p = m["p"]
        ours = next(r for r in data_rows[name] if r["method"] == "ensemble + NC trigger")
        arts = [r for r in data_rows[name] if r["tool"] == "ART" and r["detection"] is not None]
        sources = [
            ("mlarmor sanitize (auto: backdoor rows)", ours),
            ("mlarmor, every flagged row", {k: v for k, v in ours.items() if k != "drop"}),
        ]
        if arts:
            best = max(arts, key=lambda r: r["detection"] - r["false_flags"])
            sources.append((f"ART {best['method']} (best)", best))
        for label, row in sources:
            keep = ~row.get("drop", row["flagged"])
            model, secs = _train(p.x[keep], p.y[keep])
            acc, asr = _accuracy(model, test.x, test.y), _asr(model, p, test.x, test.y)
            ok = asr < 0.05 and m["acc"] - acc <= 0.02
            sanitise_rows.append(
                {
                    "model": name,
                    "flags_from": label,
                    "dropped": int((~keep).sum()),
                    "poison_left": int(p.poisoned[keep].sum()),
                    "acc_before": m["acc"],
                    "acc_after": acc,
                    "asr_before": m["asr"],
                    "asr_after": asr,
                    "retrain_seconds": secs,
                    "target_met": ok,
                }
            )
            print(
                f"  {name:<14} {label:<44} {int((~keep).sum()):>7} {int(p.poisoned[keep].sum()):>11} "
                f"{m['acc']:>10.1%} {acc:>9.1%} {m['asr']:>10.1%} {asr:>9.1%}  {_met(ok)}"
            )
        if not arts:
            print(f"  {name:<14} ART: no detector produced flags, nothing to retrain on")

    print("\nTargets")
    summary = {
        "data inspection (mlarmor ensemble + NC trigger), >= 95% found at <= 5% false flags": all(
            t.get("ensemble + NC trigger", False) for t in data_targets.values()
        ),
        "model inspection: backdoors flagged as class 0, clean not, < 180 s": all(
            r["target_met"] for r in model_rows if "variant" not in r
        ),
        "STRIP: >= 90% detection at 5% FRR": all(r["target_met"] for r in strip_rows),
        "sanitise (mlarmor flags): ASR < 5%, <= 2 points accuracy loss": all(
            r["target_met"] for r in sanitise_rows if r["flags_from"].startswith("mlarmor sanitize")
        ),
    }
    for what, ok in summary.items():
        print(f"  {_met(ok):<7} {what}")
    print(f"\n  total {time.perf_counter() - t_start:.0f} s")

    if args.json:
        out = {
            "setup": {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "fractions": args.fractions,
                "clean_accuracy": clean_acc,
                "models": {
                    name: {
                        "n_poisoned": m["p"].n_poisoned,
                        "fraction": m["fraction"],
                        "accuracy": m["acc"],
                        "asr": m["asr"],
                    }
                    for name, m in models.items()
                },
            },
            "data_inspection": {
                name: [{k: v for k, v in r.items() if k not in ("flagged", "drop")} for r in rows]
                for name, rows in data_rows.items()
            },
            "model_inspection": model_rows,
            "strip": strip_rows,
            "sanitise": sanitise_rows,
            "targets": summary,
        }
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def _muted(muted: dict[str, str]) -> str:
    return f"muted: {', '.join(sorted(muted))}" if muted else ""


if __name__ == "__main__":
    raise SystemExit(main())
