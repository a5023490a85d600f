"""Action semantics shared by every World: keys → continuous nav → a new camera pose.

Keeping the integration here means MuJoCo, the C++ core and the generative model move
a camera identically for the same action, which shadow mode and evaluation rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bridge.conventions import rot_x, rot_z, se3
from bridge.types import NAV_DIM, Action

# Continuous-nav components, in the order of the Box(6) action.
FORWARD, RIGHT, UP, YAW, PITCH, ROLL = range(NAV_DIM)

# WorldScape keys: 0 noop, W, A, S, D, Q (yaw left), E (yaw right), R (pitch up), F (pitch down).
_KEY_TO_NAV = np.zeros((9, NAV_DIM))
_KEY_TO_NAV[1, FORWARD] = 1.0
_KEY_TO_NAV[2, RIGHT] = -1.0
_KEY_TO_NAV[3, FORWARD] = -1.0
_KEY_TO_NAV[4, RIGHT] = 1.0
_KEY_TO_NAV[5, YAW] = 1.0
_KEY_TO_NAV[6, YAW] = -1.0
_KEY_TO_NAV[7, PITCH] = 1.0
_KEY_TO_NAV[8, PITCH] = -1.0


@dataclass(frozen=True)
class NavLimits:
    """How far one step of full-scale navigation moves the camera.

    Attributes:
        max_translation: metres per step at |action| = 1.
        max_rotation: radians per step at |action| = 1.
        max_pitch: |pitch| is clamped here so walking agents never flip over.
    """

    max_translation: float = 0.15
    max_rotation: float = np.deg2rad(10.0)
    max_pitch: float = np.deg2rad(80.0)


def key_to_nav(key: int) -> NDArray[np.float64]:
    """Continuous-nav vector of a discrete key."""
    return _KEY_TO_NAV[key].copy()


def action_to_nav(action: Action) -> NDArray[np.float64]:
    """Continuous-nav vector of a key or nav action; zeros for hand actions."""
    kind = action.kind
    if kind == "key":
        return key_to_nav(action.key)
    if kind == "nav":
        return np.asarray(action.nav_vector, dtype=np.float64)
    return np.zeros(NAV_DIM)


def heading_frame(pose: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Horizontal forward and right unit vectors of a camera (world frame, Z up).

    Walking ignores pitch: forward is the optical axis projected on the ground plane.
    When looking straight up or down the camera's image-up picks the heading.
    """
    R = pose[:3, :3]
    forward = R[:, 2].copy()
    forward[2] = 0.0
    if np.linalg.norm(forward) < 1e-6:
        forward = R[:, 1].copy() * np.sign(R[2, 2])
        forward[2] = 0.0
    forward /= np.linalg.norm(forward)
    right = np.array([forward[1], -forward[0], 0.0])  # forward turned -90° about Z
    return forward, right


def pitch_of(pose: NDArray[np.float64]) -> float:
    """Camera pitch in radians, positive looking up."""
    return float(np.arcsin(np.clip(pose[2, 2], -1.0, 1.0)))


def integrate_nav(
    pose: NDArray[np.float64], nav: NDArray[np.float64], limits: NavLimits
) -> NDArray[np.float64]:
    """Camera pose after one navigation step (before any collision check).

    Translation happens in the heading frame (forward/right on the ground, up along world
    Z); yaw turns about world Z (positive = left); pitch about the camera x axis
    (positive = up), clamped to ±max_pitch; roll about the optical axis.
    """
    nav = np.asarray(nav, dtype=np.float64)
    forward, right = heading_frame(pose)
    up = np.array([0.0, 0.0, 1.0])
    step = limits.max_translation * (nav[FORWARD] * forward + nav[RIGHT] * right + nav[UP] * up)
    R = pose[:3, :3]
    R = rot_z(limits.max_rotation * nav[YAW]) @ R
    current_pitch = pitch_of(pose)
    target_pitch = np.clip(
        current_pitch + limits.max_rotation * nav[PITCH], -limits.max_pitch, limits.max_pitch
    )
    R = R @ rot_x(target_pitch - current_pitch)
    R = R @ rot_z(limits.max_rotation * nav[ROLL])
    return se3(R, pose[:3, 3] + step)
