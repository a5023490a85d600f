"""Conversions between the World values (bridge.types) and the genworld.v1 messages.

Everything that arrives from the network passes through a `*_from_proto` function here,
and each of them raises InvalidArgumentError naming the offending field, so the server can
refuse bad input before it reaches an engine and the client can refuse a bad server.

Pixels travel as bytes with explicit format and codec (ARCHITECTURE.md §5). Encoding is
`np.ascontiguousarray` + a buffer view and decoding is `np.frombuffer`: no per-pixel Python.
Frames decoded from RAW bytes are read-only views of the received message; copy them to
write in place. Framing (unary FrameSets, chunks, reassembly) lives in `bridge.framing`,
single planes in `bridge.wire_planes` and actions in `bridge.wire_actions`; this module
re-exports them, so `bridge.wire` stays the one import for conversions. Our own frame
layout is written and read by hand in `bridge.frame_meta` (the per-step path), and its
common one-agent case in C by `bridge.wire_native` where the extension is built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bridge.conventions import pose_to_quat_floats
from bridge.frame_meta import FlatFrame, FlatFrameSet, FlatImage, FlatIntrinsics, FlatPose, write_frame_meta
from bridge.framing import (
    MIN_CHUNK_BYTES,
    EncodedFrame,
    EncodedFrameSet,
    EncodedPlane,
    image_header,
    split_frameset,
)
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.reassembly import (
    AssembledFrame,
    AssembledFrameSet,
    FrameSetAssembler,
    read_chunk,
    read_frameset,
)
from bridge.types import HAND_KEYPOINTS, NUM_HANDS, InvalidArgumentError, Observation
from bridge.wire_actions import (
    KEY_ACTIONS,
    action_from_proto,
    action_to_proto,
    actions_from_proto,
    encode_step_actions,
    read_key_step_request,
    step_request,
)
from bridge.wire_geometry import (
    K_SKEW_TOLERANCE,
    QUAT_NORM_TOLERANCE,
    intrinsics_from_proto,
    intrinsics_to_proto,
    pose_from_proto,
    pose_matrix,
    pose_to_proto,
)
from bridge.wire_planes import (
    DEPTH_DTYPE,
    DEPTH_IS_NATIVE_F32,
    MAX_IMAGE_PIXELS,
    RGB_CHANNELS,
    Codec,
    decode_plane,
    encode_plane,
    plane_codec,
)

__all__ = [
    "KEY_ACTIONS",
    "MIN_CHUNK_BYTES",
    "AssembledFrame",
    "AssembledFrameSet",
    "Codec",
    "EncodedFrame",
    "EncodedFrameSet",
    "EncodedPlane",
    "FrameSetAssembler",
    "action_from_proto",
    "action_to_proto",
    "actions_from_proto",
    "decode_flat_frame",
    "decode_frame",
    "decode_plane",
    "encode_frame",
    "encode_frameset",
    "encode_plane",
    "encode_step_actions",
    "frame_from_proto",
    "frame_to_proto",
    "frameset_from_proto",
    "frameset_to_proto",
    "intrinsics_from_proto",
    "intrinsics_to_proto",
    "options_from_json",
    "options_to_json",
    "parse_semver",
    "plane_codec",
    "pose_from_proto",
    "pose_to_proto",
    "read_chunk",
    "read_frameset",
    "read_key_step_request",
    "split_frameset",
    "step_request",
]


_FLOAT64 = np.dtype(np.float64)
_UINT8 = np.dtype(np.uint8)
HAND_KEYPOINT_SHAPE = (NUM_HANDS, HAND_KEYPOINTS, 3)
HAND_KEYPOINT_DTYPE = np.dtype("<f4")
_HAND_KEYPOINT_BYTES = int(np.prod(HAND_KEYPOINT_SHAPE)) * HAND_KEYPOINT_DTYPE.itemsize
# The engine's depth dtype that is the wire's as it is (None on a big-endian host).
_DEPTH_NATIVE = np.dtype(np.float32) if DEPTH_IS_NATIVE_F32 else None


# --------------------------------------------------------------------------- frames
def _finite_matrix_rows(value: Any, shape: tuple[int, int], field: str) -> list[list[float]]:
    """Rows of a finite matrix of `shape` as Python floats (what the wire writer needs)."""
    matrix = value if type(value) is np.ndarray else np.asarray(value)
    finite = matrix.shape == shape
    if finite:
        try:
            rows = (matrix if matrix.dtype == _FLOAT64 else matrix.astype(np.float64)).tolist()
            # A sum is finite iff every entry is: one test of Python floats, not 9-16.
            finite = math.isfinite(sum(map(sum, rows)))
        except (TypeError, ValueError):
            finite = False
    if not finite:
        raise InvalidArgumentError(f"{field} must be a finite {shape[0]}x{shape[1]} matrix")
    return rows


def check_observation(
    obs: Observation, field: str = "Observation"
) -> tuple[list[list[float]], list[list[float]]]:
    """Shapes, dtypes and finiteness the wire format relies on.

    Cheaper than `Observation.validate` (no orthonormality test): this runs for every
    frame served, and the quaternion conversion normalises the rotation anyway.

    Returns:
        The rows of the pose and of K as Python floats.
    """
    rgb, depth = obs.rgb, obs.depth
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.dtype != np.uint8
        or rgb.ndim != 3
        or rgb.shape[2] != RGB_CHANNELS
    ):
        raise InvalidArgumentError(f"{field}.rgb must be (H, W, 3) uint8, got {getattr(rgb, 'shape', rgb)}")
    if not isinstance(depth, np.ndarray) or depth.dtype != np.float32 or depth.shape != rgb.shape[:2]:
        raise InvalidArgumentError(
            f"{field}.depth must be (H, W) float32 like rgb, got {getattr(depth, 'shape', depth)}"
        )
    pose = _finite_matrix_rows(obs.pose, (4, 4), f"{field}.pose")
    K = _finite_matrix_rows(obs.K, (3, 3), f"{field}.K")
    if obs.hand_keypoints is not None and np.shape(obs.hand_keypoints) != HAND_KEYPOINT_SHAPE:
        raise InvalidArgumentError(f"{field}.hand_keypoints must have shape {HAND_KEYPOINT_SHAPE}")
    return pose, K


def _encode_raw_frame(agent_id: str, obs: Observation) -> EncodedFrame | None:
    """`encode_frame` of the common case, or None to take the general path.

    The common case: RAW codec, C-contiguous uint8 (H, W, 3) rgb and float32 (H, W) depth,
    float64 ndarray pose and K, no hands. Same checks as the general path, fewer calls:
    this runs for every frame served.
    """
    rgb, depth, pose, K = obs.rgb, obs.depth, obs.pose, obs.K
    if not (
        type(rgb) is np.ndarray
        and type(depth) is np.ndarray
        and type(pose) is np.ndarray
        and type(K) is np.ndarray
        and obs.hand_keypoints is None
        and type(obs.frame_id) is int
        and rgb.dtype == _UINT8
        and depth.dtype == _DEPTH_NATIVE
        and pose.dtype == _FLOAT64
        and K.dtype == _FLOAT64
        and rgb.ndim == 3
        and rgb.shape[2] == RGB_CHANNELS
        and depth.shape == rgb.shape[:2]
        and pose.shape == (4, 4)
        and K.shape == (3, 3)
        and rgb.flags.c_contiguous
        and depth.flags.c_contiguous
    ):
        return None
    k = K.tolist()
    frame_id, sim_time = obs.frame_id, obs.sim_time
    if (
        frame_id < 0
        or not math.isfinite(sum(map(sum, pose.tolist())) + sum(k[0]) + sum(k[1]) + sum(k[2]))
        or abs(k[0][1]) > K_SKEW_TOLERANCE
        or type(sim_time) not in (float, int)
    ):
        return None  # the general path names the field
    height, width = depth.shape
    (x, y, z), (qw, qx, qy, qz) = pose_to_quat_floats(pose)
    header = write_frame_meta(
        agent_id,
        frame_id,
        float(sim_time),
        (x, y, z, qw, qx, qy, qz),
        (k[0][0], k[1][1], k[0][2], k[1][2]),
        width,
        height,
        bool(obs.collided),
        None,
    )
    rgb_view, depth_view = memoryview(rgb).cast("B"), memoryview(depth).cast("B")
    return EncodedFrame(
        header,
        EncodedPlane(
            image_header(pb.PIXEL_FORMAT_RGB8, pb.CODEC_RAW, width, height, rgb_view.nbytes), rgb_view
        ),
        EncodedPlane(
            image_header(pb.PIXEL_FORMAT_DEPTH_F32, pb.CODEC_RAW, width, height, depth_view.nbytes),
            depth_view,
        ),
    )


def encode_frame(agent_id: str, obs: Observation, codec: Codec = Codec.RAW) -> EncodedFrame:
    """One agent's Observation ready for framing (RAW planes are views of its arrays)."""
    if codec == Codec.RAW:
        encoded = _encode_raw_frame(agent_id, obs)
        if encoded is not None:
            return encoded
    field = f"Observation[{agent_id!r}]"
    pose, K = check_observation(obs, field)
    if abs(K[0][1]) > K_SKEW_TOLERANCE:
        raise InvalidArgumentError(f"K has skew {K[0][1]}; the wire carries fx, fy, cx, cy only")
    frame_id = obs.frame_id
    if isinstance(frame_id, bool) or not isinstance(frame_id, int | np.integer) or frame_id < 0:
        raise InvalidArgumentError(f"{field}.frame_id must be an int >= 0, got {frame_id!r}")
    try:
        sim_time = float(obs.sim_time)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{field}.sim_time must be a number, got {obs.sim_time!r}") from None
    height, width = obs.rgb.shape[:2]
    (x, y, z), (qw, qx, qy, qz) = pose_to_quat_floats(obs.pose if type(obs.pose) is np.ndarray else pose)
    hands = None
    if obs.hand_keypoints is not None:
        hands = np.ascontiguousarray(obs.hand_keypoints, dtype=HAND_KEYPOINT_DTYPE).tobytes()
    header = write_frame_meta(
        agent_id,
        int(frame_id),
        sim_time,
        (x, y, z, qw, qx, qy, qz),
        (K[0][0], K[1][1], K[0][2], K[1][2]),
        width,
        height,
        bool(obs.collided),
        hands,
    )
    return EncodedFrame(
        header,
        encode_plane(obs.rgb, pb.PIXEL_FORMAT_RGB8, codec),
        encode_plane(obs.depth, pb.PIXEL_FORMAT_DEPTH_F32, codec),
    )


