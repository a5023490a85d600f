"""Coordinate conventions: the one place where frames, rotations and cameras are defined.

GenWorld (ARCHITECTURE.md §3): world right-handed, Z up, metres; camera OpenCV (x right,
y down, z forward); poses are 4x4 camera-to-world; quaternions are (w, x, y, z); depth is
planar metres; K has pixel centres at integer coordinates.

Unreal Engine is left-handed (X forward, Y right, Z up), in centimetres and degrees.
Everything Unreal is converted here and only here; the C++ core mirrors these functions
and both are checked against `tests/data/conventions_vectors.json`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]

UE_CM_PER_M = 100.0
# Mirrors the Y axis: the handedness flip between Unreal and GenWorld world frames.
_UE_FLIP = np.diag([1.0, -1.0, 1.0])


# --------------------------------------------------------------------------- rotations
# Below this a quaternion component counts as zero (canonical sign) or a norm as degenerate.
_QUAT_EPS = 1e-12
Quat = tuple[float, float, float, float]
Rows3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


# The rotation conventions are implemented once, on plain floats: the wire converts a pose
# every frame, and small numpy operations cost microseconds each. The ndarray functions
# below are thin wrappers of these.
def _unit_quat(w: float, x: float, y: float, z: float) -> Quat:
    """(w, x, y, z) normalised, in canonical sign (see `normalize_quat`)."""
    n = math.hypot(w, x, y, z)
    if not math.isfinite(n) or n < _QUAT_EPS:
        raise ValueError(f"quaternion must be finite and non-zero, got {[w, x, y, z]}")
    q = (w / n, x / n, y / n, z / n)
    leading = next((c for c in q if abs(c) > _QUAT_EPS), q[0])
    return (-q[0], -q[1], -q[2], -q[3]) if leading < 0 else q


def _quat_rows(w: float, x: float, y: float, z: float) -> Rows3:
    """Rows of the rotation matrix of a (w, x, y, z) quaternion (normalised first)."""
    w, x, y, z = _unit_quat(w, x, y, z)
    return (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )


def _rows_quat(R: Sequence[Sequence[float]]) -> Quat:
    """(w, x, y, z) of the rotation whose first three rows/columns are `R` (Shepperd)."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = (row[:3] for row in R[:3])
    trace = r00 + r11 + r22
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        return _unit_quat(0.25 * s, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s)
    if r00 > r11 and r00 > r22:
        s = 2.0 * math.sqrt(1.0 + r00 - r11 - r22)
        return _unit_quat((r21 - r12) / s, 0.25 * s, (r01 + r10) / s, (r02 + r20) / s)
    if r11 > r22:
        s = 2.0 * math.sqrt(1.0 + r11 - r00 - r22)
        return _unit_quat((r02 - r20) / s, (r01 + r10) / s, 0.25 * s, (r12 + r21) / s)
    s = 2.0 * math.sqrt(1.0 + r22 - r00 - r11)
    return _unit_quat((r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, 0.25 * s)


def normalize_quat(q: ArrayLike) -> F64:
    """Unit quaternion (w, x, y, z) in canonical sign: first non-zero component positive.

    q and -q are the same rotation; fixing the sign (w > 0 in all but 180° turns) gives
    each rotation one representation on the wire and in the test vectors.
    """
    w, x, y, z = np.asarray(q, dtype=np.float64).tolist()
    return np.array(_unit_quat(w, x, y, z))


def quat_to_matrix(q: ArrayLike) -> F64:
    """Rotation matrix of a (w, x, y, z) quaternion (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64).tolist()
    return np.array(_quat_rows(w, x, y, z))


def matrix_to_quat(R: ArrayLike) -> F64:
    """(w, x, y, z) quaternion of a rotation matrix, w >= 0 (Shepperd's stable branch choice)."""
    return np.array(_rows_quat(np.asarray(R, dtype=np.float64).tolist()))


def quat_multiply(a: ArrayLike, b: ArrayLike) -> F64:
    """Hamilton product a * b: rotating by b first, then by a."""
    aw, ax, ay, az = np.asarray(a, dtype=np.float64)
    bw, bx, by, bz = np.asarray(b, dtype=np.float64)
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def axis_angle_to_matrix(rotvec: ArrayLike) -> F64:
    """Rodrigues: rotation vector (axis * angle, radians) to matrix."""
    v = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3) + skew(v)
    k = skew(v / angle)
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def matrix_to_axis_angle(R: ArrayLike) -> F64:
    """Rotation vector of a matrix, angle in [0, pi]."""
    w, x, y, z = matrix_to_quat(R)
    s = math.sqrt(x * x + y * y + z * z)
    if s < 1e-12:
        return np.zeros(3)
    angle = 2.0 * math.atan2(s, w)
    return np.array([x, y, z]) / s * angle


def skew(v: ArrayLike) -> F64:
    """Cross-product matrix, so that the product with b equals cross(v, b)."""
    x, y, z = np.asarray(v, dtype=np.float64)
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def rot_x(angle: float) -> F64:
    """Rotation about +X by `angle` radians (right-hand rule)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> F64:
    """Rotation about +Y by `angle` radians (right-hand rule)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> F64:
    """Rotation about +Z by `angle` radians (right-hand rule)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# --------------------------------------------------------------------------- SE(3)
def se3(R: ArrayLike, t: ArrayLike) -> F64:
    """4x4 rigid transform from a rotation and a translation."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, dtype=np.float64)
    T[:3, 3] = np.asarray(t, dtype=np.float64)
    return T


def se3_inverse(T: ArrayLike) -> F64:
    """Inverse of a rigid transform, using R^T instead of a general matrix inverse."""
    T = np.asarray(T, dtype=np.float64)
    R, t = T[:3, :3], T[:3, 3]
    return se3(R.T, -R.T @ t)


def pose_from_quat(translation: ArrayLike, quat_wxyz: ArrayLike) -> F64:
    """Camera-to-world pose from a position and a (w, x, y, z) orientation."""
    tx, ty, tz = np.asarray(translation, dtype=np.float64).tolist()
    w, x, y, z = np.asarray(quat_wxyz, dtype=np.float64).tolist()
    return pose_from_quat_floats((tx, ty, tz), (w, x, y, z))


def pose_to_quat(T: ArrayLike) -> tuple[F64, F64]:
    """(translation, (w, x, y, z) quaternion) of a rigid transform."""
    t, q = pose_to_quat_floats(T)
    return np.array(t), np.array(q)


def pose_from_quat_floats(translation: Sequence[float], quat_wxyz: Sequence[float]) -> F64:
    """`pose_from_quat` of plain floats (the wire's per-frame path: no small numpy ops)."""
    tx, ty, tz = translation
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = _quat_rows(*quat_wxyz)
    return np.array([[r00, r01, r02, tx], [r10, r11, r12, ty], [r20, r21, r22, tz], [0.0, 0.0, 0.0, 1.0]])


def pose_to_quat_floats(T: ArrayLike) -> tuple[tuple[float, float, float], Quat]:
    """`pose_to_quat` as plain floats: ((x, y, z), (w, x, y, z))."""
    rows = np.asarray(T, dtype=np.float64).tolist()
    return (rows[0][3], rows[1][3], rows[2][3]), _rows_quat(rows)


def is_rigid(T: ArrayLike, atol: float = 1e-6) -> bool:
    """Whether T is a finite 4x4 rigid transform (orthonormal, det +1, last row 0 0 0 1)."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return False
    R = T[:3, :3]
    return (
        np.allclose(R.T @ R, np.eye(3), atol=atol)
        and abs(np.linalg.det(R) - 1.0) < atol
        and np.allclose(T[3], [0.0, 0.0, 0.0, 1.0], atol=atol)
    )


def look_at(eye: ArrayLike, target: ArrayLike, up: ArrayLike = (0.0, 0.0, 1.0)) -> F64:
    """OpenCV camera-to-world pose at `eye` looking at `target` with image-up along `up`."""
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:  # looking straight along `up`: any right vector will do
        x = np.cross(z, [1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return se3(np.stack([x, y, z], axis=1), eye)


# --------------------------------------------------------------------------- cameras
def intrinsics_from_fov(width: int, height: int, fov_deg: float, axis: str = "vertical") -> F64:
    """Pinhole K with square pixels from a field of view.

    MuJoCo's `fovy` is vertical; Unreal's `FieldOfView` is horizontal, hence `axis`.
    Pixel centres are at integer coordinates, so the principal point of a centred camera
    is ((W - 1) / 2, (H - 1) / 2), not (W / 2, H / 2).
    """
    if axis not in ("vertical", "horizontal"):
        raise ValueError(f"axis must be 'vertical' or 'horizontal', got {axis!r}")
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
    extent = height if axis == "vertical" else width
    f = 0.5 * extent / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def fov_from_intrinsics(K: ArrayLike, width: int, height: int, axis: str = "vertical") -> float:
    """Field of view in degrees that `intrinsics_from_fov` would turn into this K."""
    K = np.asarray(K, dtype=np.float64)
    f, extent = (K[1, 1], height) if axis == "vertical" else (K[0, 0], width)
    return math.degrees(2.0 * math.atan(0.5 * extent / f))


def project(K: ArrayLike, points_cam: ArrayLike) -> tuple[F64, F64]:
    """Pixel coordinates (..., 2) and planar depth (...) of camera-frame points (..., 3)."""
    K = np.asarray(K, dtype=np.float64)
    p = np.asarray(points_cam, dtype=np.float64)
    z = p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * p[..., 0] / z + K[0, 2]
        v = K[1, 1] * p[..., 1] / z + K[1, 2]
    return np.stack([u, v], axis=-1), z


def unproject_depth(K: ArrayLike, depth: ArrayLike) -> F64:
    """Camera-frame points (H, W, 3) of a planar depth map (H, W); inf depth stays inf."""
    K = np.asarray(K, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = (v - K[1, 2]) / K[1, 1] * depth
    return np.stack([x, y, depth], axis=-1)


def transform_points(T: ArrayLike, points: ArrayLike) -> F64:
    """Applies a 4x4 transform to points (..., 3)."""
    T = np.asarray(T, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ T[:3, :3].T + T[:3, 3]


# --------------------------------------------------------------------------- Unreal
def ue_rotator_to_matrix(pitch_deg: float, yaw_deg: float, roll_deg: float) -> F64:
    """Unreal FRotator to the matrix whose columns are its X, Y, Z axes in Unreal world.

    This is the published FRotationMatrix layout (rows of Unreal's matrix = axes), here
    transposed into columns so that `R @ v_local` maps local to world like everywhere else.
    """
    p, y, r = (math.radians(a) for a in (pitch_deg, yaw_deg, roll_deg))
    sp, cp, sy, cy, sr, cr = math.sin(p), math.cos(p), math.sin(y), math.cos(y), math.sin(r), math.cos(r)
    x_axis = [cp * cy, cp * sy, sp]
    y_axis = [sr * sp * cy - cr * sy, sr * sp * sy + cr * cy, -sr * cp]
    z_axis = [-(cr * sp * cy + sr * sy), cy * sr - cr * sp * sy, cr * cp]
    return np.array([x_axis, y_axis, z_axis]).T


def ue_matrix_to_rotator(R_ue: ArrayLike) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a matrix built like `ue_rotator_to_matrix`."""
    R = np.asarray(R_ue, dtype=np.float64)
    x_axis, y_axis, z_axis = R[:, 0], R[:, 1], R[:, 2]
    pitch = math.degrees(math.atan2(x_axis[2], math.hypot(x_axis[0], x_axis[1])))
    yaw = math.degrees(math.atan2(x_axis[1], x_axis[0]))
    # Roll from the Y and Z axes' heights: y_z = -sr*cp, z_z = cr*cp.
    roll = math.degrees(math.atan2(-y_axis[2], z_axis[2]))
    return pitch, yaw, roll


def ue_location_to_world(location_cm: ArrayLike) -> F64:
    """Unreal world location (cm, left-handed) to GenWorld world position (m, right-handed)."""
    return _UE_FLIP @ np.asarray(location_cm, dtype=np.float64) / UE_CM_PER_M


def world_to_ue_location(position_m: ArrayLike) -> F64:
    """GenWorld world position (m) to Unreal world location (cm)."""
    return _UE_FLIP @ np.asarray(position_m, dtype=np.float64) * UE_CM_PER_M


def ue_camera_to_pose(location_cm: ArrayLike, rotator_deg: ArrayLike) -> F64:
    """Camera-to-world OpenCV pose of an Unreal camera (looks along its +X, Z up).

    The OpenCV axes in Unreal terms are x = +Y (right), y = -Z (down), z = +X (forward);
    each is mirrored into GenWorld's world frame. The two mirror flips cancel, so the
    result is a proper rotation.
    """
    R_ue = ue_rotator_to_matrix(*rotator_deg)
    forward, right, up = R_ue[:, 0], R_ue[:, 1], R_ue[:, 2]
    R = np.stack([_UE_FLIP @ right, -(_UE_FLIP @ up), _UE_FLIP @ forward], axis=1)
    return se3(R, ue_location_to_world(location_cm))


def pose_to_ue_camera(T: ArrayLike) -> tuple[F64, tuple[float, float, float]]:
    """Inverse of `ue_camera_to_pose`: (location cm, (pitch, yaw, roll) degrees)."""
    T = np.asarray(T, dtype=np.float64)
    R = T[:3, :3]
    x_cv, y_cv, z_cv = R[:, 0], R[:, 1], R[:, 2]
    R_ue = np.stack([_UE_FLIP @ z_cv, _UE_FLIP @ x_cv, -(_UE_FLIP @ y_cv)], axis=1)
    return world_to_ue_location(T[:3, 3]), ue_matrix_to_rotator(R_ue)
