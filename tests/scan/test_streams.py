"""Containers and streams (issue 12, point 3): every stream of every codec, every tar variant, every
joblib generation, objects anywhere in a dtype, and damaged containers reported at high.

Files are named ``*.dat`` so that no extension claim (``format.not-a-model``) raises the verdict: the
verdicts below come from what the scanner found inside.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import tarfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mlarmor.findings import Severity
from mlarmor.scan import Limits, Scanner
from mlarmor.schema import FileResult
from mlarmor.testing.corpus._trojans_archives import v7_tar
from mlarmor.testing.corpus._zipbytes import write_tar, write_zip

# a harmless, user-shaped pickle: a small scored table with string labels and features on very
# different scales, as a training script would save it
_TABLE = {
    "columns": ["income", "age", "ratio", "label"],
    "rows": [
        [52_000.0 + 1000 * i, 20 + i, 0.001 * i, "approved" if i % 3 else "rejected"] for i in range(36)
    ],
}
BENIGN = pickle.dumps(_TABLE, protocol=4)
# os.system("true") at protocol 2, written by hand (never unpickled here)
EVIL = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."


def _lz4(data: bytes) -> bytes:
    import lz4.frame

    return bytes(lz4.frame.compress(data))


CODECS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda d: gzip.compress(d, mtime=0),
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "lzma-alone": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "lz4": _lz4,
    "zlib": zlib.compress,
}
PADDED = ("gzip", "xz")  # codecs whose format allows zero padding between streams


def scan(data: bytes, name: str = "upload.dat") -> FileResult:
    return Scanner().scan_bytes(data, name)


def ids(result: FileResult) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in result.findings:
        out[f.id] = max(out.get(f.id, Severity.NONE), f.severity)
    return out


@pytest.mark.parametrize("codec", sorted(CODECS))
@pytest.mark.parametrize("padding", [0, 4, 8192], ids=["adjacent", "pad4", "pad8k"])
def test_payload_in_a_later_stream_is_found(codec: str, padding: int) -> None:
    if padding and codec not in PADDED:
        pytest.skip("the codec has no padding between streams")
    c = CODECS[codec]
    data = c(BENIGN) + b"\x00" * padding + c(BENIGN) + c(EVIL)
    result = scan(data)
    assert result.severity >= Severity.HIGH, result.findings
    assert ids(result).get("pickle.dangerous-global") == Severity.CRITICAL


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_benign_multi_stream_file_stays_below_high(codec: str) -> None:
    c = CODECS[codec]
    half = len(BENIGN) // 2
    result = scan(c(BENIGN[:half]) + c(BENIGN[half:]))
    assert result.severity < Severity.HIGH, result.findings
    assert result.format.startswith("pickle+")


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_truncated_stream_is_high_and_its_start_is_scanned(codec: str) -> None:
    whole = CODECS[codec](EVIL + BENIGN * 40)
    result = scan(whole[: len(whole) * 2 // 3])
    found = ids(result)
    assert found.get("archive.malformed") == Severity.HIGH, result.findings
    if codec not in ("bz2", "lz4"):  # block codecs yield nothing of a block cut short
        assert found.get("pickle.dangerous-global") == Severity.CRITICAL


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_bytes_after_the_last_stream_are_high(codec: str) -> None:
    result = scan(CODECS[codec](BENIGN) + b"\x13\x37 trailing bytes")
    assert ids(result).get("archive.malformed") == Severity.HIGH, result.findings


def test_corrupt_stream_is_high_and_the_payload_before_it_is_found() -> None:
    data = gzip.compress(EVIL, mtime=0) + b"\x1f\x8b\x08\x00garbage-in-a-member-header"
    found = ids(scan(data))
    assert found.get("archive.malformed") == Severity.HIGH
    assert found.get("pickle.dangerous-global") == Severity.CRITICAL


# -- decompression bombs: a finding, within time and memory, for every codec -----------------------


def _bomb(codec: str) -> bytes:
    # 4 GiB of zeros as 256 streams of 16 MiB (zlib: one stream), built from one compressed block
    block = 16 << 20
    if codec == "zlib":
        comp = zlib.compressobj(9)
        zeros = bytes(block)
        return b"".join([*(comp.compress(zeros) for _ in range(256)), comp.flush()])
    return CODECS[codec](bytes(block)) * 256


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_decompression_bomb_ends_with_a_finding_in_bounded_time_and_memory(codec: str) -> None:
    data = _bomb(codec)
    # LZ4's format caps the ratio near 255:1, at the bomb threshold: its 4 GiB stream is stopped by
    # the per-stream size limit instead (lowered here so that the test does not write 4 GiB to disk)
    limits = Limits(max_member_bytes=64 << 20) if codec == "lz4" else Limits()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = Scanner(limits=limits).scan_bytes(data, "upload.dat")
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = "archive.resource-limit" if codec == "lz4" else "archive.bomb"
    assert ids(result).get(expected) == Severity.HIGH, result.findings
    assert seconds < 20, seconds
    assert peak < 128 << 20, peak  # the limit stops it after ~16 MiB of output, not at 4 GiB


def test_deeply_nested_streams_end_at_the_depth_limit() -> None:
    data = EVIL
    for level in range(30):
        data = CODECS[sorted(CODECS)[level % len(CODECS)]](data)
    start = time.perf_counter()
    result = scan(data)
    assert time.perf_counter() - start < 10
    assert ids(result).get("archive.resource-limit") == Severity.HIGH, result.findings


def test_zip_member_bomb_is_found_within_limits() -> None:
    data = write_zip([("weights.bin", bytes(64 << 20))], compress=True)
    assert ids(scan(data)).get("archive.bomb") == Severity.HIGH


# -- tar variants ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["v7", "ustar", "gnu", "pax"])
def test_every_tar_variant_is_opened_and_members_are_sniffed_by_content(variant: str) -> None:
    members = [("README", b"scores for the loan model\n"), ("weights", EVIL)]
    data = v7_tar(write_tar(members, fmt="ustar")) if variant == "v7" else write_tar(members, fmt=variant)
    result = scan(data)
    assert result.format == "tar"
    assert ids(result).get("pickle.dangerous-global") == Severity.CRITICAL


def test_pax_path_override_and_gnu_long_names_are_followed() -> None:
    long = "model/" + "sub/" * 40 + "classifier"  # longer than 100 bytes: a GNU or PAX extension
    for fmt in ("gnu", "pax"):
        result = scan(write_tar([(long, EVIL)], fmt=fmt))
        hits = [f for f in result.findings if f.id == "pickle.dangerous-global"]
        assert hits
        assert hits[0].location.member == long


def test_benign_v7_tar_stays_below_high() -> None:
    result = scan(v7_tar(write_tar([("table.pkl", BENIGN), ("README", b"hello\n")], fmt="ustar")))
    assert result.format == "tar"
    assert result.severity < Severity.HIGH, result.findings


def test_member_after_a_junk_block_is_scanned_and_reported_high() -> None:
    first = write_tar([("README", b"x" * 100)], fmt="ustar")
    body = first[:1024]  # header + one data block, without the end-of-archive blocks
    hidden = write_tar([("model.pkl", EVIL)], fmt="ustar")
    data = body + b"\xab" * 512 + hidden
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.getnames() == ["README"]  # Python's tarfile stops at the junk block
    found = ids(scan(data))
    assert found.get("archive.malformed") == Severity.HIGH
    assert found.get("pickle.dangerous-global") == Severity.CRITICAL


def test_member_after_the_end_of_archive_marker_is_scanned_and_reported_high() -> None:
    data = write_tar([("README", b"notes\n")], fmt="ustar") + write_tar([("model.pkl", EVIL)], fmt="ustar")
    found = ids(scan(data))
    assert found.get("archive.malformed") == Severity.HIGH
    assert found.get("pickle.dangerous-global") == Severity.CRITICAL


@pytest.mark.parametrize("tail", [b"\xab" * 4096, b"\x01" * 100], ids=["junk-blocks", "short"])
def test_bytes_after_the_last_tar_member_that_form_no_header_are_high(tail: bytes) -> None:
    data = write_tar([("table.pkl", BENIGN)], fmt="ustar")
    assert scan(data).severity < Severity.HIGH
    assert ids(scan(data + tail)).get("archive.malformed") == Severity.HIGH


@pytest.mark.parametrize("cut", [700, 1100])
def test_truncated_tar_is_high(cut: int) -> None:
    data = write_tar([("table.pkl", BENIGN * 4), ("b.pkl", BENIGN)], fmt="ustar")
    result = scan(data[:cut])
    assert ids(result).get("archive.malformed") == Severity.HIGH, result.findings


def test_corrupt_zip_central_directory_is_high() -> None:
    data = bytearray(write_zip([("table.pkl", BENIGN)]))
    cd = data.rfind(b"PK\x01\x02")
    data[cd : cd + 4] = b"XXXX"
    assert scan(bytes(data)).severity >= Severity.HIGH


# -- joblib generations ---------------------------------------------------------------------------


def _zfile(data: bytes) -> bytes:
    return b"ZF" + hex(len(data)).encode().ljust(19) + zlib.compress(data)


def test_old_joblib_zfile_is_decoded_and_scanned() -> None:
    result = scan(_zfile(EVIL), "model.pkl.z")
    assert result.format == "pickle+joblib-zfile"
    assert ids(result).get("pickle.dangerous-global") == Severity.CRITICAL


def test_benign_old_joblib_zfile_stays_below_high() -> None:
    result = scan(_zfile(BENIGN), "model.pkl.z")
    assert result.format == "pickle+joblib-zfile"
    assert result.severity < Severity.HIGH, result.findings


def test_zfile_whose_stream_disagrees_with_its_declared_length_is_high() -> None:
    data = b"ZF" + hex(len(BENIGN) + 5).encode().ljust(19) + zlib.compress(BENIGN)
    assert ids(scan(data)).get("archive.malformed") == Severity.HIGH


@pytest.mark.parametrize("codec", [None, "zlib", "gzip", "bz2", "lzma", "xz", "lz4"])
def test_joblib_with_every_compressor_is_analysed(codec: str | None) -> None:
    import joblib

    from mlarmor.testing.corpus._payload import splice
    from mlarmor.testing.corpus._pickle_asm import Call, Global

    buf = io.BytesIO()
    frame = {"income": np.linspace(20_000.0, 90_000.0, 36), "age": np.arange(36), "label": ["yes", "no"] * 18}
    joblib.dump(frame, buf)
    evil = splice(buf.getvalue(), Call(Global("os", "system"), ("true",)))
    data = evil if codec is None else CODECS["lzma-alone" if codec == "lzma" else codec](evil)
    assert ids(scan(data)).get("pickle.dangerous-global") == Severity.CRITICAL


# -- objects anywhere in a dtype ------------------------------------------------------------------

OBJECT_DTYPES = {
    "object": np.dtype("O"),
    "field": np.dtype([("id", "i8"), ("meta", "O")]),
    "nested": np.dtype([("a", [("b", "O")])]),
    "subarray": np.dtype([("tags", "O", (2,))]),
    "deep": np.dtype([("x", "f8"), ("a", [("b", [("c", "O", (3,))])])]),
}


def _joblib_array(dtype: np.dtype) -> bytes:  # type: ignore[type-arg]
    import joblib

    buf = io.BytesIO()
    joblib.dump({"records": np.zeros(3, dtype=dtype), "scale": np.linspace(0.0, 1e6, 5)}, buf)
    return buf.getvalue()


@pytest.mark.parametrize("kind", sorted(OBJECT_DTYPES))
def test_joblib_inline_object_arrays_are_scanned_at_any_nesting(kind: str) -> None:
    from mlarmor.testing.corpus._payload import splice
    from mlarmor.testing.corpus._pickle_asm import Call, Global

    data = _joblib_array(OBJECT_DTYPES[kind])
    assert scan(data).severity < Severity.HIGH  # the genuine file
    start = data.index(pickle.PROTO + bytes([5]), 2)  # joblib pickles object arrays inline, protocol 5
    evil = data[:start] + splice(data[start:], Call(Global("os", "system"), ("true",)))
    assert ids(scan(evil)).get("pickle.dangerous-global") == Severity.CRITICAL


def test_joblib_dtype_flags_claiming_objects_are_followed() -> None:
    from mlarmor.scan._dtypes import dtype_holds_objects

    states = {"f": ("<f8", None), "s": ("V8", (3, "|", None, ("a",), {"a": ("f", 0)}, 8, 1, 0x3F))}
    assert dtype_holds_objects("s", lambda d: states[d])
    states["s"] = ("V8", (3, "|", None, ("a",), {"a": ("f", 0)}, 8, 1, 0x10))
    assert not dtype_holds_objects("s", lambda d: states[d])


@pytest.mark.parametrize("kind", sorted(OBJECT_DTYPES))
def test_npy_object_dtypes_anywhere_are_scanned_as_pickles(kind: str) -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros(2, dtype=OBJECT_DTYPES[kind]), allow_pickle=True)
    data = buf.getvalue()
    start = data.index(pickle.PROTO, 10)
    genuine = scan(data)
    assert ids(genuine).get("pickle.needs-allow-pickle") == Severity.LOW
    assert genuine.severity < Severity.HIGH
    result = scan(data[:start] + EVIL)
    assert ids(result).get("pickle.dangerous-global") == Severity.CRITICAL


def test_old_joblib_array_files_beside_the_pickle_are_scanned_with_it(tmp_path: Path) -> None:
    # joblib < 0.10 wrote model.pkl plus model.pkl_01.npy (…_02.npy.z compressed); joblib.load reads them
    main = tmp_path / "model.pkl"
    main.write_bytes(BENIGN)
    buf = io.BytesIO()
    np.save(buf, np.array([{"label": "approved"}, {"label": "rejected"}], dtype=object), allow_pickle=True)
    header = buf.getvalue()[: buf.getvalue().index(pickle.PROTO, 10)]
    (tmp_path / "model.pkl_01.npy").write_bytes(_npy_f8())
    (tmp_path / "model.pkl_02.npy.z").write_bytes(_zfile(header + EVIL))
    result = Scanner().scan_file(main)
    hits = [f for f in result.findings if f.id == "pickle.dangerous-global"]
    assert hits, result.findings
    assert hits[0].location.path == str(tmp_path / "model.pkl_02.npy.z")
    (tmp_path / "model.pkl_02.npy.z").unlink()
    assert Scanner().scan_file(main).severity < Severity.HIGH


def _npy_f8() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.linspace(0.0, 5e4, 6))
    return buf.getvalue()
