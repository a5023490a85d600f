"""Frames in the one layout our servers write, written and read by hand.

Why: a lockstep step is latency-bound, and between gRPC's thread hand-offs every Python
operation runs on cold caches (measured ~3x its microbenchmark cost). Building `pb.Frame`
with nested `Pose` and `Intrinsics` messages and reading them back through protobuf's
accessors cost ~15 us hot per frame on each side; one `struct` call each way costs ~2 us.

The writer always emits the same layout (`write_frame_meta`); the reader
(`read_frame_meta`) recognises exactly that layout and returns None for anything else, so
frames written by other servers (C++ core, Unreal, protobuf itself) take the generic
protobuf path. Both layouts are ordinary protobuf: any parser reads what we write.
Values are validated by the caller (`bridge.wire`) on either path.
"""

from __future__ import annotations

import functools
import struct
from typing import NamedTuple

from bridge.pbwire import VARINT_CONTINUE, read_varint, varint
from bridge.types import InvalidArgumentError

# Keys (field number << 3 | wire type) of the fields this module writes.
_KEY_AGENT_ID = b"\x0a"  # Frame.agent_id, LEN
_KEY_FRAME_ID = 0x10  # Frame.frame_id, VARINT
_KEY_HANDS = b"\x42"  # Frame.hand_keypoints, LEN
_KEY_HANDS_XYZ = b"\x0a"  # HandKeypoints.xyz_f32, LEN
_COLLIDED = b"\x48\x01"  # Frame.collided = true
# sim_time (fixed64), then the Pose submessage: 7 doubles, keys 0x09 .. 0x39.
_TIME_POSE = struct.Struct("<BdBB" + "Bd" * 7)
_POSE_BYTES = 7 * 9
_KEY_SIM_TIME, _KEY_POSE = 0x19, 0x22
# The Intrinsics submessage: fx, fy, cx, cy (fixed64) and width, height (varints).
_KEY_INTRINSICS = 0x2A
_INTRINSICS_DOUBLES = struct.Struct("<" + "Bd" * 4)
_KEY_WIDTH, _KEY_HEIGHT = b"\x28", b"\x30"

AGENT_FIELD_CACHE_SIZE = 256
INTRINSICS_CACHE_SIZE = 64


@functools.lru_cache(maxsize=AGENT_FIELD_CACHE_SIZE)
def _agent_field(agent_id: str) -> bytes:
    encoded = agent_id.encode()
    return _KEY_AGENT_ID + varint(len(encoded)) + encoded


