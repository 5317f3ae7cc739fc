"""safetensors handler: header validation against the file, cross-checked with the real loader."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch
from _format_helpers import by_rule, describe, make_scope, run_on_mmap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlarmor.findings import Severity
from mlarmor.scan._safetensors import DTYPE_BITS, scan_safetensors

MALFORMED = "format.malformed"


def raw_file(header: Any, data: bytes = b"", *, pad: bool = True, length: int | None = None) -> bytes:
    """A safetensors file from a header object (or raw header bytes) and a data section."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def scan(data: bytes):  # type: ignore[no-untyped-def]
    scope, _ = make_scope()
    assert scan_safetensors(data, scope) == "safetensors"
    return scope


def problems(scope) -> list[tuple[str, Severity]]:  # type: ignore[no-untyped-def]
    return [(f.evidence["problem"], f.severity) for f in by_rule(scope, MALFORMED)]


def loader_accepts(path: Path) -> bool:
    """Whether the reference implementation opens the file."""
    try:
        with safetensors.safe_open(str(path), "np") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                f.get_slice(key)
    except Exception:  # any refusal counts
        return False
    return True


# --- files written by the safetensors package --------------------------------------------------


def test_numpy_file_with_metadata_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    tensors = {
        "w": np.ones((3, 4), np.float32),
        "b": np.zeros(4, np.float64),
        "i": np.arange(6, dtype=np.int8).reshape(2, 3),
        "empty": np.zeros((0, 5), np.float16),
        "scalar": np.array(3, dtype=np.int64),
        "flag": np.array([True, False]),
    }
    safetensors.numpy.save_file(tensors, str(path), metadata={"format": "np", "author": "tests"})
    scope = scan(path.read_bytes())
    assert scope.findings == [], describe(scope)


def test_torch_file_with_exotic_dtypes_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    tensors = {
        "bf16": torch.ones(5, 3, dtype=torch.bfloat16),
        "f8": torch.zeros(7, dtype=torch.float8_e4m3fn),
        "f8b": torch.zeros(7, dtype=torch.float8_e5m2),
        "u16": torch.zeros(3, dtype=torch.uint16),
        "c64": torch.zeros(2, dtype=torch.complex64),
    }
    safetensors.torch.save_file(tensors, str(path), metadata={"format": "pt"})
    scope = scan(path.read_bytes())
    assert scope.findings == [], describe(scope)