def decode_frame(
    meta: pb.Frame,
    rgb_data: bytes | bytearray | memoryview,
    depth_data: bytes | bytearray | memoryview,
    field: str = "frame",
) -> tuple[str, Observation]:
    """(agent_id, Observation) of a frame whose plane bytes are passed separately.

    Taking the bytes apart from the header lets chunked frames be decoded straight from
    their reassembly buffers.
    """
    if not meta.HasField("pose"):
        raise InvalidArgumentError(f"{field}.pose is missing")
    if not meta.HasField("intrinsics"):
        raise InvalidArgumentError(f"{field}.intrinsics is missing")
    for name in ("rgb", "depth"):
        if not meta.HasField(name):
            raise InvalidArgumentError(f"{field}.{name} is missing")
    hands = meta.hand_keypoints.xyz_f32 if meta.HasField("hand_keypoints") else None
    return meta.agent_id, _observation_of(
        meta, meta.rgb, meta.depth, meta.pose, meta.intrinsics, hands, rgb_data, depth_data, field
    )


def _decode_raw_flat_frame(frame: FlatFrame) -> Observation | None:
    """The Observation of a flat frame in the common case, or None to take the general path.

    The common case: RAW planes of the announced sizes, no hands, finite values, a unit
    quaternion and positive focal lengths. Anything else (including every invalid frame)
    returns None, and the general path raises naming the field.
    """
    rgb, depth, intrinsics = frame.rgb, frame.depth, frame.intrinsics
    width, height = rgb.width, rgb.height
    if (
        rgb.format != pb.PIXEL_FORMAT_RGB8
        or depth.format != pb.PIXEL_FORMAT_DEPTH_F32
        or rgb.codec != pb.CODEC_RAW
        or depth.codec != pb.CODEC_RAW
        or depth.width != width
        or depth.height != height
        or frame.hand_keypoints is not None
        or width * height > MAX_IMAGE_PIXELS
        or not DEPTH_IS_NATIVE_F32
    ):
        return None
    rgb_data, depth_data = frame.rgb_data, frame.depth_data
    rgb_size, depth_size = len(rgb_data), len(depth_data)
    if (
        rgb_size != width * height * RGB_CHANNELS
        or depth_size != width * height * DEPTH_DTYPE.itemsize
        or rgb.total_bytes != rgb_size
        or depth.total_bytes != depth_size
    ):
        return None
    x, y, z, qw, qx, qy, qz = frame.pose
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    sim_time = frame.sim_time
    # A sum is finite iff every term is: one test for the pose, K and sim_time.
    if not math.isfinite(x + y + z + qw + qx + qy + qz + fx + fy + cx + cy + sim_time) or fx <= 0 or fy <= 0:
        return None
    norm = math.hypot(qw, qx, qy, qz)
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        return None
    # ndarray over the received buffer: one call per plane (frombuffer + reshape is two).
    return Observation(
        np.ndarray((height, width, RGB_CHANNELS), _UINT8, rgb_data),
        np.ndarray((height, width), _DEPTH_NATIVE, depth_data),
        pose_matrix((x, y, z), (qw, qx, qy, qz), norm),
        np.array((fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0)).reshape(3, 3),
        frame.frame_id,
        sim_time,
        None,
        frame.collided,
    )


