"""GGUF model files (llama.cpp): header, metadata, tensor table, and the Jinja chat templates.

Layout (ggml/docs/gguf.md, ggml/src/gguf.cpp): magic ``GGUF``, a uint32 version, tensor and
key-value counts, the key-value pairs, the tensor infos, padding to ``general.alignment``
(default 32), then the data section the tensor offsets index into. Version 1 used 32-bit
counts, lengths and dimensions; versions 2 and 3 use 64-bit ones. Files are little-endian; a
big-endian variant (written by gguf-py) is recognised from the byte order of the version.

The header walk copies only keys, tensor names and chat templates, never tensor data or
other values. Chat templates are parsed to a Jinja AST with ``Environment().parse`` and never
rendered (see :func:`audit_template`). The template audit lives in this module, which is why
it runs past 400 lines: GGUF is the only format this scanner reads templates from.
"""

from __future__ import annotations

import re
import string
import struct
from dataclasses import dataclass, field
from typing import Any, Final

from jinja2 import Environment, TemplateSyntaxError, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

from mlarmor.findings import Severity
from mlarmor.scan._base import Buffer, Scope
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


# --- chat templates -----------------------------------------------------------------------------

INTERNAL_NAMES: Final = frozenset(
    {
        "__class__",
        "__globals__",
        "__subclasses__",
        "__builtins__",
        "__import__",
        "__init__",
        "__base__",
        "__bases__",
        "__mro__",
        "__dict__",
        "__code__",
        "__func__",
        "__self__",
        "__closure__",
        "__getattribute__",
        "__reduce__",
        "__reduce_ex__",
        "__loader__",
        "__spec__",
        "__wrapped__",
        "func_globals",
        "func_code",
        "f_globals",
        "f_locals",
        "f_back",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "tb_frame",
        "mro",
        "_module",
        "_TemplateReference__context",
    }
)
"""Attributes that lead from any object to classes, modules, frames or builtins. Every dunder
counts as internal too; these are the named ones, including Python 2 and frame spellings and
the private Jinja/warnings attributes published SSTI payloads use."""

SINK_NAMES: Final = frozenset(
    {
        "os",
        "sys",
        "popen",
        "system",
        "eval",
        "exec",
        "execfile",
        "subprocess",
        "importlib",
        "import_module",
        "load_module",
        "spawn",
        "fork",
        "check_output",
        "check_call",
        "getoutput",
        "Popen",
        "environ",
        "builtins",
        "globals",
        "locals",
        "getattr",
        "setattr",
        "delattr",
        "compile",
        "open",
        "modules",
        "socket",
        "pty",
        "shutil",
    }
)
"""Attribute names that reach processes, code execution, modules or files once an attacker holds
a module or builtins object."""

GADGET_OBJECTS: Final = frozenset(
    {
        "cycler",
        "joiner",
        "namespace",
        "lipsum",
        "self",
        "config",
        "request",
        "url_for",
        "get_flashed_messages",
        "range",
    }
)
"""Objects Jinja (or Flask) puts in every template whose attributes lead to module globals."""

