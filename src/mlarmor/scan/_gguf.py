"""GGUF model files (llama.cpp): header, metadata, tensor table, and the Jinja chat templates.

Layout (ggml/docs/gguf.md, ggml/src/gguf.cpp): magic ``GGUF``, a uint32 version, tensor and
key-value counts, the key-value pairs, the tensor infos, padding to ``general.alignment``
(default 32), then the data section the tensor offsets index into. Version 1 used 32-bit
counts, lengths and dimensions; versions 2 and 3 use 64-bit ones. Files are little-endian; a
big-endian variant (written by gguf-py) is recognised from the byte order of the version.

The header walk copies only keys, tensor names and chat templates, never tensor data or
other values. Chat templates are audited statically by :mod:`mlarmor.scan._chat_template`
(parsed, never rendered).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Final

from mlarmor.findings import Severity
from mlarmor.scan._base import Buffer, Scope
from mlarmor.scan._chat_template import TemplateAudit, audit_template
from mlarmor.scan.rules import FORMAT_MALFORMED, GGUF_TEMPLATE

__all__ = ["GGML_TYPES", "MAGIC", "TemplateAudit", "audit_template", "scan_gguf"]

MAGIC: Final = b"GGUF"
DEFAULT_ALIGNMENT: Final = 32
MAX_DIMS: Final = 4
"""GGML_MAX_DIMS: llama.cpp refuses tensors with more dimensions."""
MAX_NAME: Final = 64
"""GGML_MAX_NAME: llama.cpp refuses tensor names of this many bytes or more."""
MAX_TEMPLATE_BYTES: Final = 1 << 20
MAX_ENTRIES: Final = 1_000_000
"""Tensor or key-value counts above this are treated as absurd (real models have a few thousand)."""
_MAX_KEY_BYTES: Final = 1 << 16
_MAX_ARRAY_DEPTH: Final = 8
_MAX_REPORTED: Final = 20

_STRING, _ARRAY, _UINT32 = 8, 9, 4
_SCALAR_SIZES: Final = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
"""GGUF value types with a fixed size: uint8, int8, uint16, int16, uint32, int32, float32, bool,
uint64, int64, float64 (8 is string, 9 is array)."""

_QK_K = 256
GGML_TYPES: Final[dict[int, tuple[str, int, int]]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", _QK_K, 84),
    11: ("Q3_K", _QK_K, 110),
    12: ("Q4_K", _QK_K, 144),
    13: ("Q5_K", _QK_K, 176),
    14: ("Q6_K", _QK_K, 210),
    15: ("Q8_K", _QK_K, 292),
    16: ("IQ2_XXS", _QK_K, 66),
    17: ("IQ2_XS", _QK_K, 74),
    18: ("IQ3_XXS", _QK_K, 98),
    19: ("IQ1_S", _QK_K, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", _QK_K, 110),
    22: ("IQ2_S", _QK_K, 82),
    23: ("IQ4_XS", _QK_K, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", _QK_K, 56),
    30: ("BF16", 1, 2),
    31: ("Q4_0_4_4", 32, 18),
    32: ("Q4_0_4_8", 32, 18),
    33: ("Q4_0_8_8", 32, 18),
    34: ("TQ1_0", _QK_K, 54),
    35: ("TQ2_0", _QK_K, 66),
    36: ("IQ4_NL_4_4", 32, 18),
    37: ("IQ4_NL_4_8", 32, 18),
    38: ("IQ4_NL_8_8", 32, 18),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}
"""GGML tensor types: id -> (name, elements per block, bytes per block). From gguf-py's
``GGML_QUANT_SIZES``; 31-33 and 36-38 are the repacked types older files still carry."""


class _Malformed(Exception):
    def __init__(self, offset: int, problem: str) -> None:
        super().__init__(problem)
        self.offset = offset
        self.problem = problem


class _Reader:
    """Sequential reader over a memoryview; every read is bounds-checked."""

    def __init__(self, view: memoryview, endian: str, version: int) -> None:
        self.view = view
        self.size = len(view)
        self.pos = 0
        self.endian = endian
        self.wide = version >= 2  # 64-bit counts and lengths

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def take(self, n: int, what: str) -> int:
        if n > self.remaining:
            raise _Malformed(self.pos, f"{what} needs {n} bytes but only {self.remaining} remain")
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> int:
        start = self.take(struct.calcsize(fmt), what)
        value: int = struct.unpack_from(self.endian + fmt, self.view, start)[0]
        return value

    def u32(self, what: str) -> int:
        return self.unpack("I", what)

    def count(self, what: str) -> int:
        return self.unpack("Q" if self.wide else "I", what)

    def string_span(self, what: str) -> tuple[int, int]:
        length = self.count(f"length of {what}")
        return self.take(length, what), length

    def text(self, what: str, limit: int) -> str:
        start, length = self.string_span(what)
        if length > limit:
            raise _Malformed(start, f"{what} is {length} bytes long (more than {limit})")
        return bytes(self.view[start : start + length]).decode("utf-8", errors="replace")

    def skip_value(self, vtype: int, what: str, depth: int = 0) -> None:
        if vtype in _SCALAR_SIZES:
            self.take(_SCALAR_SIZES[vtype], what)
        elif vtype == _STRING:
            self.string_span(what)
        elif vtype == _ARRAY:
            if depth >= _MAX_ARRAY_DEPTH:
                raise _Malformed(self.pos, f"{what} nests arrays deeper than {_MAX_ARRAY_DEPTH} levels")
            etype = self.u32(f"element type of {what}")
            n = self.count(f"length of {what}")
            if etype in _SCALAR_SIZES:
                self.take(n * _SCALAR_SIZES[etype], f"{n} elements of {what}")
                return
            smallest = 8 if self.wide else 4  # an empty string or an empty array
            if etype not in (_STRING, _ARRAY):
                raise _Malformed(self.pos - 12, f"{what} has unknown element type {etype}")
            if n * smallest > self.remaining:
                raise _Malformed(self.pos, f"{what} declares {n} elements, more than the file can hold")
            for _ in range(n):
                self.skip_value(etype, what, depth + 1)
        else:
            raise _Malformed(self.pos - 4, f"{what} has unknown value type {vtype}")


@dataclass(slots=True)
class _Tensor:
    name: str
    offset: int
    nbytes: int | None
    info_offset: int


@dataclass(slots=True)
class _Header:
    version: int
    endian: str
    alignment: int = DEFAULT_ALIGNMENT
    templates: list[tuple[str, int, int]] = field(default_factory=list)
    tensors: list[_Tensor] = field(default_factory=list)
    problems: list[tuple[str, int, Severity | None, dict[str, Any]]] = field(default_factory=list)

    def problem(
        self, text: str, offset: int, severity: Severity | None = None, **evidence: str | int
    ) -> None:
        self.problems.append((text, offset, severity, dict(evidence)))


def _detect(data: Buffer) -> tuple[int, str] | str:
    """The version and struct byte-order prefix, or the reason the header is unreadable."""
    if len(data) < 8 or bytes(data[:4]) != MAGIC:
        return "missing the GGUF magic or too short for a header"
    little, big = struct.unpack_from("<I", data, 4)[0], struct.unpack_from(">I", data, 4)[0]
    if 1 <= little <= 3:
        return little, "<"
    if 1 <= big <= 3:
        return big, ">"
    return f"unsupported version {little} (known: 1, 2, 3)"


def _read_kvs(r: _Reader, h: _Header, kv_count: int) -> None:
    seen: set[str] = set()
    for _ in range(kv_count):
        key_offset = r.pos
        key = r.text("metadata key", _MAX_KEY_BYTES)
        vtype = r.u32(f"type of {key!r}")
        if key in seen:
            h.problem(f"duplicate metadata key {key!r}", key_offset, Severity.MEDIUM, key=key)
        seen.add(key)
        is_template = key == "tokenizer.chat_template" or key.startswith("tokenizer.chat_template.")
        if is_template and vtype == _STRING:
            start, length = r.string_span(key)
            h.templates.append((key, start, length))
        elif key == "general.alignment" and vtype == _UINT32:
            h.alignment = r.u32(key)
        else:
            if is_template or key == "general.alignment":
                h.problem(f"{key!r} has value type {vtype}, not the expected one", key_offset, key=key)
            r.skip_value(vtype, repr(key))


def _read_tensor_infos(r: _Reader, h: _Header, tensor_count: int) -> None:
    names: set[str] = set()
    for _ in range(tensor_count):
        info_offset = r.pos
        name = r.text("tensor name", _MAX_KEY_BYTES)
        if len(name.encode()) >= MAX_NAME:
            h.problem(
                f"tensor name {name[:80]!r} is {MAX_NAME} bytes or longer", info_offset, Severity.MEDIUM
            )
        if name in names:
            h.problem(f"duplicate tensor name {name!r}", info_offset, tensor=name)
        names.add(name)
        n_dims = r.u32(f"dimension count of {name!r}")
        if n_dims > MAX_DIMS:
            raise _Malformed(info_offset, f"tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})")
        dims = [r.unpack("Q" if r.wide else "I", f"dimensions of {name!r}") for _ in range(n_dims)]
        ggml_type = r.u32(f"type of {name!r}")
        offset = r.unpack("Q", f"offset of {name!r}")
        elements = 1
        for d in dims:
            elements *= d
        nbytes = None
        if any(d >= 1 << 63 for d in dims) or elements >= 1 << 63:
            h.problem(f"tensor {name!r} dimensions {dims} overflow int64", info_offset, tensor=name)
        elif ggml_type not in GGML_TYPES:
            h.problem(f"tensor {name!r} has unknown GGML type {ggml_type}", info_offset, tensor=name)
        else:
            type_name, block, block_bytes = GGML_TYPES[ggml_type]
            if dims and dims[0] % block:
                h.problem(
                    f"tensor {name!r} row of {dims[0]} is not a multiple of the {type_name} block of {block}",
                    info_offset,
                    tensor=name,
                )
            else:
                nbytes = elements // block * block_bytes
        h.tensors.append(_Tensor(name, offset, nbytes, info_offset))


def _check_layout(h: _Header, header_end: int, size: int) -> None:
    alignment = h.alignment
    if alignment == 0 or alignment & (alignment - 1):
        h.problem(f"general.alignment {alignment} is not a power of two", 0)
        return
    data_start = -(-header_end // alignment) * alignment
    if h.tensors and data_start > size:
        h.problem(
            f"data section would start at {data_start}, past the end of the {size}-byte file", header_end
        )
        return
    covered, previous = 0, ""
    for t in sorted(h.tensors, key=lambda t: t.offset):
        if t.offset % alignment:
            h.problem(
                f"tensor {t.name!r} offset {t.offset} is not a multiple of {alignment}",
                t.info_offset,
                tensor=t.name,
            )
        if t.nbytes is None:
            continue
        start, end = data_start + t.offset, data_start + t.offset + t.nbytes
        if end > size:
            h.problem(
                f"tensor {t.name!r} data [{start}, {end}) runs past the end of the {size}-byte file",
                t.info_offset,
                tensor=t.name,
            )
        if t.offset < covered:
            h.problem(
                f"tensor {t.name!r} overlaps tensor {previous!r}",
                t.info_offset,
                tensor=t.name,
                other=previous,
            )
        if t.offset + t.nbytes > covered:
            covered, previous = t.offset + t.nbytes, t.name


def _read(data: Buffer, view: memoryview, h: _Header) -> None:
    r = _Reader(view, h.endian, h.version)
    r.pos = 8
    tensor_count = r.count("tensor count")
    kv_count = r.count("metadata count")
    # Smallest possible entries: a key-value pair is a length, a type and one byte; a tensor
    # info is a name length, a dimension count, a type and an offset.
    word = 8 if r.wide else 4
    if kv_count > MAX_ENTRIES or tensor_count > MAX_ENTRIES:
        raise _Malformed(
            8, f"{tensor_count} tensors and {kv_count} metadata entries: more than {MAX_ENTRIES}"
        )
    if kv_count * (word + 5) > r.remaining:
        raise _Malformed(16 if r.wide else 12, f"metadata count {kv_count} cannot fit in the file")
    if tensor_count * (word + 16) > r.remaining:
        raise _Malformed(8, f"tensor count {tensor_count} cannot fit in the file")
    _read_kvs(r, h, kv_count)
    _read_tensor_infos(r, h, tensor_count)
    _check_layout(h, r.pos, len(data))


def scan_gguf(data: Buffer, scope: Scope) -> str:
    """Scan a GGUF file; returns ``"gguf"``.

    Reports :data:`FORMAT_MALFORMED` (high unless noted) for counts, lengths or tensor ranges
    that run past the end of the file or are absurd, unknown value or tensor types, misaligned,
    out-of-bounds or overlapping tensor data; and :data:`GGUF_TEMPLATE` for chat templates that
    reach Python internals or cannot be parsed.
    """
    detected = _detect(data)
    if isinstance(detected, str):
        _report(scope, detected, 0, None, {})
        return "gguf"
    h = _Header(version=detected[0], endian=detected[1])
    view = memoryview(data)
    try:
        try:
            _read(data, view, h)
        except _Malformed as e:
            h.problem(e.problem, e.offset)
        for text, offset, severity, evidence in h.problems[:_MAX_REPORTED]:
            _report(scope, text, offset, severity, evidence)
        if len(h.problems) > _MAX_REPORTED:
            _report(scope, f"{len(h.problems) - _MAX_REPORTED} more problems not listed", 0, None, {})
        for key, start, length in h.templates:
            _scan_template(scope, key, view, start, length)
    finally:
        view.release()
    return "gguf"


def _report(
    scope: Scope, problem: str, offset: int, severity: Severity | None, evidence: dict[str, Any]
) -> None:
    scope.add(
        FORMAT_MALFORMED,
        title=f"GGUF header: {problem}",
        severity=severity,
        evidence={"format": "gguf", "problem": problem, **evidence},
        offset=offset,
    )


def _scan_template(scope: Scope, key: str, view: memoryview, start: int, length: int) -> None:
    if length > MAX_TEMPLATE_BYTES:
        scope.add(
            GGUF_TEMPLATE,
            title=f"GGUF chat template {key!r} is too large to analyse ({length} bytes)",
            severity=Severity.MEDIUM,
            evidence={"key": key, "template_bytes": length},
            offset=start,
        )
        return
    text = bytes(view[start : start + length]).decode("utf-8", errors="replace")
    audit = audit_template(text)
    if audit.severity is Severity.NONE:
        return
    scope.add(
        GGUF_TEMPLATE,
        title=f"GGUF chat template {key!r} {audit.headline}",
        severity=audit.severity,
        evidence={"key": key, "template_bytes": length, **audit.evidence()},
        offset=start,
    )
