"""The per-step frame through the optional C codec (`bridge._native._framecodec`).

Why: a lockstep step of a small frame is latency-bound, and its Python encode (server) and
read (client) are dozens of small calls each. The C codec handles exactly the common case
of our own path: one agent, RAW planes, float64 pose and K, no hand keypoints, in the
layout `bridge.frame_meta` writes. It returns None for anything else and the caller takes
the Python path, which stays the reference: the C encoder writes the same bytes, and the
C reader yields the same values and accepts only frames the Python fast path accepts.

Without the extension (no compiler at install time, or `GENWORLD_PURE_PYTHON=1`) both
functions return None at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from types import ModuleType
from typing import NamedTuple

import numpy as np

from bridge._native import load_framecodec
from bridge.framing import MIN_CHUNK_BYTES
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.types import Observation
from bridge.wire_geometry import QUAT_NORM_TOLERANCE
from bridge.wire_planes import DEPTH_IS_NATIVE_F32, MAX_IMAGE_PIXELS, RGB_CHANNELS, Codec

log = logging.getLogger(__name__)


def configure_codec(module: ModuleType) -> ModuleType:
    """`module` (the C codec) given the Python side's constants; returns it."""
    module.configure(
        np.ndarray,
        math.hypot,
        pb.PIXEL_FORMAT_RGB8,
        pb.PIXEL_FORMAT_DEPTH_F32,
        pb.CODEC_RAW,
        MAX_IMAGE_PIXELS,
        QUAT_NORM_TOLERANCE,
    )
    return module


_framecodec, CODEC_DESCRIPTION = load_framecodec()
if _framecodec is not None and not DEPTH_IS_NATIVE_F32:  # a big-endian host: the C codec never applies
    _framecodec, CODEC_DESCRIPTION = None, "frame codec: pure Python (big-endian host)"
if _framecodec is not None:
    configure_codec(_framecodec)
_announced = False


def announce_codec() -> None:
    """Logs once per process which frame codec is in use (servers and clients call this)."""
    global _announced
    if not _announced:
        _announced = True
        log.info(CODEC_DESCRIPTION)


NATIVE_CODEC = _framecodec is not None  # at import; tests may swap `_framecodec`
_UINT8 = np.dtype(np.uint8)
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_POSE_SHAPE, _K_SHAPE = (4, 4), (3, 3)


class DecodedFrameSet(NamedTuple):
    """A one-frame FrameSet read by the C codec: its step id and the frame's Observation."""

    step_id: int
    observations: dict[str, Observation]


def encode_single_frame(
    step_id: int, observations: Mapping[str, Observation], codec: Codec, max_chunk_bytes: int
) -> bytes | None:
    """The serialised answer of a one-agent step through the C codec, or None.

    Args:
        step_id: the step answered (0 for Reset and SetPose).
        observations: the world's output.
        codec: the session's plane codec (only RAW is handled here).
        max_chunk_bytes: 0 for a unary `FrameSet`; else the session's chunk limit, and the
            result is the single `FrameChunk` carrying the whole frame.

    Returns:
        Exactly the bytes of `encode_frameset(...).to_bytes()` (or `.chunks(...)[0]`), or
        None where the Python path must run (no extension, several agents, another codec,
        a frame needing several chunks, anything unusual or invalid).
    """
    if _framecodec is None or codec != Codec.RAW or len(observations) != 1:
        return None
    if max_chunk_bytes and max_chunk_bytes < MIN_CHUNK_BYTES:
        return None  # the Python path raises its ValueError
    ((agent_id, obs),) = observations.items()
    if type(obs) is not Observation:
        return None
    return _framecodec.encode_frame(
        step_id,
        agent_id,
        obs.rgb,
        obs.depth,
        obs.pose,
        obs.K,
        obs.frame_id,
        obs.sim_time,
        obs.collided,
        obs.hand_keypoints,
        max_chunk_bytes,
    )


def decode_single_frame(message: object, chunk: bool) -> DecodedFrameSet | None:
    """A one-frame `FrameSet` (or whole-frame `FrameChunk`) read through the C codec, or None.

    Planes are read-only views of `message`, as on the Python path. None means: not our
    layout, several frames, or a value the fast path does not accept (the Python path then
    reads it and raises naming the field if it is invalid).
    """
    if _framecodec is None:
        return None
    fields = _framecodec.decode_frame(message, chunk)
    if fields is None:
        return None
    step_id, agent_id, frame_id, sim_time, collided, height, width, rgb_at, depth_at, pose, k = fields
    observation = Observation(
        np.ndarray((height, width, RGB_CHANNELS), _UINT8, message, rgb_at),
        np.ndarray((height, width), _FLOAT32, message, depth_at),
        np.ndarray(_POSE_SHAPE, _FLOAT64, pose),  # writable: over a fresh bytearray
        np.ndarray(_K_SHAPE, _FLOAT64, k),
        frame_id,
        sim_time,
        None,
        collided,
    )
    return DecodedFrameSet(step_id, {agent_id: observation})
