"""Run every benchmark in one go: detection (corpus + four scanners), speed and memory, evasion, poisoning.

Usage: ``python3 tasks.py bench`` (or ``.venv/bin/python benchmarks/run_all.py [--quick]``).
``--quick`` shrinks the speed benchmark's files (10 MB pickle, 128 MB checkpoint) for a smoke run;
the figures in docs/benchmarks.md come from the full sizes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="mlarmor-corpus-") as corpus:
        subprocess.run([py, str(HERE / "corpus.py"), corpus], check=True)
        subprocess.run([py, str(HERE / "bench_detection.py"), "--corpus", corpus], check=True)
    speed = [py, str(HERE / "bench_speed.py")]
    if args.quick:
        speed += ["--pickle-mb", "10", "--zip-mb", "128", "--timeout", "120"]
    subprocess.run(speed, check=True)
    evasion = [py, str(HERE / "bench_evasion.py")]
    if args.quick:
        evasion.append("--quick")
    subprocess.run(evasion, check=True)
    subprocess.run([py, str(HERE / "bench_squeeze.py")], check=True)
    if not args.quick:  # trains three adversarial models, then poisoned ones: minutes
        subprocess.run([py, str(HERE / "bench_harden.py"), "--cli"], check=True)
        subprocess.run([py, str(HERE / "bench_poisoning.py")], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
