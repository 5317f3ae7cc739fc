"""Bounded decompression: every byte produced is counted, bombs and limits become errors."""

from __future__ import annotations

import bz2
import lzma
import mmap
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from mlarmor.errors import ResourceLimitError
from mlarmor.scan._base import Buffer, Scope

__all__ = ["BombError", "Decoded", "decompress", "sniff_compression"]

_CHUNK = 1 << 20
# Compressed input is fed in small pieces so that the ratio check sees the bytes actually consumed:
# 1 MiB of a zero bomb holds gigabytes of output, which must not be produced before the check.
_FEED = 1 << 16
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
# The start of a further stream of each codec. gzip, bz2, xz/lzma and lz4 readers (gzip.GzipFile,
# bz2/lzma/lz4 file objects, joblib's) go on with the next stream when one ends; raw zlib and zip
# members are read as one stream by their loaders, but a further stream is scanned all the same.
_NEXT = {
    "gzip": (b"\x1f\x8b",),
    "bz2": (b"BZh",),
    "xz": (b"\xfd7zXZ\x00",),
    "lzma": (b"\xfd7zXZ\x00", b"\x5d\x00\x00"),
    "lz4": (b"\x04\x22\x4d\x18", *(bytes([m, 0x2A, 0x4D, 0x18]) for m in range(0x50, 0x60))),
}
_ERRORS = (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, RuntimeError)


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a bounded decompression produced.

    Attributes:
        data: Every byte decoded, from every stream, joined (also when decoding stopped early).
        streams: Streams decoded (gzip members, bz2/xz/LZMA streams, lz4 frames, zlib streams).
        problem: Why decoding stopped before the end of the input (corrupt data, a stream cut short,
            bytes after the last stream that start no stream), or None when all of it decoded.
        offset: Input offset at or after which the problem lies.
    """

    data: Buffer
    streams: int = 1
    problem: str | None = None
    offset: int | None = None


def _starts_stream(kind: str, rest: bytes) -> bool:
    if kind in ("zlib", "deflate"):
        return sniff_compression(rest) == "zlib"
    return rest.startswith(_NEXT.get(kind, ()))


def _steps(d: Any, kind: str, feed: bytes) -> Iterator[bytes]:
    """Feed ``feed`` and yield output in bounded chunks until the decompressor wants more input."""
    yield d.decompress(feed, _CHUNK)
    if kind in _ZLIB:
        while d.unconsumed_tail and not d.eof:
            yield d.decompress(d.unconsumed_tail, _CHUNK)
    else:
        while not d.eof and not d.needs_input:
            yield d.decompress(b"", _CHUNK)


def decompress(kind: str, data: Buffer, scope: Scope) -> Decoded:
    """Decompress every stream of ``data`` with bounds from ``scope.limits``; the streams are joined.

    Zero bytes between streams (gzip and xz padding) are skipped. Decoding never raises on damaged
    input: it returns what was decoded so far with the :attr:`Decoded.problem`, so that the caller
    scans the part a loader would have run and reports the rest as unreadable.

    Raises:
        BombError: when the output passes ``max_ratio`` times the input beyond ``ratio_floor``.
        ResourceLimitError: when the output passes ``max_member_bytes`` or the file's byte budget.
    """
    limits = scope.limits
    sink = _Sink()
    view = data if isinstance(data, memoryview) else memoryview(data)
    pos = 0  # input bytes handed to decompressors so far
    base = 0  # input offset where the current stream starts
    d = _decompressor(kind)
    streams = 1
    queue: list[bytes] = []

    def done(problem: str | None = None, offset: int | None = None) -> Decoded:
        return Decoded(sink.result(), streams, problem, offset)

    while True:
        if queue:
            feed = queue.pop()
        elif pos < len(view):
            feed = bytes(view[pos : pos + _FEED])
            pos += len(feed)
        else:
            break
        try:
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
        except ResourceLimitError:
            raise
        except _ERRORS as e:
            return done(f"{kind} stream {streams} is corrupt: {e}", base)
        if d.eof:
            rest = bytes(d.unused_data or b"")
            if pos < len(view) and len(rest) < 64:  # make sure the next stream's header is in view
                more = bytes(view[pos : pos + _FEED])
                pos += len(more)
                rest += more
            stripped = rest.lstrip(b"\x00")
            while not stripped and pos < len(view):  # zero padding longer than the bytes in view
                stripped = bytes(view[pos : pos + _CHUNK]).lstrip(b"\x00")
                pos = min(pos + _CHUNK, len(view))
            if not stripped:
                break
            base = pos - len(stripped)
            if not _starts_stream(kind, stripped):
                return done(
                    f"{len(view) - base} bytes after {kind} stream {streams} are not a {kind} stream",
                    base,
                )
            d = _decompressor(kind)
            streams += 1
            queue.append(stripped)
    if kind in _ZLIB and not d.eof:
        try:
            tail = d.flush()
        except _ERRORS:
            tail = b""
        if tail:
            sink.write(tail)
            scope.charge(nbytes=len(tail))
    if not d.eof:
        return done(
            f"{kind} stream {streams} is cut short: the input ends before the end of the stream", base
        )
    return done()
