#!/usr/bin/env python3
"""Project tasks that need nothing but Python: ``python3 tasks.py demo|test|check|bench``.

Each task creates ``.venv`` on first use, installs mlarmor into it (with torch pinned to the
2.13.0 CPU build and no torchvision) and runs the job inside it. Re-runs reuse the environment
until ``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
TORCH = "torch==2.13.0"


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def ensure_env(extras: str) -> None:
    """Create the virtual environment and install mlarmor with ``extras`` once per pyproject state."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{extras or 'base'}-{digest}"
    if stamp.exists():
        return
    if not PY.exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = (PY, "-m", "pip", "install", "--disable-pip-version-check", "-q")
    _run(*pip, TORCH)
    target = f".[{extras}]" if extras else "."
    _run(*pip, TORCH, "-e", target)
    stamp.touch()


def main(argv: list[str]) -> int:
    task = argv[0] if argv else "help"
    rest = argv[1:]
    try:
        if task == "demo":
            ensure_env("")
            _run(BIN / "mlarmor", "demo", *rest)
        elif task == "test":
            ensure_env("dev")
            _run(PY, "-m", "pytest", "-n", "2", "-m", "not slow", *rest)
        elif task == "check":
            ensure_env("dev")
            _run(PY, "-m", "ruff", "check", "src", "tests", "benchmarks", "tasks.py")
            _run(PY, "-m", "ruff", "format", "--check", "src", "tests", "benchmarks", "tasks.py")
            _run(PY, "-m", "mypy")
        elif task == "bench":
            ensure_env("dev,bench")
            pip = (PY, "-m", "pip", "install", "--disable-pip-version-check", "-q")
            # torchattacks declares torchvision, which it never imports; --no-deps keeps torch pinned.
            _run(*pip, "--no-deps", "torchattacks")
            _run(*pip, "scipy", "tqdm", "requests")
            _run(PY, "benchmarks/run_all.py", *rest)
        else:
            print(__doc__)
            return 0 if task in {"help", "-h", "--help"} else 2
    except subprocess.CalledProcessError as e:
        return e.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
