"""NumPy .npy handler: header validation, data size, and object arrays handed to the pickle engine."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from _format_helpers import by_rule, describe, make_scope, run_on_mmap
from hypothesis import given, settings
from hypothesis import strategies as st

from mlarmor.findings import Severity
from mlarmor.scan._numpy import scan_npy

MALFORMED = "format.malformed"
NOTES = "pickle.needs-allow-pickle"
MEMBER = "<object array pickle>"


def npy(array: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    """What np.save writes (saving an object array pickles it; nothing is loaded)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=True)
    return buffer.getvalue()


def raw_npy(header: str | bytes, data: bytes = b"", *, version: int = 1) -> bytes:
    """A .npy file with a hand-written header."""
    text = header.encode("latin1") if isinstance(header, str) else header
    length = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + length + text + data


def scan(data: bytes):  # type: ignore[no-untyped-def]
    scope, recorder = make_scope()
    assert scan_npy(data, scope) == "npy"
    return scope, recorder


def problems(scope) -> list[tuple[str, Severity]]:  # type: ignore[no-untyped-def]
    return [(f.evidence["problem"], f.severity) for f in by_rule(scope, MALFORMED)]


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float64).reshape(3, 4),
        np.asfortranarray(np.ones((3, 5), np.int16)),
        np.zeros((0, 7), np.float32),
        np.array(5, np.uint8),
        np.array(["ab", "cde"]),
        np.array([b"x", b"yz"]),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.ones(4, dtype=">i8"),
    ],
)
def test_numeric_arrays_are_clean(array: np.ndarray) -> None:
    scope, recorder = scan(npy(array))
    assert scope.findings == [], describe(scope)
    assert recorder.calls == []


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_all_format_versions(version: tuple[int, int]) -> None:
    array = np.zeros(3, dtype=[("naïve", "<f4"), ("b", "<i2")]) if version == (3, 0) else np.ones(5)
    data = npy(array, version)
    assert data[6] == version[0]
    scope, _ = scan(data)
    assert scope.findings == [], describe(scope)


def test_object_array_goes_to_the_pickle_engine() -> None:
    data = npy(np.array([{"a": 1}, None, "x"], dtype=object))
    scope, recorder = scan(data)
    (note,) = by_rule(scope, NOTES)
    assert note.severity == Severity.LOW
    ((member, size, head),) = recorder.calls
    assert member == MEMBER
    assert head[:1] == b"\x80"  # pickle protocol marker
    assert size == len(data) - note.location.offset  # type: ignore[operator]


def test_structured_dtype_with_object_field() -> None:
    array = np.zeros(2, dtype=[("weights", "<f4"), ("meta", "O")])
    scope, recorder = scan(npy(array))
    assert by_rule(scope, NOTES)
    assert [c[0] for c in recorder.calls] == [MEMBER]


def test_nested_structured_object_field() -> None:
    data = raw_npy(
        "{'descr': [('a', [('b', '|O')])], 'fortran_order': False, 'shape': (1,), }\n", b"\x80\x02N."
    )
    scope, recorder = scan(data)
    assert by_rule(scope, NOTES)
    assert recorder.calls[0][2] == b"\x80\x02N."


def test_mmap_input(tmp_path: Path) -> None:
    path = tmp_path / "obj.npy"
    path.write_bytes(npy(np.array([1, "a"], dtype=object)))
    fmt, scope = run_on_mmap(path, scan_npy)
    assert fmt == "npy"
    assert by_rule(scope, NOTES)


def test_truncated_data_is_high() -> None:
    data = npy(np.ones(10))
    found = problems(scan(data[:-8])[0])
    assert found == [("data section has 72 bytes but shape (10,) of <f8 needs 80", Severity.HIGH)]


def test_trailing_bytes_are_low() -> None:
    found = problems(scan(npy(np.ones(10)) + b"extra")[0])
    assert found == [("5 bytes follow the array data", Severity.LOW)]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("{'descr': '<f8', 'fortran_order': False}", "exactly descr, fortran_order, shape"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "exactly descr"),
        ("['descr', 'fortran_order', 'shape']", "got list"),
        ("{'descr': '<f8', 'fortran_order': 'no', 'shape': (1,)}", "fortran_order is 'no'"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}", "negative dimension"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1.5,)}", "not a tuple of integers"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': [1]}", "not a tuple of integers"),
        ("{'descr': 'not-a-dtype', 'fortran_order': False, 'shape': (1,)}", "not a valid dtype"),
        ("{'descr': 42, 'fortran_order': False, 'shape': (1,)}", "not a valid dtype"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)", "not a Python literal"),
    ],
)
def test_bad_headers(header: str, fragment: str) -> None:
    found = problems(scan(raw_npy(header + "\n", b"\0" * 8))[0])
    assert any(fragment in p and s == Severity.HIGH for p, s in found), found


def test_header_code_is_never_evaluated(canary: Path) -> None:
    header = (
        f"{{'descr': __import__('os').system('touch {canary}/ran'), 'fortran_order': False, 'shape': (1,)}}\n"
    )
    found = problems(scan(raw_npy(header, b"\0" * 8))[0])
    assert found
    assert "not a Python literal" in found[0][0]


def test_deeply_nested_header_is_reported() -> None:
    header = "{'descr': " + "[" * 50_000 + "]" * 50_000 + ", 'fortran_order': False, 'shape': (1,)}"
    found = problems(scan(raw_npy(header, version=2))[0])
    assert found


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x93NUMP", "magic"),
        (b"\x93NUMPX\x01\x00\x00\x00", "magic"),
        (b"\x93NUMPY\x04\x00\x10\x00" + b" " * 16, "unknown format version 4.0"),
        (b"\x93NUMPY\x01\x01\x10\x00" + b" " * 16, "unknown format version 1.1"),
        (b"\x93NUMPY\x02\x00\x01\x00", "ends inside the header length"),
        (b"\x93NUMPY\x01\x00\xff\x00{}", "runs past the end"),
        (b"\x93NUMPY\x02\x00" + struct.pack("<I", 50 << 20) + b"{}", "exceeds"),
        (b"\x93NUMPY\x03\x00\x04\x00\x00\x00\xff\xfe{}", "not valid UTF-8"),
    ],
)
def test_bad_preamble(data: bytes, fragment: str) -> None:
    found = problems(scan(data)[0])
    assert any(fragment in p for p, _ in found), found


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 140), st.binary(min_size=1, max_size=8))
def test_random_corruption_never_raises(position: int, patch: bytes) -> None:
    data = bytearray(npy(np.arange(6, dtype=np.int32).reshape(2, 3)))
    data[position : position + len(patch)] = patch
    scan(bytes(data))
