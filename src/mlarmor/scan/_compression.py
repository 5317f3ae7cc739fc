"""Bounded decompression: every byte produced is counted, bombs and limits become errors."""

from __future__ import annotations

import bz2
import lzma
import mmap
import tempfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from mlarmor.errors import ResourceLimitError
from mlarmor.scan._base import Buffer, Scope

__all__ = ["BombError", "decompress", "sniff_compression"]

_CHUNK = 1 << 20
_SPILL = 256 << 20


class BombError(ResourceLimitError):
    """The output grew past the allowed compression ratio."""

    def __init__(self, produced: int, consumed: int) -> None:
        super().__init__(f"expanded {consumed} compressed bytes to more than {produced} bytes")
        self.produced = produced
        self.consumed = consumed


def sniff_compression(data: Buffer) -> str | None:
    """Name of the compression whose magic bytes start ``data`` (zlib only with a valid header)."""
    head = bytes(data[:6])
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and len(head) > 3 and 0x31 <= head[3] <= 0x39:
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x5d\x00\x00"):
        return "lzma"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0 and head[0] >> 4 <= 7:
        return "zlib"
    return None


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(31)
    if kind == "zlib":
        return zlib.decompressobj(15)
    if kind == "deflate":
        return zlib.decompressobj(-15)
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind in ("xz", "lzma"):
        return lzma.LZMADecompressor(lzma.FORMAT_AUTO)
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor()
    raise ValueError(f"unknown compression {kind!r}")


class _Sink:
    """Collects output in memory, spilling to a temporary file past ``_SPILL`` bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.file: BinaryIO | None = None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.file is None and len(self.buf) + len(chunk) <= _SPILL:
            self.buf += chunk
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the returned mmap
            self.file.write(self.buf)
            self.buf = bytearray()
        self.file.write(chunk)

    def result(self) -> Buffer:
        if self.file is None:
            return bytes(self.buf)
        self.file.flush()
        return mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)


_ZLIB = ("gzip", "zlib", "deflate")


def _steps(d: Any, kind: str, feed: bytes) -> Iterator[bytes]:
    """Feed ``feed`` and yield output in bounded chunks until the decompressor wants more input."""
    yield d.decompress(feed, _CHUNK)
    if kind in _ZLIB:
        while d.unconsumed_tail and not d.eof:
            yield d.decompress(d.unconsumed_tail, _CHUNK)
    else:
        while not d.eof and not d.needs_input:
            yield d.decompress(b"", _CHUNK)


def decompress(kind: str, data: Buffer, scope: Scope) -> Buffer:
    """Decompress ``data`` with bounds from ``scope.limits``; concatenated members are joined.

    Raises:
        BombError: when the output passes ``max_ratio`` times the input beyond ``ratio_floor``.
        ResourceLimitError: when the output passes ``max_member_bytes`` or the file's byte budget.
    """
    limits = scope.limits
    sink = _Sink()
    view = data if isinstance(data, memoryview) else memoryview(data)
    pos = 0
    d = _decompressor(kind)
    queue: list[bytes] = []
    while True:
        if queue:
            feed = queue.pop()
        elif pos < len(view):
            feed = bytes(view[pos : pos + _CHUNK])
            pos += len(feed)
        else:
            break
        for out in _steps(d, kind, feed):
            if not out:
                continue
            sink.write(out)
            scope.charge(nbytes=len(out))
            if sink.size > limits.max_member_bytes:
                raise ResourceLimitError(
                    f"a compressed stream expands past {limits.max_member_bytes} bytes "
                    "(raise --max-member-bytes if the file is trusted)"
                )
            if sink.size > limits.ratio_floor and sink.size / max(pos, 1) > limits.max_ratio:
                raise BombError(sink.size, pos)
        if d.eof:
            rest = bytes(d.unused_data or b"")
            if kind in ("gzip", "bz2", "xz", "lz4") and rest.strip(b"\x00"):
                d = _decompressor(kind)
                queue.append(rest)
                continue
            break
    if kind in _ZLIB and not d.eof:
        tail = d.flush()
        if tail:
            sink.write(tail)
            scope.charge(nbytes=len(tail))
    return sink.result()
