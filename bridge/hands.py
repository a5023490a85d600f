"""The one kinematic hand model: wrist pose + grip -> 21 MANO-ordered keypoints.

Everything that shows or simulates hands uses this module (ARCHITECTURE.md §4): the
MuJoCo engine builds its articulated hands from `FINGERS`, the world model is
conditioned on skeletons drawn from `hand_keypoints`, and every World integrates hand
actions with `apply_hand_action`. One definition keeps the engine's simulated fingers,
the rendered skeletons and the generated frames in agreement.

Hand frame (per hand, origin at the wrist keypoint), right-handed:
    +x distal (wrist towards the middle-finger knuckle),
    +z palmar (out of the palm),
    +y = z × x. For a RIGHT hand the thumb lies on -y, for a LEFT hand on +y; the
    anatomy below is written in (distal, radial, palmar) coordinates and mirrored into
    the hand frame by `RADIAL_SIGN`.

Finger flexion: every joint of a finger bends about the same axis (each finger is a
planar chain), towards the finger's `bend_toward` direction, by grip × max flexion.

Keypoints in MANO order: 0 wrist; 1-4 thumb CMC, MCP, IP, tip; 5-8 index MCP, PIP, DIP,
tip; 9-12 middle; 13-16 ring; 17-20 pinky.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bridge.conventions import axis_angle_to_matrix, rot_x, se3
from bridge.types import HAND_DIM, HAND_KEYPOINTS, NUM_HANDS, InvalidArgumentError

F64 = NDArray[np.float64]

LEFT, RIGHT = 0, 1
HAND_SIDES = ("left", "right")
HAND_ACTION_DIM = HAND_DIM // NUM_HANDS  # 7 = dpos 3 + drot 3 + grip 1
# Slices of one hand's 7-vector.
TRANSLATION = slice(0, 3)
ROTATION = slice(3, 6)
GRIP = 6

# Sign of the hand frame's +y along the radial (thumb) direction.
RADIAL_SIGN = {LEFT: 1.0, RIGHT: -1.0}

JOINTS_PER_FINGER = 3
WRIST_KEYPOINT = 0


@dataclass(frozen=True)
class HandLimits:
    """How far one step of full-scale hand action moves a wrist.

    Attributes:
        max_translation: metres per step at |action| = 1 (per axis, camera frame).
        max_rotation: radians per step at |axis-angle action| = 1 (camera frame).
    """

    max_translation: float = 0.03
    max_rotation: float = math.radians(10.0)


DEFAULT_HAND_LIMITS = HandLimits()


@dataclass(frozen=True)
class FingerSpec:
    """One finger as a planar chain of three bones, in (distal, radial, palmar) metres.

    Attributes:
        name: finger name (thumb, index, middle, ring, pinky).
        base: position of the first keypoint (thumb CMC, finger MCP) relative to the wrist.
        direction: unit direction of the straight (grip 0) finger.
        bend_toward: direction the finger curls towards (orthogonalised against direction).
        bone_lengths: the three bone lengths, proximal first.
        max_flexion: per-joint flexion at grip 1, radians, proximal joint first.
    """

    name: str
    base: tuple[float, float, float]
    direction: tuple[float, float, float]
    bend_toward: tuple[float, float, float]
    bone_lengths: tuple[float, float, float]
    max_flexion: tuple[float, float, float]


def _unit(v: tuple[float, float, float]) -> tuple[float, float, float]:
    n = math.sqrt(sum(c * c for c in v))
    return (v[0] / n, v[1] / n, v[2] / n)


def _splayed(splay_deg: float) -> tuple[float, float, float]:
    """Distal direction fanned radially by `splay_deg` (positive towards the thumb)."""
    a = math.radians(splay_deg)
    return (math.cos(a), math.sin(a), 0.0)


PALMAR = (0.0, 0.0, 1.0)
# Adult hand (wrist to middle fingertip ~18 cm). Knuckle (MCP) positions and phalanx
# lengths follow average anthropometric proportions; fingers fan out slightly.
INDEX_MCP = (0.085, 0.025, 0.0)
MIDDLE_MCP = (0.088, 0.004, 0.0)
RING_MCP = (0.083, -0.015, 0.0)
PINKY_MCP = (0.075, -0.032, 0.0)
INDEX_SPLAY_DEG, MIDDLE_SPLAY_DEG, RING_SPLAY_DEG, PINKY_SPLAY_DEG = 6.0, 0.0, -6.0, -12.0
INDEX_BONES = (0.040, 0.024, 0.020)
MIDDLE_BONES = (0.045, 0.028, 0.021)
RING_BONES = (0.042, 0.026, 0.020)
PINKY_BONES = (0.032, 0.019, 0.018)
# MCP, PIP, DIP flexion at a full fist; a little short of anatomical limits so that
# closed fingers do not pass through the palm.
FINGER_MAX_FLEXION = (math.radians(75.0), math.radians(90.0), math.radians(60.0))
# The thumb leaves the palm near the wrist, pointing distally, radially and a little
# palmar, and curls across the palm towards the little finger.
THUMB_CMC = (0.025, 0.022, 0.012)
THUMB_DIRECTION = _unit((0.62, 0.70, 0.35))
THUMB_BEND_TOWARD = _unit((0.25, -0.60, 0.75))
THUMB_BONES = (0.045, 0.032, 0.026)  # metacarpal, proximal, distal phalanx
THUMB_MAX_FLEXION = (math.radians(30.0), math.radians(45.0), math.radians(65.0))

FINGERS: tuple[FingerSpec, ...] = (
    FingerSpec("thumb", THUMB_CMC, THUMB_DIRECTION, THUMB_BEND_TOWARD, THUMB_BONES, THUMB_MAX_FLEXION),
    FingerSpec("index", INDEX_MCP, _splayed(INDEX_SPLAY_DEG), PALMAR, INDEX_BONES, FINGER_MAX_FLEXION),
    FingerSpec("middle", MIDDLE_MCP, _splayed(MIDDLE_SPLAY_DEG), PALMAR, MIDDLE_BONES, FINGER_MAX_FLEXION),
    FingerSpec("ring", RING_MCP, _splayed(RING_SPLAY_DEG), PALMAR, RING_BONES, FINGER_MAX_FLEXION),
    FingerSpec("pinky", PINKY_MCP, _splayed(PINKY_SPLAY_DEG), PALMAR, PINKY_BONES, FINGER_MAX_FLEXION),
)

# Skeleton edges (parent, child) in MANO order, for drawing and bone-length checks.
HAND_BONES: tuple[tuple[int, int], ...] = tuple(
    edge
    for f in range(len(FINGERS))
    for edge in [(WRIST_KEYPOINT, 1 + 4 * f)] + [(1 + 4 * f + j, 2 + 4 * f + j) for j in range(3)]
)

# Default wrists in the CAMERA frame (OpenCV: x right, y down, z forward): in front of
# and below the eye, palms facing image-down, fingers forward, tilted up by
# DEFAULT_HAND_TILT so that under a camera looking down at a table they lie roughly flat.
DEFAULT_WRIST_POSITIONS_CAM = {LEFT: (-0.12, 0.10, 0.38), RIGHT: (0.12, 0.10, 0.38)}
DEFAULT_HAND_TILT = math.radians(40.0)


@dataclass(frozen=True)
class FingerFrame:
    """One finger of one side expressed in that hand's frame (what the engine builds).

    Attributes:
        base: first keypoint, hand frame.
        direction: unit bone direction at zero flexion.
        bend: unit direction the bones rotate towards (orthogonal to direction).
        axis: hinge axis = direction × bend; positive rotation curls the finger.
        bone_lengths: as in FingerSpec.
        max_flexion: as in FingerSpec.
    """

    base: F64
    direction: F64
    bend: F64
    axis: F64
    bone_lengths: tuple[float, float, float]
    max_flexion: tuple[float, float, float]


def finger_frames(side: int) -> tuple[FingerFrame, ...]:
    """The five fingers of the LEFT (0) or RIGHT (1) hand in that hand's frame."""
    _check_side(side)
    mirror = np.array([1.0, RADIAL_SIGN[side], 1.0])
    frames = []
    for spec in FINGERS:
        d = mirror * np.asarray(spec.direction)
        d /= np.linalg.norm(d)
        n = mirror * np.asarray(spec.bend_toward)
        n = n - np.dot(n, d) * d
        n /= np.linalg.norm(n)
        frames.append(
            FingerFrame(
                mirror * np.asarray(spec.base), d, n, np.cross(d, n), spec.bone_lengths, spec.max_flexion
            )
        )
    return tuple(frames)


