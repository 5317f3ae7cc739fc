"""A minimal, allocation-free reader of the protobuf wire format.

It walks the fields of one message inside a buffer and hands back spans (start and end
offsets) for length-delimited fields instead of copies, so a multi-gigabyte ONNX model is
read without copying its tensor data. It knows nothing about schemas; callers interpret
field numbers. Wire format reference: https://protobuf.dev/programming-guides/encoding/
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["LEN", "VARINT", "WIRE_NAMES", "Field", "ProtobufError", "iter_fields", "read_string"]

VARINT: Final = 0
I64: Final = 1
LEN: Final = 2
SGROUP: Final = 3
EGROUP: Final = 4
I32: Final = 5

_MAX_FIELD_NUMBER: Final = (1 << 29) - 1
WIRE_NAMES: Final = {VARINT: "varint", I64: "64-bit", LEN: "length-delimited", I32: "32-bit"}


class ProtobufError(Exception):
    """The bytes at ``offset`` are not valid protobuf wire format."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset
        self.message = message


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message.

    Attributes:
        number: the field number from the tag.
        wire: the wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit).
        value: the integer for varint and fixed-width fields; the payload length otherwise.
        start: offset of the payload (for length-delimited fields) or of the value.
        end: offset just past the payload or value.
        tag_offset: offset of the field's tag, for error locations.
    """

    number: int
    wire: int
    value: int
    start: int
    end: int
    tag_offset: int

    @property
    def wire_name(self) -> str:
        """Readable name of the wire type."""
        return WIRE_NAMES.get(self.wire, str(self.wire))


def read_varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; returns the value and the offset after it."""
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise ProtobufError(start, "varint runs past the end of its message")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(start, "varint is longer than 10 bytes")


def iter_fields(data: memoryview, start: int, end: int) -> Iterator[Field]:
    """Yield the fields of the message occupying ``data[start:end]``.

    Raises:
        ProtobufError: on a truncated field, an invalid tag or wire type, or a group (groups are
            deprecated and never used by ONNX, so they are rejected rather than skipped).
    """
    pos = start
    while pos < end:
        tag_offset = pos
        key, pos = read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise ProtobufError(tag_offset, f"invalid field number {number}")
        if wire == VARINT:
            value, after = read_varint(data, pos, end)
        elif wire == I64:
            after = pos + 8
            if after > end:
                raise ProtobufError(tag_offset, f"64-bit field {number} runs past the end of its message")
            value = struct.unpack_from("<Q", data, pos)[0]
        elif wire == I32:
            after = pos + 4
            if after > end:
                raise ProtobufError(tag_offset, f"32-bit field {number} runs past the end of its message")
            value = struct.unpack_from("<I", data, pos)[0]
        elif wire == LEN:
            value, pos = read_varint(data, pos, end)
            after = pos + value
            if after > end:
                raise ProtobufError(
                    tag_offset,
                    f"length-delimited field {number} declares {value} bytes but only {end - pos} remain",
                )
        elif wire in (SGROUP, EGROUP):
            raise ProtobufError(tag_offset, f"field {number} uses the deprecated group encoding")
        else:
            raise ProtobufError(tag_offset, f"field {number} has invalid wire type {wire}")
        yield Field(number, wire, value, pos, after, tag_offset)
        pos = after


def read_string(data: memoryview, field: Field, limit: int = 4096) -> str:
    """Decode a length-delimited field as UTF-8 text, keeping at most ``limit`` bytes.

    Invalid UTF-8 is replaced rather than rejected: the text is for reports and comparisons,
    and a replacement character never matches a trusted domain or a safe path.
    """
    stop = min(field.end, field.start + limit)
    return bytes(data[field.start : stop]).decode("utf-8", errors="replace")
