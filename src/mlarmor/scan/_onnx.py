"""ONNX models: external-data locations and custom operator domains, read from the protobuf bytes.

The model is never handed to ``onnx`` or ONNX Runtime: :mod:`mlarmor.scan._protobuf` walks the
ModelProto (field numbers from onnx/onnx.proto) and skips tensor payloads by their length, so
only names, domains and external-data entries are ever copied.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from mlarmor.findings import Severity
from mlarmor.scan._base import Buffer, Scope
from mlarmor.scan._protobuf import LEN, VARINT, WIRE_NAMES, Field, ProtobufError, iter_fields, read_string
from mlarmor.scan.rules import FORMAT_MALFORMED, ONNX_CUSTOM_DOMAIN, ONNX_EXTERNAL

__all__ = ["BUILTIN_DOMAINS", "external_location_problem", "looks_like_onnx", "scan_onnx"]

BUILTIN_DOMAINS: Final = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.preview",
        "ai.onnx.preview.training",
        "ai.onnx.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.ms.internal.nhwc",
    }
)
"""Operator domains served by the ONNX standard or by ONNX Runtime's default build.

The ONNX domains come from onnx.defs; the Microsoft ones are those ONNX Runtime's CPU package
registers schemas for (``onnxruntime.capi.onnxruntime_pybind11_state.get_all_operator_schema``).
Anything else (``org.pytorch.aten``, ``com.microsoft.experimental``, vendor domains) needs a
custom-operator library or a special build.
"""

MAX_GRAPH_DEPTH: Final = 64
_MAX_LOCATION_BYTES: Final = 4096
_MAX_REPORTED_OPS: Final = 20

# ModelProto
_M_IR_VERSION, _M_GRAPH, _M_OPSET, _M_TRAINING, _M_FUNCTIONS = 1, 7, 8, 20, 25
_MODEL_WIRES: Final = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN, 8: LEN, 14: LEN}
# GraphProto
_G_NODE, _G_NAME, _G_INITIALIZER, _G_SPARSE_INITIALIZER = 1, 2, 5, 15
# NodeProto
_N_NAME, _N_OP_TYPE, _N_ATTRIBUTE, _N_DOMAIN = 3, 4, 5, 7
# AttributeProto
_A_T, _A_G, _A_TENSORS, _A_GRAPHS, _A_SPARSE, _A_SPARSES = 5, 6, 10, 11, 22, 23
# TensorProto
_T_NAME, _T_EXTERNAL_DATA, _T_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1
# FunctionProto
_F_NAME, _F_NODE, _F_OPSET, _F_DOMAIN, _F_ATTRIBUTE_PROTO = 1, 7, 9, 10, 11

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:")
_DRIVE = re.compile(r"^[A-Za-z]:")


def external_location_problem(location: str) -> str | None:
    """Why an external-data ``location`` may read outside the model's folder, or None if it cannot.

    ONNX Runtime and ``onnx.load`` join the location to the model's folder; an absolute path,
    a Windows drive or UNC path, a URL, or a ``..`` that climbs above the folder after
    normalisation (``a/../../x``) all reach other files. Both separators count, since Windows
    accepts either.
    """
    if "\x00" in location:
        return "contains a NUL byte, which truncates the path in native code"
    if _DRIVE.match(location):
        return "names a Windows drive"
    if location.startswith(("\\\\", "//")):
        return "is a UNC network path"
    if location.startswith(("/", "\\")):
        return "is an absolute path"
    if _URL.match(location):
        return "is a URL"
    depth = 0
    for part in re.split(r"[\\/]+", location):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return "climbs above the model folder with '..'"
    return None


def looks_like_onnx(data: Buffer) -> bool:
    """Cheap content check for an ONNX ModelProto (ONNX has no magic number).

    Reads the top-level fields until an ``ir_version`` (field 1, varint, 1..100) and a ``graph``
    (7) or ``opset_import`` (8) field have been seen, requiring each field on the way to be
    well-formed and of the wire type onnx.proto gives it. Payloads are skipped, never read.
    """
    view = memoryview(data)
    try:
        seen_ir = seen_body = False
        for count, f in enumerate(iter_fields(view, 0, len(view))):
            expected = _MODEL_WIRES.get(
                f.number, LEN if f.number in (_M_TRAINING, _M_FUNCTIONS, 26) else None
            )
            if expected is None or f.wire != expected or count >= 32:
                return False
            if f.number == _M_IR_VERSION:
                if not 1 <= f.value <= 100:
                    return False
                seen_ir = True
            elif f.number in (_M_GRAPH, _M_OPSET):
                seen_body = True
            if seen_ir and seen_body:
                return True
        return False
    except ProtobufError:
        return False
    finally:
        view.release()


@dataclass(slots=True)
class _Walk:
    view: memoryview
    scope: Scope
    node_ops: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    opset_domains: set[str] = field(default_factory=set)
    local_functions: set[tuple[str, str]] = field(default_factory=set)

    def fields(self, f: Field | None) -> Iterator[Field]:
        start, end = (0, len(self.view)) if f is None else (f.start, f.end)
        return iter_fields(self.view, start, end)

    def text(self, f: Field, limit: int = 1024) -> str:
        self.expect(f, LEN)
        return read_string(self.view, f, limit)

    @staticmethod
    def expect(f: Field, wire: int) -> None:
        if f.wire != wire:
            raise ProtobufError(
                f.tag_offset, f"field {f.number} should be {WIRE_NAMES[wire]}, got {f.wire_name}"
            )

    def model(self) -> None:
        for f in self.fields(None):
            if f.number == _M_GRAPH:
                self.graph(f, 1)
            elif f.number == _M_OPSET:
                self.opset(f)
            elif f.number == _M_TRAINING:
                self.expect(f, LEN)
                for g in self.fields(f):
                    if g.number in (1, 2):  # TrainingInfoProto.initialization / algorithm
                        self.graph(g, 1)
            elif f.number == _M_FUNCTIONS:
                self.function(f)

    def opset(self, f: Field) -> None:
        self.expect(f, LEN)
        for g in self.fields(f):
            if g.number == 1:
                self.opset_domains.add(self.text(g))

    def graph(self, f: Field, depth: int) -> None:
        self.expect(f, LEN)
        if depth > MAX_GRAPH_DEPTH:
            raise ProtobufError(f.tag_offset, f"subgraphs nested deeper than {MAX_GRAPH_DEPTH} levels")
        for g in self.fields(f):
            if g.number == _G_NODE:
                self.node(g, depth)
            elif g.number == _G_INITIALIZER:
                self.tensor(g)
            elif g.number == _G_SPARSE_INITIALIZER:
                self.sparse(g)

    def node(self, f: Field, depth: int) -> None:
        self.expect(f, LEN)
        domain = op_type = ""
        for g in self.fields(f):
            if g.number == _N_DOMAIN:
                domain = self.text(g)
            elif g.number == _N_OP_TYPE:
                op_type = self.text(g)
            elif g.number == _N_ATTRIBUTE:
                self.attribute(g, depth)
        self.node_ops[domain].add(op_type)

    def attribute(self, f: Field, depth: int) -> None:
        self.expect(f, LEN)
        for g in self.fields(f):
            if g.number in (_A_T, _A_TENSORS):
                self.tensor(g)
            elif g.number in (_A_G, _A_GRAPHS):
                self.graph(g, depth + 1)
            elif g.number in (_A_SPARSE, _A_SPARSES):
                self.sparse(g)

    def sparse(self, f: Field) -> None:
        self.expect(f, LEN)
        for g in self.fields(f):
            if g.number in (1, 2):  # SparseTensorProto.values / indices
                self.tensor(g)

    def function(self, f: Field) -> None:
        self.expect(f, LEN)
        name = domain = ""
        for g in self.fields(f):
            if g.number == _F_NAME:
                name = self.text(g)
            elif g.number == _F_DOMAIN:
                domain = self.text(g)
            elif g.number == _F_NODE:
                self.node(g, 1)
            elif g.number == _F_OPSET:
                self.opset(g)
            elif g.number == _F_ATTRIBUTE_PROTO:
                self.attribute(g, 1)
        self.local_functions.add((domain, name))

    def tensor(self, f: Field) -> None:
        self.expect(f, LEN)
        name = ""
        location: tuple[str, Field] | None = None
        data_location = 0
        for g in self.fields(f):
            if g.number == _T_NAME:
                name = self.text(g)
            elif g.number == _T_DATA_LOCATION:
                self.expect(g, VARINT)
                data_location = g.value
            elif g.number == _T_EXTERNAL_DATA:
                self.expect(g, LEN)
                key = value = None
                for h in self.fields(g):
                    if h.number == 1:
                        key = self.text(h)
                    elif h.number == 2:
                        value = h
                if key == "location" and value is not None:
                    location = (self.text(value, _MAX_LOCATION_BYTES + 1), value)
        if location is not None:
            self.check_location(name, location[0], location[1], data_location == _EXTERNAL)

    def check_location(self, tensor: str, location: str, f: Field, external: bool) -> None:
        problem = external_location_problem(location)
        if problem is None and f.value > _MAX_LOCATION_BYTES:
            problem = f"is longer than {_MAX_LOCATION_BYTES} bytes"
        if problem is None:
            return
        self.scope.add(
            ONNX_EXTERNAL,
            title=f"ONNX tensor {tensor!r} reads external data from {location[:200]!r}, which {problem}",
            severity=None if external else Severity.MEDIUM,
            evidence={
                "tensor": tensor,
                "location": location[:_MAX_LOCATION_BYTES],
                "problem": problem,
                "data_location": "EXTERNAL" if external else "DEFAULT",
            },
            offset=f.start,
        )

    def report_domains(self) -> None:
        function_domains = {domain for domain, _ in self.local_functions}
        for domain in sorted((set(self.node_ops) | self.opset_domains) - BUILTIN_DOMAINS):
            ops = {op for op in self.node_ops.get(domain, ()) if (domain, op) not in self.local_functions}
            if not ops and domain in function_domains:
                continue  # the domain only holds functions defined inside the model
            shown = sorted(ops)[:_MAX_REPORTED_OPS]
            self.scope.add(
                ONNX_CUSTOM_DOMAIN,
                title=f"ONNX model uses custom operator domain {domain!r}",
                evidence={"domain": domain, "operators": shown, "operator_count": len(ops)},
            )


def scan_onnx(data: Buffer, scope: Scope) -> str:
    """Scan an ONNX ModelProto; returns ``"onnx"``.

    Reports external-data locations that leave the model's folder (:data:`ONNX_EXTERNAL`),
    operator domains outside :data:`BUILTIN_DOMAINS` (:data:`ONNX_CUSTOM_DOMAIN`), and protobuf
    damage (:data:`FORMAT_MALFORMED`, with the byte offset).
    """
    view = memoryview(data)
    walk = _Walk(view, scope)
    try:
        walk.model()
    except ProtobufError as e:
        scope.add(
            FORMAT_MALFORMED,
            title="ONNX protobuf is malformed",
            evidence={"format": "onnx", "problem": e.message},
            offset=e.offset,
            description="The model cannot be parsed past this point; parts after it were not analysed.",
        )
    finally:
        view.release()
    walk.report_domains()
    return "onnx"
