"""Scanner speed and memory, mlarmor against picklescan (and modelscan, fickling) in one run.

Two files are generated in a scratch folder (nothing is downloaded):

* an opcode-dense pickle of about 100 MB — a tokenizer-style vocabulary (millions of short
  strings mapped to ids, plus merge pairs), the kind of file whose size is opcodes, not byte blobs;
* a 1 GB PyTorch zip checkpoint (``torch.save`` of a state dict), which must be scanned without
  reading its tensor data.

Every tool runs as its own subprocess on the same file; wall time and the child's peak RSS come
from ``os.wait4``. Usage::

    python benchmarks/bench_speed.py [--dir .bench] [--pickle-mb 100] [--zip-mb 1024] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def make_dense_pickle(path: Path, target_mb: int) -> None:
    """Write a vocabulary-like pickle of about ``target_mb`` megabytes."""
    if path.exists() and abs(path.stat().st_size / 1e6 - target_mb) < target_mb * 0.1:
        return
    vocab: dict[str, int] = {}
    merges: list[tuple[str, str]] = []
    i = 0
    size = 0
    while size < target_mb * 1_000_000:
        token = f"tok{i:x}_{(i * 2654435761) % 99991:x}"
        vocab[token] = i
        if i % 2 == 0:
            merges.append((token[:4], token[4:]))
            size += 16
        size += len(token) + 8
        i += 1
    with open(path, "wb") as fh:
        pickle.dump({"vocab": vocab, "merges": merges, "version": "1.0"}, fh, protocol=4)


def make_torch_zip(path: Path, target_mb: int) -> None:
    """Write a ``torch.save`` state dict of about ``target_mb`` megabytes."""
    if path.exists() and abs(path.stat().st_size / 2**20 - target_mb) < target_mb * 0.1:
        return
    import torch

    n = max(1, target_mb // 64)
    state = {f"layer{i}.weight": torch.zeros(4096, 4096) for i in range(n)}
    state["meta.step"] = torch.tensor(1000)
    torch.save(state, path)


def _mlarmor_cmd(path: Path) -> list[str]:
    return [str(BIN / "mlarmor"), "scan", str(path), "--format", "json", "--output", os.devnull]


def _tools(path: Path) -> dict[str, list[str]]:
    tools = {"mlarmor": _mlarmor_cmd(path)}
    if (BIN / "picklescan").exists():
        tools["picklescan"] = [str(BIN / "picklescan"), "--path", str(path)]
    if (BIN / "modelscan").exists():
        tools["modelscan"] = [str(BIN / "modelscan"), "-p", str(path)]
    if (BIN / "fickling").exists():
        tools["fickling"] = [str(BIN / "fickling"), "--check-safety", str(path)]
    return tools


def run_measured(cmd: list[str], timeout: float, cwd: Path | None = None) -> dict[str, object]:
    """Run ``cmd``; return wall seconds, peak RSS (MiB) and exit code (None on timeout)."""
    start = time.perf_counter()
    # cwd: fickling --check-safety writes safety_results.json into the working folder
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            wall = time.perf_counter() - start
            code = os.waitstatus_to_exitcode(status)
            err = proc.stderr.read().decode(errors="replace")[-300:] if proc.stderr else ""
            return {
                "seconds": round(wall, 3),
                "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
                "exit": code,
                "stderr_tail": err.strip().splitlines()[-1:] if code not in (0, 1) else [],
            }
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return {"seconds": None, "peak_rss_mib": None, "exit": None, "timeout": timeout}
        time.sleep(0.02)


_API_SNIPPET = """
import json, sys, time
from mlarmor.scan import Scanner
t = time.perf_counter()
r = Scanner().scan_file(sys.argv[1])
print(json.dumps({"scan_seconds": time.perf_counter() - t, "bytes_read": r.bytes_read,
                  "severity": r.severity.label, "format": r.format}))
"""


def mlarmor_api(path: Path) -> dict[str, object]:
    """Scan time without interpreter start-up and imports, and the bytes mlarmor read or decompressed."""
    out = subprocess.run(
        [sys.executable, "-c", _API_SNIPPET, str(path)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=HERE.parent / ".bench")
    ap.add_argument("--pickle-mb", type=int, default=100)
    ap.add_argument("--zip-mb", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    ap.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    dense, ckpt = args.dir / "dense_vocab.pkl", args.dir / "checkpoint_1g.pt"
    if args.generate:
        make_dense_pickle(dense, args.pickle_mb)
        make_torch_zip(ckpt, args.zip_mb)
        return 0
    print("generating files (in a subprocess, so that this process stays small) ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--generate",
            "--dir",
            str(args.dir),
            "--pickle-mb",
            str(args.pickle_mb),
            "--zip-mb",
            str(args.zip_mb),
        ],
        check=True,
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    results: dict[str, dict[str, object]] = {}
    for label, path in (("dense pickle", dense), ("torch zip", ckpt)):
        size_mb = path.stat().st_size / 1e6
        print(f"\n== {label}: {path.name}, {size_mb:.1f} MB")
        rows: dict[str, object] = {}
        for tool, cmd in _tools(path).items():
            r = run_measured(cmd, args.timeout, cwd=args.dir)
            rows[tool] = r
            secs = r["seconds"]
            shown = f"{secs:8.2f} s" if isinstance(secs, float) else f"timeout > {args.timeout:.0f} s"
            print(
                f"  {tool:11s} {shown}  peak RSS {r['peak_rss_mib']} MiB  exit {r['exit']}",
                r.get("stderr_tail") or "",
                flush=True,
            )
        base = rows["mlarmor"]["seconds"] if isinstance(rows["mlarmor"], dict) else None
        for tool, r in rows.items():
            if tool != "mlarmor" and isinstance(r, dict) and isinstance(r["seconds"], float) and base:
                print(f"  speed-up of mlarmor over {tool}: {r['seconds'] / base:.1f}x")
        api = mlarmor_api(path)
        rows["mlarmor_api"] = api
        print(
            f"  mlarmor scan alone (Python API, no start-up): {api['scan_seconds']:.3f} s, "
            f"verdict {api['severity']}, read/decompressed {int(api['bytes_read']):,} bytes "
            f"of {path.stat().st_size:,}"
        )
        results[label] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if shutil.disk_usage(args.dir).free < 2 << 30:
        print("note: less than 2 GB free; remove", args.dir, "when done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
