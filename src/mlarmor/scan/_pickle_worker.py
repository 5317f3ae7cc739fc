"""Large pickle streams are analysed in a child process under a memory ceiling.

The inert analysis runs CPython's own unpickler, so its memory is the object graph the stream
describes — and a hostile stream can describe a huge one from a small file (one byte per empty
list). Streams above ``Limits.isolate_pickle_bytes`` are therefore analysed in a child process whose
address space is capped (``RLIMIT_AS``) at its start-up size plus the file plus
``Limits.max_pickle_memory``: running out becomes a ``pickle.resource-limit`` finding instead of an
out-of-memory kill of the scanner or the CI runner. Results come back as JSON (never pickle).
"""

from __future__ import annotations

import base64
import contextlib
import json
import mmap
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from mlarmor.scan._base import Buffer, Limits
from mlarmor.scan._pickle_vm import GlobalUse, PickleAnalysis, Write, analyze_pickle_stream
from mlarmor.scan.policy import Policy, Verdict

__all__ = ["analyze_isolated", "can_isolate"]


def can_isolate() -> bool:
    """Whether this platform can cap a child's memory (Linux and other POSIX systems with RLIMIT_AS)."""
    try:
        import resource

        return hasattr(resource, "RLIMIT_AS") and sys.platform != "darwin"
    except ImportError:  # pragma: no cover - Windows
        return False


def _to_json(result: PickleAnalysis) -> dict[str, Any]:
    out = asdict(result)
    out["globals"] = {
        name: {**asdict(use), "verdict": list(use.verdict)} for name, use in result.globals.items()
    }
    out["embedded"] = [[name, base64.b64encode(data).decode()] for name, data in result.embedded]
    return out


def _from_json(data: dict[str, Any]) -> PickleAnalysis:
    result = PickleAnalysis(
        pickles=data["pickles"],
        end=data["end"],
        protocol=data["protocol"],
        error=data["error"],
        error_offset=data["error_offset"],
        calls=data["calls"],
        limit_hit=data["limit_hit"],
        blocked=list(data["blocked"]),
        legacy_torch=data["legacy_torch"],
    )
    for name, use in data["globals"].items():
        result.globals[name] = GlobalUse(**{**use, "verdict": Verdict(*use["verdict"])})
    result.writes = [Write(**w) for w in data["writes"]]
    result.embedded = [(name, base64.b64decode(b64)) for name, b64 in data["embedded"]]
    return result


@contextlib.contextmanager
def _as_file(data: Buffer, path: str | None) -> Iterator[tuple[str, int]]:
    """A file holding ``data``: ``path`` itself when it holds exactly these bytes, else a temporary copy."""
    if (
        path is not None
        and isinstance(data, mmap.mmap)
        and os.path.isfile(path)
        and os.path.getsize(path) == len(data)
    ):
        yield path, len(data)
        return
    with tempfile.NamedTemporaryFile(prefix="mlarmor-pickle-", delete=True) as tmp:
        view = memoryview(data)
        for start in range(0, len(view), 1 << 24):
            tmp.write(view[start : start + (1 << 24)])
        tmp.flush()
        yield tmp.name, len(data)


def analyze_isolated(data: Buffer, policy: Policy, limits: Limits, path: str | None = None) -> PickleAnalysis:
    """Analyse ``data`` in a memory-capped child; a child that dies is reported as a limit hit."""
    with _as_file(data, path) as (file, size):
        request = {
            "path": file,
            "size": size,
            "memory": limits.max_pickle_memory,
            "allow": sorted(policy.allow),
            "deny": sorted(policy.deny),
            "limits": {f: getattr(limits, f) for f in Limits.__dataclass_fields__},
        }
        proc = subprocess.run(
            [sys.executable, "-m", "mlarmor.scan._pickle_worker"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode == 0 and proc.stdout.strip():
        return _from_json(json.loads(proc.stdout))
    result = PickleAnalysis()
    result.limit_hit = True
    result.error = (
        f"analysis process ended with code {proc.returncode} "
        f"(memory ceiling {limits.max_pickle_memory} bytes): {proc.stderr.strip()[-200:]}"
    )
    return result


def _address_space() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover


def main() -> int:
    """Child entry point: read the request on stdin, write the analysis as JSON on stdout."""
    import resource

    request = json.loads(sys.stdin.read())
    limits = Limits(**request["limits"])
    policy = Policy(allow=frozenset(request["allow"]), deny=frozenset(request["deny"]))
    ceiling = _address_space() + int(request["size"]) + int(request["memory"])
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    with open(request["path"], "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        result = analyze_pickle_stream(mm, policy, limits)
    if result.error is not None and result.error.startswith("MemoryError"):
        result.limit_hit = True
        result.error = f"the stream needs more than {request['memory']} bytes of memory to analyse"
    sys.stdout.write(json.dumps(_to_json(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