_CALLABLE_SINKS: Final = frozenset(
    {"eval", "exec", "__import__", "getattr", "setattr", "open", "compile", "vars"}
)
_ATTRIBUTE_FILTERS: Final = frozenset(
    {"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)
_FIELD_PART = re.compile(r"[.\[]([^.\[\]]+)")
_DUNDER = re.compile(r"__[A-Za-z_][A-Za-z0-9_]*?__")
_MAX_FOLD_DEPTH: Final = 64
_MAX_FOLD_CHARS: Final = 4096
_MAX_REASONS: Final = 20


def _is_internal(name: str) -> bool:
    return name in INTERNAL_NAMES or (len(name) > 4 and name.startswith("__") and name.endswith("__"))


class _GenerationTag(Extension):
    """Parses Hugging Face's ``{% generation %}`` block (transformers' AssistantTracker); parse only."""

    tags = {"generation"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


@dataclass(slots=True)
class TemplateAudit:
    """What :func:`audit_template` found: (severity, line, reason) triples or a parse error."""

    reasons: list[tuple[Severity, int, str]] = field(default_factory=list)
    parse_error: str | None = None

    @property
    def severity(self) -> Severity:
        """Highest severity among the reasons (medium for a template that does not parse)."""
        if self.parse_error is not None:
            return Severity.MEDIUM
        return max((s for s, _, _ in self.reasons), default=Severity.NONE)

    @property
    def headline(self) -> str:
        """Short description for a finding title."""
        if self.parse_error is not None:
            return "cannot be parsed as Jinja"
        if self.severity >= Severity.CRITICAL:
            return "reaches Python internals (server-side template injection)"
        return "uses constructs that can reach Python internals"

    def evidence(self) -> dict[str, Any]:
        """The reasons as report evidence, strongest first."""
        if self.parse_error is not None:
            return {"parse_error": self.parse_error}
        ordered = sorted(self.reasons, key=lambda r: (-r[0], r[1]))
        return {
            "reasons": [f"line {line}: {reason}" for _, line, reason in ordered[:_MAX_REASONS]],
            "reason_count": len(ordered),
        }


def audit_template(source: str) -> TemplateAudit:
    r"""Parse a Jinja chat template (never render it) and list what reaches Python internals.

    Looks at attribute and item names (``x.__class__``, ``x['__globals__']``, ``|attr(...)``,
    attribute arguments of ``map``/``selectattr``/..., ``'{0.__class__}'.format``), folding
    names built from constants by ``~``, ``+``, ``*``, ``%``, ``|join``, ``|format``,
    ``|reverse``, ``|replace``, slicing and ``{% set %}`` variables; escapes such as
    ``\x5f`` are already decoded by Jinja's lexer. Attribute access on Jinja's global objects
    (``cycler``, ``lipsum``, ``self``...), calls of ``eval``-like names, names computed at render
    time, and template includes are reported too.
    """
    # autoescape only matters when rendering, which never happens here.
    env = Environment(
        autoescape=True, extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _GenerationTag]
    )
    audit = TemplateAudit()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as e:
        audit.parse_error = f"line {e.lineno}: {e.message}"
        return audit
    except (RecursionError, MemoryError, ValueError) as e:
        audit.parse_error = f"{type(e).__name__} while parsing"
        return audit
    try:
        _TemplateWalk(tree, audit).run()
    except RecursionError:
        audit.reasons.append((Severity.HIGH, 0, "expressions nested too deeply to analyse"))
    return audit


class _TemplateWalk:
    def __init__(self, tree: nodes.Template, audit: TemplateAudit) -> None:
        self.tree = tree
        self.audit = audit
        self.assigned: dict[str, list[nodes.Node]] = {}
        self.folding: set[str] = set()
        self.dynamic = False
        self.internal_seen: set[str] = set()
        self.folded: dict[int, str | None] = {}

    def hit(self, severity: Severity, node: nodes.Node, reason: str) -> None:
        self.audit.reasons.append((severity, node.lineno, reason))

    def check_name(self, name: str, node: nodes.Node, how: str, *, strict: bool = False) -> None:
        shown = name[:80]
        if _is_internal(name):
            self.internal_seen.add(name)
            self.hit(Severity.CRITICAL, node, f"{how} {shown!r} reaches Python internals")
        elif strict:
            return
        elif name in SINK_NAMES:
            self.hit(Severity.HIGH, node, f"{how} {shown!r} reaches processes, code or modules")
        elif name.startswith("_"):
            self.hit(Severity.MEDIUM, node, f"{how} {shown!r} is private")

    def run(self) -> None:
        for assign in self.tree.find_all(nodes.Assign):
            if isinstance(assign.target, nodes.Name):
                self.assigned.setdefault(assign.target.name, []).append(assign.node)
        for block in self.tree.find_all(nodes.AssignBlock):
            if isinstance(block.target, nodes.Name):
                self.assigned.setdefault(block.target.name, []).append(block)
        constants: list[str] = []
        for node in self.tree.find_all(nodes.Node):
            self.visit(node, constants)
        self.assembled(constants)

    def visit(self, node: nodes.Node, constants: list[str]) -> None:
        if isinstance(node, nodes.Getattr):
            self.check_name(node.attr, node, "attribute")
            self.gadget(node.node, node)
        elif isinstance(node, nodes.Getitem):
            self.item(node)
        elif isinstance(node, nodes.Filter):
            self.filter(node)
        elif isinstance(node, nodes.Call):
            self.call(node)
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            constants.append(node.value)
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            self.hit(Severity.MEDIUM, node, "loads another template through the environment's loader")
        elif isinstance(node, (nodes.Concat, nodes.Add, nodes.Mul, nodes.Mod)):
            built = self.fold(node)
            if built is not None:
                for name in sorted(set(_DUNDER.findall(built))):
                    if _is_internal(name):
                        self.internal_seen.add(name)
                        self.hit(Severity.HIGH, node, f"builds the name {name!r} from pieces")

    def gadget(self, target: nodes.Node, node: nodes.Node) -> None:
        if isinstance(target, nodes.Name) and target.name in GADGET_OBJECTS:
            self.hit(Severity.HIGH, node, f"reaches into the Jinja global {target.name!r}")

    def item(self, node: nodes.Getitem) -> None:
        self.gadget(node.node, node)
        if isinstance(node.arg, nodes.Slice):
            return
        name = self.fold(node.arg)
        if name is not None:
            # A constant key such as message['system'] is ordinary data access; a key built from
            # pieces is only worth building to hide a name.
            self.check_name(name, node, "item", strict=isinstance(node.arg, nodes.Const))
        elif isinstance(node.arg, (nodes.Concat, nodes.Add, nodes.Mod, nodes.Mul, nodes.Filter)):
            self.dynamic = True
            self.hit(Severity.HIGH, node, "item name is assembled at render time")

    def filter(self, node: nodes.Filter) -> None:
        args = list(node.args) + [kw.value for kw in node.kwargs]
        if node.name == "attr":
            name = self.fold(node.args[0]) if node.args else None
            if name is None:
                self.dynamic = True
                self.hit(Severity.HIGH, node, "|attr() looks up an attribute name computed at render time")
            else:
                self.check_name(name, node, "|attr()")
            if node.node is not None:
                self.gadget(node.node, node)
        elif node.name in _ATTRIBUTE_FILTERS:
            for arg in args:
                name = self.fold(arg)
                if name is not None:
                    self.check_name(name, node, f"|{node.name}() argument", strict=True)

    def call(self, node: nodes.Call) -> None:
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name in _CALLABLE_SINKS:
            self.hit(Severity.HIGH, node, f"calls {callee.name}()")
        if isinstance(callee, nodes.Getattr) and callee.attr in ("format", "format_map"):
            fmt = self.fold(callee.node)
            if fmt is not None:
                for part in _format_fields(fmt):
                    self.check_name(part, node, "format field", strict=True)

    def assembled(self, constants: list[str]) -> None:
        """Internal names that only appear once the template's strings are put together."""
        joined = "".join(constants)
        for name in set(_DUNDER.findall(joined)) - self.internal_seen:
            if not _is_internal(name):
                continue
            if any(name in c for c in constants):
                self.audit.reasons.append((Severity.MEDIUM, 0, f"a string mentions {name!r}"))
            elif self.dynamic:
                self.audit.reasons.append(
                    (
                        Severity.CRITICAL,
                        0,
                        f"{name!r} is split across strings and attributes are looked up dynamically",
                    )
                )
            else:
                self.audit.reasons.append((Severity.MEDIUM, 0, f"{name!r} is split across separate strings"))

    # -- constant folding: what string would this expression produce, if it only uses constants
    def fold(self, node: nodes.Node | None, depth: int = 0) -> str | None:
        if node is None or depth > _MAX_FOLD_DEPTH:
            return None
        key = id(node)
        if key in self.folded:
            return self.folded[key]
        result = self._fold(node, depth + 1)
        if result is not None and len(result) > _MAX_FOLD_CHARS:
            result = None
        if depth == 0:
            # Only complete (top-level) results are remembered: a deeper call may have been cut
            # short by the depth limit. The cache keeps long '~' chains linear.
            self.folded[key] = result
        return result

    def _fold(self, node: nodes.Node, depth: int) -> str | None:
        if isinstance(node, nodes.Const):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, nodes.TemplateData):
            return node.data
        if isinstance(node, nodes.Concat):
            parts = [self.fold(n, depth) for n in node.nodes]
            return None if any(p is None for p in parts) else "".join(p for p in parts if p is not None)
        if isinstance(node, nodes.Add):
            left, right = self.fold(node.left, depth), self.fold(node.right, depth)
            return None if left is None or right is None else left + right
        if isinstance(node, nodes.Mul):
            return self._repeat(node, depth)
        if isinstance(node, nodes.Mod):
            return self._percent(self.fold(node.left, depth), node.right, depth)
        if isinstance(node, nodes.Filter):
            return self._filter(node, depth)
        if isinstance(node, nodes.Call):
            return self._method(node, depth)
        if isinstance(node, nodes.Getitem):
            return self._slice(node, depth)
        if isinstance(node, nodes.Name):
            return self._variable(node.name, depth)
        if isinstance(node, nodes.AssignBlock):
            pieces = [
                self.fold(n, depth) for out in node.body if isinstance(out, nodes.Output) for n in out.nodes
            ]
            if len(pieces) != sum(len(o.nodes) for o in node.body if isinstance(o, nodes.Output)):
                return None
            return None if any(p is None for p in pieces) else "".join(p for p in pieces if p is not None)
        return None

    def _repeat(self, node: nodes.Mul, depth: int) -> str | None:
        for text_node, count_node in ((node.left, node.right), (node.right, node.left)):
            text = self.fold(text_node, depth)
            if text is not None and isinstance(count_node, nodes.Const) and isinstance(count_node.value, int):
                count = count_node.value
                return text * count if count >= 0 and len(text) * count <= _MAX_FOLD_CHARS else None
        return None

    def _percent(self, fmt: str | None, right: nodes.Node, depth: int) -> str | None:
        items = list(right.items) if isinstance(right, (nodes.Tuple, nodes.List)) else [right]
        values = [self.fold(i, depth) for i in items]
        return _percent_format(fmt, values)

    def _filter(self, node: nodes.Filter, depth: int) -> str | None:
        args = [self.fold(a, depth) for a in node.args]
        if any(a is None for a in args) or node.kwargs:
            return None
        if node.name == "join" and isinstance(node.node, (nodes.List, nodes.Tuple)):
            items = [self.fold(i, depth) for i in node.node.items]
            if any(i is None for i in items):
                return None
            return (args[0] if args else "").join(i for i in items if i is not None)  # type: ignore[union-attr]
        value = self.fold(node.node, depth)
        if value is None:
            return None
        if node.name == "format":
            return _percent_format(value, args)
        simple = {
            "reverse": value[::-1],
            "lower": value.lower(),
            "upper": value.upper(),
            "trim": value.strip(),
        }
        if node.name in simple and not args:
            return simple[node.name]
        if node.name == "string":
            return value
        if node.name == "replace" and len(args) == 2:
            return value.replace(args[0], args[1])  # type: ignore[arg-type]
        return None

    def _method(self, node: nodes.Call, depth: int) -> str | None:
        callee = node.node
        if not isinstance(callee, nodes.Getattr) or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return None
        if (
            callee.attr == "join"
            and len(node.args) == 1
            and isinstance(node.args[0], (nodes.List, nodes.Tuple))
        ):
            sep = self.fold(callee.node, depth)
            items = [self.fold(i, depth) for i in node.args[0].items]
            if sep is None or any(i is None for i in items):
                return None
            return sep.join(i for i in items if i is not None)
        value = self.fold(callee.node, depth)
        args = [self.fold(a, depth) for a in node.args]
        if value is None or any(a is None for a in args):
            return None
        strs = [a for a in args if a is not None]
        if callee.attr in ("lower", "upper", "strip") and not strs:
            return str(getattr(value, callee.attr)())
        if callee.attr == "replace" and len(strs) == 2:
            return value.replace(strs[0], strs[1])
        if callee.attr == "format":
            return _simple_format(value, strs)
        return None

    def _slice(self, node: nodes.Getitem, depth: int) -> str | None:
        value = self.fold(node.node, depth)
        if value is None:
            return None
        arg = node.arg
        if isinstance(arg, nodes.Const) and isinstance(arg.value, int):
            return value[arg.value] if -len(value) <= arg.value < len(value) else None
        if isinstance(arg, nodes.Slice):
            bounds: list[int | None] = []
            for part in (arg.start, arg.stop, arg.step):
                if part is None:
                    bounds.append(None)
                elif isinstance(part, nodes.Const) and isinstance(part.value, int) and part.value != 0:
                    bounds.append(part.value)
                elif isinstance(part, nodes.Const) and part.value == 0 and part is not arg.step:
                    bounds.append(0)
                else:
                    return None
            return value[slice(*bounds)]
        return None

    def _variable(self, name: str, depth: int) -> str | None:
        if name in self.folding or name not in self.assigned:
            return None
        self.folding.add(name)
        try:
            for value in reversed(self.assigned[name]):
                folded = self.fold(value, depth)
                if folded is not None:
                    return folded
            return None
        finally:
            self.folding.discard(name)


def _percent_format(fmt: str | None, values: list[str | None]) -> str | None:
    """``fmt % values`` when the format and every value are known strings (no code runs)."""
    if fmt is None or any(v is None for v in values):
        return None
    try:
        return fmt % tuple(values)
    except (TypeError, ValueError, KeyError):
        return None


def _format_fields(fmt: str) -> list[str]:
    """Attribute and item names inside ``str.format`` replacement fields (parsing only)."""
    names: list[str] = []
    try:
        for _, field_name, spec, _ in string.Formatter().parse(fmt):
            for text in (field_name, spec):
                if text:
                    names.extend(_FIELD_PART.findall(text))
    except ValueError:
        return names
    return names


def _simple_format(fmt: str, args: list[str]) -> str | None:
    """``fmt.format(*args)`` for plain ``{}``/``{0}`` fields only; anything else is not folded."""
    out: list[str] = []
    auto = 0
    try:
        for literal, field_name, spec, conversion in string.Formatter().parse(fmt):
            out.append(literal)
            if field_name is None:
                continue
            if spec or conversion or not (field_name == "" or field_name.isdigit()):
                return None
            index = auto if field_name == "" else int(field_name)
            auto += field_name == ""
            if index >= len(args):
                return None
            out.append(args[index])
    except ValueError:
        return None
    return "".join(out)