def keypoints_in_hand_frame(grip: float, side: int) -> F64:
    """(21, 3) keypoints in the hand frame at grip g in [0, 1] (flexion = g × max)."""
    g = float(np.clip(grip, 0.0, 1.0))
    points = np.zeros((HAND_KEYPOINTS, 3))
    for f, finger in enumerate(finger_frames(side)):
        p = finger.base.copy()
        points[1 + 4 * f] = p
        angle = 0.0
        for j in range(JOINTS_PER_FINGER):
            angle += g * finger.max_flexion[j]
            p = p + finger.bone_lengths[j] * (
                math.cos(angle) * finger.direction + math.sin(angle) * finger.bend
            )
            points[2 + 4 * f + j] = p
    return points


def hand_keypoints(wrist_pose: ArrayLike, grip: float, side: int) -> F64:
    """(21, 3) keypoints of one hand in the frame its wrist pose is expressed in."""
    T = np.asarray(wrist_pose, dtype=np.float64)
    return keypoints_in_hand_frame(grip, side) @ T[:3, :3].T + T[:3, 3]


def hands_keypoints(wrist_poses: ArrayLike, grips: ArrayLike) -> NDArray[np.float32]:
    """(2, 21, 3) float32 keypoints of both hands (left, right), as in Observation."""
    poses = np.asarray(wrist_poses, dtype=np.float64)
    g = np.asarray(grips, dtype=np.float64)
    return np.stack([hand_keypoints(poses[s], g[s], s) for s in (LEFT, RIGHT)]).astype(np.float32)