@functools.lru_cache(maxsize=INTRINSICS_CACHE_SIZE)
def _intrinsics_field(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> bytes:
    body = (
        _INTRINSICS_DOUBLES.pack(0x09, fx, 0x11, fy, 0x19, cx, 0x21, cy)
        + _KEY_WIDTH
        + varint(width)
        + _KEY_HEIGHT
        + varint(height)
    )
    return bytes((_KEY_INTRINSICS,)) + varint(len(body)) + body


def write_frame_meta(
    agent_id: str,
    frame_id: int,
    sim_time: float,
    pose7: tuple[float, float, float, float, float, float, float],
    intrinsics: tuple[float, float, float, float],
    width: int,
    height: int,
    collided: bool,
    hand_keypoints: bytes | None,
) -> bytes:
    """Serialised `Frame` fields 1-5, 8, 9 (no planes), in the layout `read_frame_meta` knows.

    Args:
        agent_id: the agent.
        frame_id: captures since reset (>= 0).
        sim_time: seconds since reset.
        pose7: x, y, z, qw, qx, qy, qz.
        intrinsics: fx, fy, cx, cy.
        width: image width (Intrinsics.width).
        height: image height (Intrinsics.height).
        collided: the last motion was blocked.
        hand_keypoints: the xyz_f32 bytes, or None when the scene has no hands.
    """
    x, y, z, qw, qx, qy, qz = pose7
    time_pose = _TIME_POSE.pack(
        _KEY_SIM_TIME,
        sim_time,
        _KEY_POSE,
        _POSE_BYTES,
        0x09,
        x,
        0x11,
        y,
        0x19,
        z,
        0x21,
        qw,
        0x29,
        qx,
        0x31,
        qy,
        0x39,
        qz,
    )
    parts = [
        _agent_field(agent_id),
        bytes((_KEY_FRAME_ID,)),
        varint(frame_id),
        time_pose,
        _intrinsics_field(*intrinsics, width, height),
    ]
    if hand_keypoints is not None:
        inner = _KEY_HANDS_XYZ + varint(len(hand_keypoints))
        parts += [_KEY_HANDS, varint(len(inner) + len(hand_keypoints)), inner, hand_keypoints]
    if collided:
        parts.append(_COLLIDED)
    return b"".join(parts)


# --------------------------------------------------------------------------- reading
class FlatPose(NamedTuple):
    """A `Pose` as plain floats (same attribute names as the message)."""

    x: float
    y: float
    z: float
    qw: float
    qx: float
    qy: float
    qz: float


class FlatIntrinsics(NamedTuple):
    """An `Intrinsics` as plain values (same attribute names as the message)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int


class FlatImage(NamedTuple):
    """An `Image` header as plain values (same attribute names as the message)."""

    format: int
    codec: int
    width: int
    height: int
    total_bytes: int


class FlatFrame(NamedTuple):
    """One frame read by `read_frameset_layout` / `read_chunk_layout`; values not yet validated.

    Attributes mirror `pb.Frame`; `rgb_data` and `depth_data` are views of the message.
    """

    agent_id: str
    frame_id: int
    sim_time: float
    pose: FlatPose
    intrinsics: FlatIntrinsics
    rgb: FlatImage
    depth: FlatImage
    hand_keypoints: bytes | None
    collided: bool
    rgb_data: memoryview
    depth_data: memoryview


class FlatFrameSet(NamedTuple):
    """A FrameSet read in our layout: its step id and frames (values not yet validated)."""

    step_id: int
    frames: tuple[FlatFrame, ...]


class _LayoutMismatch(Exception):
    """The bytes are valid protobuf perhaps, but not in our layout: use the generic reader."""


_POSE_KEYS = (0x19, 0x22, _POSE_BYTES, 0x09, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39)
_INTRINSICS_KEYS = (0x09, 0x11, 0x19, 0x21)
_KEY_RGB, _KEY_DEPTH, _KEY_IMAGE_DATA = 0x32, 0x3A, 0x2A
# Image header keys in protobuf's own order: format, codec, width, height, then total_bytes.
_IMAGE_KEYS = (0x08, 0x10, 0x18, 0x20, 0x30)
_KEY_FRAMESET_FRAME, _KEY_CHUNK_FRAME = 0x12, 0x22
_KEY_STEP_ID = 0x08
# FrameChunk.last_chunk = true, frame_count = 1, and the key of its `frame` field.
_WHOLE_FRAMESET_CHUNK = b"\x28\x01\x30\x01\x22"


def varint_at(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at `pos`; inline cases for up to 3 bytes.

    Reading past the buffer raises IndexError, which the callers treat as a mismatch.
    """
    b0 = buf[pos]
    if b0 < VARINT_CONTINUE:
        return b0, pos + 1
    b1 = buf[pos + 1]
    if b1 < VARINT_CONTINUE:
        return (b0 & 0x7F) | b1 << 7, pos + 2
    b2 = buf[pos + 2]
    if b2 < VARINT_CONTINUE:
        return (b0 & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14, pos + 3
    return read_varint(memoryview(buf), pos, len(buf))


def _read_image(buf: bytes, view: memoryview, pos: int, end: int) -> tuple[FlatImage, memoryview]:
    # format and codec are one-byte enums; width, height and total_bytes are varints.
    if buf[pos] != 0x08 or buf[pos + 2] != 0x10 or buf[pos + 4] != 0x18:
        raise _LayoutMismatch
    pixel_format, codec = buf[pos + 1], buf[pos + 3]
    if pixel_format >= VARINT_CONTINUE or codec >= VARINT_CONTINUE:
        raise _LayoutMismatch
    width, pos = varint_at(buf, pos + 5)
    if buf[pos] != 0x20:
        raise _LayoutMismatch
    height, pos = varint_at(buf, pos + 1)
    if buf[pos] != 0x30:
        raise _LayoutMismatch
    total, pos = varint_at(buf, pos + 1)
    if buf[pos] != _KEY_IMAGE_DATA:
        raise _LayoutMismatch
    size, pos = varint_at(buf, pos + 1)
    if pos + size != end:
        raise _LayoutMismatch
    return FlatImage(pixel_format, codec, width, height, total), view[pos:end]


def _read_frame(buf: bytes, view: memoryview, pos: int, end: int) -> FlatFrame:
    if buf[pos] != 0x0A:  # agent_id
        raise _LayoutMismatch
    size, pos = varint_at(buf, pos + 1)
    agent_id = buf[pos : pos + size].decode()  # invalid UTF-8: protobuf refuses it, so do we
    pos += size
    if buf[pos] != _KEY_FRAME_ID:
        raise _LayoutMismatch
    frame_id, pos = varint_at(buf, pos + 1)
    k0, sim_time, k1, k2, k3, x, k4, y, k5, z, k6, qw, k7, qx, k8, qy, k9, qz = _TIME_POSE.unpack_from(
        buf, pos
    )
    if (k0, k1, k2, k3, k4, k5, k6, k7, k8, k9) != _POSE_KEYS:
        raise _LayoutMismatch
    pos += _TIME_POSE.size
    if buf[pos] != _KEY_INTRINSICS:
        raise _LayoutMismatch
    size, pos = varint_at(buf, pos + 1)
    intrinsics_end = pos + size
    j0, fx, j1, fy, j2, cx, j3, cy = _INTRINSICS_DOUBLES.unpack_from(buf, pos)
    pos += _INTRINSICS_DOUBLES.size
    if (j0, j1, j2, j3) != _INTRINSICS_KEYS or buf[pos] != 0x28:
        raise _LayoutMismatch
    width, pos = varint_at(buf, pos + 1)
    if buf[pos] != 0x30:
        raise _LayoutMismatch
    height, pos = varint_at(buf, pos + 1)
    if pos != intrinsics_end:
        raise _LayoutMismatch
    key = buf[pos]
    hands = None
    if key == _KEY_HANDS[0]:
        size, pos = varint_at(buf, pos + 1)
        hands_end = pos + size
        if buf[pos] != _KEY_HANDS_XYZ[0]:
            raise _LayoutMismatch
        size, pos = varint_at(buf, pos + 1)
        if pos + size != hands_end:
            raise _LayoutMismatch
        hands, pos = buf[pos:hands_end], hands_end
        key = buf[pos]
    collided = False
    if key == _COLLIDED[0]:
        if buf[pos + 1] > 1:
            raise _LayoutMismatch
        collided, pos = buf[pos + 1] == 1, pos + 2
        key = buf[pos]
    if key != _KEY_RGB:
        raise _LayoutMismatch
    size, pos = varint_at(buf, pos + 1)
    rgb, rgb_data = _read_image(buf, view, pos, pos + size)
    pos += size
    if buf[pos] != _KEY_DEPTH:
        raise _LayoutMismatch
    size, pos = varint_at(buf, pos + 1)
    if pos + size != end:
        raise _LayoutMismatch
    depth, depth_data = _read_image(buf, view, pos, end)
    return FlatFrame(
        agent_id,
        frame_id,
        sim_time,
        FlatPose(x, y, z, qw, qx, qy, qz),
        FlatIntrinsics(fx, fy, cx, cy, width, height),
        rgb,
        depth,
        hands,
        collided,
        rgb_data,
        depth_data,
    )


def read_frameset_layout(message: object) -> FlatFrameSet | None:
    """A serialised `FrameSet` in our layout, read in one pass; None for any other layout.

    Plane bytes are views of `message` (which must be `bytes`); nothing is validated
    beyond the layout itself: values go through `bridge.wire`'s checks like any frame.
    """
    if type(message) is not bytes or not message:
        return None
    buf, end = message, len(message)
    try:
        step_id, pos = varint_at(buf, 1) if buf[0] == _KEY_STEP_ID else (0, 0)
        view = memoryview(buf)
        frames = []
        while pos < end:
            if buf[pos] != _KEY_FRAMESET_FRAME:
                raise _LayoutMismatch
            size, pos = varint_at(buf, pos + 1)
            if pos + size > end:
                raise _LayoutMismatch
            frames.append(_read_frame(buf, view, pos, pos + size))
            pos += size
        return FlatFrameSet(step_id, tuple(frames))
    except (_LayoutMismatch, IndexError, struct.error, UnicodeDecodeError, InvalidArgumentError):
        return None


def read_chunk_layout(message: object) -> FlatFrameSet | None:
    """A `FrameChunk` in our layout carrying a whole one-frame FrameSet; None otherwise.

    Only a chunk that is frame 0, chunk 0, the last chunk, with frame_count 1 qualifies:
    that is every step of a one-agent world whose frame fits one chunk. Anything else
    (several agents, split planes, other layouts) goes through `FrameSetAssembler`.
    """
    if type(message) is not bytes or not message:
        return None
    buf, end = message, len(message)
    try:
        step_id, pos = varint_at(buf, 1) if buf[0] == _KEY_STEP_ID else (0, 0)
        # last_chunk = true, frame_count = 1, then the frame up to the end of the message.
        if buf[pos : pos + 5] != _WHOLE_FRAMESET_CHUNK:
            raise _LayoutMismatch
        size, pos = varint_at(buf, pos + 5)
        if pos + size != end:
            raise _LayoutMismatch
        return FlatFrameSet(step_id, (_read_frame(buf, memoryview(buf), pos, end),))
    except (_LayoutMismatch, IndexError, struct.error, UnicodeDecodeError, InvalidArgumentError):
        return None
