"""ONNX handler: the protobuf walk, external-data locations, custom domains and looks_like_onnx."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import onnx
import pytest
from _format_helpers import by_rule, describe, make_scope, pb_field, run_on_mmap, varint
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from mlarmor.findings import Severity
from mlarmor.scan._onnx import external_location_problem, looks_like_onnx, scan_onnx
from mlarmor.scan._protobuf import ProtobufError, iter_fields

EXTERNAL = "onnx.external-data-escape"
CUSTOM = "onnx.custom-domain"
MALFORMED = "format.malformed"


def external_tensor(name: str, location: str, *, external: bool = True) -> TensorProto:
    """An initializer whose data lives in another file."""
    tensor = numpy_helper.from_array(np.ones(4, np.float32), name)
    tensor.ClearField("raw_data")
    if external:
        tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    for key, value in (("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def add_graph(name: str = "g", initializers: list[TensorProto] | None = None) -> onnx.GraphProto:
    """y = x + w, with ``w`` an initializer."""
    inits = (
        initializers if initializers is not None else [numpy_helper.from_array(np.ones(4, np.float32), "w")]
    )
    return helper.make_graph(
        [helper.make_node("Add", ["x", inits[0].name], ["y"])],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        inits,
    )


def model_bytes(graph: onnx.GraphProto, **kwargs: object) -> bytes:
    opsets = kwargs.pop("opset_imports", [helper.make_opsetid("", 17)])
    model = helper.make_model(graph, opset_imports=opsets, **kwargs)  # type: ignore[arg-type]
    return model.SerializeToString()


def scan(data: bytes):  # type: ignore[no-untyped-def]
    scope, _ = make_scope()
    assert scan_onnx(data, scope) == "onnx"
    return scope


# --- clean models --------------------------------------------------------------------------------


def test_helper_model_is_clean() -> None:
    data = model_bytes(add_graph())
    onnx.checker.check_model(onnx.load_from_string(data))
    assert looks_like_onnx(data)
    assert scan(data).findings == []


def test_skl2onnx_model_is_clean() -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    clf = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    data = to_onnx(clf, x[:1]).SerializeToString()
    assert looks_like_onnx(data)
    scope = scan(data)
    assert scope.findings == [], describe(scope)


def test_external_data_saved_by_onnx_is_clean(tmp_path: Path) -> None:
    graph = add_graph(initializers=[numpy_helper.from_array(np.ones(4096, np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(
        model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="m.onnx.data", size_threshold=0
    )
    data = (tmp_path / "m.onnx").read_bytes()
    assert b"m.onnx.data" in data
    fmt, scope = run_on_mmap(tmp_path / "m.onnx", scan_onnx)
    assert fmt == "onnx"
    assert scope.findings == []


# --- external data locations ---------------------------------------------------------------------

ESCAPING = {
    "/etc/passwd": "absolute",
    "../secret.bin": "climbs",
    "a/../../x.bin": "climbs",  # CVE-2024-27318: a prefix that a naive lstrip('../') check misses
    "a\\..\\..\\x.bin": "climbs",
    "C:\\Windows\\win.ini": "Windows drive",
    "c:relative.bin": "Windows drive",
    "\\\\server\\share\\w.bin": "UNC",
    "//server/share/w.bin": "UNC",
    "https://attacker.example/w.bin": "URL",
    "file:///etc/passwd": "URL",
    "w.bin\x00.txt": "NUL",
}
INSIDE = ["w.bin", "./w.bin", "sub/w.bin", "sub/../w.bin", "a/b/../../w.bin", "weights..bin"]


@pytest.mark.parametrize("location", sorted(ESCAPING))
def test_escaping_location_is_high(location: str) -> None:
    data = model_bytes(add_graph(initializers=[external_tensor("w", location)]))
    (finding,) = by_rule(scan(data), EXTERNAL)
    assert finding.severity == Severity.HIGH
    assert finding.evidence["tensor"] == "w"
    assert finding.evidence["location"] == location
    assert ESCAPING[location] in finding.evidence["problem"]


@pytest.mark.parametrize("location", INSIDE)
def test_location_inside_the_folder_is_fine(location: str) -> None:
    assert external_location_problem(location) is None
    data = model_bytes(add_graph(initializers=[external_tensor("w", location)]))
    assert scan(data).findings == []


def test_location_without_external_flag_is_medium() -> None:
    data = model_bytes(add_graph(initializers=[external_tensor("w", "/etc/shadow", external=False)]))
    (finding,) = by_rule(scan(data), EXTERNAL)
    assert finding.severity == Severity.MEDIUM


def test_finding_offset_points_at_the_location() -> None:
    data = model_bytes(add_graph(initializers=[external_tensor("w", "/etc/passwd")]))
    (finding,) = by_rule(scan(data), EXTERNAL)
    offset = finding.location.offset
    assert offset is not None
    assert data[offset : offset + 11] == b"/etc/passwd"


def test_location_in_if_subgraph() -> None:
    branch = add_graph("then", [external_tensor("hidden", "../../etc/passwd")])
    other = add_graph("else")
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)
    graph = helper.make_graph(
        [node],
        "main",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    (finding,) = by_rule(scan(model_bytes(graph)), EXTERNAL)
    assert finding.evidence["tensor"] == "hidden"


def test_location_in_nested_loop_body_two_levels_down() -> None:
    inner = add_graph("inner", [external_tensor("deep", "/root/.ssh/id_rsa")])
    middle_node = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=add_graph("e1"))
    middle = helper.make_graph(
        [middle_node], "middle", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])]
    )
    outer = helper.make_node("Loop", ["n", "c"], ["y"], body=middle)
    graph = helper.make_graph(
        [outer], "main", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])]
    )
    (finding,) = by_rule(scan(model_bytes(graph)), EXTERNAL)
    assert finding.evidence["tensor"] == "deep"


def test_location_in_constant_node_attribute() -> None:
    const = helper.make_node("Constant", [], ["w"], value=external_tensor("cvalue", "/etc/hosts"))
    graph = helper.make_graph(
        [const, helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    (finding,) = by_rule(scan(model_bytes(graph)), EXTERNAL)
    assert finding.evidence["tensor"] == "cvalue"


def test_location_in_sparse_initializer() -> None:
    values = external_tensor("sparse_values", "/proc/self/environ")
    indices = numpy_helper.from_array(np.array([0, 1, 2, 3], np.int64), "sparse_indices")
    sparse = helper.make_sparse_tensor(values, indices, [8])
    graph = add_graph()
    graph.sparse_initializer.append(sparse)
    (finding,) = by_rule(scan(model_bytes(graph)), EXTERNAL)
    assert finding.evidence["tensor"] == "sparse_values"


def test_location_in_model_local_function() -> None:
    const = helper.make_node("Constant", [], ["c"], value=external_tensor("fn_const", "../escape.bin"))
    body = helper.make_node("Add", ["a", "c"], ["b"])
    fn = helper.make_function(
        "local.fn", "AddConst", ["a"], ["b"], [const, body], [helper.make_opsetid("", 17)]
    )
    graph = helper.make_graph(
        [helper.make_node("AddConst", ["x"], ["y"], domain="local.fn")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    data = model_bytes(
        graph, functions=[fn], opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local.fn", 1)]
    )
    scope = scan(data)
    (finding,) = by_rule(scope, EXTERNAL)
    assert finding.evidence["tensor"] == "fn_const"
    assert by_rule(scope, CUSTOM) == []  # local functions are not custom operators


# --- custom operator domains ------------------------------------------------------------------------


def test_custom_domain_is_low() -> None:
    node = helper.make_node("Backdoor", ["x"], ["y"], domain="com.attacker")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    data = model_bytes(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.attacker", 1)]
    )
    (finding,) = by_rule(scan(data), CUSTOM)
    assert finding.severity == Severity.LOW
    assert finding.evidence == {"domain": "com.attacker", "operators": ["Backdoor"], "operator_count": 1}


@pytest.mark.parametrize("domain", ["ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc"])
def test_builtin_domains_are_fine(domain: str) -> None:
    node = helper.make_node("Gelu", ["x"], ["y"], domain=domain)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    data = model_bytes(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)])
    assert scan(data).findings == []


def test_custom_domain_only_in_opset_import() -> None:
    data = model_bytes(
        add_graph(), opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("org.pytorch.aten", 1)]
    )
    (finding,) = by_rule(scan(data), CUSTOM)
    assert finding.evidence["domain"] == "org.pytorch.aten"


# --- malformed protobuf ------------------------------------------------------------------------------


def test_truncated_model_is_malformed_not_raised() -> None:
    data = model_bytes(add_graph(initializers=[numpy_helper.from_array(np.ones(64, np.float32), "w")]))
    for cut in range(1, len(data), 5):
        scope = scan(data[:cut])
        assert all(f.id == MALFORMED for f in scope.findings), describe(scope)
    assert by_rule(scan(data[: len(data) // 2]), MALFORMED)


def test_group_wire_type_is_rejected() -> None:
    data = pb_field(1, 8) + varint(7 << 3 | 3) + b"\x00"
    (finding,) = by_rule(scan(data), MALFORMED)
    assert "group" in finding.evidence["problem"]
    assert finding.location.offset == 2


def test_wrong_wire_type_for_graph() -> None:
    data = pb_field(1, 8) + pb_field(7, 5)
    (finding,) = by_rule(scan(data), MALFORMED)
    assert "field 7 should be length-delimited" in finding.evidence["problem"]


def test_invalid_wire_type() -> None:
    with pytest.raises(ProtobufError, match="invalid wire type 7"):
        list(iter_fields(memoryview(varint(1 << 3 | 7) + b"\0"), 0, 2))


def test_overlong_varint() -> None:
    with pytest.raises(ProtobufError, match="longer than 10 bytes"):
        list(iter_fields(memoryview(b"\x08" + b"\xff" * 11 + b"\x01"), 0, 13))


def nested_graphs(levels: int) -> bytes:
    """A ModelProto whose graph holds If-style subgraph attributes ``levels`` deep (built by hand:
    the protobuf runtime itself refuses to serialise messages this deep)."""
    graph = b""
    for _ in range(levels):
        attribute = pb_field(1, b"then_branch") + pb_field(6, graph)
        graph = pb_field(1, pb_field(4, b"If") + pb_field(5, attribute))
    return pb_field(1, 8) + pb_field(7, graph)


def test_nesting_within_limit_is_fine() -> None:
    assert scan(nested_graphs(63)).findings == []


def test_nesting_limit() -> None:
    (finding,) = by_rule(scan(nested_graphs(70)), MALFORMED)
    assert "nested deeper than 64" in finding.evidence["problem"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(noise: bytes) -> None:
    scope, _ = make_scope()
    scan_onnx(noise, scope)
    looks_like_onnx(noise)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 400), st.binary(min_size=1, max_size=6))
def test_corrupted_model_never_raises(position: int, patch: bytes) -> None:
    data = bytearray(model_bytes(add_graph(initializers=[external_tensor("w", "w.bin")])))
    position %= len(data)
    data[position : position + len(patch)] = patch
    scope, _ = make_scope()
    scan_onnx(bytes(data), scope)


# --- looks_like_onnx --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x08\x07",  # ir_version alone
        pickle.dumps({"a": 1}, protocol=2),
        b"PK\x03\x04" + bytes(40),
        b"GGUF\x03\x00\x00\x00" + bytes(16),
        b"\x93NUMPY\x01\x00" + bytes(40),
        pb_field(1, b"text") + pb_field(7, b""),  # ir_version with the wrong wire type
        pb_field(1, 100_000) + pb_field(7, b""),  # implausible ir_version
        pb_field(1, 8) + pb_field(99, b"") + pb_field(7, b""),  # field ModelProto does not have
        pb_field(1, 8) + varint(7 << 3 | 2) + varint(1000) + b"short",  # graph runs past the end
    ],
)
def test_looks_like_onnx_rejects(data: bytes) -> None:
    assert not looks_like_onnx(data)


def test_looks_like_onnx_accepts_fields_in_any_order() -> None:
    assert looks_like_onnx(pb_field(2, b"producer") + pb_field(8, pb_field(2, 17)) + pb_field(1, 9))