def decode_flat_frame(frame: FlatFrame, field: str = "frame") -> tuple[str, Observation]:
    """(agent_id, Observation) of a frame read by `bridge.frame_meta`, with the same checks."""
    observation = _decode_raw_flat_frame(frame)
    if observation is not None:
        return frame.agent_id, observation
    return frame.agent_id, _observation_of(
        frame,
        frame.rgb,
        frame.depth,
        frame.pose,
        frame.intrinsics,
        frame.hand_keypoints,
        frame.rgb_data,
        frame.depth_data,
        field,
    )


def _observation_of(
    meta: pb.Frame | FlatFrame,
    rgb_meta: pb.Image | FlatImage,
    depth_meta: pb.Image | FlatImage,
    pose: pb.Pose | FlatPose,
    intrinsics: pb.Intrinsics | FlatIntrinsics,
    hand_keypoints: bytes | None,
    rgb_data: bytes | bytearray | memoryview,
    depth_data: bytes | bytearray | memoryview,
    field: str,
) -> Observation:
    """The validated Observation of a frame's parts (messages or their flat twins)."""
    if rgb_meta.format != pb.PIXEL_FORMAT_RGB8:
        raise InvalidArgumentError(f"{field}.rgb.format must be PIXEL_FORMAT_RGB8, got {rgb_meta.format}")
    if depth_meta.format != pb.PIXEL_FORMAT_DEPTH_F32:
        raise InvalidArgumentError(
            f"{field}.depth.format must be PIXEL_FORMAT_DEPTH_F32, got {depth_meta.format}"
        )
    if rgb_meta.width != depth_meta.width or rgb_meta.height != depth_meta.height:
        raise InvalidArgumentError(
            f"{field}: rgb is {rgb_meta.width}x{rgb_meta.height} "
            f"but depth is {depth_meta.width}x{depth_meta.height}"
        )
    sim_time = meta.sim_time
    if not math.isfinite(sim_time):
        raise InvalidArgumentError(f"{field}.sim_time must be finite, got {sim_time}")
    hands = None
    if hand_keypoints is not None:
        if len(hand_keypoints) != _HAND_KEYPOINT_BYTES:
            raise InvalidArgumentError(
                f"{field}.hand_keypoints.xyz_f32 has {len(hand_keypoints)} bytes, "
                f"expected {_HAND_KEYPOINT_BYTES}"
            )
        hands = np.frombuffer(hand_keypoints, dtype=HAND_KEYPOINT_DTYPE).reshape(HAND_KEYPOINT_SHAPE)
        hands = hands.astype(np.float32)
    return Observation(
        decode_plane(rgb_meta, rgb_data, f"{field}.rgb"),
        decode_plane(depth_meta, depth_data, f"{field}.depth"),
        pose_from_proto(pose, f"{field}.pose"),
        intrinsics_from_proto(intrinsics, f"{field}.intrinsics"),
        meta.frame_id,
        sim_time,
        hands,
        meta.collided,
    )


