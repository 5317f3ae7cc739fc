"""Build the detection corpus: malicious samples, benign artifacts and an empty canary folder.

Usage:
    python benchmarks/corpus.py OUT_DIR [--only NAME ...]

Writes OUT_DIR/malicious (one file per registered sample), OUT_DIR/benign (one file per benign
artifact kind whose library is installed), OUT_DIR/canary (empty; a payload that ever runs creates a
file named after its sample here) and OUT_DIR/manifest.json (what every file is). Building never runs
a payload.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from mlarmor.testing.corpus import ARTIFACTS, SAMPLES, family_counts, write_benign, write_malicious


def build(out_dir: Path, names: list[str] | None = None) -> dict[str, object]:
    """Build the corpus into ``out_dir`` (replacing what was there) and return its manifest."""
    out_dir = out_dir.absolute()
    for sub in ("malicious", "benign", "canary"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    canary = out_dir / "canary"
    canary.mkdir(parents=True)
    start = time.perf_counter()
    malicious = write_malicious(out_dir / "malicious", canary, names)
    benign = write_benign(out_dir / "benign") if names is None else []
    seconds = time.perf_counter() - start
    if any(canary.iterdir()):
        raise RuntimeError(
            f"building the corpus created canary files: {sorted(p.name for p in canary.iterdir())}"
        )
    by_file = {p.name: p.name.split("__", 1)[0] for p in malicious}
    benign_kinds = {a.filename: kind for kind, a in ARTIFACTS.items()}
    manifest: dict[str, object] = {
        "canary": str(canary),
        "build_seconds": round(seconds, 2),
        "families": family_counts(SAMPLES[n] for n in by_file.values()),
        "malicious": [
            {
                "file": f"malicious/{fname}",
                "name": name,
                "technique": SAMPLES[name].technique,
                "family": SAMPLES[name].family,
                "container": SAMPLES[name].container,
                "advisory": SAMPLES[name].advisory,
                "live_loader": SAMPLES[name].loader,
            }
            for fname, name in by_file.items()
        ],
        "benign": [
            {
                "file": f"benign/{p.name}",
                "kind": benign_kinds[p.name],
                "loader": ARTIFACTS[benign_kinds[p.name]].loader,
            }
            for p in benign
        ],
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--only", nargs="*", default=None, help="malicious sample names (skips benign)")
    args = parser.parse_args(argv)
    manifest = build(args.out_dir, args.only)
    print(
        f"{len(manifest['malicious'])} malicious and {len(manifest['benign'])} benign files "  # type: ignore[arg-type]
        f"in {args.out_dir} ({manifest['build_seconds']} s); canary folder: {manifest['canary']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
