"""Start-up time of the command line: ``mlarmor --version`` and a scan of a small pickle, next to the
peers' command lines on the same file (issue 11, point 9; the target is under 0.5 s).

Every command runs ``--repeats`` times as a fresh process (the way CI gates and pre-commit hooks pay
for it); the table gives the median and fastest wall time and mlarmor's ratio to each peer.

Run: ``.venv/bin/python benchmarks/bench_startup.py [--repeats 15] [--json .bench/startup.json]``
(the peers come with ``python3 tasks.py bench``; a missing one is reported as such).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _tool(name: str) -> str | None:
    found = BIN / name
    return str(found) if found.exists() else shutil.which(name)


def _time(cmd: list[str], repeats: int) -> tuple[float, float, int] | None:
    times, code = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        code = done.returncode
    return statistics.median(times), min(times), code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlarmor-startup-") as folder:
        small = Path(folder) / "small.pkl"
        small.write_bytes(pickle.dumps({"weights": [0.5, 0.25], "name": "tiny"}, protocol=4))
        mlarmor = _tool("mlarmor")
        rows: list[tuple[str, list[str] | None]] = [
            ("mlarmor --version", [mlarmor, "--version"] if mlarmor else None),
            ("mlarmor scan small.pkl", [mlarmor, "scan", str(small)] if mlarmor else None),
        ]
        picklescan, modelscan, fickling = _tool("picklescan"), _tool("modelscan"), _tool("fickling")
        rows += [
            ("picklescan -p small.pkl", [picklescan, "-p", str(small)] if picklescan else None),
            ("modelscan -p small.pkl", [modelscan, "-p", str(small)] if modelscan else None),
            (
                "fickling --check-safety small.pkl",
                [fickling, "--check-safety", str(small)] if fickling else None,
            ),
        ]
        cpu = platform.processor() or platform.machine()
        env_note = f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        print(f"start-up, {args.repeats} fresh processes each ({env_note})\n")
        print(f"{'command':<36} {'median':>8} {'fastest':>8} {'exit':>5}")
        results: dict[str, dict[str, float | int | None]] = {}
        for label, cmd in rows:
            if cmd is None:
                print(f"{label:<36} {'not installed':>23}")
                results[label] = {"median_s": None, "fastest_s": None, "exit_code": None}
                continue
            median, fastest, code = _time(cmd, args.repeats) or (float("nan"), float("nan"), -1)
            results[label] = {"median_s": round(median, 4), "fastest_s": round(fastest, 4), "exit_code": code}
            print(f"{label:<36} {median:>7.3f}s {fastest:>7.3f}s {code:>5}")
    ours = results["mlarmor scan small.pkl"]["median_s"]
    print()
    for label, r in results.items():
        if label.startswith("mlarmor") or r["median_s"] is None or ours is None:
            continue
        print(f"mlarmor scan / {label.split()[0]}: {float(ours) / float(r['median_s']):.2f}x the wall time")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"repeats": args.repeats, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
