"""Feature-squeezing detector: detection rate on each attack's examples, false alarms on clean data.

The benchmark models of ``bench_evasion.py`` (a CNN on digits, an MLP on breast cancer, trained here
in seconds) are attacked on half of their held-out points; the detector is fitted on the other half
(clean, never seen in training) with its default squeezers and a 5% false-alarm target. Reported
per attack: the attack's success rate, the detector's detection rate on the *successful* adversarial
examples, its false-alarm rate on the attacked points' clean versions (not used to fit it), and the
ROC AUC of its scores (clean vs successful adversarial). Nothing is downloaded.

This measures a non-adaptive attacker: attacks that know the squeezers evade it (He et al. 2017).

Usage::

    python benchmarks/bench_squeeze.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _evasion_models import train
from mlarmor.attacks import create
from mlarmor.defenses import FeatureSqueezing
from mlarmor.targets import TorchTarget

ROWS: tuple[tuple[str, float], ...] = (("digits", 0.1), ("digits", 0.2), ("breast-cancer", 0.05))
ATTACKS: dict[str, dict[str, object]] = {
    "fgsm": {},
    "pgd": {"steps": 40},
    "auto": {"n_iter": 100},
    "square": {"n_queries": 1000},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)
    print("Feature squeezing: detection rate on successful adversarial examples, false alarms on clean data")
    print(f"  torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    models = {}
    for name, eps in ROWS:
        if name not in models:
            models[name] = train(name)
        m = models[name]
        target = TorchTarget(m.model, bounds=(0.0, 1.0), input_shape=m.input_shape)
        order = np.random.default_rng(0).permutation(len(m.y_test))
        fit_rows, eval_rows = order[: len(order) // 2], order[len(order) // 2 :]
        x_fit, y_fit = m.x_test[fit_rows], m.y_test[fit_rows]
        x_eval, y_eval = m.x_test[eval_rows], m.y_test[eval_rows]
        detector = FeatureSqueezing(false_alarm_rate=0.05).fit(target, x_fit, y_fit)
        print(
            f"\n{name} (ε = {eps:g} L∞): fitted on {len(y_fit)} clean points, "
            f"squeezers {detector.squeezers_}, {detector.bits_} bits, "
            f"threshold {detector.threshold_:.4f}; attacked {len(y_eval)} points"
        )
        print(
            f"  {'attack':<8} {'success':>8} {'detected':>9} {'false alarms':>13} {'AUC':>6} {'seconds':>8}"
        )
        for attack, params in ATTACKS.items():
            start = time.perf_counter()
            result = create(attack, eps=eps, seed=0, **params)(target, x_eval, y_eval)  # type: ignore[arg-type]
            seconds = time.perf_counter() - start
            adversarial = np.asarray(result.success) & (np.asarray(result.y_pred_clean) == y_eval)
            report = detector.evaluate(x_eval, np.asarray(result.x_adv), adversarial=adversarial)
            success = float(adversarial.sum()) / max(1, int((result.y_pred_clean == y_eval).sum()))
            print(
                f"  {attack:<8} {success:>8.1%} {report.detection_rate:>9.1%} "
                f"{report.false_alarm_rate:>13.1%} {report.auc:>6.3f} {seconds:>8.1f}"
            )
            rows.append(
                {
                    "model": name,
                    "eps": eps,
                    "attack": attack,
                    "params": params,
                    "success_rate": success,
                    **report.to_dict(),
                    "squeezers": list(detector.squeezers_),
                    "bits": detector.bits_,
                    "attack_seconds": seconds,
                }
            )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