def default_wrist_poses_cam() -> F64:
    """(2, 4, 4) default wrist poses (left, right) in the camera frame."""
    # Fingers along the optical axis, palm towards image-down: x_hand = z_cam, z_hand = y_cam.
    base = np.stack([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], axis=1)
    tilted = rot_x(DEFAULT_HAND_TILT) @ base  # positive about camera x raises the fingertips (y down)
    return np.stack([se3(tilted, DEFAULT_WRIST_POSITIONS_CAM[s]) for s in (LEFT, RIGHT)])


def split_hand_action(action14: ArrayLike) -> tuple[F64, F64]:
    """(left 7-vector, right 7-vector) of a Box(14) hand action."""
    a = np.asarray(action14, dtype=np.float64)
    if a.shape != (HAND_DIM,):
        raise InvalidArgumentError(f"Action.hand_vector must have shape ({HAND_DIM},), got {a.shape}")
    return a[:HAND_ACTION_DIM].copy(), a[HAND_ACTION_DIM:].copy()


def apply_hand_action(
    wrist_pose: ArrayLike,
    grip: float,
    action7: ArrayLike,
    limits: HandLimits = DEFAULT_HAND_LIMITS,
    camera_pose: ArrayLike | None = None,
) -> tuple[F64, float]:
    """Integrates one hand's 7-vector: (new wrist pose, new grip).

    Translation and axis-angle rotation are given in the CAMERA frame (so "+x" always
    moves the hand to the right of the image, whatever the camera looks at) and scaled
    by `limits`; the wrist rotates about its own origin. The grip component is an
    absolute target in [0, 1], not a delta, so a policy can hold a grasp with a constant
    action.

    Args:
        wrist_pose: (4, 4) wrist pose in some frame F (the camera frame or the world).
        grip: current grip (unused for the result; kept so call sites read naturally).
        action7: dpos (3), drot (3) in [-1, 1], grip target in [0, 1].
        limits: per-step scale of the translation and rotation.
        camera_pose: camera-to-F transform; None when the wrist pose is already in the
            camera frame.
    """
    del grip  # the grip target is absolute
    a = np.asarray(action7, dtype=np.float64)
    if a.shape != (HAND_ACTION_DIM,) or not np.all(np.isfinite(a)):
        raise InvalidArgumentError(f"hand action must be {HAND_ACTION_DIM} finite values, got {a.tolist()}")
    T = np.asarray(wrist_pose, dtype=np.float64)
    R_cam = np.eye(3) if camera_pose is None else np.asarray(camera_pose, dtype=np.float64)[:3, :3]
    translation = R_cam @ (limits.max_translation * np.clip(a[TRANSLATION], -1.0, 1.0))
    rotation = R_cam @ axis_angle_to_matrix(limits.max_rotation * np.clip(a[ROTATION], -1.0, 1.0)) @ R_cam.T
    new_pose = se3(rotation @ T[:3, :3], T[:3, 3] + translation)
    return new_pose, float(np.clip(a[GRIP], 0.0, 1.0))


def _check_side(side: int) -> None:
    if side not in (LEFT, RIGHT):
        raise InvalidArgumentError(f"hand side must be LEFT (0) or RIGHT (1), got {side!r}")
