r"""NumPy ``.npy`` arrays: the header, the data size it implies, and pickled object arrays.

Layout (numpy/lib/format.py, NEP 1): the magic ``\x93NUMPY``, a major and minor version byte, a
header length (2 bytes little-endian in version 1.0, 4 bytes in 2.0 and 3.0), then a Python
dict literal with ``descr``, ``fortran_order`` and ``shape``. The dict is read with
:func:`ast.literal_eval`, which evaluates literals only. An array whose dtype holds Python
objects stores a pickle after the header; that stream goes to the pickle engine through
:meth:`Scope.scan_member` and is never unpickled.
"""

from __future__ import annotations

import ast
import math
import struct
from typing import Any, Final

import numpy as np

from mlarmor.findings import Severity
from mlarmor.scan._base import Buffer, Scope
from mlarmor.scan.rules import FORMAT_MALFORMED, PICKLE_NOTES

__all__ = ["MAGIC", "MAX_HEADER_BYTES", "scan_npy"]

MAGIC: Final = b"\x93NUMPY"
MAX_HEADER_BYTES: Final = 1 << 20
"""Headers above 1 MiB are not parsed. numpy itself refuses more than 10,000 bytes by default."""

_LENGTH_FORMAT: Final = {1: "<H", 2: "<I", 3: "<I"}
_KEYS: Final = frozenset({"descr", "fortran_order", "shape"})
_OBJECT_MEMBER: Final = "<object array pickle>"


def _malformed(
    scope: Scope, problem: str, offset: int, severity: Severity | None = None, **evidence: Any
) -> None:
    scope.add(
        FORMAT_MALFORMED,
        title=f"NumPy array header: {problem}",
        severity=severity,
        evidence={"format": "npy", "problem": problem, **evidence},
        offset=offset,
    )


def _read_header(data: Buffer, scope: Scope) -> tuple[dict[str, Any], int] | None:
    """The header dict and the offset of the array data, or None after reporting why not."""
    size = len(data)
    if size < 10 or bytes(data[:6]) != MAGIC:
        _malformed(scope, "missing the \\x93NUMPY magic or too short for a header", 0)
        return None
    major, minor = data[6], data[7]
    length_format = _LENGTH_FORMAT.get(major)
    if length_format is None or minor != 0:
        _malformed(scope, f"unknown format version {major}.{minor} (known: 1.0, 2.0, 3.0)", 6)
        return None
    prefix = 8 + struct.calcsize(length_format)
    if size < prefix:
        _malformed(scope, "file ends inside the header length", 8)
        return None
    (header_len,) = struct.unpack_from(length_format, data, 8)
    if header_len > MAX_HEADER_BYTES:
        _malformed(scope, f"header of {header_len} bytes exceeds the {MAX_HEADER_BYTES}-byte limit", 8)
        return None
    if prefix + header_len > size:
        _malformed(scope, f"header length {header_len} runs past the end of the {size}-byte file", 8)
        return None
    view = memoryview(data)
    try:
        raw = bytes(view[prefix : prefix + header_len])
    finally:
        view.release()
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except UnicodeDecodeError:
        _malformed(scope, "version 3.0 header is not valid UTF-8", prefix)
        return None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        _malformed(scope, f"header is not a Python literal ({type(e).__name__})", prefix)
        return None
    if not isinstance(header, dict) or set(header) != _KEYS:
        keys = sorted(map(str, header)) if isinstance(header, dict) else type(header).__name__
        _malformed(
            scope, f"header must be a dict with exactly descr, fortran_order, shape; got {keys}", prefix
        )
        return None
    return header, prefix + header_len


def _dtype(descr: Any) -> np.dtype[Any] | None:
    """The dtype ``descr`` denotes. ``descr`` came from literal_eval, so it is plain data."""
    try:
        dtype: np.dtype[Any] = np.lib.format.descr_to_dtype(descr)
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError):
        return None
    return dtype


def scan_npy(data: Buffer, scope: Scope) -> str:
    """Scan a ``.npy`` array; returns ``"npy"``.

    Reports :data:`FORMAT_MALFORMED` for a header numpy would refuse or a data section shorter
    than ``prod(shape) * itemsize`` (high) or longer (low). An object dtype, including a
    structured dtype with an object field, is reported as :data:`PICKLE_NOTES` and its pickle
    stream is scanned as the member ``<object array pickle>``.
    """
    parsed = _read_header(data, scope)
    if parsed is None:
        return "npy"
    header, data_offset = parsed
    descr, fortran_order, shape = header["descr"], header["fortran_order"], header["shape"]
    problems = []
    if not isinstance(fortran_order, bool):
        problems.append(f"fortran_order is {fortran_order!r}, not a bool")
    if not (isinstance(shape, tuple) and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
        problems.append(f"shape {shape!r} is not a tuple of integers")
        shape = None
    elif any(d < 0 for d in shape):
        problems.append(f"shape {shape!r} has a negative dimension")
        shape = None
    dtype = _dtype(descr)
    if dtype is None:
        problems.append(f"descr {descr!r} is not a valid dtype description")
    for problem in problems:
        _malformed(scope, problem, 8)
    if dtype is not None and dtype.hasobject:
        scope.add(
            PICKLE_NOTES,
            evidence={"descr": str(descr)[:200], "shape": str(shape)[:200]},
            offset=data_offset,
        )
        view = memoryview(data)
        payload = view[data_offset:]
        try:
            scope.scan_member(payload, _OBJECT_MEMBER)
        finally:
            payload.release()
            view.release()
    elif dtype is not None and shape is not None:
        expected = math.prod(shape) * dtype.itemsize
        actual = len(data) - data_offset
        if actual < expected:
            _malformed(
                scope,
                f"data section has {actual} bytes but shape {shape} of {dtype.str} needs {expected}",
                data_offset,
                expected=expected,
                actual=actual,
            )
        elif actual > expected:
            _malformed(
                scope,
                f"{actual - expected} bytes follow the array data",
                data_offset + expected,
                Severity.LOW,
                expected=expected,
                actual=actual,
            )
    return "npy"
