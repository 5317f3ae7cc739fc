"""Shared helpers for the format-handler tests: a recording Scope, a fake policy, byte builders."""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlarmor.findings import Finding, Severity
from mlarmor.scan._base import Buffer, Limits, Scope
from mlarmor.scan.policy import Verdict


@dataclass
class Recorder:
    """Stands in for the dispatcher: records every embedded stream a handler hands on."""

    calls: list[tuple[str | None, int, bytes]] = field(default_factory=list)

    def __call__(self, data: Buffer, scope: Scope) -> str:
        view = memoryview(data)
        self.calls.append((scope.member, len(view), bytes(view[:16])))
        view.release()
        return "pickle"


class FakePolicy:
    """Duck-typed policy with the same verdict shapes as the real one, for a few known names."""

    DANGEROUS = {
        "os": "process",
        "posix": "process",
        "subprocess": "process",
        "builtins.eval": "code-execution",
        "builtins.exec": "code-execution",
        "builtins.open": "filesystem",
        "builtins.__import__": "importer",
    }

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def classify(self, module: str, name: str) -> Verdict:
        self.asked.append((module, name))
        full = f"{module}.{name}"
        for prefix, category in self.DANGEROUS.items():
            if full == prefix or full.startswith(prefix + "."):
                return Verdict(full, "dangerous", category, f"{category} (fake policy)")
        if module.split(".")[0] in {"numpy", "torch", "sklearn"}:
            return Verdict(full, "allowed", None, "model library (fake policy)")
        return Verdict(full, "unknown", None, "not in the allow-list (fake policy)")


def make_scope(policy: object | None = None, limits: Limits | None = None) -> tuple[Scope, Recorder]:
    """A top-level Scope whose recursion is recorded instead of dispatched."""
    recorder = Recorder()
    scope = Scope(
        path="model",
        limits=limits or Limits(),
        policy=policy if policy is not None else FakePolicy(),  # type: ignore[arg-type]
        recurse=recorder,
    )
    return scope, recorder


def by_rule(scope: Scope, rule_id: str) -> list[Finding]:
    """Findings of one rule."""
    return [f for f in scope.findings if f.id == rule_id]


def worst(scope: Scope) -> Severity:
    """Highest severity reported so far."""
    return max((f.severity for f in scope.findings), default=Severity.NONE)


def describe(scope: Scope) -> str:
    """Readable list of findings for assertion messages."""
    return "\n".join(f"{f.id} {f.severity.label}: {f.title} {f.evidence}" for f in scope.findings) or "(none)"


@contextmanager
def mapped(path: Path) -> Iterator[mmap.mmap]:
    """Memory-map ``path`` read-only; closing fails if a handler leaked a buffer export."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        yield mm


def run_on_mmap(path: Path, handler: Callable[[Buffer, Scope], str]) -> tuple[str, Scope]:
    """Run ``handler`` on a memory map of ``path`` and prove no memoryview export outlived it."""
    scope, _ = make_scope()
    with path.open("rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        fmt = handler(mm, scope)
        mm.close()  # raises BufferError if an export is still alive
    return fmt, scope


# --- GGUF byte builder (for headers the gguf package refuses to write) ------------------------


def gguf_string(text: str | bytes, *, wide: bool = True, endian: str = "<") -> bytes:
    """A GGUF string: length then bytes."""
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack(endian + ("Q" if wide else "I"), len(raw)) + raw


@dataclass
class GgufTensor:
    """One tensor info record."""

    name: str
    dims: Sequence[int]
    ggml_type: int = 0
    offset: int = 0


def build_gguf(
    kvs: Sequence[bytes] = (),
    tensors: Sequence[GgufTensor] = (),
    *,
    version: int = 3,
    data: bytes | None = None,
    alignment: int = 32,
    tensor_count: int | None = None,
    kv_count: int | None = None,
    endian: str = "<",
) -> bytes:
    """Assemble a GGUF file from pre-encoded key-value records and tensor infos.

    ``data`` defaults to enough zero bytes for every F32 tensor at its offset.
    """
    wide = version >= 2
    count = "Q" if wide else "I"
    out = b"GGUF" + struct.pack(endian + "I", version)
    out += struct.pack(endian + count, len(tensors) if tensor_count is None else tensor_count)
    out += struct.pack(endian + count, len(kvs) if kv_count is None else kv_count)
    out += b"".join(kvs)
    for t in tensors:
        out += gguf_string(t.name, wide=wide, endian=endian) + struct.pack(endian + "I", len(t.dims))
        out += b"".join(struct.pack(endian + count, d) for d in t.dims)
        out += struct.pack(endian + "IQ", t.ggml_type, t.offset)
    out += b"\0" * (-len(out) % alignment)
    if data is None:
        end = 0
        for t in tensors:
            n = 1
            for d in t.dims:
                n *= d
            end = max(end, t.offset + 4 * n)
        data = b"\0" * end
    return out + data


def gguf_kv_string(key: str, value: str | bytes, *, wide: bool = True) -> bytes:
    """A string-valued key-value record."""
    return gguf_string(key, wide=wide) + struct.pack("<I", 8) + gguf_string(value, wide=wide)


def gguf_kv_u32(key: str, value: int) -> bytes:
    """A uint32-valued key-value record."""
    return gguf_string(key) + struct.pack("<II", 4, value)


# --- protobuf byte builder (for wire-level damage onnx refuses to serialise) -------------------


def varint(value: int) -> bytes:
    """Protobuf varint encoding."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pb_field(number: int, payload: bytes | int, wire: int | None = None) -> bytes:
    """One protobuf field: ints become varints, bytes become length-delimited."""
    if isinstance(payload, int):
        return varint(number << 3 | (0 if wire is None else wire)) + varint(payload)
    return varint(number << 3 | (2 if wire is None else wire)) + varint(len(payload)) + payload
