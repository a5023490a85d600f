"""Batched torch kinematics of navigation and hands, mirroring `bridge.actions` / `bridge.hands`.

The generative world integrates every stream's camera and wrists on the device, inside the
step that a CUDA graph may capture, so these functions take (N, ...) tensors, use no
data-dependent control flow and never read a value back to the host. Degenerate cases of the
numpy reference (looking straight up/down, zero rotation vectors) are selected with
`torch.where` instead of `if`.

Semantics are exactly those of the numpy reference, which stays the single definition of what
an action means (ARCHITECTURE.md §4); `tests/sim_env/test_kinematics.py` checks agreement to
1e-6 in float64:

- `integrate_nav`: translation in the heading frame (forward/right on the ground, up = world
  Z), yaw about world Z, pitch about the camera x axis clamped to ±max_pitch, roll about the
  optical axis.
- `apply_hand_actions`: wrist deltas in the CAMERA frame (wrists are stored in the camera
  frame, so navigation never moves a hand in the image), grip is an absolute target.
- `HandKinematics.keypoints`: 21 MANO keypoints per hand from wrist pose + grip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bridge.actions import FORWARD, PITCH, RIGHT, ROLL, UP, YAW, NavLimits, key_to_nav
from bridge.hands import (
    DEFAULT_HAND_LIMITS,
    GRIP,
    HAND_ACTION_DIM,
    HAND_KEYPOINTS,
    JOINTS_PER_FINGER,
    LEFT,
    ROTATION,
    TRANSLATION,
    HandLimits,
    default_wrist_poses_cam,
    finger_frames,
)
from bridge.types import NAV_DIM, NUM_HANDS, NUM_NAV_KEYS

# Below this horizontal norm the optical axis is vertical and the image-up picks the heading
# (same threshold as bridge.actions.heading_frame).
HEADING_EPS = 1e-6
# Rotation vectors shorter than this use the first-order Rodrigues form (as bridge.conventions).
AXIS_ANGLE_EPS = 1e-12
FINGERS = 5


def depth_ahead(depth: torch.Tensor) -> torch.Tensor:
    """(N,) nearest depth in the centre third of each (N, H, W) view: what the collision rule reads."""
    h, w = depth.shape[-2:]
    return depth[..., h // 3 : h - h // 3, w // 3 : w - w // 3].amin(dim=(-2, -1))


def block_forward(
    nav: torch.Tensor, depths: Sequence[torch.Tensor], threshold_m: float, travel_m: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The collision rule: no forward motion toward something nearer than the threshold ahead.

    Args:
        nav: (N, NAV_DIM) navigation.
        depths: (N, H, W) views the rule reads (the previous generated depth, and the pinned
            reference's when the world uses it); the nearest `depth_ahead` of them counts.
        threshold_m: forward motion stops below this depth ahead.
        travel_m: metres a full forward action still moves before the next depth is known (a
            latent chunk's later video frames), added to the threshold in proportion to the action.

    Returns:
        ``nav`` with the forward component zeroed where blocked, and the (N,) bool blocked flags.
    """
    ahead = depth_ahead(depths[0])
    for depth in depths[1:]:
        ahead = torch.minimum(ahead, depth_ahead(depth))
    forward = nav[:, FORWARD]
    blocked = (ahead < threshold_m + travel_m * forward.clamp_min(0.0)) & (forward > 0)
    out = nav.clone()
    out[:, FORWARD] = torch.where(blocked, 0.0, forward)
    return out, blocked


def key_table(device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(NUM_NAV_KEYS, NAV_DIM) continuous-nav vector of every discrete key (bridge.actions)."""
    table = np.stack([key_to_nav(k) for k in range(NUM_NAV_KEYS)])
    return torch.as_tensor(table, dtype=dtype, device=device)


def keys_to_nav(keys: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(N,) int64 keys → (N, NAV_DIM) nav vectors by a table gather (no host sync)."""
    return table[keys]


def rot_x(angle: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations about +X by ``angle`` (...,) radians."""
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([o, z, z, z, c, -s, z, s, c], dim=-1).unflatten(-1, (3, 3))


def rot_z(angle: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations about +Z by ``angle`` (...,) radians."""
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, -s, z, s, c, z, z, z, o], dim=-1).unflatten(-1, (3, 3))


def skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) cross-product matrices of (..., 3) vectors."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).unflatten(-1, (3, 3))


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues formula, batched: (..., 3) rotation vectors → (..., 3, 3) matrices."""
    angle = torch.linalg.vector_norm(rotvec, dim=-1)
    small = angle < AXIS_ANGLE_EPS
    safe = torch.where(small, torch.ones_like(angle), angle)
    k = skew(rotvec / safe[..., None])
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(k)
    full = eye + safe.sin()[..., None, None] * k + (1.0 - safe.cos())[..., None, None] * (k @ k)
    return torch.where(small[..., None, None], eye + skew(rotvec), full)


def se3(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) rigid transforms from (..., 3, 3) rotations and (..., 3) translations."""
    top = torch.cat([R, t[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def _on_ground(v: torch.Tensor) -> torch.Tensor:
    """``v`` (..., 3) with its world-Z component zeroed, built from device data only."""
    return torch.nn.functional.pad(v[..., :2], (0, 1))


def heading_frame(pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal forward and right unit vectors (N, 3) of cameras (N, 4, 4) (world Z up)."""
    R = pose[..., :3, :3]
    # Projection on the ground plane by zero-padding x, y (no per-call host→device constant).
    forward = _on_ground(R[..., :, 2])
    image_up = _on_ground(R[..., :, 1] * torch.sign(R[..., 2, 2])[..., None])
    vertical = torch.linalg.vector_norm(forward, dim=-1, keepdim=True) < HEADING_EPS
    forward = torch.where(vertical, image_up, forward)
    forward = forward / torch.linalg.vector_norm(forward, dim=-1, keepdim=True)
    right = torch.stack([forward[..., 1], -forward[..., 0], torch.zeros_like(forward[..., 0])], dim=-1)
    return forward, right


def pitch_of(pose: torch.Tensor) -> torch.Tensor:
    """Camera pitch (...,) in radians, positive looking up."""
    return torch.asin(pose[..., 2, 2].clamp(-1.0, 1.0))


def integrate_nav(pose: torch.Tensor, nav: torch.Tensor, limits: NavLimits) -> torch.Tensor:
    """Camera poses (N, 4, 4) after one navigation step of ``nav`` (N, 6); no collision check.

    Same semantics as `bridge.actions.integrate_nav` (see the module docstring).
    """
    nav = nav.to(pose.dtype)
    forward, right = heading_frame(pose)
    # Up is world Z: padding the scalar into the z slot avoids a per-step (0, 0, 1) constant.
    up = torch.nn.functional.pad(nav[..., UP, None], (2, 0))
    step = limits.max_translation * (nav[..., FORWARD, None] * forward + nav[..., RIGHT, None] * right + up)
    R = rot_z(limits.max_rotation * nav[..., YAW]) @ pose[..., :3, :3]
    current = pitch_of(pose)
    target = (current + limits.max_rotation * nav[..., PITCH]).clamp(-limits.max_pitch, limits.max_pitch)
    R = R @ rot_x(target - current)
    R = R @ rot_z(limits.max_rotation * nav[..., ROLL])
    return se3(R, pose[..., :3, 3] + step)


def apply_hand_actions(
    wrist_cam: torch.Tensor,
    grip: torch.Tensor,
    action: torch.Tensor,
    limits: HandLimits = DEFAULT_HAND_LIMITS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrates Box(14) hand actions for wrists stored in the camera frame.

    Args:
        wrist_cam: (N, 2, 4, 4) wrist poses (left, right) in the camera frame.
        grip: (N, 2) current grips (unused: the grip action is an absolute target).
        action: (N, 14) per hand dpos (3), drot (3) in [-1, 1], grip target in [0, 1].
        limits: per-step scale.

    Returns:
        (new wrist poses (N, 2, 4, 4), new grips (N, 2)), as `bridge.hands.apply_hand_action`
        with ``camera_pose=None`` per hand.
    """
    del grip
    a = action.to(wrist_cam.dtype).unflatten(-1, (NUM_HANDS, HAND_ACTION_DIM))
    translation = limits.max_translation * a[..., TRANSLATION].clamp(-1.0, 1.0)
    rotation = axis_angle_to_matrix(limits.max_rotation * a[..., ROTATION].clamp(-1.0, 1.0))
    new = se3(rotation @ wrist_cam[..., :3, :3], wrist_cam[..., :3, 3] + translation)
    return new, a[..., GRIP].clamp(0.0, 1.0)


class HandKinematics:
    """The bridge hand model as device tensors: keypoints of (N, 2) hands in one batched op.

    Args:
        device: where the finger tables live.
        dtype: floating dtype of the tables (keypoints come out in the wrist poses' dtype).
    """

    def __init__(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> None:
        frames = [finger_frames(side) for side in range(NUM_HANDS)]

        def table(attr: str) -> torch.Tensor:
            values = [[np.asarray(getattr(f, attr), dtype=np.float64) for f in side] for side in frames]
            return torch.as_tensor(np.array(values), dtype=dtype, device=device)  # (2, 5, ...)

        self.base, self.direction, self.bend = table("base"), table("direction"), table("bend")
        self.bone_lengths, self.max_flexion = table("bone_lengths"), table("max_flexion")
        self.default_wrists = torch.as_tensor(default_wrist_poses_cam(), dtype=dtype, device=device)

    def keypoints_in_hand_frame(self, grip: torch.Tensor) -> torch.Tensor:
        """(N, 2, 21, 3) keypoints in each hand's frame at grips (N, 2)."""
        g = grip.to(self.base.dtype).clamp(0.0, 1.0)[..., None, None]  # (N, 2, 1, 1)
        angle = g * torch.cumsum(self.max_flexion, dim=-1)  # (N, 2, 5, 3) cumulative joint angles
        bones = self.bone_lengths[..., None] * (
            angle.cos()[..., None] * self.direction[:, :, None]
            + angle.sin()[..., None] * self.bend[:, :, None]
        )  # (N, 2, 5, 3 joints, 3 xyz)
        joints = self.base[:, :, None] + torch.cumsum(bones, dim=-2)
        chain = torch.cat(
            [self.base[:, :, None].expand_as(joints[..., :1, :]), joints], dim=-2
        )  # (N, 2, 5, 4, 3)
        wrist = torch.zeros_like(chain[..., 0, :1, :])  # (N, 2, 1, 3)
        points = torch.cat([wrist, chain.flatten(-3, -2)], dim=-2)
        assert points.shape[-2] == HAND_KEYPOINTS == 1 + FINGERS * (1 + JOINTS_PER_FINGER)
        return points

    def keypoints(self, wrist: torch.Tensor, grip: torch.Tensor) -> torch.Tensor:
        """(N, 2, 21, 3) keypoints in the wrists' frame from wrist poses (N, 2, 4, 4), grips (N, 2)."""
        local = self.keypoints_in_hand_frame(grip).to(wrist.dtype)
        return local @ wrist[..., :3, :3].transpose(-1, -2) + wrist[..., None, :3, 3]


__all__ = [
    "LEFT",
    "NAV_DIM",
    "HandKinematics",
    "apply_hand_actions",
    "axis_angle_to_matrix",
    "heading_frame",
    "integrate_nav",
    "key_table",
    "keys_to_nav",
    "pitch_of",
    "rot_x",
    "rot_z",
]