def frame_to_proto(agent_id: str, obs: Observation, codec: Codec = Codec.RAW) -> pb.Frame:
    """A complete `Frame` message (convenience; servers frame with EncodedFrameSet)."""
    return frameset_to_proto(0, {agent_id: obs}, codec).frames[0]


def frame_from_proto(frame: pb.Frame, field: str = "frame") -> tuple[str, Observation]:
    """(agent_id, Observation) of a complete `Frame` message."""
    return decode_frame(frame, frame.rgb.data, frame.depth.data, field)


def encode_frameset(
    step_id: int, observations: Mapping[str, Observation], codec: Codec = Codec.RAW
) -> EncodedFrameSet:
    """A step's observations ready to serialise (views: serialise before the engine runs again)."""
    return EncodedFrameSet(step_id, tuple(encode_frame(a, obs, codec) for a, obs in observations.items()))


def frameset_to_proto(
    step_id: int, observations: Mapping[str, Observation], codec: Codec = Codec.RAW
) -> service_pb.FrameSet:
    """A `FrameSet` message of a step's observations."""
    return service_pb.FrameSet.FromString(encode_frameset(step_id, observations, codec).to_bytes())


def _observations(frames: Iterable[tuple[str, Observation]], field: str) -> dict[str, Observation]:
    out: dict[str, Observation] = {}
    for agent_id, obs in frames:
        if agent_id in out:
            raise InvalidArgumentError(f"{field}: agent {agent_id!r} appears twice")
        out[agent_id] = obs
    return out


