"""A zip reader that reads archives the way PyTorch's (miniz) reader does.

It trusts the central directory, ignores the encryption flag, does not stop on CRC errors and
locates data through the local header's own name/extra lengths — and reports every such
irregularity, because Python's ``zipfile`` refuses these archives and scanners built on it skip the
members that ``torch.load`` still runs.
"""

from __future__ import annotations

import posixpath
import struct
import zlib
from dataclasses import dataclass, field

from mlarmor.scan._base import Buffer

__all__ = ["ZipEntry", "ZipFormatError", "ZipListing", "read_zip"]

_EOCD = b"PK\x05\x06"
_EOCD64_LOC = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"


class ZipFormatError(ValueError):
    """The archive's directory cannot be read."""


@dataclass(slots=True)
class ZipEntry:
    """One central-directory record plus what its local header says."""

    name: str
    method: int
    flags: int
    crc: int
    csize: int
    usize: int
    header_offset: int
    data_offset: int = -1
    local_name: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def is_dir(self) -> bool:
        """Directory entries carry no data."""
        return self.name.endswith("/")

    @property
    def encrypted(self) -> bool:
        """General-purpose flag bit 0."""
        return bool(self.flags & 1)

    def data(self, buf: Buffer) -> memoryview:
        """The member's compressed bytes (zero-copy)."""
        return memoryview(buf)[self.data_offset : self.data_offset + self.csize]

    def check_crc(self, plain: Buffer) -> bool:
        """Whether ``plain`` matches the recorded CRC-32."""
        return zlib.crc32(plain) & 0xFFFFFFFF == self.crc


@dataclass(slots=True)
class ZipListing:
    """The archive's entries and archive-level irregularities."""

    entries: list[ZipEntry]
    problems: list[str]


def _u16(b: Buffer, o: int) -> int:
    return int(struct.unpack_from("<H", b, o)[0])


def _u32(b: Buffer, o: int) -> int:
    return int(struct.unpack_from("<I", b, o)[0])


def _u64(b: Buffer, o: int) -> int:
    return int(struct.unpack_from("<Q", b, o)[0])


def _decode(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")


def unsafe_path(name: str) -> str | None:
    """Why ``name`` would escape an extraction folder, or None."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return "absolute path"
    if ".." in posixpath.normpath(n).split("/")[:1] or posixpath.normpath(n).startswith("../"):
        return "'..' escapes the archive"
    return None


def read_zip(buf: Buffer, *, max_entries: int) -> ZipListing:
    """Read the central directory of the zip in ``buf``."""
    size = len(buf)
    tail_start = max(0, size - (1 << 16) - 22)
    tail = bytes(buf[tail_start:size])
    pos = tail.rfind(_EOCD)
    if pos < 0:
        raise ZipFormatError("no end-of-central-directory record (truncated or not a zip)")
    eocd = tail_start + pos
    if eocd + 22 > size:
        raise ZipFormatError("end-of-central-directory record is cut off")
    count = _u16(buf, eocd + 10)
    cd_size = _u32(buf, eocd + 12)
    cd_offset = _u32(buf, eocd + 16)
    problems: list[str] = []
    if (count == 0xFFFF or cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF) and eocd >= 20:
        loc = eocd - 20
        if bytes(buf[loc : loc + 4]) == _EOCD64_LOC:
            rec = _u64(buf, loc + 8)
            if rec + 56 <= size and bytes(buf[rec : rec + 4]) == _EOCD64:
                count = _u64(buf, rec + 32)
                cd_size = _u64(buf, rec + 40)
                cd_offset = _u64(buf, rec + 48)
    # archives with data prepended (or a wrong offset): locate the directory relative to the EOCD
    delta = 0
    if (
        cd_offset + cd_size != eocd
        and eocd - cd_size >= 0
        and bytes(buf[eocd - cd_size : eocd - cd_size + 4]) == _CENTRAL
    ):
        delta = eocd - cd_size - cd_offset
        problems.append(f"central directory offset is off by {delta} bytes (data prepended to the archive)")
    if count > max_entries:
        raise ZipFormatError(f"the archive declares {count} members, more than the limit of {max_entries}")
    entries: list[ZipEntry] = []
    p = cd_offset + delta
    for _ in range(count):
        if p + 46 > size or bytes(buf[p : p + 4]) != _CENTRAL:
            raise ZipFormatError(f"central directory record {len(entries)} is damaged at offset {p}")
        flags, method = _u16(buf, p + 8), _u16(buf, p + 10)
        crc, csize, usize = _u32(buf, p + 16), _u32(buf, p + 20), _u32(buf, p + 24)
        nlen, xlen, clen = _u16(buf, p + 28), _u16(buf, p + 30), _u16(buf, p + 32)
        hoff = _u32(buf, p + 42)
        name = _decode(bytes(buf[p + 46 : p + 46 + nlen]), flags)
        extra = bytes(buf[p + 46 + nlen : p + 46 + nlen + xlen])
        usize, csize, hoff = _zip64(extra, usize, csize, hoff)
        entries.append(ZipEntry(name, method, flags, crc, csize, usize, hoff + delta))
        p += 46 + nlen + xlen + clen
    seen: set[str] = set()
    for e in entries:
        if e.name in seen:
            e.problems.append("duplicate member name (readers disagree on which copy they use)")
        seen.add(e.name)
        h = e.header_offset
        if h + 30 > size or bytes(buf[h : h + 4]) != _LOCAL:
            e.problems.append(f"no local header at offset {h}")
            continue
        nlen, xlen = _u16(buf, h + 26), _u16(buf, h + 28)
        e.local_name = _decode(bytes(buf[h + 30 : h + 30 + nlen]), _u16(buf, h + 6))
        e.data_offset = h + 30 + nlen + xlen
        if e.local_name != e.name:
            e.problems.append(f"local header names {e.local_name!r} but the central directory {e.name!r}")
        if e.encrypted:
            e.problems.append(
                "encryption flag is set (PyTorch ignores it; Python's zipfile refuses the member)"
            )
        if e.data_offset + e.csize > size:
            e.problems.append("member data runs past the end of the file")
    return ZipListing(entries, problems)


def _zip64(extra: bytes, usize: int, csize: int, hoff: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + ln]
        if tag == 0x0001:
            j = 0
            if usize == 0xFFFFFFFF and j + 8 <= len(body):
                usize = struct.unpack_from("<Q", body, j)[0]
                j += 8
            if csize == 0xFFFFFFFF and j + 8 <= len(body):
                csize = struct.unpack_from("<Q", body, j)[0]
                j += 8
            if hoff == 0xFFFFFFFF and j + 8 <= len(body):
                hoff = struct.unpack_from("<Q", body, j)[0]
        i += 4 + ln
    return usize, csize, hoff
