"""Framing: whole FrameSets and streamed FrameChunks written around large pixel buffers.

Why by hand: upb's `SerializeToString` on a Frame holding two multi-megabyte byte fields
costs ~4 ms at 640x480 (it re-grows its encode buffer), about forty times a memcpy of the
same bytes. A protobuf message is a concatenation of fields, so the small metadata is
serialised by protobuf itself and the pixel bytes are spliced in by one `b"".join` per
message: one copy from the engine's arrays to the bytes gRPC sends, and bytes that any
protobuf parser (Python, C++, the Unreal plugin) reads as usual.

An `EncodedFrameSet` holds views of the engine's arrays, so it must be serialised (by
`to_bytes` or `chunks`, which copy) before the engine runs again; the server does both
under the session lock and caches the serialised bytes for idempotent retries.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

from bridge.pbwire import (
    CHUNK_FRAME,
    FRAME_DEPTH,
    FRAME_RGB,
    FRAMESET_FRAMES,
    IMAGE_DATA,
    Buffer,
    bytes_view,
    len_header,
    submessage,
    varint,
)
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.reassembly import AssembledFrameSet

# A chunk carries at least this much plane data, so a careless client cannot make the
# server emit one message per byte.
MIN_CHUNK_BYTES = 1024


# A world's planes keep their format and size from step to step: serialise each header once.
IMAGE_HEADER_CACHE_SIZE = 64


@functools.lru_cache(maxsize=IMAGE_HEADER_CACHE_SIZE)
def image_header(pixel_format: int, codec: int, width: int, height: int, total_bytes: int) -> bytes:
    """Serialised `Image` without `data` (cached: a world's planes keep their format and size)."""
    meta = pb.Image(format=pixel_format, codec=codec, width=width, height=height, total_bytes=total_bytes)
    return meta.SerializeToString()


class EncodedPlane(NamedTuple):
    """One image plane ready for the wire.

    Attributes:
        header: serialised `Image` without `data` (format, codec, size, total_bytes).
        data: the encoded plane bytes (a view: valid while its owner is unchanged).
    """

    header: bytes
    data: memoryview

    @staticmethod
    def create(pixel_format: int, codec: int, width: int, height: int, data: Buffer) -> EncodedPlane:
        """Plane of `data` (any C-contiguous buffer) with its header."""
        view = bytes_view(data)
        return EncodedPlane(image_header(pixel_format, codec, width, height, view.nbytes), view)

    @staticmethod
    def from_meta(meta: pb.Image, data: Buffer) -> EncodedPlane:
        """Plane of `data` with the format, codec and size of an `Image` header."""
        return EncodedPlane.create(meta.format, meta.codec, meta.width, meta.height, data)


class EncodedFrame(NamedTuple):
    """One agent's frame ready for the wire.

    Attributes:
        header: serialised `Frame` without `rgb` and `depth`.
        rgb: the colour plane.
        depth: the depth plane.
    """

    header: bytes
    rgb: EncodedPlane
    depth: EncodedPlane

    @staticmethod
    def from_parts(meta: pb.Frame, rgb_data: Buffer, depth_data: Buffer) -> EncodedFrame:
        """Frame of a `Frame` header (its planes' own data ignored) and separate plane bytes."""
        header = pb.Frame()
        header.CopyFrom(meta)
        header.ClearField("rgb")
        header.ClearField("depth")
        return EncodedFrame(
            header.SerializeToString(),
            EncodedPlane.from_meta(meta.rgb, rgb_data),
            EncodedPlane.from_meta(meta.depth, depth_data),
        )


def _image_parts(header: bytes, data: Buffer) -> list[Buffer]:
    """Fields of an `Image` message: its header fields then `data`."""
    return [header, len_header(IMAGE_DATA, len(data)), data]


class EncodedFrameSet(NamedTuple):
    """One step's frames, ready to be written as a FrameSet or as FrameChunks.

    Attributes:
        step_id: the step these frames answer (0 for Reset and SetPose).
        frames: per-agent frames.
    """

    step_id: int
    frames: tuple[EncodedFrame, ...]

    @staticmethod
    def from_proto(frameset: service_pb.FrameSet) -> EncodedFrameSet:
        """Frames of an already built `FrameSet` message (tests, proxies; not the hot path)."""
        frames = [EncodedFrame.from_parts(f, f.rgb.data, f.depth.data) for f in frameset.frames]
        return EncodedFrameSet(frameset.step_id, tuple(frames))

    @staticmethod
    def from_assembled(frameset: AssembledFrameSet) -> EncodedFrameSet:
        """Frames of a FrameSet read back from bytes or chunks (to re-serialise it)."""
        frames = [EncodedFrame.from_parts(f.meta, f.rgb, f.depth) for f in frameset.frames]
        return EncodedFrameSet(frameset.step_id, tuple(frames))

    @property
    def payload_bytes(self) -> int:
        """Encoded plane bytes of all frames (what MB/s figures count)."""
        return sum(f.rgb.data.nbytes + f.depth.data.nbytes for f in self.frames)

    def to_bytes(self) -> bytes:
        """The serialised `FrameSet` message (what unary calls return); one copy of the pixels."""
        parts: list[Buffer] = [_STEP_ID_KEY, varint(self.step_id)] if self.step_id else []
        for frame in self.frames:
            body = _frame_body(frame)
            parts += [len_header(FRAMESET_FRAMES, sum(map(len, body))), *body]
        return b"".join(parts)

    def chunks(self, max_chunk_bytes: int) -> list[bytes]:
        """All serialised `FrameChunk` messages carrying this FrameSet; see `iter_chunks`."""
        if len(self.frames) == 1 and max_chunk_bytes >= MIN_CHUNK_BYTES:
            frame = self.frames[0]
            if frame.rgb.data.nbytes + frame.depth.data.nbytes <= max_chunk_bytes:
                # One agent, one chunk: every step of the common case, without generators.
                body = _frame_body(frame)
                head = (
                    _STEP_ID_KEY + varint(self.step_id) + _WHOLE_FRAMESET if self.step_id else _WHOLE_FRAMESET
                )
                return [b"".join([head, len_header(CHUNK_FRAME, sum(map(len, body))), *body])]
        return list(self.iter_chunks(max_chunk_bytes))

    def iter_chunks(self, max_chunk_bytes: int) -> Iterator[bytes]:
        """The serialised `FrameChunk` messages carrying this FrameSet, cut one at a time.

        Chunk 0 of each frame carries the frame's metadata and both planes' headers (so the
        receiver learns `total_bytes` up front); every chunk carries at most
        `max_chunk_bytes` of plane data, rgb before depth. Cutting lazily lets a server send
        one chunk while it cuts the next.

        Raises:
            ValueError: `max_chunk_bytes` is below MIN_CHUNK_BYTES (raised at once).
        """
        if max_chunk_bytes < MIN_CHUNK_BYTES:
            raise ValueError(f"max_chunk_bytes must be >= {MIN_CHUNK_BYTES}, got {max_chunk_bytes}")
        if not self.frames:
            return iter([_chunk_head(self.step_id, 0, 0, True, 0)])
        return self._iter_chunks(max_chunk_bytes)

    def _iter_chunks(self, max_chunk_bytes: int) -> Iterator[bytes]:
        frame_count = len(self.frames)
        for frame_index, frame in enumerate(self.frames):
            rgb_size = frame.rgb.data.nbytes
            total = rgb_size + frame.depth.data.nbytes
            chunk_count = max(1, -(-total // max_chunk_bytes))
            if chunk_count == 1:  # the common case: the whole frame in one chunk
                body = _frame_body(frame)
                head = _chunk_head(self.step_id, frame_index, 0, frame_index == frame_count - 1, frame_count)
                yield b"".join([head, len_header(CHUNK_FRAME, sum(map(len, body))), *body])
                continue
            for chunk_index in range(chunk_count):
                # This chunk carries bytes [start, stop) of the frame's rgb-then-depth data.
                start = chunk_index * max_chunk_bytes
                stop = min(total, start + max_chunk_bytes)
                first = chunk_index == 0
                body = [frame.header] if first else []
                rgb_slice = frame.rgb.data[min(start, rgb_size) : min(stop, rgb_size)]
                depth_slice = frame.depth.data[
                    max(start, rgb_size) - rgb_size : max(stop, rgb_size) - rgb_size
                ]
                if first or rgb_slice.nbytes:
                    body += submessage(FRAME_RGB, _image_parts(frame.rgb.header if first else b"", rgb_slice))
                if first or depth_slice.nbytes:
                    body += submessage(
                        FRAME_DEPTH, _image_parts(frame.depth.header if first else b"", depth_slice)
                    )
                last = frame_index == frame_count - 1 and chunk_index == chunk_count - 1
                head = _chunk_head(self.step_id, frame_index, chunk_index, last, frame_count)
                yield b"".join([head, *submessage(CHUNK_FRAME, body)])


def _frame_body(frame: EncodedFrame) -> list[Buffer]:
    """The fields of a whole `Frame` message: its header, then the rgb and depth planes."""
    rgb, depth = frame.rgb, frame.depth
    rgb_data_header = len_header(IMAGE_DATA, rgb.data.nbytes)
    depth_data_header = len_header(IMAGE_DATA, depth.data.nbytes)
    return [
        frame.header,
        len_header(FRAME_RGB, len(rgb.header) + len(rgb_data_header) + rgb.data.nbytes),
        rgb.header,
        rgb_data_header,
        rgb.data,
        len_header(FRAME_DEPTH, len(depth.header) + len(depth_data_header) + depth.data.nbytes),
        depth.header,
        depth_data_header,
        depth.data,
    ]


# FrameChunk's scalar fields, written by hand (protobuf would cost ~1.5 us per chunk).
_STEP_ID_KEY = b"\x08"  # FrameSet.step_id and FrameChunk.step_id: field 1, varint
_FRAME_INDEX_KEY, _CHUNK_INDEX_KEY, _LAST_CHUNK, _FRAME_COUNT_KEY = b"\x10", b"\x18", b"\x28\x01", b"\x30"


# last_chunk = true and frame_count = 1: the head of a chunk that is a whole one-frame FrameSet.
_WHOLE_FRAMESET = _LAST_CHUNK + _FRAME_COUNT_KEY + b"\x01"


def _chunk_head(step_id: int, frame_index: int, chunk_index: int, last: bool, frame_count: int) -> bytes:
    """Serialised `FrameChunk` fields other than `frame` (zero values omitted, as protobuf does)."""
    parts = [_STEP_ID_KEY, varint(step_id)] if step_id else []
    if frame_index:
        parts += [_FRAME_INDEX_KEY, varint(frame_index)]
    if chunk_index:
        parts += [_CHUNK_INDEX_KEY, varint(chunk_index)]
    if last:
        parts.append(_LAST_CHUNK)
    if frame_count:
        parts += [_FRAME_COUNT_KEY, varint(frame_count)]
    return b"".join(parts)


def split_frameset(frameset: service_pb.FrameSet, max_chunk_bytes: int) -> Iterator[service_pb.FrameChunk]:
    """`FrameChunk` messages carrying `frameset`; see `EncodedFrameSet.chunks`."""
    for chunk in EncodedFrameSet.from_proto(frameset).chunks(max_chunk_bytes):
        yield service_pb.FrameChunk.FromString(chunk)
