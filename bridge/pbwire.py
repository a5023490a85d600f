"""Just enough of the protobuf wire format to splice and locate large byte fields.

Protobuf's own (upb) encoder re-grows its buffer while serialising multi-megabyte byte
fields, and its parser copies them out on every access. Frames are written and read
around their pixel bytes with these helpers instead, so that pixels are copied once on
the way out and not at all on the way in. Metadata is still (de)serialised by protobuf.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.types import InvalidArgumentError

Buffer = bytes | bytearray | memoryview

WIRETYPE_VARINT = 0
WIRETYPE_FIXED64 = 1
WIRETYPE_LEN = 2  # length-delimited: bytes, strings, embedded messages
WIRETYPE_FIXED32 = 5
TAG_SHIFT = 3
WIRETYPE_MASK = 0x07
VARINT_PAYLOAD_MASK = 0x7F
VARINT_CONTINUE = 0x80
VARINT_BITS_PER_BYTE = 7
MAX_VARINT_BYTES = 10
FIXED64_BYTES = 8
FIXED32_BYTES = 4


def _number(message: type, name: str) -> int:
    return message.DESCRIPTOR.fields_by_name[name].number


IMAGE_DATA = _number(pb.Image, "data")
FRAME_RGB = _number(pb.Frame, "rgb")
FRAME_DEPTH = _number(pb.Frame, "depth")
FRAMESET_FRAMES = _number(service_pb.FrameSet, "frames")
CHUNK_FRAME = _number(service_pb.FrameChunk, "frame")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & VARINT_PAYLOAD_MASK
        value >>= VARINT_BITS_PER_BYTE
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | VARINT_CONTINUE)


# Tags and small lengths recur in every message: encode them once.
_ONE_BYTE_VARINTS = tuple(_encode_varint(v) for v in range(VARINT_CONTINUE))


TWO_BYTE_VARINT_LIMIT = 1 << 14
THREE_BYTE_VARINT_LIMIT = 1 << 21


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer (ids and sizes: short ones spelled out)."""
    if 0 <= value < VARINT_CONTINUE:
        return _ONE_BYTE_VARINTS[value]
    if VARINT_CONTINUE <= value < TWO_BYTE_VARINT_LIMIT:
        return bytes((value & VARINT_PAYLOAD_MASK | VARINT_CONTINUE, value >> VARINT_BITS_PER_BYTE))
    if TWO_BYTE_VARINT_LIMIT <= value < THREE_BYTE_VARINT_LIMIT:
        return bytes(
            (
                value & VARINT_PAYLOAD_MASK | VARINT_CONTINUE,
                value >> VARINT_BITS_PER_BYTE & VARINT_PAYLOAD_MASK | VARINT_CONTINUE,
                value >> 2 * VARINT_BITS_PER_BYTE,
            )
        )
    if value < 0:
        raise ValueError(f"a varint must be >= 0, got {value}")
    return _encode_varint(value)


# A world's frames keep their sizes from step to step, so the same few headers recur.
LEN_HEADER_CACHE_SIZE = 256


@functools.lru_cache(maxsize=LEN_HEADER_CACHE_SIZE)
def len_header(field_number: int, length: int) -> bytes:
    """Tag and length prefix of a length-delimited field (cached: sizes recur every step)."""
    return varint(field_number << TAG_SHIFT | WIRETYPE_LEN) + varint(length)


def submessage(field_number: int, parts: list[Buffer]) -> list[Buffer]:
    """`parts` (the serialised fields of a message) wrapped as embedded field `field_number`."""
    return [len_header(field_number, sum(map(len, parts))), *parts]


def bytes_view(data: Buffer) -> memoryview:
    """A flat byte view (itemsize 1) of any C-contiguous buffer, without copying."""
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class Field(NamedTuple):
    """One field of a serialised message.

    Attributes:
        number: the field number.
        wire_type: WIRETYPE_*.
        key_start: offset of the field's tag (the field's raw bytes are [key_start, end)).
        start: offset of the value (for LEN fields: of the payload, after the length).
        end: offset just past the value.
    """

    number: int
    wire_type: int
    key_start: int
    start: int
    end: int


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of the varint at `pos`."""
    result = shift = 0
    for _ in range(MAX_VARINT_BYTES):
        if pos >= end:
            break
        byte = buf[pos]
        pos += 1
        result |= (byte & VARINT_PAYLOAD_MASK) << shift
        if byte < VARINT_CONTINUE:
            return result, pos
        shift += VARINT_BITS_PER_BYTE
    raise InvalidArgumentError("malformed protobuf message: truncated or overlong varint")


def scan_fields(buf: memoryview, start: int, end: int) -> Iterator[Field]:
    """The fields of the message serialised in buf[start:end], in wire order.

    Raises:
        InvalidArgumentError: the bytes are not a well-formed message.
    """
    pos = start
    while pos < end:
        key_start = pos
        key = buf[pos]
        if key < VARINT_CONTINUE:  # one-byte keys (fields 1..15) are the common case
            pos += 1
        else:
            key, pos = read_varint(buf, pos, end)
        number, wire_type = key >> TAG_SHIFT, key & WIRETYPE_MASK
        if wire_type == WIRETYPE_LEN:
            length, pos = read_varint(buf, pos, end)
            value_end = pos + length
        elif wire_type == WIRETYPE_VARINT:
            _, value_end = read_varint(buf, pos, end)
        elif wire_type == WIRETYPE_FIXED64:
            value_end = pos + FIXED64_BYTES
        elif wire_type == WIRETYPE_FIXED32:
            value_end = pos + FIXED32_BYTES
        else:
            raise InvalidArgumentError(
                f"malformed protobuf message: wire type {wire_type} at byte {key_start}"
            )
        if number == 0 or value_end > end:
            raise InvalidArgumentError(f"malformed protobuf message: field {number} overruns its message")
        yield Field(number, wire_type, key_start, pos, value_end)
        pos = value_end
