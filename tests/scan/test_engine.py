"""The engine: content sniffing, bad input, archives, compression, limits and folders."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import random
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from mlarmor.errors import InputError
from mlarmor.findings import Severity
from mlarmor.scan import Limits, Scanner, sniff


def _evil(canary: Path) -> bytes:
    class R:
        def __reduce__(self):
            return (os.system, (f"touch {canary / 'ran'}",))

    return pickle.dumps(R(), protocol=2)


def _ids(result) -> set[str]:
    return {f.id for f in result.findings}


def test_missing_path_is_an_input_error(scanner: Scanner, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        scanner.scan_paths([tmp_path / "nope.pt"])


def test_empty_random_png_and_truncated(scanner: Scanner, tmp_path: Path, canary: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    # Seeded: about 0.3% of random files start like a pickle or a zlib stream and are rated medium as
    # malformed (the scanner fails closed), which made an unseeded test flaky.
    (tmp_path / "random.dat").write_bytes(random.Random(0).randbytes(4096))
    (tmp_path / "random.bin").write_bytes(random.Random(0).randbytes(4096))
    (tmp_path / "image.pt").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    evil = _evil(canary)
    (tmp_path / "trunc.pkl").write_bytes(evil[: len(evil) // 2])
    results = {Path(r.path).name: r for r in scanner.scan_paths([tmp_path])}
    assert results["empty.pt"].format == "empty"
    assert results["random.dat"].severity <= Severity.LOW  # not named as a model: unknown content, low
    assert results["image.pt"].format == "png image"
    assert "pickle.malformed" in _ids(results["trunc.pkl"])
    # Named as a model but empty, unrecognised, another kind of file or cut short: fails the default gate.
    assert _ids(results["empty.pt"]) == {"file.empty", "format.not-a-model"}
    assert _ids(results["random.bin"]) == {"format.unknown", "format.not-a-model"}
    assert _ids(results["image.pt"]) == {"format.unknown", "format.not-a-model"}
    assert "format.not-a-model" in _ids(results["trunc.pkl"])
    for name in ("empty.pt", "random.bin", "image.pt", "trunc.pkl"):
        assert results[name].severity >= Severity.HIGH, name


def test_extension_is_ignored(scanner: Scanner, tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(_evil(canary))
    result = scanner.scan_file(path)
    assert result.format == "pickle"
    assert result.severity == Severity.CRITICAL


@pytest.mark.parametrize("kind", ["gzip", "bz2", "xz", "zlib", "lz4"])
def test_compressed_pickles(scanner: Scanner, canary: Path, kind: str) -> None:
    raw = _evil(canary)
    if kind == "gzip":
        data = gzip.compress(raw)
    elif kind == "bz2":
        data = bz2.compress(raw)
    elif kind == "xz":
        data = lzma.compress(raw)
    elif kind == "zlib":
        data = zlib.compress(raw)
    else:
        import lz4.frame

        data = lz4.frame.compress(raw)
    result = scanner.scan_bytes(data)
    assert result.severity == Severity.CRITICAL, result.findings
    assert result.format.endswith(kind)


def test_zip_members_and_nesting(scanner: Scanner, canary: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("payload.pkl", _evil(canary))
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w") as t:
        info = tarfile.TarInfo("bundle/inner.zip")
        info.size = len(inner.getvalue())
        t.addfile(info, io.BytesIO(inner.getvalue()))
    result = scanner.scan_bytes(outer.getvalue(), "bundle.tar")
    crit = [f for f in result.findings if f.severity == Severity.CRITICAL]
    assert crit
    assert crit[0].location.member == "bundle/inner.zip/payload.pkl"


def _zip_with(member: str, data: bytes, *, method: int = zipfile.ZIP_DEFLATED) -> bytearray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(member, data)
    return bytearray(buf.getvalue())


def test_zip_encryption_flag_is_tampering_and_still_scanned(scanner: Scanner, canary: Path) -> None:
    raw = _zip_with("archive/data.pkl", _evil(canary))
    cd = raw.rfind(b"PK\x01\x02")
    for off in (6, cd + 8):  # local and central general-purpose flags
        flags = struct.unpack_from("<H", raw, off)[0] | 1
        struct.pack_into("<H", raw, off, flags)
    with pytest.raises(RuntimeError):  # Python's zipfile refuses the member
        zipfile.ZipFile(io.BytesIO(bytes(raw))).read("archive/data.pkl")
    result = scanner.scan_bytes(bytes(raw))
    assert "archive.zip-tampering" in _ids(result)
    assert result.severity == Severity.CRITICAL


def test_zip_crc_mismatch_is_tampering(scanner: Scanner, canary: Path) -> None:
    raw = _zip_with("data.pkl", _evil(canary))
    cd = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<I", raw, cd + 16, 0xDEADBEEF)
    struct.pack_into("<I", raw, 14, 0xDEADBEEF)
    result = scanner.scan_bytes(bytes(raw))
    assert any("CRC" in f.title for f in result.findings)
    assert result.severity == Severity.CRITICAL


def test_zip_local_name_mismatch(scanner: Scanner, canary: Path) -> None:
    raw = _zip_with("archive/data.pkl", _evil(canary))
    raw[30 : 30 + len("archive/data.pkl")] = b"archive/xxxx.pkl"
    result = scanner.scan_bytes(bytes(raw))
    assert any("local header names" in f.title for f in result.findings)
    assert result.severity == Severity.CRITICAL


def test_zip_bomb_is_a_finding(tmp_path: Path) -> None:
    raw = _zip_with("big.bin", b"\0" * (64 << 20))
    result = Scanner(limits=Limits(ratio_floor=1 << 20, max_ratio=100)).scan_bytes(bytes(raw))
    assert "archive.bomb" in _ids(result)
    assert result.severity == Severity.HIGH


def test_depth_limit(canary: Path) -> None:
    data = _evil(canary)
    for _ in range(5):
        data = bytes(_zip_with("x.zip", data))
    result = Scanner(limits=Limits(max_depth=3)).scan_bytes(data)
    assert "archive.resource-limit" in _ids(result)


def test_unsafe_member_path(scanner: Scanner) -> None:
    raw = _zip_with("../../etc/cron.d/x", b"hello")
    result = scanner.scan_bytes(bytes(raw))
    assert "archive.unsafe-path" in _ids(result)


def test_sniff_formats() -> None:
    assert sniff(b"") == "empty"
    assert sniff(b"\x80\x04K\x01.") == "pickle"
    assert sniff(b"PK\x03\x04rest") == "zip"
    assert sniff(b"\x93NUMPY\x01\x00") == "npy"
    assert sniff(gzip.compress(b"abc")) == "gzip"


def test_unreadable_file_is_reported(tmp_path: Path, scanner: Scanner) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    p = tmp_path / "locked.pt"
    p.write_bytes(b"x")
    p.chmod(0)
    result = scanner.scan_paths([p])[0]
    assert result.format == "unreadable"


def test_fifo_is_not_opened(tmp_path: Path, scanner: Scanner) -> None:
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps([1]))
    results = {Path(r.path).name: r for r in scanner.scan_paths([tmp_path])}
    assert results["pipe.pt"].format == "unreadable"
    assert "not a regular file" in results["pipe.pt"].findings[0].description
    assert results["ok.pkl"].severity == Severity.NONE


def test_corrupt_deflate_member_is_a_finding_and_other_members_are_scanned(
    scanner: Scanner, canary: Path
) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/broken.pkl", os.urandom(2000))
        z.writestr("b/evil.pkl", _evil(canary))
    raw = bytearray(buf.getvalue())
    start = 30 + len("a/broken.pkl")
    raw[start : start + 40] = b"\xff" * 40  # wreck the first member's deflate stream
    result = scanner.scan_bytes(bytes(raw))
    assert any("cannot be decompressed" in f.title for f in result.findings)
    assert result.severity == Severity.CRITICAL  # the intact member was still analysed
    assert not any(f.title.startswith("Scanner could not analyse") for f in result.findings)
