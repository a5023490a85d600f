"""Poses and intrinsics on the wire, with validation naming the field.

Split from `bridge.wire` (which re-exports it). Poses travel as translation + unit
quaternion (ARCHITECTURE.md §3, §5); K as fx, fy, cx, cy.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from bridge.conventions import pose_to_quat_floats
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.types import InvalidArgumentError

F64 = NDArray[np.float64]
# |‖q‖ − 1| above this means the sender did not send a rotation; smaller errors are
# float noise (e.g. a float32 quaternion) and are normalised away.
QUAT_NORM_TOLERANCE = 1e-3
# Intrinsics the wire cannot carry (skew) must be this close to zero to be dropped.
K_SKEW_TOLERANCE = 1e-9
_POSE_FIELDS = ("x", "y", "z", "qw", "qx", "qy", "qz")


def pose_to_proto(pose: NDArray[np.float64]) -> pb.Pose:
    """Camera-to-world 4x4 pose as translation + named unit quaternion."""
    (x, y, z), (qw, qx, qy, qz) = pose_to_quat_floats(pose)
    return pb.Pose(x=x, y=y, z=z, qw=qw, qx=qx, qy=qy, qz=qz)


def pose_from_proto(msg: pb.Pose, field: str = "pose") -> NDArray[np.float64]:
    """The 4x4 pose of a `Pose` message.

    Raises:
        InvalidArgumentError: a component is NaN/inf, or the quaternion is not unit length.
    """
    t = (msg.x, msg.y, msg.z)
    q = (msg.qw, msg.qx, msg.qy, msg.qz)
    # A sum is finite iff every term is: one test instead of seven on the common path.
    if not math.isfinite(sum(t) + sum(q)):
        for name, value in zip(_POSE_FIELDS, (*t, *q), strict=True):
            if not math.isfinite(value):
                raise InvalidArgumentError(f"{field}.{name} is {value}; a pose must be finite")
    norm = math.hypot(*q)
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        raise InvalidArgumentError(
            f"{field} (qw, qx, qy, qz) has norm {norm:.6g}; a rigid pose needs a unit quaternion"
        )
    return pose_matrix(t, q, norm)


def pose_matrix(t: tuple[float, float, float], q: tuple[float, float, float, float], norm: float) -> F64:
    """`conventions.pose_from_quat_floats` for a quaternion of known norm, as one flat array.

    The same formulas (q and -q give the same matrix, so the canonical sign is not needed);
    built from one flat tuple, which costs half of numpy's nested-list path on every frame.
    """
    w, x, y, z = q[0] / norm, q[1] / norm, q[2] / norm, q[3] / norm
    return np.array(
        (
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            t[0],
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            t[1],
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
            t[2],
            0.0,
            0.0,
            0.0,
            1.0,
        )
    ).reshape(4, 4)


def intrinsics_to_proto(K: NDArray[np.float64], width: int, height: int) -> pb.Intrinsics:
    """Pinhole intrinsics; the wire has no skew, so K must have none."""
    K = np.asarray(K, dtype=np.float64)
    if abs(K[0, 1]) > K_SKEW_TOLERANCE:
        raise InvalidArgumentError(f"K has skew {K[0, 1]}; the wire carries fx, fy, cx, cy only")
    return pb.Intrinsics(fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2], width=width, height=height)


def intrinsics_from_proto(msg: pb.Intrinsics, field: str = "intrinsics") -> NDArray[np.float64]:
    """The 3x3 K of an `Intrinsics` message (finite, positive focal lengths)."""
    fx, fy, cx, cy = msg.fx, msg.fy, msg.cx, msg.cy
    if not math.isfinite(fx + fy + cx + cy):  # finite iff every term is
        for name, value in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)):
            if not math.isfinite(value):
                raise InvalidArgumentError(f"{field}.{name} must be finite, got {value}")
    if fx <= 0 or fy <= 0:
        raise InvalidArgumentError(f"{field}.fx and .fy must be positive, got {fx}, {fy}")
    return np.array((fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0)).reshape(3, 3)
