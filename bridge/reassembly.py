"""Reading FrameSets and FrameChunks back, without copying their pixels more than needed.

A unary FrameSet is read in place: plane bytes stay views of the received message, and
decoded arrays are `np.frombuffer` views of those (read-only, like the message). Chunked
frames are joined once per plane when their last chunk arrives. Both checks sizes and
order and raise InvalidArgumentError naming the field, because a receiver must never
turn a truncated or reordered stream into a frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from bridge.pbwire import (
    CHUNK_FRAME,
    FRAME_DEPTH,
    FRAME_RGB,
    FRAMESET_FRAMES,
    IMAGE_DATA,
    WIRETYPE_LEN,
    Buffer,
    bytes_view,
    len_header,
    scan_fields,
)
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.types import InvalidArgumentError

# Default upper bound on one reassembled frame's planes (guards the receiver's memory).
DEFAULT_MAX_FRAME_BYTES = 1 << 30
# Below this size protobuf's own parser, copying the planes out, beats locating them with
# the Python field scanner (measured: ~2 us vs ~25 us for a 64x64 RGB-D frame).
IN_PLACE_MIN_BYTES = 256 * 1024

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class AssembledFrame:
    """One frame read back: its metadata and its plane bytes.

    Attributes:
        meta: the frame's fields; its planes' own `data` (possibly empty) is ignored.
        rgb: the encoded colour plane.
        depth: the encoded depth plane.
    """

    meta: pb.Frame
    rgb: Buffer
    depth: Buffer

    def to_proto(self) -> pb.Frame:
        """The complete `Frame` message (copies the planes)."""
        frame = pb.Frame()
        frame.CopyFrom(self.meta)
        frame.rgb.data = bytes(self.rgb)
        frame.depth.data = bytes(self.depth)
        return frame


@dataclass(frozen=True)
class AssembledFrameSet:
    """A FrameSet read back from a message or from chunks."""

    step_id: int
    frames: tuple[AssembledFrame, ...]

    def to_proto(self) -> service_pb.FrameSet:
        """The complete `FrameSet` message (copies the planes)."""
        return service_pb.FrameSet(step_id=self.step_id, frames=[f.to_proto() for f in self.frames])


def _parse(cls: type[M], data: bytes, what: str) -> M:
    try:
        return cls.FromString(data)
    except DecodeError as exc:
        raise InvalidArgumentError(f"{what} is not a valid {cls.DESCRIPTOR.name}: {exc}") from exc


def read_frame(buf: memoryview, start: int, end: int) -> AssembledFrame:
    """The `Frame` serialised in buf[start:end]; plane bytes are views into `buf`."""
    meta_parts: list[Buffer] = []
    planes: dict[int, memoryview] = {}
    for f in scan_fields(buf, start, end):
        if f.number in (FRAME_RGB, FRAME_DEPTH) and f.wire_type == WIRETYPE_LEN:
            header_parts = []
            for g in scan_fields(buf, f.start, f.end):
                if g.number == IMAGE_DATA and g.wire_type == WIRETYPE_LEN:
                    planes[f.number] = buf[g.start : g.end]  # proto3: the last occurrence wins
                else:
                    header_parts.append(buf[g.key_start : g.end])
            header = b"".join(header_parts)
            meta_parts += [len_header(f.number, len(header)), header]
        else:
            meta_parts.append(buf[f.key_start : f.end])
    meta = _parse(pb.Frame, b"".join(meta_parts), "Frame")
    empty = memoryview(b"")
    return AssembledFrame(meta, planes.get(FRAME_RGB, empty), planes.get(FRAME_DEPTH, empty))


def read_frameset(message: Buffer) -> AssembledFrameSet:
    """A serialised `FrameSet`; large ones are read in place (planes are views of `message`)."""
    if len(message) < IN_PLACE_MIN_BYTES:
        parsed = _parse(service_pb.FrameSet, bytes(message), "FrameSet")
        return AssembledFrameSet(parsed.step_id, tuple(_frame_of_proto(f) for f in parsed.frames))
    buf = bytes_view(message)
    rest: list[Buffer] = []
    frames = []
    for f in scan_fields(buf, 0, buf.nbytes):
        if f.number == FRAMESET_FRAMES and f.wire_type == WIRETYPE_LEN:
            frames.append(read_frame(buf, f.start, f.end))
        else:
            rest.append(buf[f.key_start : f.end])
    header = _parse(service_pb.FrameSet, b"".join(rest), "FrameSet")
    return AssembledFrameSet(header.step_id, tuple(frames))


@dataclass(frozen=True)
class ChunkParts:
    """A `FrameChunk` split into its header fields and its (partial) frame.

    Attributes:
        header: the chunk's step_id, frame_index, chunk_index, last_chunk, frame_count
            (any `frame` it may also hold is ignored).
        frame: the frame slice, or None.
    """

    header: service_pb.FrameChunk
    frame: AssembledFrame | None


def read_chunk(message: Buffer) -> ChunkParts:
    """A serialised `FrameChunk`; large ones are read in place."""
    if len(message) < IN_PLACE_MIN_BYTES:
        return _chunk_parts_of_proto(_parse(service_pb.FrameChunk, bytes(message), "FrameChunk"))
    buf = bytes_view(message)
    rest: list[Buffer] = []
    frame = None
    for f in scan_fields(buf, 0, buf.nbytes):
        if f.number == CHUNK_FRAME and f.wire_type == WIRETYPE_LEN:
            frame = read_frame(buf, f.start, f.end)
        else:
            rest.append(buf[f.key_start : f.end])
    return ChunkParts(_parse(service_pb.FrameChunk, b"".join(rest), "FrameChunk"), frame)


def _frame_of_proto(frame: pb.Frame) -> AssembledFrame:
    return AssembledFrame(frame, frame.rgb.data, frame.depth.data)


def _chunk_parts_of_proto(chunk: service_pb.FrameChunk) -> ChunkParts:
    # The assembler reads only the header fields of `chunk`, so it can serve as the header.
    return ChunkParts(chunk, _frame_of_proto(chunk.frame) if chunk.HasField("frame") else None)


@dataclass
class _PartialFrame:
    meta: pb.Frame
    rgb_total: int
    depth_total: int
    rgb: list[Buffer] = field(default_factory=list)
    depth: list[Buffer] = field(default_factory=list)
    rgb_filled: int = 0
    depth_filled: int = 0

    @property
    def complete(self) -> bool:
        return self.rgb_filled == self.rgb_total and self.depth_filled == self.depth_total

    def add(self, rgb: Buffer, depth: Buffer) -> None:
        rgb_size, depth_size = len(rgb), len(depth)
        if depth_size and self.rgb_filled + rgb_size < self.rgb_total:
            raise InvalidArgumentError("FrameChunk.frame.depth.data arrived before rgb.data was complete")
        for name, size, total, filled in (
            ("rgb", rgb_size, self.rgb_total, self.rgb_filled),
            ("depth", depth_size, self.depth_total, self.depth_filled),
        ):
            if filled + size > total:
                raise InvalidArgumentError(
                    f"FrameChunk.frame.{name}.data overflows total_bytes: {filled + size} > {total}"
                )
        if rgb_size:
            self.rgb.append(rgb)
            self.rgb_filled += rgb_size
        if depth_size:
            self.depth.append(depth)
            self.depth_filled += depth_size

    def finish(self) -> AssembledFrame:
        return AssembledFrame(self.meta, _joined(self.rgb), _joined(self.depth))


def _joined(parts: list[Buffer]) -> Buffer:
    """One buffer of `parts`: a single part stays a view, several are copied once."""
    if len(parts) == 1:
        return parts[0]
    return b"".join(parts)


class FrameSetAssembler:
    """Rebuilds FrameSets from a stream of `FrameChunk`s, checking order and sizes.

    One assembler serves a whole stream: after it returns a FrameSet it expects chunk 0 of
    frame 0 of the next one.

    Args:
        max_frame_bytes: upper bound on one frame's announced plane sizes, checked before
            anything is kept.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._reset()

    def _reset(self) -> None:
        self._step_id: int | None = None
        self._frame_count = 0
        self._done: list[AssembledFrame] = []
        self._current: _PartialFrame | None = None
        self._next_chunk = 0

    @property
    def idle(self) -> bool:
        """Whether the next chunk must start a new FrameSet (none is in progress)."""
        return self._step_id is None

    def add(self, chunk: service_pb.FrameChunk | Buffer) -> AssembledFrameSet | None:
        """Consumes one chunk (a message or its serialised bytes).

        Returns:
            The FrameSet when `chunk` completes it, else None.
        """
        parts = (
            _chunk_parts_of_proto(chunk) if isinstance(chunk, service_pb.FrameChunk) else read_chunk(chunk)
        )
        header = parts.header
        if self._step_id is None:
            if header.frame_index != 0 or header.chunk_index != 0:
                raise InvalidArgumentError(
                    f"FrameChunk: a FrameSet must start at frame 0 chunk 0, got frame {header.frame_index} "
                    f"chunk {header.chunk_index}"
                )
            self._step_id, self._frame_count = header.step_id, header.frame_count
        elif header.step_id != self._step_id:
            raise InvalidArgumentError(
                f"FrameChunk.step_id changed mid-FrameSet: {self._step_id} -> {header.step_id}"
            )
        elif header.frame_count != self._frame_count:
            raise InvalidArgumentError(
                f"FrameChunk.frame_count changed mid-FrameSet: {self._frame_count} -> {header.frame_count}"
            )
        if self._frame_count:
            self._place(header, parts.frame)
        if not header.last_chunk:
            return None
        return self._finish()

    def _place(self, header: service_pb.FrameChunk, frame: AssembledFrame | None) -> None:
        if frame is None:
            raise InvalidArgumentError(
                f"FrameChunk {header.chunk_index} of frame {header.frame_index} has no frame"
            )
        if self._current is None:
            expected = len(self._done)
            if header.frame_index != expected or header.chunk_index != 0:
                raise InvalidArgumentError(
                    f"FrameChunk order: expected frame {expected} chunk 0, got frame {header.frame_index} "
                    f"chunk {header.chunk_index}"
                )
            if expected >= self._frame_count:
                raise InvalidArgumentError(
                    f"FrameChunk.frame_index {expected} >= frame_count {self._frame_count}"
                )
            self._current = self._start_frame(frame.meta)
            self._next_chunk = 0
        elif header.frame_index != len(self._done) or header.chunk_index != self._next_chunk:
            raise InvalidArgumentError(
                f"FrameChunk order: expected frame {len(self._done)} chunk {self._next_chunk}, "
                f"got frame {header.frame_index} chunk {header.chunk_index} (frame incomplete)"
            )
        self._next_chunk += 1
        self._current.add(frame.rgb, frame.depth)
        if self._current.complete:
            self._done.append(self._current.finish())
            self._current = None

    def _start_frame(self, meta: pb.Frame) -> _PartialFrame:
        if not (meta.HasField("rgb") and meta.HasField("depth")):
            raise InvalidArgumentError("FrameChunk.frame: chunk 0 must carry the rgb and depth image headers")
        rgb_total, depth_total = meta.rgb.total_bytes, meta.depth.total_bytes
        if rgb_total + depth_total > self._max_frame_bytes:
            raise InvalidArgumentError(
                f"FrameChunk.frame: announced {rgb_total + depth_total} plane bytes, over the "
                f"{self._max_frame_bytes}-byte limit"
            )
        return _PartialFrame(meta, rgb_total, depth_total)

    def _finish(self) -> AssembledFrameSet:
        if len(self._done) != self._frame_count or self._current is not None:
            raise InvalidArgumentError(
                f"FrameChunk.last_chunk set after {len(self._done)} complete frames of {self._frame_count}"
            )
        result = AssembledFrameSet(self._step_id or 0, tuple(self._done))
        self._reset()
        return result