def test_mmap_input(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    safetensors.numpy.save_file({"w": np.ones(4, np.float32)}, str(path))
    fmt, scope = run_on_mmap(path, scan_safetensors)
    assert fmt == "safetensors"
    assert scope.findings == []


def test_sub_byte_dtypes() -> None:
    header = {"a": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}
    assert scan(raw_file(header, b"\0\0")).findings == []
    odd = {"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}
    assert "byte boundary" in problems(scan(raw_file(odd, b"\0\0")))[0][0]


def test_dtype_table_covers_the_installed_library(tmp_path: Path) -> None:
    """Every dtype we accept is accepted by safetensors, with the size we compute."""
    for dtype, bits in DTYPE_BITS.items():
        n = 8  # multiple of every sub-byte packing
        header = {"t": {"dtype": dtype, "shape": [n], "data_offsets": [0, n * bits // 8]}}
        path = tmp_path / f"{dtype}.safetensors"
        path.write_bytes(raw_file(header, b"\0" * (n * bits // 8)))
        assert loader_accepts(path), dtype
        assert scan(path.read_bytes()).findings == [], dtype


# --- corrupted headers: (header or raw bytes, data, expected fragment, severity) -----------------

F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
CORRUPT: dict[str, tuple[bytes, str, Severity]] = {
    "too-short": (b"\x01\x02", "shorter than the 8-byte", Severity.HIGH),
    "length-past-eof": (raw_file({"t": F32_2}, b"\0" * 8, length=10_000), "runs past the end", Severity.HIGH),
    "length-over-100mb": (
        raw_file({}, length=100_000_001),
        "exceeds the 100000000-byte limit",
        Severity.HIGH,
    ),
    "invalid-utf8": (raw_file(b'{"t\xff": 1}'), "not valid UTF-8", Severity.HIGH),
    "not-json": (raw_file(b"{not json}"), "not valid JSON", Severity.HIGH),
    "not-object-start": (raw_file(b'["a"]'), "does not start with '{'", Severity.HIGH),
    "metadata-not-str": (raw_file({"__metadata__": {"a": 1}}), "'__metadata__' must map", Severity.HIGH),
    "entry-not-object": (raw_file({"t": [1, 2]}), "is not an object", Severity.HIGH),
    "unknown-dtype": (
        raw_file({"t": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16),
        "unknown dtype 'F128'",
        Severity.HIGH,
    ),
    "negative-shape": (
        raw_file({"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8),
        "not a list of non-negative integers",
        Severity.HIGH,
    ),
    "bool-shape": (
        raw_file({"t": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 4),
        "not a list of non-negative integers",
        Severity.HIGH,
    ),
    "offsets-not-pair": (
        raw_file({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}),
        "is not [begin, end]",
        Severity.HIGH,
    ),
    "offsets-reversed": (
        raw_file({"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8),
        "end before they begin",
        Severity.HIGH,
    ),
    "data-past-eof": (raw_file({"t": F32_2}, b"\0" * 4), "runs past the 4-byte data section", Severity.HIGH),
    "size-mismatch": (
        raw_file({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        "spans 8 bytes but F32[3] needs 12",
        Severity.HIGH,
    ),
    "overlap": (
        raw_file({"a": F32_2, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
        "overlaps tensor 'a'",
        Severity.HIGH,
    ),
    "hole": (
        raw_file({"a": F32_2, "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}, b"\0" * 20),
        "4 unused bytes before tensor 'b'",
        Severity.LOW,
    ),
    "trailing": (raw_file({"t": F32_2}, b"\0" * 12), "4 bytes after the last tensor", Severity.LOW),
    "duplicate-key": (
        raw_file(
            b'{"t": ' + json.dumps(F32_2).encode() + b', "t": ' + json.dumps(F32_2).encode() + b"}", b"\0" * 8
        ),
        "appears more than once",
        Severity.MEDIUM,
    ),
    "nested-too-deep": (
        raw_file(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "nested too deeply",
        Severity.HIGH,
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_header_is_reported(case: str) -> None:
    data, fragment, severity = CORRUPT[case]
    found = problems(scan(data))
    assert any(fragment in p and s == severity for p, s in found), found


# A duplicate key is reported for parser disagreement, not because serde refuses it.
REFUSED = sorted(c for c, (_, _, s) in CORRUPT.items() if s == Severity.HIGH)


@pytest.mark.parametrize("case", REFUSED)
def test_reference_loader_refuses_what_we_call_malformed(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(CORRUPT[case][0])
    assert not loader_accepts(path)


def test_problem_names_the_tensor() -> None:
    data = raw_file({"layer.0.weight": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8)
    (finding,) = by_rule(scan(data), MALFORMED)
    assert finding.evidence["tensor"] == "layer.0.weight"
    assert "layer.0.weight" in finding.title


def test_many_problems_are_summarised() -> None:
    header = {f"t{i}": {"dtype": "X", "shape": [1], "data_offsets": [0, 0]} for i in range(30)}
    found = by_rule(scan(raw_file(header)), MALFORMED)
    assert len(found) == 21
    assert "more problems" in found[-1].title


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200), st.integers(0, 300))
def test_random_bytes_never_raise(noise: bytes, cut: int) -> None:
    base = raw_file({"__metadata__": {"a": "b"}, "t": F32_2}, b"\0" * 8)
    scan((base[:cut] + noise + base[cut:])[: cut + len(noise) + 40])
    scan(noise)
