"""safetensors files: the JSON header and the tensor table it declares, checked against the file.

Layout (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N, N
bytes of UTF-8 JSON mapping tensor names to ``{"dtype", "shape", "data_offsets"}`` (plus an
optional ``__metadata__`` string map), then the data section the offsets index into. Only the
header is copied; tensor data is never read.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Final

from mlarmor.findings import Severity
from mlarmor.scan._base import Buffer, Scope
from mlarmor.scan.rules import FORMAT_MALFORMED

__all__ = ["DTYPE_BITS", "MAX_HEADER_BYTES", "scan_safetensors"]

MAX_HEADER_BYTES: Final = 100_000_000
"""The reference implementation refuses larger headers (``MAX_HEADER_SIZE`` in safetensors/src/tensor.rs)."""

DTYPE_BITS: Final = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
"""Bits per element of every dtype safetensors 0.8 accepts (its error message lists them)."""

_MAX_REPORTED: Final = 20


class _Problems:
    """Collects violations and reports the first few individually, the rest as a count."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.count = 0

    def add(
        self,
        problem: str,
        *,
        offset: int,
        severity: Severity | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        self.count += 1
        if self.count > _MAX_REPORTED:
            return
        self.scope.add(
            FORMAT_MALFORMED,
            title=f"safetensors header: {problem}",
            severity=severity,
            evidence={"format": "safetensors", "problem": problem, **(evidence or {})},
            offset=offset,
        )

    def summarise(self) -> None:
        if self.count > _MAX_REPORTED:
            self.scope.add(
                FORMAT_MALFORMED,
                title=f"safetensors header: {self.count - _MAX_REPORTED} more problems not listed",
                evidence={"format": "safetensors", "problems": self.count},
            )


def _pairs_no_duplicates(duplicates: list[str]) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    return hook


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def scan_safetensors(data: Buffer, scope: Scope) -> str:
    """Validate a safetensors header against the file; returns ``"safetensors"``.

    Every violation is a :data:`FORMAT_MALFORMED` finding naming the tensor: high when a loader
    would read out of bounds, mis-size or alias a tensor, low for unused bytes (holes between
    tensors, bytes after the last one), medium for duplicate JSON keys (parsers disagree on
    which one wins).
    """
    problems = _Problems(scope)
    size = len(data)
    if size < 8:
        problems.add(f"file is {size} bytes, shorter than the 8-byte header length", offset=0)
        return "safetensors"
    (header_len,) = struct.unpack_from("<Q", data, 0)
    if header_len > MAX_HEADER_BYTES:
        problems.add(f"header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit", offset=0)
        return "safetensors"
    if 8 + header_len > size:
        problems.add(f"header length {header_len} runs past the end of the {size}-byte file", offset=0)
        return "safetensors"
    view = memoryview(data)
    try:
        raw = bytes(view[8 : 8 + header_len])
    finally:
        view.release()
    header = _parse_header(raw, problems)
    if header is not None:
        _check_tensors(header, size - 8 - header_len, 8 + header_len, problems)
    problems.summarise()
    return "safetensors"


def _parse_header(raw: bytes, problems: _Problems) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        problems.add(f"header is not valid UTF-8 ({e.reason})", offset=8 + e.start)
        return None
    if not text.startswith("{"):
        problems.add("header does not start with '{'", offset=8)
        return None
    duplicates: list[str] = []
    try:
        header = json.loads(text, object_pairs_hook=_pairs_no_duplicates(duplicates))
    except json.JSONDecodeError as e:
        problems.add(f"header is not valid JSON ({e.msg} at character {e.pos})", offset=8)
        return None
    except RecursionError:
        problems.add("header JSON is nested too deeply to parse", offset=8)
        return None
    if not isinstance(header, dict):
        problems.add("header is not a JSON object", offset=8)
        return None
    for key in sorted(set(duplicates)):
        problems.add(
            f"key {key!r} appears more than once; parsers disagree on which entry wins",
            offset=8,
            severity=Severity.MEDIUM,
            evidence={"key": key},
        )
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        problems.add(
            "'__metadata__' must map strings to strings", offset=8, evidence={"tensor": "__metadata__"}
        )
    return header


def _check_tensors(header: dict[str, Any], data_size: int, data_start: int, problems: _Problems) -> None:
    ranges: list[tuple[int, int, str]] = []
    for name, info in header.items():
        where = {"tensor": name}
        if not isinstance(info, dict):
            problems.add(f"entry {name!r} is not an object", offset=8, evidence=where)
            continue
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        bits = DTYPE_BITS.get(dtype) if isinstance(dtype, str) else None
        if bits is None:
            problems.add(f"tensor {name!r} has unknown dtype {dtype!r}", offset=8, evidence=where)
        if not (isinstance(shape, list) and all(_is_uint(d) for d in shape)):
            problems.add(
                f"tensor {name!r} shape {shape!r} is not a list of non-negative integers",
                offset=8,
                evidence=where,
            )
            shape = None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_uint(o) for o in offsets)):
            problems.add(
                f"tensor {name!r} data_offsets {offsets!r} is not [begin, end]", offset=8, evidence=where
            )
            continue
        begin, end = offsets
        if begin > end:
            problems.add(
                f"tensor {name!r} data_offsets [{begin}, {end}] end before they begin",
                offset=8,
                evidence=where,
            )
            continue
        if end > data_size:
            problems.add(
                f"tensor {name!r} data [{begin}, {end}) runs past the {data_size}-byte data section",
                offset=data_start + min(begin, data_size),
                evidence=where,
            )
        if bits is not None and shape is not None:
            nbits = math.prod(shape) * bits
            if nbits % 8:
                problems.add(
                    f"tensor {name!r} of {dtype} does not end on a byte boundary", offset=8, evidence=where
                )
            elif end - begin != nbits // 8:
                problems.add(
                    f"tensor {name!r} spans {end - begin} bytes but {dtype}{shape} needs {nbits // 8}",
                    offset=data_start + min(begin, data_size),
                    evidence=where,
                )
        ranges.append((begin, end, name))
    _check_layout(ranges, data_size, data_start, problems)


def _check_layout(
    ranges: list[tuple[int, int, str]], data_size: int, data_start: int, problems: _Problems
) -> None:
    covered = 0
    previous = ""
    for begin, end, name in sorted(ranges):
        if begin < covered:
            problems.add(
                f"tensor {name!r} overlaps tensor {previous!r}",
                offset=data_start + begin,
                evidence={"tensor": name, "other": previous},
            )
        elif begin > covered and begin <= data_size:
            problems.add(
                f"{begin - covered} unused bytes before tensor {name!r}",
                offset=data_start + covered,
                severity=Severity.LOW,
                evidence={"tensor": name},
            )
        if end > covered:
            covered, previous = end, name
    if covered < data_size:
        problems.add(
            f"{data_size - covered} bytes after the last tensor are not part of any tensor",
            offset=data_start + covered,
            severity=Severity.LOW,
        )
