"""A Frame's metadata (everything but its pixel planes) written and read by hand.

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

from bridge.pbwire import varint

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
