"""Detection benchmark: mlarmor vs picklescan, modelscan and fickling on the same corpus.

Usage:
    python benchmarks/bench_detection.py [--corpus DIR] [--out DIR] [--tools mlarmor,picklescan,...]

Builds the corpus (benchmarks/corpus.py) unless --corpus points at one, then runs every scanner on
every file, each scanner in its own child process (a scanner that crashes or hangs on a file loses
that file, not the run). Verdicts:

* mlarmor: ``scan_paths`` (Python API); detected when the file's severity is HIGH or CRITICAL.
* picklescan: ``scanner.scan_file_path``; detected when it reports a dangerous global
  (``issues_count > 0``, which is what makes its CLI exit with 1); ``scan_err`` alone is an error.
* modelscan: ``ModelScan().scan``; detected when it reports any issue (its CLI exits with 1);
  errors alone are errors, files it skips as unsupported are "skipped".
* fickling: ``scan_zip_archive`` for zip files, ``scan_file`` otherwise, non-graceful (as its
  ``--check-safety`` CLI); detected when the severity is above LIKELY_SAFE, an exception is an error.

Prints per tool: malicious detected, benign false positives, files errored/skipped, time; then a
per-family and a per-sample table. Writes detection.json and detection.md into --out. Fails if any
canary file appears, i.e. if any scanner executed a payload.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

TOOLS = ("mlarmor", "picklescan", "modelscan", "fickling")
FILE_TIMEOUT = 120.0


# -- drivers (run in the child process) --------------------------------------------------------------


def _mlarmor(path: str) -> dict[str, Any]:
    from mlarmor.findings import Severity
    from mlarmor.scan import scan_paths

    (result,) = scan_paths([path])
    ids = sorted({f.id for f in result.findings})
    if result.format == "unreadable":
        return {"verdict": "error", "detail": ids}
    verdict = "detected" if result.severity >= Severity.HIGH else "clean"
    return {"verdict": verdict, "detail": f"{result.format}:{result.severity.label} {' '.join(ids[:4])}"}


def _picklescan(path: str) -> dict[str, Any]:
    from picklescan.scanner import scan_file_path

    r = scan_file_path(path)
    dangerous = sorted({f"{g.module}.{g.name}" for g in r.globals if g.safety.value == "dangerous"})
    if r.issues_count > 0:
        return {"verdict": "detected", "detail": " ".join(dangerous[:3])}
    if r.scan_err:
        return {"verdict": "error", "detail": "scan_err"}
    if r.scanned_files == 0:
        return {"verdict": "skipped", "detail": "not scanned"}
    return {"verdict": "clean", "detail": ""}


def _modelscan(path: str) -> dict[str, Any]:
    from modelscan.modelscan import ModelScan

    r = ModelScan().scan(path)
    issues = r.get("issues", [])
    if issues:
        worst = sorted({str(i.get("severity")) for i in issues})
        ops = sorted({f"{i.get('module')}.{i.get('operator')}" for i in issues})
        return {"verdict": "detected", "detail": f"{'/'.join(worst)} {' '.join(ops[:3])}"}
    if r.get("errors"):
        return {"verdict": "error", "detail": str(r["errors"][0].get("description", ""))[:120]}
    if not r["summary"]["scanned"]["total_scanned"]:
        return {"verdict": "skipped", "detail": "not scanned"}
    return {"verdict": "clean", "detail": ""}


def _fickling(path: str) -> dict[str, Any]:
    import zipfile

    from fickling import scan_file, scan_zip_archive
    from fickling.analysis import Severity

    if zipfile.is_zipfile(path):
        results = list(scan_zip_archive(path, graceful=False).values())
        if not results:
            return {"verdict": "skipped", "detail": "no pickle member"}
    else:
        results = [scan_file(path, graceful=False)]
    worst = max(r.severity for r in results)
    verdict = "detected" if worst > Severity.LIKELY_SAFE else "clean"
    return {"verdict": verdict, "detail": worst.name}


_DRIVERS = {"mlarmor": _mlarmor, "picklescan": _picklescan, "modelscan": _modelscan, "fickling": _fickling}


def _driver_main(tool: str, list_file: str) -> int:
    """Child process: scan each path listed in ``list_file``, one JSON line per file on stdout."""
    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    scan = _DRIVERS[tool]
    out = sys.stdout
    sys.stdout = sys.stderr  # scanners that print must not corrupt the result stream
    for path in Path(list_file).read_text().splitlines():
        start = time.perf_counter()
        try:
            row = scan(path)
        except Exception as e:  # a scanner raising on a file is an error for that file
            row = {"verdict": "error", "detail": f"{type(e).__name__}: {e}"[:160]}
        row.update(path=path, seconds=time.perf_counter() - start)
        out.write(json.dumps(row) + "\n")
        out.flush()
    return 0


# -- orchestration -------------------------------------------------------------------------------------


def _reader(stream: Any, q: queue.Queue[str | None]) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


def run_tool(
    tool: str, paths: list[Path], timeout: float = FILE_TIMEOUT
) -> tuple[dict[str, dict[str, Any]], float]:
    """Scan ``paths`` with ``tool`` in child processes; returns results by path and wall seconds."""
    results: dict[str, dict[str, Any]] = {}
    pending = [str(p) for p in paths]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        while pending:
            list_file = Path(tmp) / "paths.txt"
            list_file.write_text("\n".join(pending))
            env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONWARNINGS": "ignore"}
            proc = subprocess.Popen(
                [sys.executable, __file__, "--driver", tool, str(list_file)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=tmp,  # fickling and friends drop report files into the working directory
                env=env,
            )
            q: queue.Queue[str | None] = queue.Queue()
            threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
            while pending:
                try:
                    line = q.get(timeout=timeout)
                except queue.Empty:
                    proc.kill()
                    results[pending.pop(0)] = {"verdict": "error", "detail": f"timeout after {timeout:.0f} s"}
                    break
                if line is None:  # the child died mid-file
                    proc.wait()
                    results[pending.pop(0)] = {
                        "verdict": "error",
                        "detail": f"scanner crashed ({proc.returncode})",
                    }
                    break
                row = json.loads(line)
                results[row["path"]] = row
                pending.remove(row["path"])
            proc.wait()
    return results, time.perf_counter() - start


def _machine() -> dict[str, str]:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nproc": str(os.cpu_count()),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        mem_kb = next(
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        )
        info["memory"] = f"{mem_kb / 1024**2:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return info


def _versions() -> dict[str, str]:
    out = {}
    for tool in TOOLS:
        try:
            out[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            out[tool] = "not installed"
    return out


_CELL = {"detected": "yes", "clean": "-", "error": "err", "skipped": "skip"}


def summarise(
    manifest: dict[str, Any], root: Path, runs: dict[str, tuple[dict[str, dict[str, Any]], float]]
) -> dict[str, Any]:
    """Aggregate verdicts per tool, per family and per sample."""
    mal = manifest["malicious"]
    ben = manifest["benign"]
    summary: dict[str, Any] = {}
    for tool, (res, seconds) in runs.items():
        mal_v = Counter(res[str(root / m["file"])]["verdict"] for m in mal)
        ben_v = Counter(res[str(root / b["file"])]["verdict"] for b in ben)
        per_file = sorted(r.get("seconds", 0.0) for r in res.values())
        summary[tool] = {
            "malicious_detected": mal_v["detected"],
            "malicious_total": len(mal),
            "malicious_errors": mal_v["error"],
            "malicious_skipped": mal_v["skipped"],
            "benign_false_positives": ben_v["detected"],
            "benign_total": len(ben),
            "benign_errors": ben_v["error"],
            "benign_skipped": ben_v["skipped"],
            "wall_seconds": round(seconds, 2),
            "median_file_ms": round(1000 * per_file[len(per_file) // 2], 2) if per_file else 0.0,
        }
    families: dict[str, dict[str, int]] = {}
    for m in mal:
        fam = families.setdefault(m["family"], {"total": 0, **{t: 0 for t in runs}})
        fam["total"] += 1
        for tool, (res, _) in runs.items():
            fam[tool] += res[str(root / m["file"])]["verdict"] == "detected"
    samples = [
        {
            "name": m["name"],
            "technique": m["technique"],
            "advisory": m["advisory"],
            **{tool: res[str(root / m["file"])] for tool, (res, _) in runs.items()},
        }
        for m in sorted(mal, key=lambda m: (m["family"], m["name"]))
    ]
    benign = [
        {"kind": b["kind"], **{tool: res[str(root / b["file"])] for tool, (res, _) in runs.items()}}
        for b in sorted(ben, key=lambda b: b["kind"])
    ]
    return {
        "summary": summary,
        "families": dict(sorted(families.items())),
        "samples": samples,
        "benign": benign,
    }


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render(report: dict[str, Any], tools: list[str]) -> str:
    """Markdown tables: summary, per family, per sample, benign files any tool flagged."""
    s = report["summary"]
    out = [
        _table(
            [
                "tool",
                "version",
                "malicious detected",
                "benign false positives",
                "errors (mal/benign)",
                "not scanned (mal/benign)",
                "wall time",
                "median per file",
            ],
            [
                [
                    t,
                    report["versions"][t],
                    f"{s[t]['malicious_detected']}/{s[t]['malicious_total']}",
                    f"{s[t]['benign_false_positives']}/{s[t]['benign_total']}",
                    f"{s[t]['malicious_errors']}/{s[t]['benign_errors']}",
                    f"{s[t]['malicious_skipped']}/{s[t]['benign_skipped']}",
                    f"{s[t]['wall_seconds']:.1f} s",
                    f"{s[t]['median_file_ms']:.1f} ms",
                ]
                for t in tools
            ],
        ),
        "",
        "Detected per technique family:",
        "",
        _table(
            ["family", "samples", *tools],
            [[fam, str(v["total"]), *(str(v[t]) for t in tools)] for fam, v in report["families"].items()],
        ),
        "",
        "Per sample (yes = detected, - = not detected, err = scanner error, skip = not scanned):",
        "",
        _table(
            ["sample", "technique", "advisory", *tools],
            [
                [r["name"], r["technique"], r["advisory"] or "", *(_CELL[r[t]["verdict"]] for t in tools)]
                for r in report["samples"]
            ],
        ),
        "",
        "Benign files flagged or failed by any tool:",
        "",
    ]
    noisy = [r for r in report["benign"] if any(r[t]["verdict"] in ("detected", "error") for t in tools)]
    out.append(
        _table(
            ["benign file", *tools], [[r["kind"], *(_CELL[r[t]["verdict"]] for t in tools)] for r in noisy]
        )
        if noisy
        else "(none)"
    )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None, help="a folder built by benchmarks/corpus.py")
    parser.add_argument(
        "--out", type=Path, default=None, help="where detection.json/.md go (default: corpus)"
    )
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--timeout", type=float, default=FILE_TIMEOUT, help="seconds per file per tool")
    args = parser.parse_args(argv)

    tmp: str | None = None
    if args.corpus is None:
        tmp = tempfile.mkdtemp(prefix="mlarmor-corpus-")
        args.corpus = Path(tmp)
        sys.path.insert(0, str(Path(__file__).parent))
        from corpus import build

        build(args.corpus)
    root = args.corpus.absolute()
    manifest = json.loads((root / "manifest.json").read_text())
    canary = Path(manifest["canary"])
    if not canary.is_dir() or any(canary.iterdir()):
        raise SystemExit(f"the canary folder {canary} must exist and start empty")
    tools = [t for t in args.tools.split(",") if t]
    versions = _versions()
    paths = [root / m["file"] for m in manifest["malicious"]] + [root / b["file"] for b in manifest["benign"]]

    runs = {}
    for tool in tools:
        if versions[tool] == "not installed":
            print(f"{tool}: not installed, skipped", file=sys.stderr)
            continue
        print(f"running {tool} on {len(paths)} files ...", file=sys.stderr)
        runs[tool] = run_tool(tool, paths, args.timeout)
    tools = list(runs)

    time.sleep(1.0)  # let any stray child process (a payload that ran) finish creating its canary
    fired = sorted(p.name for p in canary.iterdir())
    report = {
        "machine": _machine(),
        "versions": versions,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "canary_files_after_scan": fired,
        **summarise(manifest, root, runs),
    }
    text = render(report, tools)
    out = (args.out or root).absolute()
    out.mkdir(parents=True, exist_ok=True)
    (out / "detection.json").write_text(json.dumps(report, indent=2))
    (out / "detection.md").write_text(text)
    print(text)
    print(f"machine: {report['machine']}")
    print(f"results: {out / 'detection.json'}, {out / 'detection.md'}")
    if tmp is not None and args.out is None:
        print(f"corpus kept in {tmp}")
    elif tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    if fired:
        print(f"FAIL: payloads executed during scanning, canary files: {fired}", file=sys.stderr)
        return 1
    print("canary folder still empty: no scanner executed a payload")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--driver":
        sys.exit(_driver_main(sys.argv[2], sys.argv[3]))
    sys.exit(main())