def frameset_from_proto(
    frameset: service_pb.FrameSet | AssembledFrameSet | FlatFrameSet | bytes,
) -> dict[str, Observation]:
    """Observations of a FrameSet, given in any of its four forms.

    Args:
        frameset: a `FrameSet` message, its serialised bytes (read in place), one read
            back by `read_frameset` / `FrameSetAssembler`, or one read in our own layout
            by `bridge.frame_meta` (the per-step path).
    """
    if isinstance(frameset, FlatFrameSet):
        flat = (decode_flat_frame(f, f"FrameSet.frames[{i}]") for i, f in enumerate(frameset.frames))
        return _observations(flat, "FrameSet.frames")
    if isinstance(frameset, service_pb.FrameSet):
        decoded = (frame_from_proto(f, f"FrameSet.frames[{i}]") for i, f in enumerate(frameset.frames))
        return _observations(decoded, "FrameSet.frames")
    if not isinstance(frameset, AssembledFrameSet):
        frameset = read_frameset(frameset)
    decoded = (
        decode_frame(f.meta, f.rgb, f.depth, f"FrameSet.frames[{i}]") for i, f in enumerate(frameset.frames)
    )
    return _observations(decoded, "FrameSet.frames")


# --------------------------------------------------------------------------- misc
def options_to_json(options: Mapping[str, Any] | None) -> str:
    """Reset options as the wire's JSON object ('' for none)."""
    if not options:
        return ""
    try:
        return json.dumps(dict(options), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"reset options must be JSON-serialisable: {exc}") from exc


def options_from_json(text: str, field: str = "ResetRequest.options_json") -> dict[str, Any]:
    """Reset options from the wire's JSON ('' → {}); anything but an object is refused."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"{field} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{field} must be a JSON object, got {type(value).__name__}")
    return value


def parse_semver(text: str, field: str = "protocol_version") -> tuple[int, int, int]:
    """(major, minor, patch) of a "MAJOR.MINOR.PATCH" string."""
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise InvalidArgumentError(f"{field} must look like MAJOR.MINOR.PATCH, got {text!r}")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch
