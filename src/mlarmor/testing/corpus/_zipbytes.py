"""Byte-level archive helpers: write zips and tars in memory and patch single zip header fields.

The patches reproduce the malformations that Python's :mod:`zipfile` refuses while PyTorch's
miniz-based reader ignores them (flag bits, CRC-32, a local-header name that differs from the
central directory).
"""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
from collections.abc import Iterable

__all__ = ["patch_member", "read_zip", "write_tar", "write_zip"]

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"


def write_zip(members: Iterable[tuple[str, bytes]], *, compress: bool | Iterable[str] = False) -> bytes:
    """Write ``(name, data)`` members to a zip in memory.

    Args:
        members: Archive members in order.
        compress: ``True`` deflates every member, an iterable of names deflates only those.
    """
    names = set(compress) if not isinstance(compress, bool) else set()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            deflate = compress is True or name in names
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            zf.writestr(info, data)
    return buf.getvalue()


def read_zip(data: bytes) -> list[tuple[str, bytes]]:
    """Return the members of a well-formed zip, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def patch_member(
    data: bytes,
    name: str,
    *,
    flags_or: int = 0,
    crc_xor: int = 0,
    local_name: str | None = None,
    local: bool = True,
    central: bool = True,
) -> bytes:
    """Patch one member's headers.

    Args:
        data: A zip written by :func:`write_zip`.
        name: The member to patch (central-directory name).
        flags_or: Bits OR-ed into the general-purpose flag.
        crc_xor: Value XOR-ed into the stored CRC-32.
        local_name: Replacement file name in the local header (same length as ``name``).
        local: Patch the local file header.
        central: Patch the central-directory entry.

    Raises:
        ValueError: If the member is missing or ``local_name`` changes the name length.
    """
    out = bytearray(data)
    raw = name.encode()
    if local_name is not None and len(local_name.encode()) != len(raw):
        raise ValueError("local_name must have the same length as name.")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(name)
    hdr = info.header_offset
    if bytes(out[hdr : hdr + 4]) != _LOCAL:
        raise ValueError(f"No local header for {name!r}.")
    if local:
        (flags,) = struct.unpack_from("<H", out, hdr + 6)
        struct.pack_into("<H", out, hdr + 6, flags | flags_or)
        (crc,) = struct.unpack_from("<I", out, hdr + 14)
        struct.pack_into("<I", out, hdr + 14, crc ^ crc_xor)
        if local_name is not None:
            out[hdr + 30 : hdr + 30 + len(raw)] = local_name.encode()
    if central:
        pos = out.find(_CENTRAL)
        while pos != -1:
            (name_len,) = struct.unpack_from("<H", out, pos + 28)
            if bytes(out[pos + 46 : pos + 46 + name_len]) == raw:
                (flags,) = struct.unpack_from("<H", out, pos + 8)
                struct.pack_into("<H", out, pos + 8, flags | flags_or)
                (crc,) = struct.unpack_from("<I", out, pos + 16)
                struct.pack_into("<I", out, pos + 16, crc ^ crc_xor)
                break
            pos = out.find(_CENTRAL, pos + 4)
        else:
            raise ValueError(f"No central-directory entry for {name!r}.")
    return bytes(out)


def write_tar(members: Iterable[tuple[str, bytes]], mode: str = "w", *, fmt: str = "pax") -> bytes:
    """Write ``(name, data)`` members to a tar in memory (``mode`` ``"w"`` or ``"w:gz"``).

    ``fmt`` is the tar variant: ``"pax"``, ``"gnu"`` or ``"ustar"``.
    """
    buf = io.BytesIO()
    variant = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}[fmt]
    with tarfile.open(fileobj=buf, mode=mode, format=variant) as tf:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()
